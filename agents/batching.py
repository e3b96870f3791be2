"""Write-back caches over Faust tables: one changelog record per key per batch, in the right partition.

Faust writes a table's changelog record into the partition of the *current event*. A batch from
`take_events` mixes partitions, so the batch code keeps one cache per partition and, when flushing,
makes an event of that partition current before writing its keys.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from typing import Any, Generic, TypeVar

V = TypeVar("V")
_DELETED: Any = object()


class WriteBack(MutableMapping[str, V], Generic[V]):
    """Reads through to `backing`; buffers writes and deletions until `flush`."""

    def __init__(self, backing: MutableMapping[str, V]) -> None:
        self.backing = backing
        self.pending: dict[str, V] = {}

    def __getitem__(self, key: str) -> V:
        if key in self.pending:
            v = self.pending[key]
            if v is _DELETED:
                raise KeyError(key)
            return v
        return self.backing[key]

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __setitem__(self, key: str, value: V) -> None:
        self.pending[key] = value

    def __delitem__(self, key: str) -> None:
        self.pending[key] = _DELETED

    def __iter__(self) -> Iterator[str]:
        seen = set()
        for k, v in self.pending.items():
            seen.add(k)
            if v is not _DELETED:
                yield k
        for k in list(self.backing.keys()):
            if k not in seen:
                yield k

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def flush(self) -> int:
        """Write what is pending to the backing table; return how many keys were written."""
        n = len(self.pending)
        for k, v in self.pending.items():
            if v is _DELETED:
                self.backing.pop(k, None)
            else:
                self.backing[k] = v
        self.pending.clear()
        return n


async def run_batched(
    stream: Any,
    handler: Callable[[list[Any]], Awaitable[None]],
    max_size: int,
    within_s: float,
) -> AsyncIterator[None]:
    """Feed the stream's events to `handler` in batches; ack each event only after its batch.

    Faust's own `take_events`/`noack_take` read `current_event` after an await, so under load
    they record one message twice and lose its neighbour (seen here: offsets 821, 821, 823).
    This batcher keeps the event objects themselves: a batch is handled when it has `max_size`
    events or when its first event has waited `within_s`, and only then are its events acked, so
    an offset is never committed before its message was processed.
    """
    manual = stream.noack()
    buf: list[Any] = []
    first_at = 0.0
    lock = asyncio.Lock()
    loop = asyncio.get_running_loop()

    async def flush() -> None:
        nonlocal buf
        async with lock:
            if not buf:
                return
            batch, buf = buf, []
            await handler(batch)
            for ev in batch:
                await manual.ack(ev)

    async def ticker() -> None:
        while True:
            await asyncio.sleep(within_s / 2)
            if buf and loop.time() - first_at >= within_s:
                await flush()

    tick = asyncio.ensure_future(ticker())
    try:
        async for ev in manual.events():
            if not buf:
                first_at = loop.time()
            buf.append(ev)
            if len(buf) >= max_size:
                await flush()
            yield None
    finally:
        tick.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tick

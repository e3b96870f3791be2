"""Write-back caches over Faust tables: one changelog record per key per batch, in the right partition.

Faust writes a table's changelog record into the partition of the *current event*. A batch
mixes partitions, so the batch code keeps one cache per partition and, when flushing,
makes an event of that partition current before writing its keys.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from typing import Any, Generic, TypeVar

from agents import faust_compat

log = logging.getLogger(__name__)
V = TypeVar("V")
_DELETED: Any = object()


class WriteBack(MutableMapping[str, V], Generic[V]):
    """Reads through to `backing`; buffers writes and deletions until `flush`.

    `partition` is the table partition the keys belong to. When given, `flush` records each
    written key's partition in the table's store (and forgets deleted keys), so that the store
    drops them when that partition is assigned to another worker (agents/faust_compat.py:
    `record_key_partition`): a key is owned by one worker at a time.
    """

    def __init__(self, backing: MutableMapping[str, V], partition: int | None = None) -> None:
        self.backing = backing
        self.partition = partition
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

    def pending_keys(self) -> list[str]:
        """The keys written or deleted since the last flush (not yet in the backing table)."""
        return list(self.pending)

    def flush(self) -> int:
        """Write what is pending to the backing table; return how many keys were written."""
        n = len(self.pending)
        partition = self.partition
        owners = None if partition is None else faust_compat.key_partitions(self.backing)
        for k, v in self.pending.items():
            if v is _DELETED:
                self.backing.pop(k, None)
                if owners is not None:
                    owners.pop(k, None)
            else:
                self.backing[k] = v
                if owners is not None and partition is not None:
                    owners[k] = partition
        self.pending.clear()
        return n


async def run_bulk(
    stream: Any,
    handler: Callable[[list[Any]], Awaitable[None]],
    max_size: int,
    linger_s: float = 0.0,
    backlog_max: int = 0,
    max_bytes: int = 0,
) -> AsyncIterator[None]:
    """Feed the stream's events to `handler` in batches of what is queued; ack them after it.

    Faust's stream iterator costs about 60 us per message (sensors, context variables, one await
    per event): with it a bare agent reads ~11,000 messages a second, without it ~41,000
    (docs/benchmarks.md). This reads the agent's channel queue directly: it waits for one event,
    then, unless `max_size` are already queued, waits `linger_s` for more, and takes what is
    queued, up to `max_size`. Under a backlog a batch is full at once; at a steady rate it holds
    `linger_s` of messages, so the per-batch work (one delta message per aggregate, one changelog
    record per key) is shared by many events instead of repeated for each. What Faust's iterator does
    per event and matters is kept: a message of an old consumer generation, or one read while
    flow control is suspended by a rebalance, is skipped without being processed and is *not*
    acked (Faust's iterator acks it: an ack lets the next commit pass a message nobody
    processed, and it is not read again); the rebalance seeks back to the committed offset, so
    it is read again there. Every message is tracked as
    unacked until its batch was handled, so a rebalance waits for it (`stream_wait_empty`) and
    its offset is committed only after it was processed. Errors the conductor queued for the
    channel are raised here, as the iterator would, and the end of the channel's iteration (the
    app stopping) ends this generator.

    Rule: a batch is built from the messages taken off the queue, never from the stream's current
    event (Faust's `take_events`/`noack_take` read it after an await; CHANGELOG.md tells the story).

    Rule: with `max_bytes`, a batch stops growing once its messages' values hold that many bytes
    (it always takes one). Stage 2's messages each carry the deltas of a whole stage-1 batch
    (100 KB and more on a large centre): 2,000 of them were a backlog's worth of aggregate
    writes in one batch, 65,000 changelog records queued at once (CHANGELOG).

    Rule: with `backlog_max`, no batch is taken while more than `backlog_max` records wait in the
    app's producer buffer (`wait_for_producer`). Table writes queue their changelog records there
    without waiting, and Faust's own check drains only 100 per delivered message: a worker whose
    producer fell behind once held 124,000 records (over 500 MB) there (CHANGELOG).
    """
    app = stream.app
    await stream.maybe_start()
    errors = faust_compat.take_channel(stream)
    queue = stream.channel.queue
    get_nowait = queue.get_nowait
    flow_control = app.flow_control
    consumer = app.consumer
    unacked = consumer.unacked
    acking_topics = app.topics.acking_topics
    while not stream.should_stop:
        if errors:
            error = errors.popleft()
            if isinstance(error, StopAsyncIteration):
                return  # the actor was told to stop (Faust's `Actor.cancel`), as the iterator ends
            raise error
        try:
            first = await queue.get()
        except StopAsyncIteration:  # the app is stopping: Faust ends its channels' iteration
            return
        if linger_s > 0 and queue.qsize() + 1 < max_size:
            await asyncio.sleep(linger_s)
        taken = [first]
        if max_bytes:
            size = _value_bytes(first)
            while len(taken) < max_size and size < max_bytes and not queue.empty():
                ev = get_nowait()
                taken.append(ev)
                size += _value_bytes(ev)
        else:
            while len(taken) < max_size and not queue.empty():
                taken.append(get_nowait())
        batch: list[Any] = []
        active = flow_control.is_active()
        generation = app.consumer_generation_id
        for ev in taken:
            message = ev.message
            if not active or message.generation_id != generation:
                continue  # not acked: read again from the committed offset after the rebalance
            if message.topic in acking_topics and not message.tracked:
                message.tracked = True
                unacked.add(message)
            batch.append(ev)
        if len(batch) < len(taken):
            log.info(
                "skipped %d messages taken during a rebalance (generation %s, flow %s)",
                len(taken) - len(batch),
                generation,
                "on" if active else "off",
            )
        if batch:
            try:
                await handler(batch)
            finally:
                faust_compat.set_current_event(stream, None)
            for ev in batch:
                ev.ack()
        if backlog_max:
            await wait_for_producer(app.producer.buffer, backlog_max, lambda: stream.should_stop)
        yield None


def _value_bytes(ev: Any) -> int:
    """The size of an event's raw message value (0 for a tombstone or a non-bytes value)."""
    value = getattr(ev.message, "value", None)
    return len(value) if isinstance(value, bytes | bytearray | memoryview) else 0


async def wait_for_producer(
    buffer: Any, backlog_max: int, stopping: Callable[[], bool], poll_s: float = 0.01
) -> None:
    """Wait until at most `backlog_max` messages wait in Faust's producer buffer (or the app stops).

    Only the buffer's public `size` is read: the buffer's sender task drains it, this waits.
    """
    if buffer.size <= backlog_max:
        return
    started = time.monotonic()
    while buffer.size > backlog_max and not stopping():
        await asyncio.sleep(poll_s)
    log.debug("waited %.2fs for the producer buffer (limit %d)", time.monotonic() - started, backlog_max)

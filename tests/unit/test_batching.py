"""The agents' batcher and write-back cache, without Faust: order, acks after handling, idle flush."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from agents.batching import WriteBack, run_batched


class FakeStream:
    """Enough of a Faust stream: noack(), events(), ack()."""

    def __init__(self, items: list[int], gap_after: int | None = None, endless: bool = False) -> None:
        self.items = items
        self.endless = endless
        self.gap_after = gap_after
        self.acked: list[int] = []
        self.release = asyncio.Event()

    def noack(self) -> FakeStream:
        return self

    async def events(self) -> AsyncIterator[int]:
        for i in self.items:
            if self.gap_after is not None and i == self.gap_after + 1:
                await self.release.wait()  # the stream goes quiet for a while
            yield i
        if self.endless:  # a real stream never ends: it waits for the next message
            await asyncio.Event().wait()

    async def ack(self, ev: int) -> None:
        self.acked.append(ev)


async def test_batches_keep_order_and_ack_only_after_handling() -> None:
    stream = FakeStream(list(range(10)))
    seen: list[list[int]] = []

    async def handle(batch: list[int]) -> None:
        assert not set(batch) & set(stream.acked)  # nothing of a batch is acked before it is handled
        seen.append(list(batch))

    async for _ in run_batched(stream, handle, 4, 10.0):
        pass
    assert seen[:2] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert stream.acked[:8] == list(range(8))


async def test_a_partial_batch_is_flushed_when_the_stream_goes_quiet() -> None:
    stream = FakeStream(list(range(6)), gap_after=2, endless=True)
    seen: list[list[int]] = []

    async def handle(batch: list[int]) -> None:
        seen.append(list(batch))

    async def consume() -> None:
        async for _ in run_batched(stream, handle, 100, 0.05):
            pass

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0.3)
    assert seen == [[0, 1, 2]] and stream.acked == [0, 1, 2]
    stream.release.set()
    await asyncio.sleep(0.3)
    task.cancel()
    assert seen[1] == [3, 4, 5]


def test_write_back_reads_through_and_writes_once() -> None:
    backing: dict[str, Any] = {"a": 1, "b": 2}
    writes: list[str] = []

    class Spy(dict[str, Any]):
        def __setitem__(self, k: str, v: Any) -> None:
            writes.append(k)
            super().__setitem__(k, v)

    spy = Spy(backing)
    wb: WriteBack[Any] = WriteBack(spy)
    wb["a"] = 10
    wb["a"] = 11
    del wb["b"]
    wb["c"] = 3
    assert wb["a"] == 11 and wb.get("b") is None and sorted(wb) == ["a", "c"]
    assert spy == {"a": 1, "b": 2}  # nothing written yet
    assert wb.flush() == 3
    assert spy == {"a": 11, "c": 3} and writes == ["a", "c"]

"""run_bulk: it never acks a message it did not process (an ack lets the commit pass it), and it
takes no new batch while the producer buffer holds more than `backlog_max` records (table writes
queue their changelog records there without waiting; a worker whose producer fell behind held
124,000 of them, CHANGELOG)."""

from __future__ import annotations

import asyncio
from collections import deque
from types import SimpleNamespace as NS
from typing import Any

from agents.batching import run_bulk, wait_for_producer


class Queue(asyncio.Queue[Any]):
    def __init__(self) -> None:
        super().__init__()
        self._errors: deque[BaseException] = deque()


class Unacked(list[Any]):
    def add(self, message: Any) -> None:
        self.append(message)


def event(offset: int, generation: int, acked: list[int]) -> Any:
    message = NS(offset=offset, generation_id=generation, topic="in", tracked=False)
    return NS(message=message, ack=lambda: acked.append(offset))


class Stream:
    def __init__(self, generation: int = 1, flow: bool = True) -> None:
        self.buffer = NS(size=0)  # the app producer's buffer: records waiting to be sent
        self.app = NS(
            flow_control=NS(is_active=lambda: flow),
            consumer_generation_id=generation,
            consumer=NS(unacked=Unacked()),
            topics=NS(acking_topics={"in"}),
            producer=NS(buffer=self.buffer),
        )
        self.channel = NS(queue=Queue())
        self.should_stop = False
        self.current_event: Any = None

    async def maybe_start(self) -> None:
        pass

    def _set_current_event(self, ev: Any) -> None:
        self.current_event = ev


async def drive(stream: Stream, events: list[Any]) -> list[int]:
    handled: list[int] = []

    async def handler(batch: list[Any]) -> None:
        handled.extend(ev.message.offset for ev in batch)

    for ev in events:
        stream.channel.queue.put_nowait(ev)
    gen = run_bulk(stream, handler, max_size=100)
    await gen.__anext__()
    await gen.aclose()
    return handled


async def test_messages_of_an_older_generation_are_neither_processed_nor_acked() -> None:
    acked: list[int] = []
    stream = Stream(generation=2, flow=True)
    handled = await drive(stream, [event(7, 1, acked), event(8, 2, acked), event(9, 1, acked)])
    assert handled == [8] and acked == [8]


async def test_messages_taken_while_the_flow_is_suspended_are_neither_processed_nor_acked() -> None:
    acked: list[int] = []
    stream = Stream(generation=1, flow=False)
    for ev in [event(7, 1, acked), event(8, 1, acked)]:
        stream.channel.queue.put_nowait(ev)

    async def handler(batch: list[Any]) -> None:
        raise AssertionError("nothing may be processed")

    gen = run_bulk(stream, handler, max_size=100)
    await gen.__anext__()
    await gen.aclose()
    assert acked == []


async def test_a_stop_queued_while_a_batch_is_handled_ends_the_loop() -> None:
    """Faust stops an actor by queueing StopAsyncIteration on its channel (`Actor.cancel`); raised
    inside the generator it became a RuntimeError, and the supervisor restarted the agent while the
    worker was stopping."""
    acked: list[int] = []
    stream = Stream(generation=1, flow=True)
    stream.channel.queue.put_nowait(event(7, 1, acked))

    async def handler(batch: list[Any]) -> None:
        stream.channel.queue._errors.append(StopAsyncIteration())
        stream.channel.queue.put_nowait(event(8, 1, acked))

    gen = run_bulk(stream, handler, max_size=100)
    await gen.__anext__()
    assert [x async for x in gen] == []
    assert acked == [7]


async def test_no_batch_is_taken_while_the_producer_buffer_is_over_its_limit() -> None:
    stream = Stream()
    seen_sizes: list[int] = []

    async def handler(batch: list[Any]) -> None:
        seen_sizes.append(stream.buffer.size)
        stream.buffer.size += 3_000  # the batch's table writes queue their changelog records

    for i in range(3):
        stream.channel.queue.put_nowait(event(i, 1, []))
    gen = run_bulk(stream, handler, max_size=1, backlog_max=1_000)
    first = asyncio.ensure_future(gen.__anext__())
    await asyncio.sleep(0.05)
    assert seen_sizes == [0]  # the first batch was handled: the buffer was empty
    assert not first.done()  # 3,000 records wait: no next batch
    stream.buffer.size = 1_500
    await asyncio.sleep(0.05)
    assert not first.done()
    stream.buffer.size = 1_000  # drained to the limit: the loop goes on
    await asyncio.wait_for(first, 1.0)
    assert seen_sizes == [0]

    second = asyncio.ensure_future(gen.__anext__())
    await asyncio.sleep(0.05)
    assert seen_sizes == [0, 1_000]  # the buffer need not be empty, only at its limit
    stream.buffer.size = 0
    await asyncio.wait_for(second, 1.0)
    await gen.aclose()


async def test_the_wait_ends_when_the_app_stops() -> None:
    buffer = NS(size=10_000)
    stopping = False

    async def stop_soon() -> None:
        nonlocal stopping
        await asyncio.sleep(0.05)
        stopping = True

    task = asyncio.ensure_future(stop_soon())
    await asyncio.wait_for(wait_for_producer(buffer, 100, lambda: stopping), 1.0)
    await task
    assert buffer.size == 10_000


async def test_no_limit_never_waits() -> None:
    stream = Stream()
    stream.buffer.size = 10**6
    handled: list[int] = []

    async def handler(batch: list[Any]) -> None:
        handled.extend(ev.message.offset for ev in batch)

    for i in range(2):
        stream.channel.queue.put_nowait(event(i, 1, []))
    gen = run_bulk(stream, handler, max_size=1)
    await asyncio.wait_for(gen.__anext__(), 1.0)
    await asyncio.wait_for(gen.__anext__(), 1.0)
    assert handled == [0, 1]
    await gen.aclose()


async def test_a_batch_stops_growing_at_max_bytes_of_message_values() -> None:
    """Stage 2's messages each carry a stage-1 batch's deltas: a backlog of them was once applied
    as one batch of 65,000 changelog records (CHANGELOG); the byte bound applies it in steps."""
    stream = Stream()
    batches: list[list[int]] = []

    async def handler(batch: list[Any]) -> None:
        batches.append([ev.message.offset for ev in batch])

    for i in range(7):
        ev = event(i, 1, [])
        ev.message.value = b"x" * 400
        stream.channel.queue.put_nowait(ev)
    gen = run_bulk(stream, handler, max_size=100, max_bytes=1_000)
    for _ in range(3):
        await gen.__anext__()
    await gen.aclose()
    # 400 + 400 < 1,000 takes a third; 1,200 >= 1,000 stops: every message once, in order
    assert batches == [[0, 1, 2], [3, 4, 5], [6]]


async def test_one_message_over_max_bytes_is_still_a_batch() -> None:
    stream = Stream()
    handled: list[int] = []

    async def handler(batch: list[Any]) -> None:
        handled.extend(ev.message.offset for ev in batch)

    big = event(0, 1, [])
    big.message.value = b"x" * 5_000
    stream.channel.queue.put_nowait(big)
    stream.channel.queue.put_nowait(event(1, 1, []))  # no value (a tombstone): counts 0 bytes
    gen = run_bulk(stream, handler, max_size=100, max_bytes=1_000)
    await gen.__anext__()
    assert handled == [0]
    await gen.__anext__()
    assert handled == [0, 1]
    await gen.aclose()

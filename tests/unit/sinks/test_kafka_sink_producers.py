"""The Kafka sink never has two producers: a failed producer's stop ends before the next starts.

A stop delivers or fails every batch the producer still holds. Were the next producer started
first, an old batch retried in the background could land after the resync and leave an older
record last under its key in a compacted topic.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from stream.config import Settings
from stream.errors import SinkError
from stream.sinks.base import Batch
from stream.sinks.kafka import KafkaSink

OP_RECORD = {"operator_id": "op-1", "period_key": "day:2026-01-15", "f": "1"}


class Producer:
    """A producer whose sends fail (or not) and whose stop waits for `release`."""

    def __init__(self, name: str, log: list[str], *, fail: bool) -> None:
        self.name, self.log, self.fail = name, log, fail
        self.stopping = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()

    async def start(self) -> None:
        self.log.append(f"{self.name} start")

    async def send(self, topic: str, value: bytes | None, key: bytes) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.fail:
            fut.set_exception(OSError("leader lost"))
        else:
            self.log.append(f"{self.name} sent {key.decode()}")
            fut.set_result(None)
        return fut

    async def stop(self) -> None:
        self.stopping.set()
        await self.release.wait()
        self.log.append(f"{self.name} stopped")


def sink_with(producers: list[Producer]) -> KafkaSink:
    queue = list(producers)
    return KafkaSink(Settings(), new_producer=lambda _settings: queue.pop(0))


async def test_a_cancelled_close_still_ends_before_the_next_producer_starts() -> None:
    log: list[str] = []
    old, new = Producer("old", log, fail=True), Producer("new", log, fail=False)
    old.release.clear()  # the old producer's stop is flushing batches to a broker that is away
    sink = sink_with([old, new])

    first = asyncio.ensure_future(sink.write(Batch(operators=[OP_RECORD])))
    await old.stopping.wait()
    first.cancel()  # the runner's write timeout cancels the write while it closes the producer
    with pytest.raises(asyncio.CancelledError):
        await first

    second = asyncio.ensure_future(sink.write(Batch(operators=[OP_RECORD])))
    for _ in range(20):
        await asyncio.sleep(0)
    assert log == ["old start"] and not second.done()  # no new producer while the old one stops

    old.release.set()
    await second
    assert log == ["old start", "old stopped", "new start", "new sent op-1|day:2026-01-15"]


async def test_a_failed_write_stops_its_producer_and_the_next_write_uses_a_new_one() -> None:
    log: list[str] = []
    sink = sink_with([Producer("a", log, fail=True), Producer("b", log, fail=False)])
    with pytest.raises(SinkError, match="leader lost"):
        await sink.write(Batch(operators=[OP_RECORD]))
    await sink.write(Batch(operators=[OP_RECORD]))
    await sink.close()
    assert log == ["a start", "a stopped", "b start", "b sent op-1|day:2026-01-15", "b stopped"]


async def test_close_waits_for_a_stop_left_running_by_a_cancelled_close() -> None:
    log: list[str] = []
    p = Producer("p", log, fail=False)
    sink = sink_with([p])
    await sink.write(Batch(operators=[OP_RECORD]))
    p.release.clear()
    closing = asyncio.ensure_future(sink.close())
    await p.stopping.wait()
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    later: Any = asyncio.ensure_future(sink.close())
    for _ in range(20):
        await asyncio.sleep(0)
    assert not later.done()
    p.release.set()
    await later
    assert log[-1] == "p stopped"

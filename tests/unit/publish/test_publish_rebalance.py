"""The publisher across a rebalance: stale batches dropped, everything this worker owns rewritten."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import faust

from agents.publishing import connect_rebalance_hooks
from stream.core.aggregate import AggregateStore, AggState
from stream.core.config import KpiConfig
from stream.core.entity import Delta
from stream.publish import MappingReader, Publisher
from stream.sinks.base import Batch, MemorySink

T0 = 1_768_467_600_000  # 2026-01-15T09:00:00Z
ANSWER = {"presented": 1, "answered": 1, "sl_answered": 1}


class GatedSink(MemorySink):
    """Holds every write until its gate opens (a slow Redis): batches wait in the runner's queue."""

    def __init__(self) -> None:
        super().__init__("gated")
        self.gate = asyncio.Event()

    async def write(self, batch: Batch) -> None:
        await self.gate.wait()
        await super().write(batch)


class World:
    def __init__(self, sinks: list[Any]) -> None:
        self.cfg = KpiConfig()
        self.aggs: dict[str, AggState] = {}
        self.store = AggregateStore(self.aggs, self.cfg, rolling=True)
        self.offset = 0
        reader = MappingReader(self.aggs, self.cfg, lambda: self.store.watermark)
        self.pub = Publisher(reader, sinks, self.cfg, clock=lambda: T0 / 1000, queue_size=16)

    def add(self, sid: str, ts: int, mark: bool = True) -> None:
        self.offset += 1
        self.store.observe(ts)
        keys = self.store.apply(Delta("op", sid, ts, ANSWER, "t:0", self.offset, 0))
        if mark:
            self.pub.mark(keys)


def ops(batch: Batch) -> set[tuple[str, str]]:
    return {(r["operator_id"], r["period_key"]) for r in batch.operators}


async def test_revoked_drops_queued_batches_and_holds_publishing() -> None:
    sink = GatedSink()
    w = World([sink])
    w.pub.start()
    w.add("a", T0)
    w.pub.flush()  # taken by the runner, waiting at the gate
    await asyncio.sleep(0)
    for i in range(3):
        w.add(f"b{i}", T0 + i)
        w.pub.flush()
    runner = w.pub.runners[0]
    assert runner.queue.qsize() == 3
    w.pub.on_partitions_revoked()
    assert runner.queue.empty()
    w.add("c", T0 + 10)
    assert not len(w.pub.flush()) and runner.queue.empty()  # nothing is published mid-rebalance
    assert not len(w.pub.build_full())  # not even a failed sink's resync
    w.pub.on_partitions_ready()
    resync = w.pub.flush()
    assert resync.full and resync.complete and resync.active_alerts == []
    assert {o for o, _ in ops(resync)} == {"a", "b0", "b1", "b2", "c"}
    sink.gate.set()
    await asyncio.wait_for(runner.idle(), 5)
    await w.pub.stop()
    assert [ops(b) for b in sink.batches] == [
        {("a", p) for p in ("rolling", "day:2026-01-15", "month:2026-01")},
        ops(resync),
    ]


def test_the_new_owner_rewrites_records_it_believes_unchanged() -> None:
    sink = MemorySink()
    w = World([sink])
    w.add("a", T0)
    assert ops(w.pub.flush())
    assert not len(w.pub.flush())  # unchanged: not written again
    w.pub.on_rebalance()
    assert not w.pub.index.known and not len(w.pub.changes)
    w.add("z", T0, mark=False)  # state that arrived with the new assignment (recovered, no delta)
    batch = w.pub.flush()
    assert batch.full and ops(batch) == {
        (o, p) for o in "az" for p in ("rolling", "day:2026-01-15", "month:2026-01")
    }
    assert not len(w.pub.flush())  # the resync refilled the change filter: back to changes only


async def test_faust_signals_reach_the_hooks() -> None:
    app = faust.App("kpistream-rebalance-hooks-test", broker="memory://", store="memory://")
    table = app.Table("kpistream-rebalance-hooks-test-aggs", partitions=1)
    w = World([])
    connect_rebalance_hooks(app, table, w.pub)
    w.add("a", T0)
    w.pub.flush()
    await app.on_partitions_revoked.send(set())
    assert not len(w.pub.flush())  # held until the table is recovered
    await app.on_rebalance_complete.send()
    assert not len(w.pub.flush())  # not yet: the table drops revoked partitions after this signal
    await table.call_recover_callbacks()
    batch = w.pub.flush()
    assert batch.full and {o for o, _ in ops(batch)} == {"a"}


async def test_the_resync_does_not_wait_out_the_flush_interval() -> None:
    """After a failover every record waits for the resync: it is flushed as soon as the assignment
    is recovered, not at the next tick of the interval."""
    sink = MemorySink()
    w = World([sink])
    ticks = 0
    forever = asyncio.Event()

    async def slow_sleep(s: float) -> None:
        nonlocal ticks
        ticks += 1
        await forever.wait()  # the interval never ends in this test

    w.pub.sleep = slow_sleep
    task = asyncio.ensure_future(w.pub.run())
    await asyncio.sleep(0.01)
    w.pub.on_partitions_revoked()
    w.add("a", T0)
    w.pub.on_partitions_ready()
    for _ in range(100):
        if sink.batches:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert [b.full for b in sink.batches] == [True]
    assert ops(sink.batches[0]) == {("a", p) for p in ("rolling", "day:2026-01-15", "month:2026-01")}
    assert ticks == 2  # the first interval, then the one after the resync

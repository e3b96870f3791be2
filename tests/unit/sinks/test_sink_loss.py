"""A sink whose store lost the data (Redis restarted empty) gets the complete state without new events."""

from __future__ import annotations

import asyncio

from stream.core.aggregate import AggregateStore, AggState
from stream.core.config import KpiConfig
from stream.core.entity import Delta
from stream.metrics import Metrics
from stream.publish import MappingReader, Publisher, SinkRunner
from stream.sinks.base import Batch, LossCheckedSink, MemorySink
from stream.sinks.redis import WriteWitness

T0 = 1_768_467_600_000


class ForgetfulSink(MemorySink):
    """A store that can be emptied like a restarted Redis; `lost_data` answers like the Redis sink."""

    def __init__(self) -> None:
        super().__init__("forgetful")
        self.held: set[tuple[str, str]] = set()
        self.marked = False
        self.down = False
        self.checks = 0

    async def write(self, batch: Batch) -> None:
        await super().write(batch)
        if batch.complete:
            self.marked = True
        self.held |= {(r["operator_id"], r["period_key"]) for r in batch.operators}

    async def lost_data(self) -> bool:
        self.checks += 1
        if self.down:
            raise ConnectionError("connection refused")
        return not self.marked

    def restart_empty(self) -> None:
        self.held = set()
        self.marked = False


class FakeMonotonic:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_the_redis_witness() -> None:
    w = WriteWitness()
    assert w.lost(True, "r1")  # no complete write yet: nothing is known to be there
    w.wrote_complete("r1")
    assert not w.lost(True, "r1")
    assert w.lost(False, "r1")  # marker gone: flushed or restarted without persistence
    assert w.lost(True, "r2")  # another server run: a restart or a failover to a replica


async def test_a_store_emptied_without_events_is_rewritten_at_the_next_check() -> None:
    sink = ForgetfulSink()
    assert isinstance(sink, LossCheckedSink)
    cfg = KpiConfig()
    aggs: dict[str, AggState] = {}
    store = AggregateStore(aggs, cfg, rolling=True)
    pub = Publisher(MappingReader(aggs, cfg, lambda: store.watermark), [sink], cfg, clock=lambda: T0 / 1000)
    runner = pub.runners[0]
    clock = FakeMonotonic()
    runner.monotonic = clock
    runner._checked_at = 0.0
    store.observe(T0)
    pub.mark(store.apply(Delta("op", "a", T0, {"presented": 1}, "t:0", 1, 0)))
    pub.start()
    pub.flush()
    await asyncio.wait_for(runner.idle(), 5)
    assert sink.batches[0].complete and len(sink.held) == 3
    sink.restart_empty()
    assert await runner.check_loss()
    await asyncio.wait_for(runner.idle(), 5)
    assert sink.batches[-1].full and len(sink.held) == 3  # no event came: the check did it
    sink.down = True
    assert await runner.check_loss()  # an unreachable store may have restarted: rewrite
    sink.down = False
    await asyncio.wait_for(runner.idle(), 5)
    assert sink.batches[-1].full and len(sink.batches) == 3
    checks = sink.checks
    sink.restart_empty()
    clock.t += 5.0  # the runner checks by itself once `check_every_s` passed
    runner.wakeup.set()
    for _ in range(100):
        await asyncio.sleep(0)
        if sink.checks > checks and not runner.needs_full and not runner.busy:
            break
    await asyncio.wait_for(runner.idle(), 5)
    await pub.stop()
    assert sink.checks > checks and len(sink.held) == 3 and sink.batches[-1].full


async def test_a_sink_without_a_check_is_never_asked() -> None:
    runner = SinkRunner(
        MemorySink(),
        Batch,
        Metrics.create(),
        queue_size=1,
        backoff_initial_s=0.1,
        backoff_max_s=0.1,
        sleep=asyncio.sleep,
    )
    assert not await runner.check_loss() and not runner.needs_full

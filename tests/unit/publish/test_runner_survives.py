"""A sink task never ends but by cancellation: a hung write or a failed build is retried, in full."""

from __future__ import annotations

import asyncio

from stream.metrics import Metrics
from stream.publish import SinkRunner
from stream.sinks.base import Batch, MemorySink, Record


class HangingOnceSink(MemorySink):
    """Its first write never returns (a producer waiting forever); later writes work."""

    def __init__(self) -> None:
        super().__init__("hanging")
        self.calls = 0
        self.close_calls = 0

    async def write(self, batch: Batch) -> None:
        self.calls += 1
        if self.calls == 1:
            await asyncio.Event().wait()
        await super().write(batch)

    async def close(self) -> None:
        self.close_calls += 1


async def _no_sleep(_: float) -> None:
    await asyncio.sleep(0)


def _runner(sink: MemorySink, build_full: object, **kw: float) -> SinkRunner:
    return SinkRunner(
        sink,
        build_full,
        Metrics.create(),
        queue_size=4,
        backoff_initial_s=0.01,
        backoff_max_s=0.01,
        sleep=_no_sleep,
        **kw,
    )


async def test_a_hung_write_is_closed_and_the_complete_state_written() -> None:
    sink = HangingOnceSink()
    full = Batch(operators=[{"operator_id": "op-1", "period_key": "day:2026-01-15"}], full=True)
    runner = _runner(sink, lambda: full, write_timeout_s=0.05)
    runner.offer(Batch(operators=[{"operator_id": "op-1", "period_key": "day:2026-01-15", "v": 1}]))
    task = asyncio.ensure_future(runner.run())
    try:
        async with asyncio.timeout(5):
            while not sink.batches:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert sink.close_calls == 1  # the hung client was closed, so it reconnects
    assert sink.batches[-1] is full  # and the retry is the complete state
    assert runner.errors == 1


async def test_a_failed_build_is_retried_and_the_task_goes_on() -> None:
    sink = MemorySink("ok")
    full = Batch(operators=[{"operator_id": "op-1", "period_key": "day:2026-01-15"}], full=True)
    builds = iter([RuntimeError("a bug in one build"), full])

    def build_full() -> Batch:
        b = next(builds)
        if isinstance(b, Exception):
            raise b
        return b

    runner = _runner(sink, build_full)
    runner.needs_full = True
    task = asyncio.ensure_future(runner.run())
    try:
        async with asyncio.timeout(5):
            while not sink.batches:
                await asyncio.sleep(0.01)
        assert not task.done()
    finally:
        task.cancel()
    assert sink.batches == [full]
    assert runner.errors == 1


class SlowSink(MemorySink):
    """Writes every batch, slowly: a large complete write on a busy machine."""

    def __init__(self, seconds: float) -> None:
        super().__init__("slow")
        self.seconds = seconds
        self.close_calls = 0

    async def write(self, batch: Batch) -> None:
        await asyncio.sleep(self.seconds)
        await super().write(batch)

    async def close(self) -> None:
        self.close_calls += 1


def _records(n: int) -> list[Record]:
    return [{"operator_id": f"op-{i}", "period_key": "day:2026-01-15"} for i in range(n)]


def test_the_write_budget_grows_with_the_batch() -> None:
    runner = _runner(MemorySink("m"), lambda: Batch(), write_timeout_s=60.0, min_records_per_s=1_000.0)
    assert runner.write_budget_s(Batch()) == 60.0
    assert runner.write_budget_s(Batch(operators=_records(200_000), full=True)) == 260.0


async def test_a_slow_complete_write_is_not_taken_for_a_hung_one() -> None:
    # A flat limit once resent a complete write that could not finish inside it, in full, forever.
    sink = SlowSink(0.5)
    runner = _runner(sink, lambda: Batch(), write_timeout_s=0.2, min_records_per_s=1_000.0)
    big = Batch(operators=_records(2_000), full=True)
    runner.offer(big)
    task = asyncio.ensure_future(runner.run())
    try:
        async with asyncio.timeout(10):
            while not sink.batches:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert sink.batches == [big]
    assert runner.errors == 0 and sink.close_calls == 0

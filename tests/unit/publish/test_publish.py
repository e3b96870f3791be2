"""The publisher: coalescing per interval, rolling re-publication, per-sink isolation, retry and resync."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from stream.core.aggregate import AggregateStore, AggState
from stream.core.config import DAY_MS, HOUR_MS, KpiConfig
from stream.core.entity import Delta
from stream.metrics import Metrics
from stream.publish import MappingReader, Publisher
from stream.sinks.base import Batch, MemorySink
from stream.sinks.prometheus import PrometheusSink
from stream.strategies import StrategyBook, parse_book

T0 = 1_768_467_600_000  # 2026-01-15T09:00:00Z
DAY = DAY_MS


class FakeClock:
    def __init__(self) -> None:
        self.t = T0 / 1000

    def __call__(self) -> float:
        return self.t


class World:
    """Aggregates over a dict, fed with deltas like stage 2, and a publisher reading them."""

    def __init__(self, sinks: list[Any], **kw: Any) -> None:
        self.cfg = KpiConfig()
        self.aggs: dict[str, AggState] = {}
        self.store = AggregateStore(self.aggs, self.cfg, rolling=True)
        self.clock = FakeClock()
        self.metrics = Metrics.create()
        self.offset = 0
        reader = MappingReader(self.aggs, self.cfg, lambda: self.store.watermark)
        self.pub = Publisher(reader, sinks, self.cfg, metrics=self.metrics, clock=self.clock, **kw)

    def add(self, scope: str, sid: str, ts: int, counts: dict[str, int]) -> None:
        self.offset += 1
        self.store.observe(ts)
        self.pub.mark(self.store.apply(Delta(scope, sid, ts, counts, "t:0", self.offset, 0)))


ANSWER = {"presented": 1, "answered": 1, "sl_answered": 1}


def keys_of(batch: Batch) -> list[tuple[str, str]]:
    return [(r["operator_id"], r["period_key"]) for r in batch.operators] + [
        (r["queue"], r["period_key"]) for r in batch.queues
    ]


def test_coalescing_one_record_per_key_per_flush() -> None:
    w = World([])
    for i in range(5):
        w.add("op", "a", T0 + i * 1000, ANSWER)
        w.add("queue", "sales", T0 + i * 1000, {"offered": 1, "answered": 1})
    batch = w.pub.flush()
    assert sorted(keys_of(batch)) == sorted(
        (k, p) for k in ("a", "sales") for p in ("rolling", "day:2026-01-15", "month:2026-01")
    )
    a_day = next(r for r in batch.operators if r["period_key"] == "day:2026-01-15")
    assert a_day["counts"]["presented"] == 5 and a_day["updated_at"] == "2026-01-15T09:00:00.000Z"
    assert (batch.current_day, batch.current_month) == ("day:2026-01-15", "month:2026-01")
    assert len(w.pub.flush()) == 0  # nothing changed: nothing written
    w.clock.t += 1
    w.add("op", "b", T0 + 5000, ANSWER)
    batch = w.pub.flush()
    # b is new; a's F is unchanged but its fund share halves (shares are over all operators): both go
    assert sorted(keys_of(batch)) == sorted(
        (o, p) for o in "ab" for p in ("rolling", "day:2026-01-15", "month:2026-01")
    )
    assert {r["fund_share"] for r in batch.operators} == {0.5}
    assert {r["updated_at"] for r in batch.operators} == {"2026-01-15T09:00:01.000Z"}


def test_rolling_republished_when_watermark_slides() -> None:
    w = World([])
    w.add("op", "a", T0, ANSWER)
    w.pub.flush()
    w.store.observe(T0 + HOUR_MS + 1)  # no delta touches a, but its hour is over
    batch = w.pub.flush()
    assert keys_of(batch) == [("a", "rolling")]
    rec = batch.operators[0]
    assert not any(rec["counts"].values()) and rec["f"] == 0.0 and rec["fund_share"] is None
    assert w.aggs["op|a|rolling"].counts == ANSWER  # the table itself is never written by the publisher


async def test_run_loop_flushes_every_interval_with_fake_clock() -> None:
    sink = MemorySink()
    w = World([sink], interval_s=1.0)
    flushed = asyncio.Event()
    ticks = 0

    async def fake_sleep(s: float) -> None:
        nonlocal ticks
        w.clock.t += s
        ticks += 1
        if ticks == 1:
            for i in range(10):
                w.add("op", "a", T0 + i, ANSWER)
        if ticks == 3:
            flushed.set()
        await asyncio.sleep(0)

    w.pub.sleep = fake_sleep
    task = asyncio.ensure_future(w.pub.run())
    await asyncio.wait_for(flushed.wait(), 5)
    await asyncio.wait_for(w.pub.runners[0].idle(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sink.closed
    assert len(sink.batches) == 1
    assert sorted(keys_of(sink.batches[0])) == [
        ("a", "day:2026-01-15"),
        ("a", "month:2026-01"),
        ("a", "rolling"),
    ]


class FlakySink(MemorySink):
    """Fails its first `n` writes (like Redis being down), then works."""

    def __init__(self, n: int) -> None:
        super().__init__("flaky")
        self.n = n
        self.attempts = 0

    async def write(self, batch: Batch) -> None:
        self.attempts += 1
        if self.attempts <= self.n:
            raise ConnectionError("connection refused")
        await super().write(batch)


class SlowSink(MemorySink):
    def __init__(self) -> None:
        super().__init__("slow")
        self.gate = asyncio.Event()

    async def write(self, batch: Batch) -> None:
        await self.gate.wait()
        await super().write(batch)


async def test_failing_sink_retries_with_backoff_then_writes_complete_state() -> None:
    flaky, healthy = FlakySink(3), MemorySink()
    delays: list[float] = []
    w = World([flaky, healthy], backoff_initial_s=0.5, backoff_max_s=1.5)

    async def record_sleep(s: float) -> None:
        delays.append(s)
        await asyncio.sleep(0)

    for r in w.pub.runners:
        r.sleep = record_sleep
    w.pub.start()
    w.add("op", "a", T0, ANSWER)
    w.pub.flush()
    await asyncio.wait_for(w.pub.runners[1].idle(), 5)
    w.add("op", "b", T0 + 1000, ANSWER)  # changes while the flaky sink is down
    w.pub.flush()
    await asyncio.wait_for(w.pub.runners[1].idle(), 5)
    await asyncio.wait_for(w.pub.runners[0].idle(), 5)
    await w.pub.stop()
    assert delays == [0.5, 1.0, 1.5]
    assert w.metrics.sink_errors_total.labels("flaky")._value.get() == 3
    assert w.metrics.sink_errors_total.labels("memory")._value.get() == 0
    assert len(healthy.batches) == 2  # the healthy sink never waited for the other one
    (resync,) = flaky.batches
    assert resync.full
    assert sorted(keys_of(resync)) == sorted(
        (o, p) for o in "ab" for p in ("rolling", "day:2026-01-15", "month:2026-01")
    )
    b_day = next(
        r for r in resync.operators if (r["operator_id"], r["period_key"]) == ("b", "day:2026-01-15")
    )
    assert b_day["fund_share"] == 0.5


async def test_slow_sink_overflows_into_a_resync_without_blocking() -> None:
    slow, fast = SlowSink(), MemorySink()
    w = World([slow, fast], queue_size=2)
    w.pub.start()
    for i in range(6):
        w.add("op", f"o{i}", T0 + i, ANSWER)
        w.pub.flush()
        await asyncio.sleep(0)
    await asyncio.wait_for(w.pub.runners[1].idle(), 5)
    assert len(fast.batches) == 6
    assert w.pub.runners[0].needs_full
    slow.gate.set()
    await asyncio.wait_for(w.pub.runners[0].idle(), 5)
    await w.pub.stop()
    assert slow.batches[-1].full and {r["operator_id"] for r in slow.batches[-1].operators} == {
        f"o{i}" for i in range(6)
    }


def test_strategy_switch_republishes_scores() -> None:
    book = parse_book({"strategies": {"double": {"weights": [6, 8, 6, 10, 5, 2]}}})
    w = World([], book=book)
    w.add("op", "a", T0, ANSWER)
    first = {r["period_key"]: r["f"] for r in w.pub.flush().operators}
    assert not w.pub.set_default_strategy("nope")
    assert w.pub.set_default_strategy("double")
    batch = w.pub.flush()
    assert {r["period_key"]: r["f"] for r in batch.operators} == {k: 2 * v for k, v in first.items()}
    assert {r["strategy"] for r in batch.operators} == {"double"}


def test_team_strategy() -> None:
    book = parse_book(
        {
            "strategies": {"x": {"weights": [1, 1, 1, 1, 1, 1]}},
            "teams": {"t": {"strategy": "x", "operators": ["b"]}},
        }
    )
    assert isinstance(book, StrategyBook)
    w = World([], book=book)
    w.add("op", "a", T0, ANSWER)
    w.add("op", "b", T0, ANSWER)
    got = {(r["operator_id"], r["strategy"]) for r in w.pub.flush().operators}
    assert got == {("a", "strategy-1"), ("b", "x")}


async def test_prometheus_sink_keeps_current_periods_only() -> None:
    m = Metrics.create()
    sink = PrometheusSink(m)
    w = World([sink])
    w.add("op", "a", T0, ANSWER)
    w.add("queue", "sales", T0, {"offered": 2, "answered": 1, "abandoned": 1})
    await sink.write(w.pub.flush())

    def samples(name: str) -> set[tuple[str, ...]]:
        return {tuple(s.labels.values()) for f in m.registry.collect() for s in f.samples if s.name == name}

    assert samples("callcenter_operator_score") == {
        ("a", "strategy-1", p) for p in ("rolling", "day", "month")
    }
    assert ("queue", "sales", "day") in samples("callcenter_abandon_ratio")
    assert not samples("callcenter_chat_fast_answer_ratio")  # undefined: absent
    w.add("op", "b", T0 + 24 * HOUR_MS, ANSWER)  # next day: a has no activity in it nor in the hour
    await sink.write(w.pub.flush())
    assert samples("callcenter_operator_score") == {
        ("a", "strategy-1", "month"),
        *(("b", "strategy-1", p) for p in ("rolling", "day", "month")),
    }
    assert ("queue", "sales", "day") not in samples("callcenter_abandon_ratio")


def test_state_that_came_without_deltas_is_published_at_the_next_index_refresh() -> None:
    """Recovered or rebalanced-in aggregates reach the table without deltas (so without `mark`)."""
    w = World([], sweep_every_s=30.0)
    w.add("op", "a", T0, ANSWER)
    w.pub.flush()
    recovered = AggregateStore(w.aggs, w.cfg, rolling=True)
    recovered.observe(T0)
    recovered.apply(Delta("op", "b", T0, ANSWER, "t:1", 1, 0))  # no mark: as a changelog would
    assert not [r for r in w.pub.flush().operators if r["operator_id"] == "b"]
    w.clock.t += 31
    assert {r["operator_id"] for r in w.pub.flush().operators if r["period_key"] == "day:2026-01-15"} >= {"b"}


def test_expired_keys_leave_the_index() -> None:
    w = World([])
    w.add("op", "a", T0 - DAY, ANSWER)
    w.add("op", "b", T0 - DAY, ANSWER)
    w.add("op", "a", T0, ANSWER)
    w.pub.flush()
    for k in [k for k in w.aggs if k.startswith("op|b|")]:
        del w.aggs[k]  # what the stage-2 sweep does to expired aggregates
    w.add("op", "a", T0 - DAY + 1000, ANSWER)  # a late event of the day before
    batch = w.pub.flush()
    assert {r["operator_id"] for r in batch.operators} == {"a"}
    assert "op|b|day:2026-01-14" not in w.pub.index.known


def test_a_live_period_reads_only_its_changed_operators_and_all_when_state_came_without_deltas() -> None:
    """The counts of a live period's other operators are those of the last build (nothing else
    changes them); a periodic index refresh that finds state which came without deltas reads them
    all again, one that finds nothing does not (it read 5,060 operators every 30 s for nothing)."""
    w = World([])
    for op in "abc":
        w.add("op", op, T0, ANSWER)
    w.pub.flush()
    reads: list[str] = []
    read = w.pub.reader.read

    def counting_read(key: str) -> Any:
        reads.append(key)
        return read(key)

    w.pub.reader.read = counting_read  # type: ignore[method-assign]
    w.add("op", "a", T0, ANSWER)  # same time: the rolling hour does not slide
    batch = w.pub.flush()
    assert sorted(k for k in reads if k.startswith("op|")) == [
        "op|a|day:2026-01-15",
        "op|a|month:2026-01",
        "op|a|rolling",
    ]
    assert {r["operator_id"] for r in batch.operators} == {"a"}
    assert {r["counts"]["presented"] for r in batch.operators} == {2}
    reads.clear()
    w.clock.t += 60  # past the index refresh (sweep_every_s), which finds nothing new
    w.add("op", "b", T0, ANSWER)
    w.pub.flush()
    assert {k for k in reads if k.startswith("op|") and k.endswith("day:2026-01-15")} == {
        "op|b|day:2026-01-15"
    }
    reads.clear()
    w.clock.t += 60  # the next refresh finds an aggregate that came without a delta (recovered)
    w.aggs["op|d|day:2026-01-15"] = AggState(counts=dict(ANSWER))
    w.add("op", "b", T0, ANSWER)
    batch = w.pub.flush()
    assert {k for k in reads if k.startswith("op|") and k.endswith("day:2026-01-15")} == {
        f"op|{op}|day:2026-01-15" for op in "abcd"
    }
    assert ("d", "day:2026-01-15") in keys_of(batch)


def _d_joins_three(monkeypatch: pytest.MonkeyPatch) -> World:
    """a, b and c published; then d joins, which moves everyone's share. "Many" operators: over 2."""
    monkeypatch.setattr("stream.publish.score_cache.SHARES_EVERY_FLUSH_UP_TO", 2)
    w = World([], share_interval_s=10.0)
    for op in "abc":
        w.add("op", op, T0, ANSWER)
    w.pub.flush()  # the first flush publishes everything
    w.clock.t += 1
    w.add("op", "d", T0 + 1000, ANSWER)
    return w


def test_with_many_operators_share_only_changes_wait_for_the_share_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = _d_joins_three(monkeypatch)
    day = [r for r in w.pub.flush().operators if r["period_key"] == "day:2026-01-15"]
    assert [r["operator_id"] for r in day] == ["d"] and day[0]["fund_share"] == 0.25
    w.clock.t += 10  # busy: 4 operators over 2 per share interval wait 20 s
    w.add("op", "a", T0 + 2000, ANSWER)
    day = [r for r in w.pub.flush().operators if r["period_key"] == "day:2026-01-15"]
    assert [r["operator_id"] for r in day] == ["a"]
    w.clock.t += 10  # 20 s since the last refresh: b and c get their new share (d's is unchanged)
    w.add("op", "a", T0 + 3000, ANSWER)
    day = [r for r in w.pub.flush().operators if r["period_key"] == "day:2026-01-15"]
    assert {r["operator_id"]: r["fund_share"] for r in day} == {"a": 0.25, "b": 0.25, "c": 0.25}


def test_shares_left_behind_are_republished_when_the_stream_goes_quiet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bug: with more than 500 operators, shares moved by the last events stayed behind for good."""
    w = _d_joins_three(monkeypatch)  # the last event
    assert {r["operator_id"] for r in w.pub.flush().operators} == {"d"}
    published: list[tuple[float, str, str]] = []
    for _ in range(20):  # no more events
        w.clock.t += 1
        published += [
            (w.clock.t - T0 / 1000, r["operator_id"], r["period_key"]) for r in w.pub.flush().operators
        ]
    shares_of = {(op, pk) for _, op, pk in published}
    assert shares_of == {(op, pk) for op in "abc" for pk in ("day:2026-01-15", "month:2026-01", "rolling")}
    assert {t for t, _, _ in published} == {10.0}  # once, share_interval_s after the last refresh


def test_a_period_that_turned_gets_its_final_shares(monkeypatch: pytest.MonkeyPatch) -> None:
    w = _d_joins_three(monkeypatch)
    w.pub.flush()
    w.clock.t += 1
    w.add("op", "a", T0 + DAY_MS, ANSWER)  # the next day: 2026-01-15 is not live any more
    old_day = {
        r["operator_id"]: r["fund_share"]
        for r in w.pub.flush().operators
        if r["period_key"] == "day:2026-01-15"
    }
    assert old_day == {"a": 0.25, "b": 0.25, "c": 0.25, "d": 0.25}


def test_a_complete_batch_says_whose_alerts_it_answers_for() -> None:
    """Batch.alert_scopes: the Redis sink replaces only those alerts' fields of kpi:alerts:active."""
    w = World([])
    w.add("queue", "q", T0, ANSWER)
    assert w.pub.build(full=True).alert_scopes is None  # one worker: all of them
    w.pub.alert_scopes = lambda: frozenset({("queue", "q")})
    full = w.pub.build(full=True)
    assert full.alert_scopes == frozenset({("queue", "q")}) and full.active_alerts == []
    assert w.pub.build().alert_scopes is None and w.pub.build().active_alerts is None


def test_a_restarted_publisher_builds_no_rolling_hour_before_event_time_is_known() -> None:
    """The watermark is not persisted: a restarted worker knows event time again from its first
    events. Before, its rolling hours were built from everything held (calls of hours ago) and its
    first writes put them back on the wallboard; now they wait for event time."""
    w = World([])
    w.add("op", "a", T0, ANSWER)
    w.add("queue", "sales", T0, ANSWER)
    w.add("center", "", T0, ANSWER)
    w.pub.flush()
    known = [0]
    reader = MappingReader(w.aggs, w.cfg, lambda: known[0])
    restarted = Publisher(reader, [], w.cfg, metrics=Metrics.create(), clock=w.clock)
    first = restarted.build(full=True)
    assert {pk for _, pk in keys_of(first)} == {"day:2026-01-15", "month:2026-01"}
    assert first.live == []
    known[0] = T0 + 2 * 3_600_000  # two hours on: the calls left the rolling hour
    later = restarted.flush()
    rolling = {r["operator_id"]: r for r in later.operators if r["period_key"] == "rolling"}
    assert rolling and rolling["a"]["counts"].get("presented", 0) == 0
    assert any(r["period_key"] == "rolling" and r["counts"].get("offered", 0) == 0 for r in later.queues)

"""A period that leaves retention leaves every output: Redis keys deleted, tombstones on the topics.

The story of the fault test: a fresh worker accepts a 1970 event (event time is not known yet),
publishes its periods; real events then vouch for 2026 and the 1970 periods leave retention.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import redis

from stream.core.aggregate import AggregateStore, AggState
from stream.core.config import KpiConfig
from stream.core.entity import Delta
from stream.core.eventtime import Watermark
from stream.metrics import Metrics
from stream.publish import KeyIndex, MappingReader, Publisher, SinkRunner
from stream.sinks.base import Batch, MemorySink, Retraction
from stream.sinks.kafka import KafkaSink
from stream.sinks.redis import RedisSink, retracted_keys

T1970 = 118_800_000  # 1970-01-02T09:00:00Z
T0 = 1_768_467_600_000  # 2026-01-15T09:00:00Z
OLD_DAY, OLD_MONTH = "day:1970-01-02", "month:1970-01"
ANSWER = {"offered": 1, "presented": 1, "answered": 1, "sl_answered": 1}


class World:
    """A worker's aggregates with its own event time, and a publisher reading the vouched one."""

    def __init__(self, sinks: list[Any]) -> None:
        self.cfg = KpiConfig()
        self.aggs: dict[str, AggState] = {}
        self.time = Watermark()
        self.store = AggregateStore(self.aggs, self.cfg, rolling=True, event_time=self.time)
        self.offset = 0
        reader = MappingReader(
            self.aggs,
            self.cfg,
            lambda: self.store.watermark,
            retention_watermark=lambda: self.store.retention_watermark,
        )
        self.pub = Publisher(reader, sinks, self.cfg, clock=lambda: T0 / 1000, queue_size=16)

    def event(self, ts: int, operator: str = "op-1", queue: str = "sales") -> None:
        """One accepted event: event time observed, its deltas applied and marked."""
        self.offset += 1
        self.time.observe(ts, f"e{self.offset}")
        for scope, sid in (("op", operator), ("queue", queue), ("center", "")):
            self.pub.mark(self.store.apply(Delta(scope, sid, ts, ANSWER, "t:0", self.offset, 0)))


def periods(batch: Batch) -> set[str]:
    recs = [*batch.operators, *batch.queues, *batch.scorecards]
    return {str(r["period_key"]) for r in recs}


def test_the_index_retracts_a_period_once_and_never_indexes_it_again() -> None:
    cfg = KpiConfig()
    idx = KeyIndex()
    for k in [f"op|a|{OLD_DAY}", f"queue|sales|{OLD_DAY}", f"center||{OLD_DAY}", "op|a|day:2026-01-15"]:
        idx.add(k)
    idx.built_scorecard(OLD_MONTH)  # a scorecard of a month with business facts only
    assert idx.expire(0, cfg) == []  # event time unknown: nothing is out of retention
    gone = idx.expire(T0, cfg)
    assert gone == [
        Retraction(OLD_DAY, ("a",), ("_center", "sales")),
        Retraction(OLD_MONTH),
    ]
    assert idx.known == {"op|a|day:2026-01-15"} and idx.periods == {"day:2026-01-15"}
    assert idx.expire(T0, cfg) == []  # once
    assert idx.rebuild([f"op|a|{OLD_DAY}", "op|a|day:2026-01-15", "op|b|day:2026-01-15"]) == {
        "op|b|day:2026-01-15"
    }  # the table still holds the old key until its sweep: not indexed, not new
    idx.clear()  # a rebalance: retracted periods stay retracted
    idx.add(f"op|a|{OLD_DAY}")
    assert not idx.known


def test_the_epoch_period_is_published_then_retracted_and_never_published_again() -> None:
    sink = MemorySink()
    w = World([sink])
    w.event(T1970)  # first event of a fresh worker: nothing is too late yet
    first = w.pub.flush()
    assert {OLD_DAY, OLD_MONTH} <= periods(first) and not first.retractions
    w.event(T0)
    w.event(T0 + 1000)  # two events vouch for 2026: the 1970 periods leave retention
    assert w.store.retention_watermark == T0
    batch = w.pub.flush()
    assert batch.retractions == [
        Retraction(OLD_DAY, ("op-1",), ("_center", "sales")),
        Retraction(OLD_MONTH, ("op-1",), ("_center", "sales")),
    ]
    assert not periods(batch) & {OLD_DAY, OLD_MONTH}
    assert batch.retention_watermark == T0
    # Still in the table (the worker's sweep comes later): a full resync and the periodic re-read of
    # the keys leave them out, and no later batch retracts them again.
    assert w.aggs.keys() >= {f"op|op-1|{OLD_DAY}", f"center||{OLD_MONTH}"}
    full = w.pub.build_full()
    assert full.complete and not periods(full) & {OLD_DAY, OLD_MONTH} and "day:2026-01-15" in periods(full)
    w.pub.dirty |= w.pub.refresh_index()
    w.event(T0 + 2000)
    later = w.pub.flush()
    assert not periods(later) & {OLD_DAY, OLD_MONTH} and not later.retractions
    assert not [k for k in w.pub.changes._published if "1970" in k]  # digests forgotten too


def test_a_resync_after_a_rebalance_does_not_recreate_a_retracted_period() -> None:
    w = World([MemorySink()])
    w.event(T1970)
    w.pub.flush()
    w.event(T0)
    w.event(T0 + 1000)
    assert len(w.pub.flush().retractions) == 2
    w.pub.on_rebalance()
    batch = w.pub.flush()
    assert batch.full and batch.complete and not batch.retractions
    assert "day:2026-01-15" in periods(batch) and not periods(batch) & {OLD_DAY, OLD_MONTH}


class FailingOnce(MemorySink):
    def __init__(self) -> None:
        super().__init__("failing-once")
        self.fail = True

    async def write(self, batch: Batch) -> None:
        if self.fail:
            self.fail = False
            raise ConnectionError("broker unreachable")
        await super().write(batch)


async def test_a_failed_or_dropped_retraction_is_carried_into_the_next_write() -> None:
    sink = FailingOnce()
    full = Batch(full=True, complete=True)
    runner = SinkRunner(
        sink,
        lambda: full,
        Metrics.create(),
        queue_size=1,
        backoff_initial_s=0.0,
        backoff_max_s=0.0,
        sleep=asyncio.sleep,
    )
    gone = Retraction(OLD_DAY, ("op-1",), ("sales",))
    runner.offer(Batch(retractions=[gone]))
    task = asyncio.ensure_future(runner.run())
    await asyncio.wait_for(runner.idle(), 5)
    assert sink.batches and sink.batches[0].full and sink.batches[0].retractions == [gone]
    assert full.retractions == []  # the shared batch is not changed
    also = Retraction(OLD_MONTH)
    runner.needs_full = True  # a queue overflow or a loss: the offered batch is not written
    runner.offer(Batch(retractions=[also]))
    await asyncio.wait_for(runner.idle(), 5)
    task.cancel()
    assert sink.batches[-1].full and sink.batches[-1].retractions == [also]


class Producer:
    """What the Kafka sink sees of aiokafka's producer: `send` gives a future of the delivery."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []

    async def send(self, topic: str, value: bytes | None, key: bytes) -> asyncio.Future[None]:
        self.sent.append((topic, value, key))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    async def stop(self) -> None:
        return None


async def test_the_kafka_sink_sends_a_tombstone_under_every_key_of_a_retracted_period() -> None:
    class Settings:
        bootstrap_servers = "127.0.0.1:1"

        def topic(self, name: str) -> str:
            return "p." + name

    sink = KafkaSink(Settings())  # type: ignore[arg-type]
    producer = Producer()
    sink._producer = producer
    await sink.write(Batch(retractions=[Retraction(OLD_DAY, ("op|1", "op-2"), ("_center", "sales"))]))
    assert producer.sent == [
        ("p.kpi.operator-scores", None, b"op|1|day:1970-01-02"),
        ("p.kpi.operator-scores", None, b"op-2|day:1970-01-02"),
        ("p.kpi.queue-kpis", None, b"_center|day:1970-01-02"),
        ("p.kpi.queue-kpis", None, b"sales|day:1970-01-02"),
        ("p.kpi.scorecard", None, b"day:1970-01-02"),
    ]


def test_retracted_keys_cover_records_board_and_scorecard() -> None:
    assert retracted_keys(Retraction(OLD_DAY, ("a:b",), ("sales",))) == [
        "kpi:op:a:b:day:1970-01-02",
        "kpi:queue:sales:day:1970-01-02",
        "kpi:center:day:1970-01-02",
        "kpi:leaderboard:day:1970-01-02",
        "kpi:scorecard:day:1970-01-02",
    ]


async def test_redis_deletes_a_retracted_period_and_says_so(redis_db: tuple[str, redis.Redis]) -> None:
    url, r = redis_db
    sink = RedisSink(url, KpiConfig())
    w = World([sink])
    w.event(T1970)
    await sink.write(w.pub.flush())
    assert r.exists(f"kpi:op:op-1:{OLD_DAY}", f"kpi:leaderboard:{OLD_MONTH}", f"kpi:scorecard:{OLD_DAY}") == 3
    pubsub = r.pubsub()
    pubsub.subscribe("kpi:updates")
    pubsub.get_message(timeout=1)
    w.event(T0)
    w.event(T0 + 1000)
    await sink.write(w.pub.flush())
    await sink.close()
    assert r.keys("*1970*") == []
    assert r.exists("kpi:op:op-1:day:2026-01-15", "kpi:center:month:2026-01", "kpi:op:op-1:rolling") == 3
    messages = [json.loads(m["data"]) for m in iter(lambda: pubsub.get_message(timeout=1), None)]
    pubsub.close()
    retracted = {m["period_key"]: m["keys"] for m in messages if m.get("kind") == "retracted"}
    assert set(retracted) == {OLD_DAY, OLD_MONTH}
    assert f"kpi:op:op-1:{OLD_DAY}" in retracted[OLD_DAY]


async def test_a_complete_write_deletes_stale_periods_it_finds(redis_db: tuple[str, redis.Redis]) -> None:
    url, r = redis_db
    for key in (f"kpi:op:x:{OLD_DAY}", f"kpi:queue:q:{OLD_MONTH}", f"kpi:center:{OLD_DAY}"):
        r.hset(key, "sl", "1")  # written by an earlier run, never retracted
    r.zadd(f"kpi:leaderboard:{OLD_DAY}", {"x": 1.0})
    r.hset("kpi:live:queue:q:day:1970-01-02", "waiting", "0")  # a live queue whose id looks like one
    r.hset("kpi:op:x:day:2025-12-20", "sl", "1")  # inside retention: another worker's, kept
    sink = RedisSink(url, KpiConfig())
    await sink.write(Batch(complete=True, retention_watermark=0))  # event time unknown: kept
    assert r.exists(f"kpi:op:x:{OLD_DAY}") == 1
    await sink.write(Batch(complete=True, retention_watermark=T0))
    await sink.close()
    left = set(r.keys("kpi:*"))
    assert not {k for k in left if "1970" in k} - {"kpi:live:queue:q:day:1970-01-02"}
    assert {"kpi:op:x:day:2025-12-20", "kpi:live:queue:q:day:1970-01-02"} <= left


async def test_a_restarted_worker_looks_once_event_time_is_known(redis_db: tuple[str, redis.Redis]) -> None:
    url, r = redis_db
    sink = RedisSink(url, KpiConfig())
    await sink.write(Batch(complete=True))  # the first write of a run: event time not known yet
    r.hset(f"kpi:op:x:{OLD_DAY}", "sl", "1")  # left by the run before the restart
    await sink.write(Batch(retention_watermark=T0))  # the first write that knows event time
    assert r.exists(f"kpi:op:x:{OLD_DAY}") == 0
    r.hset(f"kpi:op:y:{OLD_DAY}", "sl", "1")
    await sink.write(Batch(retention_watermark=T0 + 1))  # once: later batches do not scan
    await sink.close()
    assert r.exists(f"kpi:op:y:{OLD_DAY}") == 1

"""Large batches are written in chunks, in order: the Redis sink one pipeline per
`RECORDS_PER_PIPELINE` records, the Kafka sink at most two chunks of encoded messages in flight.

A flush of 69,000 operator records encoded at once for Redis and Kafka held over 400 MB and
stalled the event loop for 10 s (CHANGELOG).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import pytest
import redis
import redis.asyncio.client as redis_async_client

from stream.config import Settings
from stream.core.config import KpiConfig
from stream.core.outputs import operator_hash, operator_records
from stream.metrics import Metrics
from stream.publish import SinkRunner
from stream.sinks import kafka as kafka_sink
from stream.sinks import redis as redis_sink
from stream.sinks.base import Batch
from stream.sinks.kafka import KafkaSink
from stream.sinks.kafka_keys import operator_score_key
from stream.sinks.redis import RedisSink
from stream.strategies import StrategyBook

T0 = 1_768_467_600_000  # 2026-01-15T09:00:00Z
DAY = "day:2026-01-15"


def _operators(n: int) -> list[dict[str, Any]]:
    book = StrategyBook()
    counts = {f"op-{i:05d}": {"presented": 1, "answered": 1, "sl_answered": i % 2} for i in range(n)}
    recs = operator_records(DAY, counts, lambda op: book.for_operator(op, book.default), T0, "UTC")
    return list(recs.values())


async def test_redis_writes_a_large_batch_in_pipelines_in_order(
    redis_db: tuple[str, redis.Redis], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, r = redis_db
    monkeypatch.setattr(redis_sink, "RECORDS_PER_PIPELINE", 1000)
    sink = RedisSink(url, KpiConfig(), run_id="chunks")
    executed: list[int] = []
    client = sink._redis()
    real_pipeline = client.pipeline

    def counting_pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = real_pipeline(*args, **kwargs)
        real_execute = pipe.execute

        async def execute(*a: Any, **kw: Any) -> Any:
            executed.append(len(pipe.command_stack))
            return await real_execute(*a, **kw)

        pipe.execute = execute
        return pipe

    client.pipeline = counting_pipeline
    pubsub = r.pubsub()
    pubsub.subscribe("kpi:updates")
    pubsub.get_message(timeout=1)
    records = _operators(2_500)
    alert = {"alert_id": "sl:queue:sales", "status": "firing"}
    batch = Batch(operators=records, active_alerts=[alert], complete=True, full=True)
    await sink.write(batch)

    assert len(executed) == 3  # 1,000 + 1,000 + 500 records and the active alerts
    assert max(executed) <= 1000 * 6 + 2  # per record: hset, expire, zadd, expire, publish (+ marker)
    assert r.zcard(f"kpi:leaderboard:{DAY}") == 2_500
    assert r.hget(f"kpi:op:op-02499:{DAY}", "answered") == "1"
    assert json.loads(r.hget("kpi:alerts:active", "sl:queue:sales") or "{}")["status"] == "firing"
    assert not await sink.lost_data()  # the marker and the server run id came with the first pipeline
    seen = []
    while (msg := pubsub.get_message(timeout=1)) is not None:
        if msg["type"] == "message":
            seen.append(json.loads(msg["data"])["record"]["operator_id"])
    assert seen == [rec["operator_id"] for rec in records]  # in the batch's order across pipelines
    pubsub.close()
    await sink.close()


async def test_redis_writes_a_batch_without_records_in_one_pipeline(
    redis_db: tuple[str, redis.Redis],
) -> None:
    url, r = redis_db
    sink = RedisSink(url, KpiConfig(), run_id="empty")
    await sink.write(Batch(complete=True, full=True))  # a complete write of nothing: the marker
    assert r.exists("kpi:writer:empty") and not await sink.lost_data()
    await sink.close()


class Producer:
    """Sends resolve at the next turn of the loop: unresolved ones are what is in flight."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.unresolved = 0
        self.most_in_flight = 0

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, topic: str, value: bytes | None, key: bytes) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self.sent.append(key)
        self.unresolved += 1
        self.most_in_flight = max(self.most_in_flight, self.unresolved)
        loop.call_soon(self._resolve, fut)
        return fut

    def _resolve(self, fut: asyncio.Future[None]) -> None:
        self.unresolved -= 1
        fut.set_result(None)


async def test_kafka_holds_at_most_two_chunks_in_flight_and_keeps_the_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kafka_sink, "RECORDS_PER_CHUNK", 1000)
    producer = Producer()
    sink = KafkaSink(Settings(), new_producer=lambda _settings: producer)
    records = _operators(4_500)
    await sink.write(Batch(operators=records))
    assert producer.sent == [operator_score_key(rec) for rec in records]
    assert producer.most_in_flight == 2_000
    assert producer.unresolved == 0  # every delivery was awaited before the write returned
    await sink.close()


async def test_kafka_sends_a_small_batch_as_one_chunk() -> None:
    producer = Producer()
    sink = KafkaSink(Settings(), new_producer=lambda _settings: producer)
    records = _operators(10)
    await sink.write(replace(Batch(), operators=records))
    assert producer.sent == [operator_score_key(rec) for rec in records]
    assert producer.most_in_flight == 10 and producer.unresolved == 0
    await sink.close()


async def test_a_write_that_fails_in_a_later_pipeline_is_followed_by_the_complete_state(
    redis_db: tuple[str, redis.Redis], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection breaks after the first 1,000 of 2,500 records: Redis holds a part, the runner
    takes the write as failed and writes the complete state, and every hash is then exact."""
    url, r = redis_db
    monkeypatch.setattr(redis_sink, "RECORDS_PER_PIPELINE", 1000)
    real_execute = redis_async_client.Pipeline.execute
    calls = 0

    async def execute_failing_once(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionError("connection reset by peer")
        return await real_execute(self, *args, **kwargs)

    monkeypatch.setattr(redis_async_client.Pipeline, "execute", execute_failing_once)
    records = _operators(2_500)
    sink = RedisSink(url, KpiConfig(), run_id="broken")
    naps: list[float] = []

    async def sleep(s: float) -> None:
        naps.append(s)

    runner = SinkRunner(
        sink,
        lambda: Batch(operators=records, complete=True, full=True),
        Metrics.create(),
        queue_size=4,
        backoff_initial_s=0.5,
        backoff_max_s=1.0,
        sleep=sleep,
    )
    task = asyncio.ensure_future(runner.run())
    runner.offer(Batch(operators=records))
    await asyncio.sleep(0.05)
    await asyncio.wait_for(runner.idle(), 10)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await sink.close()

    assert runner.errors == 1 and naps == [0.5]
    for rec in records:
        assert r.hgetall(f"kpi:op:{rec['operator_id']}:{DAY}") == operator_hash(rec)
    assert r.zcard(f"kpi:leaderboard:{DAY}") == 2_500

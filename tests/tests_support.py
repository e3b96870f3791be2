"""Helpers shared by the integration tests: send events, read a topic (under the test's prefix)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.error
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from stream.core.events import STREAM_OF_TYPE
from stream.topics import INPUT_TOPICS

REPO = Path(__file__).resolve().parent.parent


def kpistream(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point as a user would (never raises on a non-zero exit)."""
    return subprocess.run(
        [sys.executable, "-m", "stream.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _bootstrap(env: dict[str, str]) -> str:
    return env["KPISTREAM_BROKER"].split("://", 1)[1]


async def send_events(env: dict[str, str], events: list[dict[str, Any]]) -> None:
    """Send contract events to their input topics with the contract's keys."""
    producer = AIOKafkaProducer(bootstrap_servers=_bootstrap(env), acks="all", linger_ms=5)
    await producer.start()
    try:
        for e in events:
            stream = STREAM_OF_TYPE[e["type"]]
            key_field = {
                "telephony": "call_id",
                "chat": "chat_id",
                "email": "email_id",
                "agent": "operator_id",
            }
            key = e.get(key_field.get(stream, ""), e.get("case_id", e.get("customer_id")))
            await producer.send(
                env["KPISTREAM_TOPIC_PREFIX"] + INPUT_TOPICS[stream],
                value=json.dumps(e).encode(),
                key=None if key is None else str(key).encode(),
            )
        await producer.flush()
    finally:
        await producer.stop()


async def read_topic(
    env: dict[str, str], topic: str, want: int, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """Every message of a topic from the beginning, until `want` arrived or `timeout` passed."""
    consumer = AIOKafkaConsumer(
        env["KPISTREAM_TOPIC_PREFIX"] + topic, bootstrap_servers=_bootstrap(env), auto_offset_reset="earliest"
    )
    await consumer.start()
    out: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + timeout
        while len(out) < want and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                out.extend(json.loads(r.value) for r in records)
    finally:
        await consumer.stop()
    return out


def periods_now(worker: Any) -> dict[str, Any] | None:
    """The worker's `/api/v1/periods`, or None while it cannot answer (a 503 while it rebalances or
    recovers, which Faust may do twice when a member joins; a refused or timed-out connection).

    Rule: a wait polls through None; only the last periods it read are asserted on.
    """
    try:
        return dict(worker.get_json("/api/v1/periods")["periods"])
    except urllib.error.HTTPError as exc:
        if exc.code != 503:
            raise
    except OSError:  # URLError, refused, reset, timeout
        pass
    return None


def wait_for_periods(worker: Any, expected: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
    """Poll the worker's period API until its day/month periods equal `expected` (or time out)."""
    deadline = time.monotonic() + timeout
    got: dict[str, Any] = {}
    while time.monotonic() < deadline:
        periods = periods_now(worker)
        if periods is not None:
            got = {k: v for k, v in periods.items() if k != "rolling"}
            if got == expected:
                return got
        time.sleep(1.0)
    return got


def wait_for_center_counts(
    worker: Any, period_key: str, expected: dict[str, int], timeout: float = 60.0
) -> dict[str, int]:
    """Poll the worker's period API until the centre's counts of `period_key` include `expected`.

    Returns the last counts read (the caller asserts on them, so a timeout shows what was there).
    """
    center: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        periods = periods_now(worker)
        if periods is not None:
            center = periods.get(period_key, {}).get("center", {}).get("counts", {})
            if all(center.get(k) == v for k, v in expected.items()):
                break
        time.sleep(0.5)
    return center


async def records_to_end(
    bootstrap: str, topics: list[str], *, timeout: float = 60, partitions: dict[str, int] | None = None
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of `topics` from their beginnings to their ends as of the call (per partition in
    offset order). `partitions` gives a topic's partition count; otherwise the broker's metadata does.

    Rule: every position is set by `seek` to the partition's beginning offset, and the consumer's
    reset strategy is `earliest`. aiokafka applies a reset lookup still in flight after a later
    `seek_to_beginning`: after `assign` with the default `latest`, some partitions were read from
    their end, i.e. not at all, and records on the topic looked missing (CHANGELOG, issue #12).
    """
    c = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await c.start()
    out: list[ConsumerRecord[bytes, bytes]] = []
    try:
        tps: list[TopicPartition] = []
        for topic in topics:
            counts = None if partitions is None else partitions.get(topic)
            parts: set[int] | None = set(range(counts)) if counts else None
            for _ in range(20):  # a consumer without subscriptions learns a topic from a metadata fetch
                if parts:
                    break
                parts = (await c._client.fetch_all_metadata()).partitions_for_topic(topic)
                if not parts:
                    await asyncio.sleep(0.5)
            if not parts:
                raise AssertionError(f"topic {topic} not found on the broker")
            tps += [TopicPartition(topic, p) for p in sorted(parts)]
        c.assign(tps)
        begins = await c.beginning_offsets(tps)
        ends = await c.end_offsets(tps)
        for tp in tps:
            c.seek(tp, begins[tp])
        async with asyncio.timeout(timeout):
            while [tp for tp in tps if await c.position(tp) < ends[tp]]:
                for msgs in (await c.getmany(timeout_ms=500, max_records=50_000)).values():
                    out += [m for m in msgs if m.offset < ends[TopicPartition(m.topic, m.partition)]]
    finally:
        await c.stop()
    return out


def open_partition_db(store: Any, partition: int) -> Any:
    """Open one partition's database of Faust's RocksDB store as it does when an event of it is written."""
    return store._db_for_partition(partition)

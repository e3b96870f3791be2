"""The worker against real brokers: dead letters, stream == report, and a SIGKILL in the middle."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from tests_support import kpistream, read_topic, wait_for_center_counts, wait_for_periods

from stream.allocator import find_jemalloc
from stream.simulator import SimConfig, generate, iter_jsonl

REPO = Path(__file__).resolve().parents[2]


def bootstrap(env: dict[str, str]) -> str:
    return env["KPISTREAM_BROKER"].split("://", 1)[1]


async def send_raw(env: dict[str, str], topic: str, items: list[tuple[bytes | None, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(env), acks="all")
    await producer.start()
    try:
        for key, value in items:
            await producer.send_and_wait(env["KPISTREAM_TOPIC_PREFIX"] + topic, value=value, key=key)
    finally:
        await producer.stop()


def _dead_letter_roundtrip(worker_env: Any, start_worker: Any, broker_url: str) -> None:
    env = worker_env(broker_url)
    worker = start_worker(env)
    bad = [
        (b"c1", b"{not json"),
        (
            b"c2",
            json.dumps({"event_id": "e2", "type": "call.offered", "ts": "2026-01-15T09:00:00Z"}).encode(),
        ),
        (b"c3", json.dumps({"event_id": "e3", "type": "call.teleported", "ts": 1}).encode()),
        (
            b"c4",
            json.dumps({"event_id": "e4", "type": "call.lost", "ts": "yesterday", "call_id": "c4"}).encode(),
        ),
    ]
    good = json.dumps(
        {
            "event_id": "ok1",
            "type": "call.offered",
            "ts": "2026-01-15T09:00:00Z",
            "call_id": "c9",
            "queue": "q",
        }
    ).encode()
    answered = json.dumps(
        {
            "event_id": "ok2",
            "type": "call.answered",
            "ts": "2026-01-15T09:00:05Z",
            "call_id": "c9",
            "operator_id": "o",
        }
    ).encode()
    asyncio.run(send_raw(env, "events.telephony", [*bad, (b"c9", good), (b"c9", answered)]))
    letters = asyncio.run(read_topic(env, "kpi.dead-letters", want=len(bad), timeout=60))
    reasons = sorted(d["reason"] for d in letters)
    assert reasons == ["bad_timestamp", "invalid_json", "missing_field", "unknown_type"]
    for d in letters:
        assert d["source_topic"] == env["KPISTREAM_TOPIC_PREFIX"] + "events.telephony"
        assert isinstance(d["offset"], int) and isinstance(d["partition"], int)
        assert d["raw"] and d["ts"].endswith("Z")
    # The worker is still running and still counts: the valid call after the bad ones is there.
    expected_center = {"offered": 1, "answered": 1, "sl_answered": 1}
    center = wait_for_center_counts(worker, "day:2026-01-15", expected_center)
    assert all(center.get(k) == v for k, v in expected_center.items()), center
    assert worker.alive()
    metrics = worker.get_text("/metrics")
    assert 'callcenter_dead_letters_total{reason="invalid_json"} 1.0' in metrics


def test_dead_letters_on_apache_kafka(kafka_broker: Any, worker_env: Any, start_worker: Any) -> None:
    _dead_letter_roundtrip(worker_env, start_worker, kafka_broker.url)


def test_dead_letters_on_embedded_tansu(tansu_broker: Any, worker_env: Any, start_worker: Any) -> None:
    _dead_letter_roundtrip(worker_env, start_worker, tansu_broker.url)


@pytest.fixture()
def sim_file(tmp_path: Path) -> Path:
    events = generate(SimConfig(seed=11, hours=1.5, duplicate_prob=0.02))
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(iter_jsonl(events)) + "\n", encoding="utf-8")
    return path


def report_of(path: Path, env: dict[str, str]) -> dict[str, Any]:
    r = kpistream("report", "--events", str(path), env=env)
    assert r.returncode == 0, r.stderr
    return dict(json.loads(r.stdout)["periods"])


STORES = pytest.mark.parametrize("store", ["memory://", "rocksdb://"])


@STORES
def test_stream_equals_report_on_apache_kafka(
    kafka_broker: Any, worker_env: Any, start_worker: Any, sim_file: Path, store: str
) -> None:
    env = {**worker_env(kafka_broker.url), "KPISTREAM_STORE": store}
    worker = start_worker(env)
    if find_jemalloc() is not None:  # it runs on jemalloc, started again under it (stream/allocator.py)
        assert "libjemalloc" in Path(f"/proc/{worker.proc.pid}/maps").read_text()
    r = kpistream("produce", "--events", str(sim_file), "--quiet", env=env)
    assert r.returncode == 0, r.stderr
    expected = report_of(sim_file, env)
    assert len(expected) == 2  # one day, one month
    got = wait_for_periods(worker, expected)
    assert got == expected
    if store == "rocksdb://":  # its databases wrote into the worker's one memtable budget
        page = worker.get_text("/metrics")
        assert 'kpistream_rocksdb_memory_limit_bytes{part="memtables"} 1.6777216e+07' in page
        used = re.search(r'kpistream_rocksdb_memory_bytes\{part="memtables"\} (\S+)', page)
        assert used is not None and float(used.group(1)) > 0, page[-2000:]


@STORES
def test_sigkill_mid_stream_then_restart_gives_the_same_totals(
    kafka_broker: Any, worker_env: Any, start_worker: Any, sim_file: Path, tmp_path: Path, store: str
) -> None:
    env = {**worker_env(kafka_broker.url), "KPISTREAM_STORE": store}
    worker = start_worker(env)
    lines = sim_file.read_text().splitlines()
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    second.write_text("\n".join(lines[len(lines) // 2 :]) + "\n")
    # The second half is sent at a rate, and the worker is killed while it is consuming it.
    assert kpistream("produce", "--events", str(first), "--quiet", env=env).returncode == 0
    producer = subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "produce", "--events", str(second), "--quiet", "--rate", "800"],
        env=env,
        cwd=REPO,
    )
    time.sleep(2.0)
    worker.kill()
    assert producer.wait(120) == 0
    restarted = start_worker(env)
    expected = report_of(sim_file, env)
    got = wait_for_periods(restarted, expected, timeout=180)
    assert got == expected

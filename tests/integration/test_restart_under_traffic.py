"""Restart under traffic: SIGKILL the worker at random points while events keep arriving.

Producers never wait for a worker: after each kill a new worker is started and the events keep
coming at once (nothing waits for /readyz). The last worker must end with the same day and
month periods as `kpistream report` over the same input, to the last digit.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from support.workers import TestWorker, free_port
from tests_support import kpistream

from stream.simulator import SimConfig, generate, iter_jsonl

REPO = Path(__file__).resolve().parents[2]


def spawn(env: dict[str, str], log_path: Path) -> TestWorker:
    """A worker process started without waiting for it to be ready (as a supervisor restarts it)."""
    env = {**env, "KPISTREAM_WEB_PORT": str(free_port()), "KPISTREAM_DATA_DIR": str(log_path.with_suffix(""))}
    return TestWorker(env, log_path).spawn()


def periods_of(worker: TestWorker) -> dict[str, Any]:
    body = worker.get_json("/api/v1/periods")
    return {k: v for k, v in body["periods"].items() if k != "rolling"}


async def group_lag(env: dict[str, str]) -> dict[str, tuple[int | None, int]]:
    """`topic[partition]` -> (committed offset of the worker group, end offset), for the input topics."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient

    bootstrap = env["KPISTREAM_BROKER"].split("://", 1)[1]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(env["KPISTREAM_APP_ID"])
        tps = [tp for tp in committed if "events." in tp.topic or "kpi.deltas" in tp.topic]
        ends = await consumer.end_offsets(tps)
        return {
            f"{tp.topic.rsplit('-', 1)[-1]}[{tp.partition}]": (committed[tp].offset, ends[tp]) for tp in tps
        }
    finally:
        await consumer.stop()
        await admin.close()


def differences(got: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """`period scope id: got != expected` for each entity whose counts differ (a short failure story)."""
    out = []
    for pk, data in expected.items():
        mine = got.get(pk, {})
        for scope in ("operators", "queues"):
            for key, v in data.get(scope, {}).items():
                counts = mine.get(scope, {}).get(key, {}).get("counts") or {}
                wrong = {k: (counts.get(k, 0), n) for k, n in v["counts"].items() if counts.get(k, 0) != n}
                if wrong:
                    out.append(f"{pk} {key}: (got, expected) {wrong}")
        if mine.get("center", {}).get("counts") != data["center"]["counts"]:
            out.append(f"{pk} center differs")
    return out


def wait_equal(worker: TestWorker, expected: dict[str, Any], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    got: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            got = periods_of(worker)
        except OSError:
            got = {}
        if got == expected:
            break
        time.sleep(1.0)
    return got


def test_sigkill_at_random_points_while_events_keep_arriving(
    kafka_broker: Any, worker_env: Any, start_worker: Any, tmp_path: Path
) -> None:
    """Kill, restart at once, sometimes with the next worker already in the group; keep producing."""
    seed = random.randrange(1 << 30)
    rnd = random.Random(seed)
    events = generate(SimConfig(seed=seed % 1000, hours=3.0, duplicate_prob=0.02))
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(iter_jsonl(events)) + "\n", encoding="utf-8")
    env = worker_env(kafka_broker.url)
    workers: list[TestWorker] = [start_worker(env)]  # the first start waits: topics exist
    producer = subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "produce", "--events", str(path), "--quiet", "--rate", "200"],
        env=env,
        cwd=REPO,
    )
    try:
        time.sleep(rnd.uniform(6.0, 9.0))  # ~1,200-1,800 events taken
        for n in range(4):
            if rnd.random() < 0.5:  # the next worker joins first: a rebalance under traffic, then a kill
                workers.append(spawn(env, tmp_path / f"restarted-{n}.log"))
                time.sleep(rnd.uniform(4.0, 8.0))  # joined (a worker starts in ~4 s) or joining
                workers[-2].kill()
            else:  # a crash, restarted at once
                workers[-1].kill()
                workers.append(spawn(env, tmp_path / f"restarted-{n}.log"))
            time.sleep(rnd.uniform(3.0, 8.0))
        assert producer.wait(180) == 0
        r = kpistream("report", "--events", str(path), env=env)
        assert r.returncode == 0, r.stderr
        expected = dict(json.loads(r.stdout)["periods"])
        got = wait_equal(workers[-1], expected, timeout=120)
        if got != expected:
            lag = asyncio.run(group_lag(env))
            story = "\n".join(differences(got, expected)[:20])
            raise AssertionError(f"seed {seed}: committed/end offsets {lag}\n{story}")
    finally:
        if producer.poll() is None:
            producer.kill()
        for w in workers[1:]:
            w.stop()

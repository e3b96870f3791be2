"""The worker on a three-broker Apache Kafka cluster: every topic replicated, and a broker lost
mid-stream changes nothing (replication 3, min.insync.replicas 2, so one broker may be down).

The cluster starts once for this module's tests only (it costs three JVMs).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from support_faults import converge, redis_client, shape_of_report
from tests_support import kpistream, wait_for_periods

from stream.devenv.kafka import kafka_available
from stream.devenv.kafka_cluster import KafkaCluster
from stream.simulator import SimConfig, generate, iter_jsonl

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
REPLICATED = {"KPISTREAM_REPLICATION_FACTOR": "3", "KPISTREAM_MIN_INSYNC_REPLICAS": "2"}


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """Three Apache Kafka nodes (KRaft, combined broker + controller) for the tests that need them."""
    if not kafka_available():
        pytest.skip("Apache Kafka needs Java 17+ and either cached jars or Maven")
    cluster = KafkaCluster(tmp_path_factory.mktemp("kafka-cluster"), brokers=3)
    cluster.start(timeout=240)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture()
def whole_cluster(kafka_cluster: KafkaCluster) -> Iterator[KafkaCluster]:
    """The cluster with all three brokers up before and after the test (a test may stop one)."""
    kafka_cluster.start(timeout=180)
    yield kafka_cluster
    kafka_cluster.start(timeout=180)


async def _describe(bootstrap: str, prefixes: tuple[str, ...]) -> dict[str, tuple[set[int], str | None]]:
    """name -> (replica counts of its partitions, its min.insync.replicas) of topics with a prefix."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(prefixes)]
        out: dict[str, tuple[set[int], str | None]] = {}
        for desc in await admin.describe_topics(names):
            out[desc["topic"]] = ({len(p["replicas"]) for p in desc["partitions"]}, None)
        resources = [ConfigResource(ConfigResourceType.TOPIC, n, {"min.insync.replicas": ""}) for n in names]
        for response in await admin.describe_configs(resources):
            for resource in response.resources:
                name, entries = resource[3], resource[4]
                isr = next((e[1] for e in entries if e[0] == "min.insync.replicas"), None)
                out[name] = (out[name][0], isr)
        return out
    finally:
        await admin.close()


def report_of(path: Path, env: dict[str, str]) -> dict[str, Any]:
    r = kpistream("report", "--events", str(path), env=env)
    assert r.returncode == 0, r.stderr
    return dict(json.loads(r.stdout)["periods"])


def test_broker_stopped_mid_stream_ends_exact(
    whole_cluster: KafkaCluster, redis_server: Any, worker_env: Any, start_worker: Any, tmp_path: Path
) -> None:
    env = {**worker_env(whole_cluster.url, redis_server.url), **REPLICATED}
    worker = start_worker(env)

    # Every topic kpistream created and every table changelog Faust declared: 3 copies, min ISR 2.
    topics = asyncio.run(
        _describe(whole_cluster.bootstrap, (env["KPISTREAM_TOPIC_PREFIX"], env["KPISTREAM_APP_ID"]))
    )
    changelogs = [t for t in topics if t.endswith("-changelog")]
    assert len(topics) - len(changelogs) == 14 and len(changelogs) >= 8, sorted(topics)
    assert {name: spec for name, spec in topics.items() if spec != ({3}, "2")} == {}

    events = list(iter_jsonl(generate(SimConfig(seed=12, hours=1.5, duplicate_prob=0.02))))
    first, second, whole = tmp_path / "first.jsonl", tmp_path / "second.jsonl", tmp_path / "all.jsonl"
    half = len(events) // 2
    first.write_text("\n".join(events[:half]) + "\n")
    second.write_text("\n".join(events[half:]) + "\n")
    whole.write_text("\n".join(events) + "\n")
    assert kpistream("produce", "--events", str(first), "--quiet", env=env).returncode == 0
    producer = subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "produce", "--events", str(second), "--quiet", "--rate", "400"],
        env=env,
        cwd=REPO,
    )
    # Stop the broker that coordinates the worker's group (the harder case: the group moves too),
    # while the worker consumes and the producer sends.
    time.sleep(2.0)
    victim = asyncio.run(_coordinator(whole_cluster.bootstrap, env["KPISTREAM_APP_ID"]))
    whole_cluster.nodes[victim - 1].kill()
    assert producer.wait(180) == 0
    assert whole_cluster.live_brokers() == 2
    expected = report_of(whole, env)
    got = wait_for_periods(worker, expected, timeout=120)
    assert got == expected, worker.log_tail()
    # Redis, the compacted score topics read from the beginning, and the API (tests/support_faults.py).
    worker.name = "worker"
    outcome = converge(shape_of_report(expected), env, redis_client(redis_server.url), [worker], fail=False)
    if not outcome.ok:
        sinks = "\n".join([ln for ln in worker.log_tail(10_000_000).splitlines() if "sink " in ln][-15:])
        pytest.fail(
            f"outputs differ from `kpistream report` after the broker loss:\n{outcome.summary()}\n"
            f"--- worker sink lines:\n{sinks}\n--- log tail:\n{worker.log_tail()}",
            pytrace=False,
        )
    assert worker.alive()
    worker.wait_ready(60)  # ready again (a probe may still be in its window of the lost broker)


async def _coordinator(bootstrap: str, group: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return int(await admin.find_coordinator(group))
    finally:
        await admin.close()

"""The local services for real: produce/consume on Apache Kafka and Tansu, Redis persistence,
and `kpistream dev up|status|down` as a user runs it."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from tests_support import kpistream

from stream.devenv.kafka import KafkaBroker, kafka_available
from stream.devenv.process import pid_alive
from stream.devenv.redis import RedisServer
from stream.devenv.tansu import TansuBroker
from stream.topic_admin import create_topics, create_topics_sync

pytestmark = pytest.mark.integration


def _topic() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


async def _roundtrip(bootstrap: str, topic: str, n: int = 20) -> list[tuple[bytes, bytes]]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(n):
            await producer.send(topic, f"v{i}".encode(), key=f"k{i % 3}".encode())
        await producer.flush()
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"g-{topic}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    got: list[tuple[bytes, bytes]] = []
    try:
        async with asyncio.timeout(60):
            while len(got) < n:
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    got.extend((r.key or b"", r.value or b"") for r in records)
        await consumer.commit()
    finally:
        await consumer.stop()
    return got


async def _topic_partitions(bootstrap: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (desc,) = await admin.describe_topics([topic])
        return len(desc["partitions"])
    finally:
        await admin.close()


async def test_kafka_roundtrip_with_explicit_topics(kafka_broker: KafkaBroker) -> None:
    topic = _topic()
    created = await create_topics(kafka_broker.bootstrap, {topic: (3, {"retention.ms": "3600000"})})
    assert created == [topic]
    assert await create_topics(kafka_broker.bootstrap, {topic: (3, {})}) == []  # idempotent
    assert await _topic_partitions(kafka_broker.bootstrap, topic) == 3
    got = await _roundtrip(kafka_broker.bootstrap, topic)
    assert sorted(v for _, v in got) == sorted(f"v{i}".encode() for i in range(20))
    assert kafka_broker.url == f"kafka://127.0.0.1:{kafka_broker.port}"


async def test_kafka_refuses_auto_created_topics(kafka_broker: KafkaBroker) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap, request_timeout_ms=3000)
    await producer.start()
    try:
        with pytest.raises(Exception):  # noqa: B017 - aiokafka raises KafkaTimeoutError/UnknownTopic
            await asyncio.wait_for(producer.send_and_wait(_topic(), b"x"), 10)
    finally:
        await producer.stop()


async def test_tansu_roundtrip_with_explicit_topics(tansu_broker: TansuBroker) -> None:
    topic = _topic()
    assert await create_topics(tansu_broker.bootstrap, {topic: (2, {})}) == [topic]
    assert await create_topics(tansu_broker.bootstrap, {topic: (2, {})}) == []
    got = await _roundtrip(tansu_broker.bootstrap, topic)
    assert sorted(v for _, v in got) == sorted(f"v{i}".encode() for i in range(20))


@pytest.mark.skipif(not kafka_available(), reason="needs Java 17+")
def test_kafka_keeps_data_across_crash_and_restart(tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path / "kafka")
    topic = _topic()
    try:
        broker.start(timeout=180)
        create_topics_sync(broker.bootstrap, {topic: (1, {})})
        asyncio.run(_produce(broker.bootstrap, topic, [b"before-crash"]))
        pid = broker.pid
        broker.kill()
        assert pid is not None and not pid_alive(pid)
        broker.start(timeout=180)
        asyncio.run(_produce(broker.bootstrap, topic, [b"after-restart"]))
        assert asyncio.run(_read_all(broker.bootstrap, topic, 2)) == [b"before-crash", b"after-restart"]
    finally:
        broker.stop()
    assert broker.pid is not None and not pid_alive(broker.pid)


async def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for v in values:
            await producer.send_and_wait(topic, v)
    finally:
        await producer.stop()


async def _read_all(bootstrap: str, topic: str, n: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    out: list[bytes] = []
    try:
        async with asyncio.timeout(60):
            while len(out) < n:
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    out.extend(r.value or b"" for r in records)
    finally:
        await consumer.stop()
    return out


def test_redis_roundtrip(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    key = _topic()
    client.set(key, "42")
    assert client.get(key) == b"42"
    client.close()


def test_redis_persists_across_restart(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    try:
        server.start()
        with server.client() as c:
            c.hset("wallboard:center", mapping={"sl": "0.9", "lcr": "0.05"})
        server.stop()
        server.start()
        with server.client() as c:
            assert c.hgetall("wallboard:center") == {b"sl": b"0.9", b"lcr": b"0.05"}
    finally:
        server.stop()
    data = tmp_path / "redis"
    assert (data / "appendonly.aof").exists() or (data / "appendonlydir").is_dir()  # Redis 6 / Redis 7


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("KPISTREAM_BROKER", "KPISTREAM_REDIS_URL")}


def _exports(stdout: str) -> dict[str, str]:
    out = {}
    for line in stdout.splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export ") :].partition("=")
            out[name] = value
    return out


def test_dev_up_status_down(tmp_path: Path) -> None:
    data = str(tmp_path / "dev")
    env = _clean_env()
    up = kpistream("dev", "up", "--data-dir", data, env=env)
    try:
        assert up.returncode == 0, up.stderr
        exports = _exports(up.stdout)
        assert exports["KPISTREAM_BROKER"].startswith("kafka://127.0.0.1:")
        assert exports["KPISTREAM_REDIS_URL"].startswith("redis://127.0.0.1:")
        bootstrap = exports["KPISTREAM_BROKER"].split("://", 1)[1]
        topic = _topic()
        create_topics_sync(bootstrap, {topic: (1, {})})
        assert len(asyncio.run(_roundtrip(bootstrap, topic, 3))) == 3
        assert redis.Redis.from_url(exports["KPISTREAM_REDIS_URL"]).ping()

        status = kpistream("dev", "status", "--data-dir", data, env=env)
        assert status.returncode == 0, status.stdout + status.stderr
        assert "broker:" in status.stdout and "redis:" in status.stdout
        again = kpistream("dev", "up", "--data-dir", data, env=env)  # idempotent: same services
        assert again.returncode == 0 and _exports(again.stdout) == exports
    finally:
        down = kpistream("dev", "down", "--data-dir", data, env=env)
    assert down.returncode == 0, down.stderr
    after = kpistream("dev", "status", "--data-dir", data, env=env)
    assert after.returncode == 3


def test_dev_up_uses_configured_services(tmp_path: Path) -> None:
    data = str(tmp_path / "dev")
    env = {**_clean_env(), "KPISTREAM_BROKER": "kafka://127.0.0.1:1"}
    up = kpistream("dev", "up", "--data-dir", data, "--broker", "tansu", env=env)
    try:
        assert up.returncode == 0, up.stderr
        exports = _exports(up.stdout)
        assert exports["KPISTREAM_BROKER"] == "kafka://127.0.0.1:1"  # reported, nothing started
        assert exports["KPISTREAM_REDIS_URL"].startswith("redis://127.0.0.1:")
        assert not (tmp_path / "dev" / "tansu").exists()
    finally:
        down = kpistream("dev", "down", "--data-dir", data, env=env)
    assert down.returncode == 0


@pytest.mark.skipif(not kafka_available(), reason="needs Java 17+")
def test_dev_up_three_brokers(tmp_path: Path) -> None:
    data = str(tmp_path / "dev")
    env = {**_clean_env(), "KPISTREAM_REDIS_URL": "redis://127.0.0.1:1/0"}  # the cluster only
    up = kpistream("dev", "up", "--brokers", "3", "--data-dir", data, env=env)
    try:
        assert up.returncode == 0, up.stderr
        url = _exports(up.stdout)["KPISTREAM_BROKER"]
        assert url.startswith("kafka://127.0.0.1:") and url.count(";") == 2
        bootstrap = url.split("://", 1)[1].replace(";", ",")
        topic = _topic()
        create_topics_sync(bootstrap, {topic: (2, {"min.insync.replicas": "2"}, 3)})
        assert len(asyncio.run(_roundtrip(bootstrap, topic, 3))) == 3
        replicas = asyncio.run(_replicas(bootstrap, topic))
        assert replicas == [[1, 2, 3], [1, 2, 3]]
        status = kpistream("dev", "status", "--data-dir", data, env=env)
        assert "3 brokers" in status.stdout
    finally:
        down = kpistream("dev", "down", "--data-dir", data, env=env)
    assert down.returncode == 0, down.stderr
    assert kpistream("dev", "status", "--data-dir", data, env=env).returncode == 3


async def _replicas(bootstrap: str, topic: str) -> list[list[int]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (desc,) = await admin.describe_topics([topic])
        return [sorted(p["replicas"]) for p in sorted(desc["partitions"], key=lambda p: p["partition"])]
    finally:
        await admin.close()

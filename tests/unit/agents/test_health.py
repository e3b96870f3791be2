"""Readiness checks: each probe by name, fresh for a while after its last success; Redis optional."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from types import SimpleNamespace as NS
from typing import Any

from agents.health import Probe
from agents.web import readiness


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


async def test_a_probe_is_ok_until_its_last_success_is_too_old() -> None:
    clock, fail = Clock(), {"now": False}

    async def attempt() -> None:
        if fail["now"]:
            raise ConnectionError("connection refused")

    probe = Probe("broker", attempt, timeout_s=1.0, fresh_s=10.0, clock=clock)
    assert probe.report()["ok"] is False  # never checked
    await probe.run_once()
    assert probe.report() == {"ok": True, "detail": "ok", "last_ok_s_ago": 0.0}
    fail["now"] = True
    clock.t += 5
    await probe.run_once()
    assert probe.report()["ok"] is True and "connection refused" in probe.report()["detail"]
    clock.t += 6
    assert probe.report()["ok"] is False


async def test_a_probe_that_hangs_fails_after_its_timeout() -> None:
    async def attempt() -> None:
        await asyncio.sleep(10)

    probe = Probe("redis", attempt, timeout_s=0.05, fresh_s=10.0)
    result = await probe.run_once()
    assert not result.ok and "no answer" in result.detail


def app(assigned: bool = True, rebalancing: bool = False, recovered: bool = True) -> Any:
    return NS(
        consumer=NS(assignment=lambda: {"tp"} if assigned else set()),
        rebalancing=rebalancing,
        tables=NS(recovery=NS(completed=NS(is_set=lambda: recovered))),
    )


def health(broker: bool, redis: bool) -> Any:
    def report(ok: bool) -> Any:
        return lambda: {"ok": ok, "detail": "ok" if ok else "down"}

    return NS(broker=NS(report=report(broker)), redis=NS(report=report(redis)))


def test_ready_needs_partitions_recovery_and_the_broker_but_not_redis() -> None:
    body = readiness(app(), health(broker=True, redis=False))
    assert body["ready"] is True
    assert set(body["checks"]) == {"partitions", "recovery", "broker", "redis"}
    assert body["checks"]["redis"] == {"ok": False, "detail": "down", "required": False}
    assert readiness(app(), health(broker=False, redis=True))["ready"] is False
    assert readiness(app(rebalancing=True), health(True, True))["ready"] is False
    assert readiness(app(recovered=False), health(True, True))["ready"] is False
    assert readiness(app(assigned=False), health(True, True))["ready"] is False


def test_the_stop_watchdog_ends_a_stuck_process_with_one_line() -> None:
    code = (
        "import time\n"
        "from stream.commands.worker import StopWatchdog\n"
        "StopWatchdog(0.2).arm()\n"
        "time.sleep(30)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert r.returncode == 3
    assert r.stderr.strip().splitlines() == [
        "[kpistream] worker did not stop within 0.2 s of the stop signal: exiting with code 3"
    ]

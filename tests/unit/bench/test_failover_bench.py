"""The failover measurement's own logic: the survivor's log, the Redis comparison, the summary."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from stream.bench.failover import Run, Worker, redis_mismatches, summary


def test_recovery_is_read_from_the_survivors_log(tmp_path: Path) -> None:
    log = tmp_path / "w.log"
    log.write_text(
        "[2026-12-01 01:32:39,448] [1] [INFO] [^---Recovery]: Worker ready \n"
        "[2026-12-01 01:32:51,708] [1] [INFO] [^---Recovery]: Resuming flow... \n"
        "[2026-12-01 01:32:52,855] [1] [INFO] [^---Recovery]: Worker ready \n"
    )
    worker = Worker({"KPISTREAM_WEB_PORT": "1"}, log)
    t0 = time.mktime(time.strptime("2026-12-01 01:32:50", "%Y-%m-%d %H:%M:%S"))
    assert worker.recovered_after(t0) == pytest.approx(2.855, abs=1e-3)
    assert worker.recovered_after(t0 + 10) is None


class _Redis:
    def __init__(self, hashes: dict[str, dict[str, str]], boards: dict[str, dict[str, float]]) -> None:
        self.hashes, self.boards = hashes, boards

    def hgetall(self, key: str) -> dict[str, str]:
        return self.hashes.get(key, {})

    def zrange(self, key: str, start: int, end: int, withscores: bool) -> list[tuple[str, float]]:
        return list(self.boards.get(key, {}).items())

    def pipeline(self, transaction: bool) -> _Pipeline:
        return _Pipeline(self)


class _Pipeline:
    """redis-py's pipeline as the comparison uses it: calls queued, answered together."""

    def __init__(self, redis: _Redis) -> None:
        self.redis = redis
        self.calls: list[Any] = []

    def hgetall(self, key: str) -> None:
        self.calls.append(lambda: self.redis.hgetall(key))

    def zrange(self, key: str, start: int, end: int, withscores: bool) -> None:
        self.calls.append(lambda: self.redis.zrange(key, start, end, withscores))

    def execute(self) -> list[Any]:
        return [call() for call in self.calls]


def test_redis_comparison_names_what_differs() -> None:
    report = {
        "periods": {
            "day:2026-01-15": {
                "operators": {"op-1": {"kpis": {"sl": 0.5}, "counts": {"answered": 2}, "f": 0.75}},
                "queues": {},
                "center": {"kpis": {}, "counts": {"offered": 3}},
                "scorecard": {},
            }
        }
    }
    good = _Redis(
        {
            "kpi:op:op-1:day:2026-01-15": {"sl": "0.5", "answered": "2", "f": "0.75"},
            "kpi:center:day:2026-01-15": {"offered": "3"},
        },
        {"kpi:leaderboard:day:2026-01-15": {"op-1": 0.75}},
    )
    assert redis_mismatches(good, report) == []
    good.hashes["kpi:center:day:2026-01-15"] = {"offered": "2"}
    assert redis_mismatches(good, report) == ["kpi:center:day:2026-01-15 offered: redis '2' != report '3'"]


def test_summary_spreads_and_failures() -> None:
    runs = [Run(1, 10.0, "memory://", True, current_s=x, group_s=9.0) for x in (12.0, 14.0, 13.0)]
    runs.append(Run(1, 10.0, "memory://", True))  # never current: a failure, not a figure
    (entry,) = summary(runs).values()
    assert entry["runs"] == 4 and entry["failed"] == 1
    assert entry["current_s"] == {"median": 13.0, "min": 12.0, "max": 14.0}

"""Several workers on Apache Kafka: every worker's /api/v1/periods is the whole cluster's, equal to report."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from tests_support import kpistream

from stream.simulator import SimConfig, generate, iter_jsonl

FUND = "10000.00"


@pytest.fixture()
def month_boundary_file(tmp_path: Path) -> Path:
    """A night over a month boundary, with repeats and business facts: two days and two months."""
    events = generate(
        SimConfig(seed=21, start="2026-01-31T22:30:00+00:00", hours=3, profile="flat", duplicate_prob=0.02)
    )
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(iter_jsonl(events)) + "\n", encoding="utf-8")
    return path


def get(worker: Any, path: str) -> tuple[int, Any]:
    """(status, JSON body) of a GET, 503s included."""
    try:
        with urllib.request.urlopen(f"{worker.base_url}{path}", timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def poll_periods(
    worker: Any, expected: dict[str, Any], timeout: float, *, whole_only: bool = False
) -> tuple[dict[str, Any], list[Any]]:
    """Poll until the worker's day and month periods equal `expected`; return the last and the 503s.

    With `whole_only` (every event already counted), any 200 must be `expected` itself: a result
    without some partitions would differ.
    """
    deadline = time.monotonic() + timeout
    got: dict[str, Any] = {}
    unavailable: list[Any] = []
    while time.monotonic() < deadline:
        status, body = get(worker, "/api/v1/periods")
        if status == 503:
            unavailable.append(body)
        else:
            assert status == 200, body
            got = {k: v for k, v in body["periods"].items() if k != "rolling"}
            if whole_only:
                assert got == expected
            if got == expected:
                break
        time.sleep(1.0)
    return got, unavailable


def owned_partitions(workers: list[Any], timeout: float = 60.0) -> list[list[int] | None]:
    """Each worker's own partitions, polled until every worker answers and they cover 0-3 once.

    A worker asked during a rebalance answers 503 (None here); the asserts read the last snapshot.
    """
    deadline = time.monotonic() + timeout
    while True:
        answers = [get(w, "/api/v1/local/aggregates") for w in workers]
        owned = [body["partitions"] if status == 200 else None for status, body in answers]
        settled = None not in owned and sorted(p for ps in owned for p in ps or ()) == [0, 1, 2, 3]
        if (settled and all(owned)) or time.monotonic() > deadline:
            return owned
        time.sleep(1.0)


@pytest.mark.parametrize("n", [2, 3])
def test_every_worker_answers_for_the_whole_cluster(
    kafka_broker: Any, worker_env: Any, start_worker: Any, month_boundary_file: Path, tmp_path: Path, n: int
) -> None:
    env = worker_env(kafka_broker.url, KPISTREAM_FUND_AMOUNT=FUND)
    envs = [env] + [
        {
            **env,
            "KPISTREAM_WEB_PORT": worker_env(kafka_broker.url)["KPISTREAM_WEB_PORT"],
            "KPISTREAM_DATA_DIR": str(tmp_path / f"worker-{i}-data"),
        }
        for i in range(1, n)
    ]
    workers = [start_worker(e) for e in envs]
    r = kpistream("produce", "--events", str(month_boundary_file), "--quiet", env=env)
    assert r.returncode == 0, r.stderr
    r = kpistream("report", "--events", str(month_boundary_file), env=env)
    assert r.returncode == 0, r.stderr
    expected = dict(json.loads(r.stdout)["periods"])
    assert set(expected) == {"day:2026-01-31", "day:2026-02-01", "month:2026-01", "month:2026-02"}
    assert all("bonus" in row for row in expected["month:2026-02"]["operators"].values())

    for worker in workers:
        got, _ = poll_periods(worker, expected, timeout=180)
        assert got == expected
    # The partitions really are split: each worker's own view holds a part, and together all four.
    owned = owned_partitions(workers)
    assert all(owned) and sorted(p for ps in owned for p in ps or ()) == [0, 1, 2, 3], owned

    # A peer killed: a survivor names it (or the rebalance) until the survivors own every partition,
    # never a partial result; then they answer without it, still equal to report.
    *survivors, killed = workers
    killed.kill()
    for i, worker in enumerate(survivors):
        got, unavailable = poll_periods(worker, expected, timeout=120, whole_only=True)
        assert got == expected
        assert all(u["error"] in ("peer_unavailable", "rebalancing") for u in unavailable), unavailable
        if i == 0:  # the first asked right after the kill; the others may be asked after the rebalance
            assert any(u.get("peer") == killed.base_url for u in unavailable), unavailable
    owned = owned_partitions(survivors)
    assert None not in owned and sorted(p for ps in owned for p in ps or ()) == [0, 1, 2, 3], owned

"""Issue 12 on real Apache Kafka and Redis: several workers joining, leaving and killed mid-stream.

Each test ends with Redis, the score topics (read from the beginning as a compacted consumer would)
and every live worker's /api/v1/periods equal to `kpistream report` over the same input, to the
last digit, fund shares included. Input: an hour of simulated traffic across a month boundary with
duplicates, late, out-of-order and late re-sent events. The random points (when a worker joins,
leaves or dies) come from a seed printed in every failure; KPISTREAM_FAULT_SEED=N replays one.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from support_faults import (
    Fleet,
    Producer,
    centre_events,
    converge,
    disorder,
    fault_seed,
    month_boundary,
    periods_summary,
    redis_client,
    report_json,
    running_fleet,
    shape_of_redis,
    shape_of_report,
    share_sums,
    write_jsonl,
)

REDIS_DB = 9
FEED_S = 30.0  # how long a live feed of the test's input lasts


@pytest.fixture()
def seed() -> int:
    return fault_seed()


@pytest.fixture()
def fleet(kafka_broker: Any, redis_server: Any, worker_env: Any, tmp_path: Path) -> Iterator[Fleet]:
    with running_fleet(kafka_broker, redis_server, worker_env, tmp_path, REDIS_DB) as f:
        yield f


def rate_for(path: Path) -> float:
    """The rate (events per second) at which the file is a live feed of FEED_S seconds."""
    return sum(1 for _ in path.open()) / FEED_S


def feed(fleet: Fleet, seed: int) -> tuple[Path, dict[str, Any]]:
    """The test's input file around the latest month boundary, and the report over it."""
    start = month_boundary() - timedelta(minutes=40)
    events = disorder(centre_events(seed, start), random.Random(seed))
    path = write_jsonl(fleet.tmp / "events.jsonl", events)
    report = report_json(path, fleet.env())
    assert len(shape_of_report(report["periods"])) == 4, "two days and two months expected"
    return path, report


def test_one_worker_equals_report_everywhere(fleet: Fleet, seed: int) -> None:
    """The baseline of the comparison: one worker, the whole file at once."""
    context = f"seed={seed} (one worker)"
    path, report = feed(fleet, seed)
    w = fleet.launch(wait=True)
    Producer(w.env, path).wait()
    want = shape_of_report(report["periods"])
    converge(want, w.env, redis_client(fleet.redis_url), fleet.live(), context=context, fleet=fleet)


def test_second_worker_joins_mid_stream(fleet: Fleet, seed: int) -> None:
    rnd = random.Random(seed)
    path, report = feed(fleet, seed)
    first = fleet.launch(wait=True)
    producer = Producer(first.env, path, rate=rate_for(path))
    join_after = rnd.uniform(3.0, FEED_S / 2)
    context = f"seed={seed}: second worker started {join_after:.1f}s into a {FEED_S:.0f}s feed"
    time.sleep(join_after)
    second = fleet.launch()
    producer.wait()
    second.wait_ready()
    want = shape_of_report(report["periods"])
    context += f"; report: {periods_summary(want)}"
    converge(want, first.env, redis_client(fleet.redis_url), fleet.live(), context=context, fleet=fleet)
    assert first.alive() and second.alive()


def test_three_workers_one_leaves_one_is_killed(fleet: Fleet, seed: int) -> None:
    """Production starts with the workers and never waits for readiness; one worker leaves with
    SIGTERM, one dies with SIGKILL, each at a random point of the feed, and a replacement for the
    dead one is started at once (as an orchestrator would) while the feed goes on."""
    rnd = random.Random(seed)
    path, report = feed(fleet, seed)
    workers = [fleet.launch() for _ in range(3)]
    producer = Producer(workers[0].env, path, rate=rate_for(path))
    started = time.monotonic()
    leaver, victim, _ = rnd.sample(workers, 3)
    plan = sorted(
        [
            (rnd.uniform(8.0, FEED_S - 5), "SIGTERM", leaver),
            (rnd.uniform(8.0, FEED_S - 5), "SIGKILL", victim),
        ],
        key=lambda step: step[0],
    )
    context = f"seed={seed}, feed of {FEED_S:.0f}s:"
    for at, kind, w in plan:
        time.sleep(max(0.0, at - (time.monotonic() - started)))
        context += (
            f" {kind} {w.name} at {at:.1f}s ({'ready' if w.ready() else 'not ready'},"
            f" feed {'running' if producer.running() else 'done'});"
        )
        if kind == "SIGTERM":
            w.terminate()
        else:
            w.kill()
            fleet.launch()
    producer.wait()
    want = shape_of_report(report["periods"])
    context += f" report: {periods_summary(want)}"
    converge(
        want,
        workers[0].env,
        redis_client(fleet.redis_url),
        fleet.live(),
        timeout=180,
        context=context,
        fleet=fleet,
    )
    assert len(fleet.live()) == 2


def test_fund_shares_with_two_workers_sum_to_one_and_equal_report(fleet: Fleet, seed: int) -> None:
    """CONTRACT §3: shares are over every operator of the period, however many workers compute them."""
    path, report = feed(fleet, seed)
    a, b = fleet.launch(), fleet.launch()
    a.wait_ready()
    b.wait_ready()
    Producer(a.env, path).wait()
    want = shape_of_report(report["periods"])
    assert all(math.isclose(s, 1.0, abs_tol=1e-9) for s in share_sums(want).values()), share_sums(want)
    context = f"seed={seed} (two workers); report: {periods_summary(want)}"
    r = redis_client(fleet.redis_url)
    try:
        converge(want, a.env, r, fleet.live(), context=context, fleet=fleet)
    finally:
        sums = share_sums(shape_of_redis(r)[0])
        print(f"fund shares summed per period in Redis: {sums}")
    bad = {pk: s for pk, s in sums.items() if not math.isclose(s, 1.0, abs_tol=1e-9)}
    assert not bad, f"{context}: fund shares in Redis do not sum to 1: {bad}"

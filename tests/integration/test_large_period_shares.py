"""Fund shares of a period of more than 500 operators on real Kafka and Redis, after the stream stops.

In such a period the publisher writes at once only the operators whose own counts changed; the
others' shares, moved by a newcomer, follow on a refresh (docs/outputs.md). The refresh once
waited for the period's next event, so after the last event of an hour or of a day every other
operator kept its old `fund_share` in Redis and on `kpi.operator-scores` for good. Each step here
stops the stream right after a change that moves every share (an operator joins) and ends with
Redis, the compacted score topics and the workers' APIs equal to `kpistream report`, every fund
share included: the stream gone quiet, the day turned, the worker killed (one worker, and the
owner of the period among two).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support_faults import (
    Fleet,
    Producer,
    Worker,
    converge,
    fault_seed,
    redis_client,
    report_json,
    running_fleet,
    shape_of_report,
    write_jsonl,
)

from stream.core.timefmt import format_ts
from stream.publish.score_cache import SHARES_EVERY_FLUSH_UP_TO

pytestmark = pytest.mark.integration

REDIS_DB = 12
OPERATORS = SHARES_EVERY_FLUSH_UP_TO + 20
SHARE_INTERVAL_S = "4"  # the share refresh of the test's workers (default 10 s)
# Newcomers are fed live, a few a second for longer than the share refresh, so that the feed stops
# between two refreshes: the last newcomers moved shares that no refresh has published yet.
JOINS = 40
JOIN_RATE = 4.0


@pytest.fixture()
def fleet(kafka_broker: Any, redis_server: Any, worker_env: Any, tmp_path: Path) -> Iterator[Fleet]:
    with running_fleet(kafka_broker, redis_server, worker_env, tmp_path, REDIS_DB) as f:
        yield f


def first_contact(n: int, operator: str, at: datetime, *, resolved: bool = True) -> dict[str, Any]:
    """One valid event that counts for `operator` on its own (a first contact of a new case)."""
    return {
        "event_id": f"share-{n}",
        "type": "contact.disposition",
        "ts": format_ts(int(at.timestamp() * 1000)),
        "contact_id": f"share-{n}-contact",
        "channel": "call",
        "operator_id": operator,
        "resolved": resolved,
        "case_id": f"share-{n}-case",
    }


class Feed:
    """The test's input so far: each step appends events, publishes them and knows the report over all."""

    def __init__(self, fleet: Fleet, seed: int) -> None:
        self.fleet = fleet
        self.rnd = random.Random(seed)
        self.events: list[dict[str, Any]] = []
        # A whole day before yesterday: in the past of the wall clock and within day retention.
        self.day = (datetime.now(UTC) - timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)

    def operators_of_the_day(self) -> list[dict[str, Any]]:
        """OPERATORS first contacts on the day; about one in five unresolved (F 0: no share)."""
        return [
            first_contact(i, f"op-{i:04d}", self.day + timedelta(seconds=i), resolved=self.rnd.random() > 0.2)
            for i in range(OPERATORS)
        ]

    def joins(self, prefix: str, start: datetime, count: int = JOINS) -> list[dict[str, Any]]:
        """Newcomers' resolved first contacts, a second apart: each moves every other share."""
        n = len(self.events)
        return [first_contact(n + i, f"{prefix}-{i:02d}", start + timedelta(seconds=i)) for i in range(count)]

    def publish(self, events: list[dict[str, Any]], name: str, rate: float = 0.0) -> dict[str, Any]:
        """Produce `events` (at `rate` a second: a live feed) and return the report over everything
        produced so far (day and month)."""
        self.events += events
        Producer(self.fleet.env(), write_jsonl(self.fleet.tmp / f"{name}.jsonl", events), rate).wait()
        path = write_jsonl(self.fleet.tmp / f"all-{name}.jsonl", self.events)
        want = shape_of_report(report_json(path, self.fleet.env())["periods"])
        day = want[f"day:{self.day:%Y-%m-%d}"]
        assert len(day["operators"]) > SHARES_EVERY_FLUSH_UP_TO, "the period must be a large one"
        return want


def settle(fleet: Fleet, want: dict[str, Any], step: str, seed: int) -> None:
    env = fleet.env()
    converge(
        want,
        env,
        redis_client(fleet.redis_url),
        fleet.live(),
        timeout=90,
        context=f"seed={seed}: {step}",
        fleet=fleet,
    )


def owner_of(workers: list[Worker], period_key: str) -> Worker:
    """The worker whose partitions hold the operators of `period_key` (`/api/v1/local/aggregates`).

    Rule: all operators of a period share one partition (keys.operator_route), so one worker owns them.
    """
    suffix = f"|{period_key}"
    owners = [
        w
        for w in workers
        if any(
            k.startswith("op|") and k.endswith(suffix)
            for k in w.get_json("/api/v1/local/aggregates")["fixed"]
        )
    ]
    assert len(owners) == 1, [w.name for w in owners]
    return owners[0]


def test_one_worker_publishes_every_share_after_quiet_day_turn_and_kill(fleet: Fleet) -> None:
    seed = fault_seed()
    feed = Feed(fleet, seed)
    worker = fleet.launch(wait=True, KPISTREAM_SHARE_INTERVAL_S=SHARE_INTERVAL_S)
    settle(fleet, feed.publish(feed.operators_of_the_day(), "day"), "the day's operators", seed)

    want = feed.publish(feed.joins("op-new-1", feed.day + timedelta(hours=2)), "quiet", JOIN_RATE)
    settle(fleet, want, "a newcomer, then no more events", seed)

    want = feed.publish(feed.joins("op-new-2", feed.day + timedelta(hours=3)), "killed", JOIN_RATE)
    worker.kill()  # before the quiet refresh could run, maybe before the newcomer was read at all
    fleet.launch(wait=True, KPISTREAM_SHARE_INTERVAL_S=SHARE_INTERVAL_S)
    settle(fleet, want, "a newcomer, then the worker killed and started again", seed)

    late = feed.day.replace(hour=23, minute=59, second=0)
    feed.publish(feed.joins("op-new-3", late), "late", JOIN_RATE)
    # The next day's first event comes in a later flush than the last newcomer's: nothing of the
    # old day changes in it.
    want = feed.publish([first_contact(10**6, "op-0001", feed.day + timedelta(days=1))], "turn")
    settle(fleet, want, "newcomers at the day's end, then the next day", seed)


def test_two_workers_the_owner_killed_while_shares_are_behind(fleet: Fleet) -> None:
    seed = fault_seed()
    feed = Feed(fleet, seed)
    workers = [fleet.launch(KPISTREAM_SHARE_INTERVAL_S=SHARE_INTERVAL_S) for _ in range(2)]
    for w in workers:
        w.wait_ready()
    settle(fleet, feed.publish(feed.operators_of_the_day(), "day"), "the day's operators (two workers)", seed)

    day = f"day:{feed.day:%Y-%m-%d}"
    owner = owner_of(workers, day)
    want = feed.publish(feed.joins("op-new-1", feed.day + timedelta(hours=2)), "killed", JOIN_RATE)
    owner.kill()  # the worker that computes the day's shares, before its quiet refresh
    settle(fleet, want, f"a newcomer, then {owner.name} (owner of {day}) killed", seed)
    assert len(fleet.live()) == 1

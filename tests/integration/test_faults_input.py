"""Issue 12 on real Apache Kafka and Redis: replays, bad clocks and a Redis that lost its data.

Each test ends with Redis, the score topics (read from the beginning as a compacted consumer would)
and every live worker's /api/v1/periods equal to `kpistream report` over the same input, to the
last digit, fund shares included; where the report itself is at stake (a replay, an outlier) it is
also checked against the report over the clean input. Random choices come from a seed printed in
every failure; KPISTREAM_FAULT_SEED=N replays one.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support_faults import (
    Fleet,
    Producer,
    centre_events,
    converge,
    dead_letter_reasons,
    diff_shapes,
    disorder,
    failure,
    fault_seed,
    month_boundary,
    periods_summary,
    redis_client,
    redis_url_of,
    report_json,
    restart_redis_empty,
    running_fleet,
    shape_of_report,
    write_jsonl,
)
from tests_support import periods_now

from stream.core.timefmt import format_ts
from stream.devenv.redis import RedisServer

REDIS_DB = 10


@pytest.fixture()
def seed() -> int:
    return fault_seed()


@pytest.fixture()
def fleet(kafka_broker: Any, redis_server: Any, worker_env: Any, tmp_path: Path) -> Iterator[Fleet]:
    with running_fleet(kafka_broker, redis_server, worker_env, tmp_path, REDIS_DB) as f:
        yield f


def report_shape(fleet: Fleet, name: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    """The report over `events` written as a file of the test, in the report's shape."""
    path = write_jsonl(fleet.tmp / name, events)
    return shape_of_report(report_json(path, fleet.env())["periods"])


def report_moved(clean: dict[str, Any], got: dict[str, Any], what: str) -> str:
    """How the report moved from the report over the clean input ('' if not at all).

    The tests compare the stream with the report over the same input first and check this last,
    so that a failure shows both.
    """
    lines = diff_shapes(clean, got, "report")
    if not lines:
        return ""
    return f"{what}: the report differs from the report over the clean input in {len(lines)} values:\n" + (
        "\n".join(lines[:25])
    )


def disposition(event_id: str, ts: str, operator: str = "op-001") -> dict[str, Any]:
    """A single valid event that counts on its own (a first contact: fcr_contacts += 1)."""
    return {
        "event_id": event_id,
        "type": "contact.disposition",
        "ts": ts,
        "contact_id": f"{event_id}-contact",
        "channel": "call",
        "operator_id": operator,
        "resolved": True,
        "case_id": f"{event_id}-case",
    }


def test_replay_of_the_whole_file_and_its_first_tenth_changes_nothing(fleet: Fleet, seed: int) -> None:
    """CONTRACT §1: a repeated event_id changes nothing while its periods are retained.

    The input spans more than the 2 days an entity's state is kept: an hour around a month
    boundary, then 20 minutes three days later, so the replay's first events belong to entities
    whose state the worker has already dropped.
    """
    rnd = random.Random(seed)
    now = datetime.now(UTC)
    boundary = month_boundary()
    if boundary + timedelta(days=3, hours=12) > now - timedelta(hours=1):
        boundary = month_boundary(1)
    first = centre_events(seed, boundary - timedelta(minutes=40))
    later = centre_events(seed + 1, boundary + timedelta(days=3, hours=10), minutes=20)
    events = disorder(first, rnd) + disorder(later, rnd)
    tenth = events[: len(events) // 10]
    path = write_jsonl(fleet.tmp / "events.jsonl", events)
    w = fleet.launch(wait=True)
    r = redis_client(fleet.redis_url)
    once = report_shape(fleet, "once.jsonl", events)
    context = f"seed={seed}; report: {periods_summary(once)}"
    Producer(w.env, path).wait()
    # The worker has processed the file (Redis and its API agree with the report): now the replay.
    converge(once, w.env, r, [w], topics=False, context=context + "; the file once", fleet=fleet)
    Producer(w.env, path).wait()
    Producer(w.env, write_jsonl(fleet.tmp / "tenth.jsonl", tenth)).wait()
    again = report_shape(fleet, "again.jsonl", events + events + tenth)
    moved = report_moved(once, again, "the file twice and its first tenth")
    converge(
        again, w.env, r, [w], context=f"{context}; the file again, then its first tenth\n{moved}", fleet=fleet
    )
    assert not moved, moved


def fate_of_epoch_event(w: Any, event_id: str, timeout: float = 20) -> str:
    """Whether the worker took the 1970 event (a 1970 period in its API) or dead-lettered it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any("1970" in pk for pk in periods_now(w) or {}):
            return "accepted (a 1970 period in /api/v1/periods)"
        letter = dead_letter_reasons(w.env, {event_id}, timeout=1)
        if letter:
            return f"dead letter {letter[event_id]!r}"
    return f"neither counted nor dead-lettered within {timeout:.0f}s"


def test_future_event_is_a_dead_letter_and_an_epoch_event_leaves_no_trace(fleet: Fleet, seed: int) -> None:
    """CONTRACT §1: 2099 is beyond the clock skew (`future`); a 1970 event first on a fresh worker
    must not keep a period of its own nor move anything for the events after it."""
    rnd = random.Random(seed)
    clean = disorder(centre_events(seed, month_boundary() - timedelta(minutes=40)), rnd)
    epoch = disposition(f"epoch-{seed}", "1970-01-02T09:00:00.000Z")
    future = disposition(f"future-{seed}", "2099-06-01T09:00:00.000Z")
    at = rnd.randrange(len(clean) // 5, len(clean) // 2)
    rest = [*clean[:at], future, *clean[at:]]
    context = (
        f"seed={seed}: 1970 event first on a fresh worker, 2099 event at line {at + 2} of {len(rest) + 1}"
    )
    want = report_shape(fleet, "all.jsonl", [epoch, *rest])
    moved = report_moved(report_shape(fleet, "clean.jsonl", clean), want, "with a 1970 and a 2099 event")

    w = fleet.launch(wait=True)
    Producer(w.env, write_jsonl(fleet.tmp / "epoch.jsonl", [epoch])).wait()
    epoch_fate = fate_of_epoch_event(w, epoch["event_id"])
    Producer(w.env, write_jsonl(fleet.tmp / "rest.jsonl", rest)).wait()
    context += f"; the 1970 event: {epoch_fate}\n{moved}"
    converge(want, w.env, redis_client(fleet.redis_url), [w], context=context, fleet=fleet)
    # Read after the worker converged: it has consumed the 2099 event by then.
    letters = dead_letter_reasons(w.env, {future["event_id"]}, timeout=30)
    assert letters == {future["event_id"]: "future"}, f"{context}; 2099 dead letter: {letters or 'none'}"
    assert not moved, moved


def test_one_event_months_ahead_moves_nothing_for_the_others(fleet: Fleet, seed: int) -> None:
    """CONTRACT §1: an event within the wall-clock bound but months after the rest counts in its own
    periods; it neither makes the others `too_late` nor lets retention delete their periods."""
    rnd = random.Random(seed)
    clean = disorder(centre_events(seed, month_boundary(2) - timedelta(minutes=40)), rnd)
    ahead = datetime.now(UTC) - timedelta(hours=3)
    outlier = disposition(f"ahead-{seed}", format_ts(int(ahead.timestamp() * 1000)), operator="op-002")
    at = rnd.randrange(len(clean) // 5, len(clean) // 2)
    events = [*clean[:at], outlier, *clean[at:]]
    want = report_shape(fleet, "all.jsonl", events)
    base = report_shape(fleet, "clean.jsonl", clean)
    context = f"seed={seed}: outlier {outlier['ts']} at line {at + 1} of {len(events)}; clean report: " + (
        periods_summary(base)
    )
    own = {f"day:{ahead:%Y-%m-%d}", f"month:{ahead:%Y-%m}"}
    moved = report_moved(base, {pk: p for pk, p in want.items() if pk not in own}, "with one event ahead")
    if not own <= set(want):
        moved += f"\nthe outlier's own periods {sorted(own)} are not in the report: {sorted(want)}"

    w = fleet.launch(wait=True)
    Producer(w.env, write_jsonl(fleet.tmp / "events.jsonl", events)).wait()
    converge(want, w.env, redis_client(fleet.redis_url), [w], context=f"{context}\n{moved}", fleet=fleet)
    late = {
        e: r
        for e, r in dead_letter_reasons(w.env, {e["event_id"] for e in clean}, 5).items()
        if r == "too_late"
    }
    assert not late, f"{context}: {len(late)} events dead-lettered too_late"
    assert not moved, moved


@pytest.fixture()
def own_redis(redis_server: Any, tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test alone, so that it can be restarted empty (the session's is shared)."""
    server = RedisServer(tmp_path / "redis")
    server.start(timeout=30)
    try:
        yield server
    finally:
        server.stop()


def test_redis_flushed_or_restarted_empty_comes_back_without_new_events(
    kafka_broker: Any, own_redis: RedisServer, worker_env: Any, tmp_path: Path, seed: int
) -> None:
    """Issue 12 item 5: a Redis that lost its data is rewritten, though no event arrives."""
    fleet = Fleet(tmp_path, worker_env, kafka_broker.url, redis_url_of(own_redis, 0))
    try:
        events = disorder(centre_events(seed, month_boundary() - timedelta(minutes=40)), random.Random(seed))
        want = report_shape(fleet, "events.jsonl", events)
        w = fleet.launch(wait=True)
        r = redis_client(fleet.redis_url)
        Producer(w.env, fleet.tmp / "events.jsonl").wait()
        context = f"seed={seed}; report: {periods_summary(want)}"
        converge(want, w.env, r, [w], topics=False, context=context + "; the events", fleet=fleet)

        r.flushall()
        flushed = converge(want, w.env, r, [w], topics=False, timeout=90, fail=False)
        restart_redis_empty(own_redis)
        r = redis_client(fleet.redis_url)
        restarted = converge(want, w.env, r, [w], timeout=90, fail=False)
        if not (flushed.ok and restarted.ok):
            pytest.fail(
                f"{failure(flushed, 45, context + '; after FLUSHALL, no new events', None)}\n"
                f"{failure(restarted, 45, 'after a restart empty, no new events', fleet)}",
                pytrace=False,
            )
        assert w.alive()
    finally:
        fleet.stop_all()

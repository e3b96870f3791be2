"""Support of the fault tests (issue 12): realistic input, a fleet of workers, and one comparison.

Every fault test ends the same way: Redis, the score topics read from the beginning as a compacted
consumer would, and every live worker's `/api/v1/periods` are each turned into the shape of
`kpistream report` (day and month periods; operators' kpis, counts, f and fund_share; queues;
centre) and must equal the report over the same input, to the last digit. `converge` polls until
they do (results converge; the deadline only bounds a failing run) and fails with a readable diff.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from aiokafka import AIOKafkaConsumer
from tests_support import kpistream, records_to_end

from stream.core.counts import OPERATOR_COUNT_FIELDS, QUEUE_COUNT_FIELDS
from stream.core.outputs import decimal_string
from stream.devtools.worker_process import WorkerFailed, WorkerProcess
from stream.simulator import SimConfig, generate
from stream.topic_admin import bootstrap_of

REPO = Path(__file__).resolve().parent.parent
CENTER = "_center"
Shape = dict[str, Any]  # {period_key: {"operators": {...}, "queues": {...}, "center": {...}}}

# Fields of a Redis score hash that are neither a KPI nor a count.
_OP_META = {"f", "fund_share", "bonus", "strategy", "period", "period_start", "updated_at"}
_QUEUE_META = {"period", "updated_at", "scope", "queue"}


def fault_seed() -> int:
    """The seed of a test's random choices: KPISTREAM_FAULT_SEED to replay a failure, else random."""
    text = os.environ.get("KPISTREAM_FAULT_SEED", "")
    return int(text) if text else random.SystemRandom().randrange(1, 10**6)


# ------------------------------------------------------------------------------------ input


def month_boundary(months_back: int = 0, now: datetime | None = None) -> datetime:
    """The start of a month in the past: the newest one at least 2 hours ago, then `months_back` more.

    Tests put their events around it so that they cross a month boundary, lie in the past of the
    wall clock (CONTRACT §1 bounds event time by it) and, for months_back=0, within the 40 days of
    day retention of today.
    """
    now = now or datetime.now(UTC)
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if now - first < timedelta(hours=2):
        first = (first - timedelta(days=1)).replace(day=1)
    for _ in range(months_back):
        first = (first - timedelta(days=1)).replace(day=1)
    return first


def centre_events(
    seed: int, start: datetime, minutes: float = 60, operators: int = 24
) -> list[dict[str, Any]]:
    """Simulated traffic (calls, chats, e-mails, dispositions, agent and staff events), in time order.

    The flat profile keeps everyone logged in, so an interval around midnight still has traffic;
    2 % of the events are re-sent right after themselves, as at-least-once producers do.
    """
    cfg = SimConfig(
        seed=seed,
        start=start.isoformat(),
        hours=minutes / 60,
        profile="flat",
        operators=operators,
        calls_per_hour=400,
        chats_per_hour=60,
        emails_per_hour=40,
        duplicate_prob=0.02,
    )
    return generate(cfg)


def disorder(events: Sequence[dict[str, Any]], rnd: random.Random) -> list[dict[str, Any]]:
    """Arrival order as a real feed has it: late events, swapped neighbours, late re-sends.

    3 % of the events arrive 50-400 events later than their time, 2 % swap with their neighbour,
    1 % are sent again 100-1,500 events later, and ten events of the first fifth arrive at the
    very end (across the month boundary of the tests' input).
    """
    out = [dict(e) for e in events]
    n = len(out)
    for _ in range(n * 3 // 100):
        i = rnd.randrange(len(out))
        e = out.pop(i)
        out.insert(min(len(out), i + rnd.randint(50, 400)), e)
    for _ in range(n * 2 // 100):
        i = rnd.randrange(len(out) - 1)
        out[i], out[i + 1] = out[i + 1], out[i]
    for _ in range(n // 100):
        i = rnd.randrange(len(out))
        out.insert(min(len(out), i + rnd.randint(100, 1500)), dict(out[i]))
    for _ in range(10):
        out.append(out.pop(rnd.randrange(n // 5)))
    return out


def write_jsonl(path: Path, events: Iterable[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events), encoding="utf-8")
    return path


def report_json(path: Path, env: dict[str, str]) -> dict[str, Any]:
    """`kpistream report --events FILE` (JSON), run as a user runs it."""
    r = kpistream("report", "--events", str(path), env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    return dict(json.loads(r.stdout))


class Producer:
    """`kpistream produce --events FILE` in the background, at a rate, as a live feed."""

    def __init__(self, env: dict[str, str], path: Path, rate: float = 0.0) -> None:
        args = [sys.executable, "-m", "stream.cli", "produce", "--events", str(path), "--quiet"]
        if rate:
            args += ["--rate", str(rate)]
        self.proc = subprocess.Popen(args, env=env, cwd=REPO, stderr=subprocess.PIPE)

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float = 180) -> None:
        _, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, err.decode(errors="replace")[-3000:]


def produce(env: dict[str, str], path: Path) -> None:
    """Publish a whole file now (no rate limit) and wait until the broker has it."""
    Producer(env, path).wait()


# ------------------------------------------------------------------------------------ workers


class Worker(WorkerProcess):
    """A worker of this checkout, started without waiting for its readiness; failures are test failures."""

    def __init__(self, env: dict[str, str], log_path: Path, name: str) -> None:
        super().__init__(env, log_path, cwd=REPO)
        self.name = name
        self.spawn()

    def wait_ready(self, timeout: float = 120, poll_s: float = 0.5) -> None:
        try:
            super().wait_ready(timeout, poll_s)
        except WorkerFailed as exc:
            raise AssertionError(f"{self.name}: {exc}:\n{exc.log_tail}") from None

    def terminate(self, timeout: float = 30) -> None:
        """SIGTERM: a clean leave (the group rebalances, offsets are committed); SIGKILL after `timeout`."""
        self.stop(timeout)


@dataclass
class Fleet:
    """The workers of one test (each with its own web port and data dir); all stopped at the end."""

    tmp: Path
    env_of: Any  # the worker_env fixture
    broker_url: str
    redis_url: str
    workers: list[Worker] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        """A worker's env: the test's app id, topic prefix and Redis; a fresh port and data dir."""
        n = len(self.workers)
        return self.env_of(
            self.broker_url, self.redis_url, KPISTREAM_DATA_DIR=str(self.tmp / f"data-{n}"), **extra
        )

    def launch(self, *, wait: bool = False, **extra: str) -> Worker:
        n = len(self.workers)
        w = Worker(self.env(**extra), self.tmp / f"worker-{n}.log", f"worker-{n}")
        self.workers.append(w)
        if wait:
            w.wait_ready()
        return w

    def live(self) -> list[Worker]:
        return [w for w in self.workers if w.alive()]

    def stop_all(self) -> None:
        for w in self.workers:
            w.terminate(20)

    def logs(self) -> str:
        def state(w: Worker) -> str:
            return "alive" if w.alive() else f"exit {w.proc.returncode}"

        def sink_lines(w: Worker) -> str:
            # The log tail may not reach back to what a sink did; these lines say it over the whole run.
            lines = [ln for ln in w.log_tail(10_000_000).splitlines() if "sink " in ln]
            return "\n".join(lines[-15:]) or "(none)"

        return "\n".join(
            f"--- {w.name} ({state(w)}) sink lines:\n{sink_lines(w)}\n--- log tail:\n{w.log_tail()}"
            for w in self.workers
        )


def redis_url_of(server: Any, db: int) -> str:
    return f"redis://{server.host}:{server.port}/{db}"


def redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True, socket_timeout=10)


@contextlib.contextmanager
def running_fleet(
    kafka_broker: Any, redis_server: Any, worker_env: Any, tmp_path: Path, db: int
) -> Iterator[Fleet]:
    """A test's Fleet on the session's broker and Redis database `db` (emptied first); all stopped after."""
    url = redis_url_of(redis_server, db)
    redis_client(url).flushdb()
    f = Fleet(tmp_path, worker_env, kafka_broker.url, url)
    try:
        yield f
    finally:
        f.stop_all()


def restart_redis_empty(server: Any) -> None:
    """Stop a RedisServer, remove its data (AOF, snapshot), start it again on the same port.

    It starts empty because nothing of its data is left; asking it afterwards is no proof, as the
    worker may already have rewritten everything by the time the question arrives.
    """
    server.stop()
    for p in Path(server.data_dir).iterdir():
        if p.name.startswith(("appendonly", "dump")) or p.suffix in (".aof", ".rdb"):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    left = [p.name for p in Path(server.data_dir).iterdir() if p.suffix != ".log"]
    assert not left, f"Redis data left before the restart: {left}"
    server.start(timeout=30)


# ------------------------------------------------------------------------------------ shapes


def _is_kept(period_key: str) -> bool:
    return period_key.startswith(("day:", "month:"))


def _op_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "kpis": dict(row["kpis"]),
        "counts": dict(row["counts"]),
        "f": row["f"],
        "fund_share": row["fund_share"],
    }


def _queue_row(row: dict[str, Any]) -> dict[str, Any]:
    return {"kpis": dict(row["kpis"]), "counts": dict(row["counts"])}


def shape_of_report(periods: dict[str, Any]) -> Shape:
    """The `periods` of `kpistream report` JSON or of `/api/v1/periods`, day and month only."""
    out: Shape = {}
    for pk, p in periods.items():
        if not _is_kept(pk):
            continue
        out[pk] = {
            "operators": {op: _op_row(row) for op, row in p.get("operators", {}).items()},
            "queues": {q: _queue_row(row) for q, row in p.get("queues", {}).items()},
            "center": _queue_row(p["center"]) if p.get("center") else None,
            "scorecard": _card(p.get("scorecard")),
        }
    return out


def _number(text: str, count: bool) -> int | float | None:
    if text == "":
        return None
    return int(text) if count else float(text)


def _from_hash(h: dict[str, str], count_fields: tuple[str, ...], meta: set[str]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "kpis": {k: _number(v, False) for k, v in h.items() if k not in meta and k not in count_fields},
        "counts": {k: _number(v, True) for k, v in h.items() if k in count_fields},
    }
    return row


def _period(out: Shape, pk: str) -> dict[str, Any]:
    return out.setdefault(pk, {"operators": {}, "queues": {}, "center": None, "scorecard": None})


def _card(card: Any) -> dict[str, str] | None:
    """A balanced scorecard as its Redis hash holds it: `dimension.figure` -> decimal text."""
    if not card:
        return None
    return {
        f"{dim}.{name}": decimal_string(v)
        for dim, figures in card.items()
        if isinstance(figures, dict)
        for name, v in figures.items()
    }


def shape_of_redis(r: redis.Redis, prefix: str = "") -> tuple[Shape, list[str]]:
    """Redis's day/month hashes as the report's shape, and inconsistencies the shape cannot show.

    `prefix` is the deployment's `redis_key_prefix`: only its keys are read. Inconsistencies are a
    leaderboard whose scores are not the operators' F.
    """
    out: Shape = {}
    problems: list[str] = []
    op_head, queue_head, center_head = f"{prefix}kpi:op:", f"{prefix}kpi:queue:", f"{prefix}kpi:center:"
    for key in r.scan_iter(f"{op_head}*", count=1000):
        head, kind, date = key.rsplit(":", 2)
        pk = f"{kind}:{date}"
        if not _is_kept(pk):
            continue
        op = head[len(op_head) :]
        h = r.hgetall(key)
        row = _from_hash(h, OPERATOR_COUNT_FIELDS, _OP_META)
        row["f"] = _number(h.get("f", ""), False)
        row["fund_share"] = _number(h.get("fund_share", ""), False)
        _period(out, pk)["operators"][op] = row
    for key in r.scan_iter(f"{queue_head}*", count=1000):
        head, kind, date = key.rsplit(":", 2)
        pk = f"{kind}:{date}"
        if _is_kept(pk):
            _period(out, pk)["queues"][head[len(queue_head) :]] = _from_hash(
                r.hgetall(key), QUEUE_COUNT_FIELDS, _QUEUE_META
            )
    for key in r.scan_iter(f"{center_head}*", count=1000):
        pk = key[len(center_head) :]
        if _is_kept(pk):
            _period(out, pk)["center"] = _from_hash(r.hgetall(key), QUEUE_COUNT_FIELDS, _QUEUE_META)
    card_head = f"{prefix}kpi:scorecard:"
    for key in r.scan_iter(f"{card_head}*", count=1000):
        pk = key[len(card_head) :]
        if _is_kept(pk):
            _period(out, pk)["scorecard"] = {k: v for k, v in r.hgetall(key).items() if "." in k}
    for pk, p in out.items():
        board_key = f"{prefix}kpi:leaderboard:{pk}"
        board = dict(r.zrange(board_key, 0, -1, withscores=True))
        scores = {op: row["f"] for op, row in p["operators"].items()}
        for op in sorted(set(board) | set(scores)):
            if board.get(op) != scores.get(op):
                problems.append(f"redis {board_key} {op}: score {board.get(op)!r}, f {scores.get(op)!r}")
    return out, problems


async def _compacted(bootstrap: str, topic: str, timeout: float) -> dict[bytes, Any]:
    """A topic read from the beginning to its current end: the last value per message key."""
    return {
        m.key or b"": None if m.value is None else json.loads(m.value)
        for m in await records_to_end(bootstrap, [topic], timeout=timeout)
    }


def shape_of_topics(env: dict[str, str]) -> tuple[Shape, list[str]]:
    """The score topics as a compacted consumer rebuilds them (keys per CONTRACT §5).

    The last value per message key counts (a tombstone removes it). A key that is not
    `{operator_id}|{period_key}` / `{queue}|{period_key}` / `_center|{period_key}` of its value is
    reported: compaction would lose records under it.
    """
    bootstrap = bootstrap_of(env["KPISTREAM_BROKER"])
    prefix = env["KPISTREAM_TOPIC_PREFIX"]
    ops = asyncio.run(_compacted(bootstrap, prefix + "kpi.operator-scores", 60))
    queues = asyncio.run(_compacted(bootstrap, prefix + "kpi.queue-kpis", 60))
    cards = asyncio.run(_compacted(bootstrap, prefix + "kpi.scorecard", 60))
    out: Shape = {}
    problems: list[str] = []
    for raw_key, v in ops.items():
        if v is None:
            continue
        key = raw_key.decode()
        if key != f"{v['operator_id']}|{v['period_key']}":
            problems.append(
                f"topic kpi.operator-scores: key {key!r} for {v['operator_id']}|{v['period_key']}"
            )
        if _is_kept(v["period_key"]):
            _period(out, v["period_key"])["operators"][v["operator_id"]] = _op_row(v)
    for raw_key, v in queues.items():
        if v is None:
            continue
        key = raw_key.decode()
        if key != f"{v['queue']}|{v['period_key']}":
            problems.append(f"topic kpi.queue-kpis: key {key!r} for {v['queue']}|{v['period_key']}")
        if not _is_kept(v["period_key"]):
            continue
        p = _period(out, v["period_key"])
        if v["scope"] == "center":
            p["center"] = _queue_row(v)
        else:
            p["queues"][v["queue"]] = _queue_row(v)
    for raw_key, v in cards.items():
        if v is None:
            continue
        if raw_key.decode() != v["period_key"]:
            problems.append(f"topic kpi.scorecard: key {raw_key.decode()!r} for {v['period_key']}")
        if _is_kept(v["period_key"]):
            _period(out, v["period_key"])["scorecard"] = _card(v)
    return out, sorted(set(problems))[:5] + (
        [f"... {len(problems)} keys in all"] if len(problems) > 5 else []
    )


# ------------------------------------------------------------------------------------ diff


def _fmt(v: Any) -> str:
    return "missing" if v is _MISSING else repr(v)


_MISSING = object()


def diff_shapes(want: Shape, got: Shape, label: str) -> list[str]:
    """Every difference, one line each: `label period scope id field: got X, report Y`."""
    lines: list[str] = []

    def cmp(path: str, a: Any, b: Any) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b), key=str):
                cmp(f"{path}.{k}" if path else str(k), a.get(k, _MISSING), b.get(k, _MISSING))
        elif a != b or (type(a) is not type(b) and not _same_number(a, b)):
            lines.append(f"{label} {path}: got {_fmt(b)}, report {_fmt(a)}")

    for pk in sorted(set(want) | set(got)):
        if pk not in got:
            lines.append(f"{label} {pk}: period missing (report has it)")
            continue
        if pk not in want:
            lines.append(f"{label} {pk}: period not in the report")
            continue
        w, g = want[pk], got[pk]
        for scope in ("operators", "queues"):
            for ident in sorted(set(w[scope]) | set(g[scope])):
                where = f"{pk} {scope[:-1]} {ident}"
                if ident not in g[scope]:
                    lines.append(f"{label} {where}: missing")
                elif ident not in w[scope]:
                    lines.append(f"{label} {where}: not in the report")
                else:
                    cmp(where, w[scope][ident], g[scope][ident])
        if w["center"] is None or g["center"] is None:
            if w["center"] != g["center"]:
                lines.append(f"{label} {pk} center: got {g['center']!r}, report {w['center']!r}")
        else:
            cmp(f"{pk} center", w["center"], g["center"])
    return lines


def _same_number(a: Any, b: Any) -> bool:
    """1 and 1.0 are the same digits; True and 1 or None and 0 are not."""
    nums = (int, float)
    return isinstance(a, nums) and isinstance(b, nums) and not isinstance(a, bool) and a == b


def share_sums(shape: Shape) -> dict[str, float]:
    """Per period, the sum of the operators' fund shares (1 wherever someone has a positive F)."""
    return {
        pk: math.fsum(row["fund_share"] or 0.0 for row in p["operators"].values()) for pk, p in shape.items()
    }


# ------------------------------------------------------------------------------------ converge


@dataclass
class Outcome:
    """The last comparison of every output with the report (topics None: not compared)."""

    redis: list[str]
    topics: list[str] | None
    apis: dict[str, list[str]]

    @property
    def ok(self) -> bool:
        return not self.redis and not self.topics and not any(self.apis.values())

    def summary(self, limit: int = 25) -> str:
        parts: list[str] = []
        sources = [("Redis", self.redis), ("score topics", self.topics), *self.apis.items()]
        for name, lines in sources:
            if lines is None:
                parts.append(f"{name}: not compared")
            elif lines:
                parts.append(f"{name}: {len(lines)} differences, first {min(limit, len(lines))}:")
                parts.extend("  " + line for line in lines[:limit])
            else:
                parts.append(f"{name}: equal to the report")
        return "\n".join(parts)


def compare(
    want: Shape, env: dict[str, str], r: redis.Redis, workers: Sequence[Worker], *, topics: bool = True
) -> Outcome:
    try:
        got, problems = shape_of_redis(r, env.get("KPISTREAM_REDIS_KEY_PREFIX", ""))
        redis_lines = problems + diff_shapes(want, got, "redis")
    except redis.RedisError as exc:
        redis_lines = [f"redis unreadable: {exc}"]
    apis: dict[str, list[str]] = {}
    for w in workers:
        name = f"{w.name} /api/v1/periods"
        if not w.alive():
            apis[name] = [f"{w.name} is not running (exit {w.proc.returncode})"]
            continue
        try:
            body = w.get_json("/api/v1/periods")
            apis[name] = diff_shapes(want, shape_of_report(body["periods"]), w.name)
        except (OSError, ValueError, KeyError, urllib.error.URLError) as exc:
            apis[name] = [f"{w.name} /api/v1/periods unreadable: {exc!r}"]
    topic_lines: list[str] | None = None
    if topics:
        got_t, problems_t = shape_of_topics(env)
        topic_lines = problems_t + diff_shapes(want, got_t, "topics")
    return Outcome(redis_lines, topic_lines, apis)


def converge(
    want: Shape,
    env: dict[str, str],
    r: redis.Redis,
    workers: Sequence[Worker],
    *,
    timeout: float = 120,
    context: str = "",
    fleet: Fleet | None = None,
    topics: bool = True,
    fail: bool = True,
) -> Outcome:
    """Poll until Redis, the score topics and every given worker's API equal `want`.

    On a deadline it fails with the differences of all three (or, with fail=False, returns them,
    so that a test can go on to its next fault and report everything at once). The topics are
    read only when the rest already agrees (reading them is the slow part), and at the deadline;
    topics=False leaves them out (a precondition that only needs the worker to have processed).
    """
    deadline = time.monotonic() + timeout
    while True:
        last = time.monotonic() >= deadline
        outcome = compare(want, env, r, workers, topics=False)
        if topics and (outcome.ok or last):
            outcome = compare(want, env, r, workers, topics=True)
        if outcome.ok:
            return outcome
        if last:
            if fail:
                pytest.fail(failure(outcome, timeout, context, fleet), pytrace=False)
            return outcome
        time.sleep(2)


def failure(outcome: Outcome, timeout: float, context: str, fleet: Fleet | None) -> str:
    """The failure message: what was done (seed included), every difference, the workers' logs."""
    logs = fleet.logs() if fleet else ""
    return (
        f"{context}\noutputs differ from `kpistream report` after {timeout:.0f}s:\n"
        f"{outcome.summary()}\n{logs}"
    )


def periods_summary(shape: Shape) -> str:
    """One line per report: its periods with their operators and offered calls (failure context)."""

    def offered(p: dict[str, Any]) -> Any:
        return p["center"]["counts"].get("offered") if p["center"] else 0

    return ", ".join(
        f"{pk} ({len(p['operators'])} operators, {offered(p)} offered)" for pk, p in sorted(shape.items())
    )


# ------------------------------------------------------------------------------------ dead letters


async def _dead_letters_of(env: dict[str, str], event_ids: set[str], timeout: float) -> dict[str, str]:
    bootstrap = bootstrap_of(env["KPISTREAM_BROKER"])
    consumer = AIOKafkaConsumer(
        env["KPISTREAM_TOPIC_PREFIX"] + "kpi.dead-letters",
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    found: dict[str, str] = {}
    try:
        deadline = time.monotonic() + timeout
        while set(found) != event_ids and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for rec in records:
                    letter = json.loads(rec.value)
                    try:
                        eid = json.loads(letter.get("raw", "")).get("event_id")
                    except (ValueError, AttributeError):
                        continue
                    if eid in event_ids:
                        found[eid] = letter.get("reason", "")
    finally:
        await consumer.stop()
    return found


def dead_letter_reasons(env: dict[str, str], event_ids: set[str], timeout: float = 30) -> dict[str, str]:
    """event_id -> reason of the dead letters of those events (those not found are absent)."""
    return asyncio.run(_dead_letters_of(env, event_ids, timeout))

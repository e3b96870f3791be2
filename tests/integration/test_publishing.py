"""Publishing for real: a `kpistream worker` on a real Kafka and Redis equals `kpistream report`.

One worker per module (topics under a unique prefix, its own Redis db). The tests run in order:
outputs equal the report; the compacted score topics rebuild the report's days and months; Redis
flushed and restarted empty is rewritten without a new event; /metrics names; a strategy switch at
run time; a Redis outage.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from support.workers import TestWorker
from tests_support import records_to_end

from stream.core.outputs import decimal_string
from stream.devenv.kafka import KafkaBroker
from stream.devenv.process import free_port
from stream.devenv.redis import RedisServer
from stream.simulator import SimConfig, generate
from stream.sinks.kafka_keys import ScoreKey
from stream.sinks.redis_keys import LeaderboardKey, OperatorKey, QueueKey, ScorecardKey, queue_or_center_key

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
KPISTREAM = str(Path(sys.executable).with_name("kpistream"))
REDIS_DB = 5
CONTRACT_METRICS = (
    "callcenter_service_level_ratio",
    "callcenter_lost_call_ratio",
    "callcenter_abandon_ratio",
    "callcenter_answer_ratio",
    "callcenter_first_contact_resolution_ratio",
    "callcenter_chat_fast_answer_ratio",
    "callcenter_email_on_time_ratio",
    "callcenter_operator_score",
    "callcenter_alert_active",
    "callcenter_calls_total",
    "callcenter_events_total",
    "callcenter_dead_letters_total",
)


class Worker(TestWorker):
    """The module's worker (tests/support/workers.py), with its Redis db, CLI and a status-code GET."""

    def __init__(self, env: dict[str, str], tmp: Path, redis_server: RedisServer) -> None:
        super().__init__(env, tmp / "worker.log")
        self.tmp = tmp
        self.redis_server = redis_server
        self.prefix = env["KPISTREAM_TOPIC_PREFIX"]
        self.log = self.log_path

    def redis(self) -> redis.Redis:
        return redis.Redis(
            host=self.redis_server.host, port=self.redis_server.port, db=REDIS_DB, decode_responses=True
        )

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            [KPISTREAM, *args], env=self.env, capture_output=True, text=True, timeout=120, check=False
        )
        assert out.returncode == 0, out.stderr[-3000:]
        return out.stdout

    def http(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"{self.base_url}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, ""
        except OSError:
            return 0, ""

    def report(self, events: list[Path], strategy: str = "strategy-1") -> dict[str, Any]:
        merged = self.tmp / f"merged-{len(events)}.jsonl"
        merged.write_text("".join(p.read_text() for p in events))
        return json.loads(self.cli("report", "--events", str(merged), "--strategy", strategy))


def write_sim(path: Path, cfg: SimConfig) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in generate(cfg)))
    return path


@pytest.fixture(scope="module")
def worker(
    kafka_broker: KafkaBroker, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    tmp = tmp_path_factory.mktemp("publishing")
    tag = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "KPISTREAM_BROKER": f"kafka://{kafka_broker.bootstrap}",
        "KPISTREAM_REDIS_URL": f"redis://{redis_server.host}:{redis_server.port}/{REDIS_DB}",
        "KPISTREAM_WEB_PORT": str(free_port()),
        "KPISTREAM_DATA_DIR": str(tmp / "data"),
        "KPISTREAM_REBALANCE_TIMEOUT_S": "2",
        "KPISTREAM_SESSION_TIMEOUT_S": "6",
        "KPISTREAM_TOPIC_PREFIX": f"t{tag}.",
        "KPISTREAM_APP_ID": f"kps-{tag}",
        "KPISTREAM_PARTITIONS": "2",
        "KPISTREAM_STRATEGIES": str(REPO / "deploy" / "strategies.toml"),
    }
    w = Worker(env, tmp, redis_server)
    w.redis().flushdb()
    try:
        w.start(timeout=120)
        yield w
    finally:
        w.stop()


# ------------------------------------------------------------------ comparisons
def redis_mismatches(r: redis.Redis, report: dict[str, Any]) -> list[str]:
    """Every difference between the day/month hashes in Redis and the report (empty = equal)."""
    bad: list[str] = []

    def check(key: str, want: dict[str, Any]) -> None:
        got = r.hgetall(key)
        for field, v in want.items():
            if got.get(field) != decimal_string(v):
                bad.append(f"{key} {field}: redis {got.get(field)!r} != report {decimal_string(v)!r}")
                return

    for pk, p in report["periods"].items():
        for op, row in p["operators"].items():
            want = {**row["kpis"], **row["counts"], "f": row["f"], "fund_share": row["fund_share"]}
            check(OperatorKey(op, pk).encode(), want)
        for q, row in p["queues"].items():
            check(QueueKey(q, pk).encode(), {**row["kpis"], **row["counts"]})
        check(queue_or_center_key(None, pk).encode(), {**p["center"]["kpis"], **p["center"]["counts"]})
        card = {f"{d}.{k}": v for d, figs in p["scorecard"].items() for k, v in figs.items()}
        check(ScorecardKey(pk).encode(), card)
        board = dict(r.zrange(LeaderboardKey(pk).encode(), 0, -1, withscores=True))
        if board != {op: row["f"] for op, row in p["operators"].items()}:
            bad.append(f"leaderboard {pk}: {board}")
        found = (OperatorKey.decode(k) for k in r.scan_iter(OperatorKey.SCAN))
        extra = {k.operator_id for k in found if k and k.period_key == pk} - set(p["operators"])
        if extra:
            bad.append(f"op hashes not in the report for {pk}: {sorted(extra)}")
    return bad


def wait_equal(w: Worker, report: dict[str, Any], timeout: float = 45) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            bad = redis_mismatches(w.redis(), report)
        except redis.ConnectionError as exc:
            bad = [str(exc)]
        if not bad:
            return
        if time.monotonic() > deadline:
            pytest.fail(
                "Redis differs from the report:\n" + "\n".join(bad[:20]) + "\n" + w.log.read_text()[-2000:]
            )
        time.sleep(0.5)


async def compacted_view(bootstrap: str, topic: str) -> dict[ScoreKey, dict[str, Any]]:
    """What a consumer reading the topic from the beginning keeps: the last value of every key.

    That is also all that compaction guarantees to keep, so this is the topic's compacted state.
    Every key must be the record's own `{entity}|{period_key}` (CONTRACT.md section 5).
    """
    out: dict[ScoreKey, dict[str, Any]] = {}
    for m in await records_to_end(bootstrap, [topic], timeout=30):
        key = ScoreKey.decode(m.key)
        v = json.loads(m.value)
        entity = v["operator_id"] if "operator_id" in v else v["queue"]
        assert key == ScoreKey(entity, v["period_key"]), (m.key, v)
        out[key] = v
    return out


def topic_mismatches(w: Worker, report: dict[str, Any], *, exact_keys: bool = False) -> list[str]:
    """Differences between the compacted score topics and the report's periods (empty = equal).

    With `exact_keys`, the topics' day and month keys must also be exactly the report's.
    """
    bootstrap = w.env["KPISTREAM_BROKER"].split("://")[1]
    ops = asyncio.run(compacted_view(bootstrap, f"{w.prefix}kpi.operator-scores"))
    queues = asyncio.run(compacted_view(bootstrap, f"{w.prefix}kpi.queue-kpis"))
    bad = []
    for pk, p in report["periods"].items():
        for op, row in p["operators"].items():
            got = ops.get(ScoreKey(op, pk))
            sub = got and {"kpis": {k: got["kpis"][k] for k in row["kpis"]}, **{k: got[k] for k in row}}
            if sub != row:
                bad.append(f"operator {op} {pk}: {got} != {row}")
        for q, row in [*p["queues"].items(), ("_center", p["center"])]:
            got = queues.get(ScoreKey(q, pk))
            if not got or got["kpis"] != row["kpis"] or got["counts"] != row["counts"]:
                bad.append(f"queue {q} {pk}: {got} != {row}")
    if exact_keys:
        want_ops = {ScoreKey(op, pk) for pk, p in report["periods"].items() for op in p["operators"]}
        want_queues = {
            ScoreKey(q, pk) for pk, p in report["periods"].items() for q in [*p["queues"], "_center"]
        }
        got_ops = {k for k in ops if k.period_key != "rolling"}
        got_queues = {k for k in queues if k.period_key != "rolling"}
        bad += [f"operator key not in the report: {k}" for k in sorted(got_ops - want_ops)]
        bad += [f"operator key missing: {k}" for k in sorted(want_ops - got_ops)]
        bad += [f"queue key not in the report: {k}" for k in sorted(got_queues - want_queues)]
        bad += [f"queue key missing: {k}" for k in sorted(want_queues - got_queues)]
    return bad


def wait_topics_equal(
    w: Worker, report: dict[str, Any], timeout: float = 30, *, exact_keys: bool = False
) -> None:
    deadline = time.monotonic() + timeout
    while bad := topic_mismatches(w, report, exact_keys=exact_keys):
        if time.monotonic() > deadline:
            pytest.fail("topics differ from the report:\n" + "\n".join(bad[:10]))
        time.sleep(1)


# ------------------------------------------------------------------ tests
@pytest.fixture(scope="module")
def first_file(worker: Worker) -> Path:
    path = write_sim(worker.tmp / "hour1.jsonl", SimConfig(hours=1))
    worker.cli("produce", "--events", str(path), "--quiet")
    return path


def test_redis_and_topics_equal_report(worker: Worker, first_file: Path) -> None:
    report = worker.report([first_file])
    assert {"day:2026-01-15", "month:2026-01"} <= set(report["periods"])
    wait_equal(worker, report)
    wait_topics_equal(worker, report)
    r = worker.redis()
    assert r.zcard("kpi:leaderboard:rolling") > 0
    assert r.ttl("kpi:op:op-001:day:2026-01-15") > 40 * 86400 and r.ttl("kpi:center:rolling") == -1


def test_compacted_score_topics_rebuild_the_reports_days_and_months(worker: Worker, first_file: Path) -> None:
    """A consumer reading `kpi.operator-scores` and `kpi.queue-kpis` from the beginning, keeping the
    last record of each key (all that compaction keeps), has every day and month result of `report`
    (kpis, counts, F, fund share) and no other."""
    report = worker.report([first_file])
    assert {"day:2026-01-15", "month:2026-01"} <= set(report["periods"])
    wait_topics_equal(worker, report, exact_keys=True)


def test_redis_flushed_is_rewritten_without_a_new_event(worker: Worker, first_file: Path) -> None:
    report = worker.report([first_file])
    wait_equal(worker, report)
    worker.redis().flushdb()
    assert redis_mismatches(worker.redis(), report)
    wait_equal(worker, report, timeout=30)


def test_redis_restarted_empty_is_rewritten_without_a_new_event(worker: Worker, first_file: Path) -> None:
    report = worker.report([first_file])
    wait_equal(worker, report)
    server = worker.redis_server
    server.stop()
    for path in server.data_dir.iterdir():  # what persistence would bring back: gone
        if path.name != f"{server.name}.log":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    # Empty because no data file is left (the worker may rewrite Redis before a dbsize() could ask).
    assert [p.name for p in server.data_dir.iterdir()] in ([], [f"{server.name}.log"])
    server.start(timeout=30)
    wait_equal(worker, report, timeout=45)


def test_metrics_expose_every_contract_name(worker: Worker, first_file: Path) -> None:
    status, body = worker.http("/metrics")
    assert status == 200
    names = {line.split()[2] for line in body.splitlines() if line.startswith("# TYPE")}
    names |= {f"{n}_total" for n in names}
    missing = [m for m in CONTRACT_METRICS if m not in names]
    assert not missing, missing
    assert 'callcenter_operator_score{operator="op-001",period="day",strategy="strategy-1"}' in body
    assert 'callcenter_service_level_ratio{period="rolling",queue="_center",scope="center"}' in body


def test_strategy_switch_at_run_time(worker: Worker, first_file: Path) -> None:
    report2 = worker.report([first_file], "strategy-2")
    f1 = float(worker.redis().hget("kpi:op:op-001:day:2026-01-15", "f") or "nan")
    assert f1 != report2["periods"]["day:2026-01-15"]["operators"]["op-001"]["f"]
    out = worker.cli("strategy", "set", "strategy-2")
    assert "strategy-2" in out
    wait_equal(worker, report2, timeout=20)
    assert worker.redis().hget("kpi:op:op-001:day:2026-01-15", "strategy") == "strategy-2"
    wait_topics_equal(worker, report2)
    # The API scores with the default in force too (it once kept the file's default).
    status, body = worker.http("/api/v1/periods")
    api = json.loads(body)
    assert status == 200 and api["strategy"]["name"] == "strategy-2"
    assert {op: row["f"] for op, row in api["periods"]["day:2026-01-15"]["operators"].items()} == {
        op: row["f"] for op, row in report2["periods"]["day:2026-01-15"]["operators"].items()
    }
    listed = worker.cli("strategy", "list")
    assert "* strategy-2" in listed
    worker.cli("strategy", "set", "strategy-1")
    wait_equal(worker, worker.report([first_file]), timeout=20)


def test_redis_outage_ends_with_exact_values(worker: Worker, first_file: Path) -> None:
    second = write_sim(
        worker.tmp / "hour2.jsonl", SimConfig(seed=8, hours=1, start="2026-01-15T10:00:00+00:00")
    )
    before = worker.redis().hget("kpi:center:day:2026-01-15", "offered")
    worker.redis_server.stop()
    try:
        worker.cli("produce", "--events", str(second), "--quiet")
        deadline = time.monotonic() + 30
        while 'kpistream_sink_errors_total{sink="redis"}' not in worker.http("/metrics")[1]:
            assert time.monotonic() < deadline, "no redis sink error counted"
            time.sleep(0.5)
        assert worker.http("/readyz")[0] == 200 and worker.proc is not None and worker.proc.poll() is None
    finally:
        worker.redis_server.start(timeout=30)
    report = worker.report([first_file, second])
    wait_equal(worker, report, timeout=60)
    assert worker.redis().hget("kpi:center:day:2026-01-15", "offered") != before
    wait_topics_equal(worker, report)

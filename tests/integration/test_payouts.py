"""Month close on a real worker: written once to kpi.payouts, equal to `report --fund`, corrections after.

One worker on Apache Kafka: a month of events is closed through `kpistream payouts close` (the
current month is refused: its grace has not passed), closing again writes nothing, and events of
the closed month produced after the close become correction records, never a silent change: the
payouts plus the corrections' changes are what `report --fund` gives over every event.
"""

from __future__ import annotations

import asyncio
import csv
import json
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests_support import kpistream

from stream.config import load_settings
from stream.core.payouts import read_ledger
from stream.payouts_topic import read_payouts
from stream.simulator import SimConfig, generate, iter_jsonl

REPO = Path(__file__).resolve().parents[2]
FUND = "10000.00"
MONTH = "2026-01"


def write(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("\n".join(iter_jsonl(events)) + "\n", encoding="utf-8")
    return path


def late_events() -> list[dict[str, Any]]:
    """Calls of the closed month sent after the close: op-001 answers two, op-new (new to it) one."""
    out: list[dict[str, Any]] = []
    for i, op in enumerate(("op-001", "op-001", "op-new")):
        cid = f"late-{i}"
        t = 1_769_770_800 + 60 * i  # 2026-01-30T11:00:00Z
        out += [
            {"event_id": f"{cid}-o", "type": "call.offered", "ts": t, "call_id": cid, "queue": "sales"},
            {"event_id": f"{cid}-r", "type": "call.ringing", "ts": t + 2, "call_id": cid, "operator_id": op},
            {"event_id": f"{cid}-a", "type": "call.answered", "ts": t + 5, "call_id": cid, "operator_id": op},
            {"event_id": f"{cid}-e", "type": "call.ended", "ts": t + 90, "call_id": cid, "operator_id": op},
        ]
    return out


def report_month(env: dict[str, str], *files: Path, strategy: str | None = None) -> dict[str, Any]:
    """`report --fund` over the files (one after another) for the month (with `strategy`, if given)."""
    text = "".join(f.read_text(encoding="utf-8") for f in files)
    both = files[0].with_suffix(".all.jsonl")
    both.write_text(text, encoding="utf-8")
    chosen = ["--strategy", strategy] if strategy else []
    r = kpistream("report", "--events", str(both), "--fund", FUND, *chosen, env=env)
    assert r.returncode == 0, r.stderr
    month: dict[str, Any] = json.loads(r.stdout)["periods"][f"month:{MONTH}"]
    return month


def http(worker: Any, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        f"{worker.base_url}{path}", data=data, method="GET" if body is None else "POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_for_month(worker: Any, expected: dict[str, Any], timeout: float = 60) -> None:
    """Until the worker's month equals `expected` (the report's)."""
    deadline = time.monotonic() + timeout
    got: Any = None
    while time.monotonic() < deadline:
        status, body = http(worker, "/api/v1/periods")
        if status == 200:
            got = body["periods"].get(f"month:{MONTH}")
            if got == expected:
                return
        time.sleep(0.5)
    assert got == expected


def topic_records(env: dict[str, str]) -> list[tuple[str, dict[str, Any] | None]]:
    return asyncio.run(read_payouts(load_settings(env=env)))


def assert_latest_equal_report(ledger: Any, month: dict[str, Any]) -> None:
    """Each operator's latest figures are the report's; payouts plus changes add up to them."""
    ops = month["operators"]
    assert sorted(ledger.latest) == sorted(ops)
    for op, row in ops.items():
        latest = ledger.latest[op]
        assert latest["amount"] == row["bonus"] and latest["counts"] == row["counts"], op
        assert float(latest["f"]) == pytest.approx(row["f"], abs=1e-9)
        assert float(latest["fund_share"]) == pytest.approx(row["fund_share"], abs=1e-9)
        paid = Decimal(ledger.payouts[op]["amount"]) if op in ledger.payouts else Decimal(0)
        changes = sum(
            (
                Decimal(v["change"])
                for v in ledger.records.values()
                if v["kind"] == "correction" and v["operator_id"] == op
            ),
            Decimal(0),
        )
        assert paid + changes == Decimal(row["bonus"]), op


def test_a_month_closes_once_equal_to_report_and_late_events_become_corrections(
    kafka_broker: Any, worker_env: Any, start_worker: Any, tmp_path: Path
) -> None:
    env = worker_env(kafka_broker.url, KPISTREAM_FUND_AMOUNT=FUND, KPISTREAM_PAYOUTS_CHECK_INTERVAL_S="1")
    base = write(
        tmp_path / "month.jsonl",
        generate(
            SimConfig(seed=4, start="2026-01-30T09:00:00+00:00", hours=1.5, operators=12, calls_per_hour=120)
        ),
    )
    worker = start_worker(env)
    r = kpistream("produce", "--events", str(base), "--quiet", env=env)
    assert r.returncode == 0, r.stderr
    expected = report_month(env, base)
    wait_for_month(worker, expected)

    # The current month: its grace has not passed, refused with the date it can be closed from.
    now = datetime.now(UTC).strftime("%Y-%m")
    r = kpistream("payouts", "close", now, "--url", worker.base_url, env=env)
    assert r.returncode == 2 and "too_early" in r.stderr and "can be closed from" in r.stderr, r.stderr

    # The close: one payout per operator, equal to report --fund, then the close record; and the CSV.
    out = tmp_path / "payouts.csv"
    r = kpistream(
        "payouts", "close", MONTH, "--url", worker.base_url, "--csv", str(out), "--format", "json", env=env
    )
    assert r.returncode == 0, r.stderr
    body = json.loads(r.stdout)
    assert body["status"] == "closed"
    closed = topic_records(env)
    assert len(closed) == len(expected["operators"]) + 1 and closed[-1][0] == f"{MONTH}|_close"
    ledger = read_ledger(closed)[MONTH]
    assert ledger.close is not None and ledger.close["paid"] == FUND
    assert_latest_equal_report(ledger, expected)
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert {r["operator_id"]: r["amount"] for r in rows} == {
        op: v["bonus"] for op, v in expected["operators"].items()
    }

    # Closing again writes nothing: the same close comes back.
    status, again = http(worker, "/api/v1/payouts/close", {"month": MONTH})
    assert status == 200 and again["status"] == "already_closed" and again["corrections"] == []
    assert topic_records(env) == closed

    # Events of the closed month after the close: the stream counts them, as report does, and the
    # ledger gets corrections (the periodic check, every second here) instead of a silent change.
    late = write(tmp_path / "late.jsonl", late_events())
    r = kpistream("produce", "--events", str(late), "--quiet", env=env)
    assert r.returncode == 0, r.stderr
    now_expected = report_month(env, base, late)
    assert now_expected != expected and "op-new" in now_expected["operators"]
    wait_for_month(worker, now_expected)
    # Wait for everything asserted below, on one reading of the topic: a check may have run on a
    # part of the late events, and a check's records are written one by one.
    deadline = time.monotonic() + 60
    while True:
        ledger = read_ledger(topic_records(env))[MONTH]
        try:
            assert ledger.corrections >= 2  # op-001 and op-new at least (shares move the others too)
            assert_latest_equal_report(ledger, now_expected)
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(1)
    assert ledger.close == read_ledger(closed)[MONTH].close  # the close itself never changes
    assert all(ledger.records[k] == v for k, v in closed)  # nor any payout

    # Closing again now: nothing new to write; the ledger shown is the topic's.
    status, again = http(worker, "/api/v1/payouts/close", {"month": MONTH})
    assert status == 200 and again["corrections"] == []
    assert len(topic_records(env)) == len(ledger.records)
    status, shown = http(worker, f"/api/v1/payouts/{MONTH}")
    assert status == 200 and shown["status"] == "closed" and len(shown["records"]) == len(ledger.records)


def test_a_close_after_a_strategy_switch_pays_what_the_wallboard_shows(
    kafka_broker: Any, worker_env: Any, start_worker: Any, tmp_path: Path
) -> None:
    """`kpistream strategy set` switched the default at run time: the close pays the amounts scored
    with it, equal to `report --fund --strategy` and to the bonus the worker publishes (the close once
    paid with the strategies file's default instead)."""
    env = worker_env(
        kafka_broker.url,
        KPISTREAM_FUND_AMOUNT=FUND,
        KPISTREAM_STRATEGIES=str(REPO / "deploy" / "strategies.toml"),
    )
    base = write(
        tmp_path / "month.jsonl",
        generate(
            SimConfig(seed=9, start="2026-01-30T09:00:00+00:00", hours=1, operators=8, calls_per_hour=120)
        ),
    )
    worker = start_worker(env)
    assert kpistream("produce", "--events", str(base), "--quiet", env=env).returncode == 0
    r = kpistream("strategy", "set", "strategy-2", env=env)
    assert r.returncode == 0, r.stderr
    switched = report_month(env, base, strategy="strategy-2")
    assert switched != report_month(env, base), "the two strategies must pay differently here"
    wait_for_month(worker, switched)  # the worker publishes strategy-2's bonus

    status, body = http(worker, "/api/v1/payouts/close", {"month": MONTH})
    assert status == 201, body
    ledger = read_ledger(topic_records(env))[MONTH]
    assert ledger.close is not None and ledger.close["strategy"]["name"] == "strategy-2"
    assert_latest_equal_report(ledger, switched)

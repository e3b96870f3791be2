"""The simulator's output moves the KPIs like a real centre: checked through the same Engine as the stream."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from schemas.fields import TYPE_FIELDS
from schemas.parse import parse_event
from stream.cli import main
from stream.core.alerts import FIRING, AlertState, evaluate, rule_for
from stream.core.config import KpiConfig
from stream.core.contributions import CENTER
from stream.core.engine import Engine
from stream.core.keys import AggKey
from stream.core.kpis import queue_kpis
from stream.core.periods import ROLLING
from stream.simulator import SimConfig, call_rate_factor, generate, iter_jsonl

DAY = "2026-01-15"
NORMAL = SimConfig(seed=1, start=f"{DAY}T00:00:00+00:00", hours=24)  # 45 operators, 300 calls/h at peak
UNDERSTAFFED = SimConfig(seed=1, start=f"{DAY}T00:00:00+00:00", hours=24, operators=25)


def run_engine(events: list[dict[str, Any]], alerts: bool = False) -> tuple[Engine, set[str]]:
    """Every event through Engine; with `alerts`, the centre's rolling alerts evaluated every 5 minutes."""
    cfg = KpiConfig()
    eng = Engine(cfg, rolling=alerts)
    states = {kpi: AlertState() for kpi in ("lcr", "car")}
    fired: set[str] = set()
    next_check = 0
    for i, e in enumerate(events):
        ev = parse_event(json.dumps(e))
        eng.process(ev, "file:0", i)
        if alerts and ev.ts >= next_check:
            next_check = ev.ts + 300_000
            key = next(
                (k for k in eng.aggs if AggKey.decode(k)[0] == CENTER and AggKey.decode(k)[2] == ROLLING),
                None,
            )
            if key is None:
                continue
            counts = eng.store.slid(key, eng.aggs[key]).counts
            for kpi, st in states.items():
                states[kpi], t = evaluate(st, rule_for(kpi, None, cfg), "center", "_center", counts, ev.ts)
                if t is not None and t.status == FIRING:
                    fired.add(kpi)
    return eng, fired


def day_kpis(eng: Engine) -> tuple[dict[str, Any], dict[str, int]]:
    center = eng.periods()[f"day:{DAY}"].center
    return {k: None if v is None else float(v) for k, v in queue_kpis(center).items()}, dict(center)


@pytest.fixture(scope="module")
def normal() -> list[dict[str, Any]]:
    return generate(NORMAL)


@pytest.fixture(scope="module")
def understaffed() -> list[dict[str, Any]]:
    return generate(UNDERSTAFFED)


def test_normal_staffing_meets_the_service_level_with_few_abandons(normal: list[dict[str, Any]]) -> None:
    eng, _ = run_engine(normal)
    k, c = day_kpis(eng)
    assert 2000 < c["offered"] < 4000  # a few hundred calls an hour at the peaks
    assert k["sl"] >= 0.7 and k["car"] < 0.05 and k["lcr"] < 0.06
    assert 0.5 < k["fcr"] < 0.85 and 0.6 < k["fac"] < 0.95 and 0.3 < k["rt"] < 0.8
    assert not eng.orphan_calls()


def test_understaffing_raises_abandons_and_losses_until_the_alerts_fire(
    understaffed: list[dict[str, Any]],
) -> None:
    eng, fired = run_engine(understaffed, alerts=True)
    k, _ = day_kpis(eng)
    assert k["car"] > 0.05 and k["lcr"] > 0.10 and k["sl"] < 0.6
    assert fired == {"lcr", "car"}


def test_the_system_loses_calls_on_queue_timeout_and_overflow() -> None:
    """Callers usually give up before the 10-minute timeout; a short timeout and a short queue show both."""
    cfg = SimConfig(
        seed=1, start=f"{DAY}T09:00:00+00:00", hours=4, operators=15, max_waiting=5, queue_timeout_s=120
    )
    events = generate(cfg)
    reasons = Counter(e["reason"] for e in events if e["type"] == "call.lost")
    assert reasons["timeout"] > 20 and reasons["overflow"] > 20
    eng, _ = run_engine(events)
    k, _ = day_kpis(eng)
    assert k["lcr"] - k["car"] > 0.05  # LCR counts the system's losses, CAR only the callers' hang-ups


def test_same_seed_same_events_other_seed_other_events() -> None:
    cfg = SimConfig(seed=5, hours=3)
    assert generate(cfg) == generate(SimConfig(seed=5, hours=3))
    assert generate(cfg) != generate(SimConfig(seed=6, hours=3))


def test_every_event_is_valid_unique_and_in_time_order(normal: list[dict[str, Any]]) -> None:
    times = [parse_event(line).ts for line in iter_jsonl(normal)]
    assert times == sorted(times)
    assert len({e["event_id"] for e in normal}) == len(normal)


def test_every_contract_type_occurs_in_a_day(normal: list[dict[str, Any]]) -> None:
    assert set(Counter(e["type"] for e in normal)) == set(TYPE_FIELDS)


def test_calls_follow_the_queueing_model(normal: list[dict[str, Any]]) -> None:
    """Abandons only before an answer, one outcome per call, rings only at free operators with the skill."""
    by_call: dict[str, list[dict[str, Any]]] = defaultdict(list)
    state: dict[str, str] = {}
    skills: dict[str, list[str]] = {}
    queue_of: dict[str, str] = {}
    for e in normal:
        if e["type"] == "agent.state":
            state[e["operator_id"]] = e["state"]
            skills[e["operator_id"]] = e["queues"]
        elif e["type"].startswith("call."):
            by_call[e["call_id"]].append(e)
            if e["type"] == "call.offered":
                queue_of[e["call_id"]] = e["queue"]
            elif e["type"] == "call.ringing":
                assert state[e["operator_id"]] == "available"
                assert queue_of[e["call_id"]] in skills[e["operator_id"]]
            elif e["type"] == "call.answered":
                assert state[e["operator_id"]] == "available"
    for events in by_call.values():
        types = [e["type"] for e in events]
        assert types[0] == "call.offered"
        outcomes = [t for t in types if t in ("call.answered", "call.abandoned", "call.lost")]
        assert len(outcomes) <= 1
        if "call.abandoned" in types:
            ab = next(e for e in events if e["type"] == "call.abandoned")
            assert types[-1] == "call.abandoned"
            if "operator_id" in ab:  # it was ringing at that operator, who had not missed it
                last_ring = [e for e in events if e["type"] == "call.ringing"][-1]
                assert types[-2] == "call.ringing" and last_ring["operator_id"] == ab["operator_id"]
        if "call.missed" in types:
            i = types.index("call.missed")
            assert types[i - 1] == "call.ringing"
        if "call.ended" in types:
            assert types[-2:] == ["call.answered", "call.ended"]


def test_operators_work_shifts_with_breaks_and_wrap_up(normal: list[dict[str, Any]]) -> None:
    seen: dict[str, list[str]] = defaultdict(list)
    for e in normal:
        if e["type"] == "agent.state":
            seen[e["operator_id"]].append(e["state"])
    assert 40 <= len(seen) <= 46
    for states in seen.values():
        assert states[0] == "available" and states[-1] == "logged_out"
        assert "paused" in states and "busy" in states and "wrap_up" in states
        assert all(a != b for a, b in itertools.pairwise(states))


def test_arrivals_peak_in_the_morning_and_the_afternoon(normal: list[dict[str, Any]]) -> None:
    per_hour = Counter(int(e["ts"][11:13]) for e in normal if e["type"] == "call.offered")
    assert sum(per_hour[h] for h in range(8)) == 0 and per_hour[20] + per_hour[23] == 0
    assert per_hour[10] > per_hour[12] < per_hour[15] and per_hour[10] > 2 * per_hour[19]
    assert call_rate_factor(10) == 1.0 and call_rate_factor(7.99) == 0.0


def test_repeat_contacts_retract_first_contact_resolution() -> None:
    events = generate(SimConfig(seed=2, start=f"{DAY}T00:00:00+00:00", hours=72))
    customers = Counter(e["customer_id"] for e in events if e["type"] == "contact.disposition")
    assert sum(1 for n in customers.values() if n > 1) > 100
    days = {e["ts"][:10] for e in events if e["type"] == "business.orders"}
    assert days == {"2026-01-15", "2026-01-16", "2026-01-17"}


def test_old_configurations_still_work() -> None:
    """What the other tests and the benchmark pass: defaults, duplicates, a flat profile."""
    events = generate(SimConfig(hours=1))
    assert any(e.get("operator_id") == "op-001" for e in events)
    with_dups = generate(SimConfig(hours=1, duplicate_prob=0.05))
    assert len(with_dups) > len(events) and {e["event_id"] for e in with_dups} == {
        e["event_id"] for e in events
    }
    flat = generate(SimConfig(start=f"{DAY}T00:00:00+00:00", hours=1, profile="flat"))
    assert sum(1 for e in flat if e["type"] == "call.offered") > 200


def test_a_large_day_has_over_100k_events() -> None:
    # Its speed is the bench's business (never a timed test: it failed on a loaded machine).
    cfg = SimConfig(
        seed=3,
        start=f"{DAY}T00:00:00+00:00",
        hours=24,
        operators=140,
        calls_per_hour=1000,
        chats_per_hour=200,
    )
    events = generate(cfg)
    assert len(events) > 100_000


def test_simulate_command_writes_the_same_events(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sim.jsonl"
    rc = main(
        [
            "simulate",
            "--seed",
            "4",
            "--start",
            f"{DAY}T08:00",
            "--hours",
            "1",
            "--tz",
            "UTC",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    expected = generate(SimConfig(seed=4, start=f"{DAY}T08:00:00+00:00", hours=1, tz="UTC"))
    assert out.read_text().splitlines() == list(iter_jsonl(expected))
    assert "events" in capsys.readouterr().err


# The exact output of two configurations, as SHA-256 of their JSON lines. A refactoring of the
# simulator must leave these unchanged; a deliberate change of the model updates them (and says so
# in the CHANGELOG), since demos, benchmarks and docs/simulator.md figures depend on the stream.
PINNED_OUTPUT = [
    (SimConfig(), 5048, "cca3a416a342e500c5d5e89cc435ca284881a613ce30b44cd358a8e11788c89c"),
    (
        SimConfig(seed=3, hours=30, start="2026-03-28T20:00:00", tz="Europe/Berlin"),
        34096,
        "39d7d5fa4fff4874e791158abd76dd28f81188bf1959520920c1268355e1a83a",
    ),
]


@pytest.mark.parametrize(("cfg", "count", "digest"), PINNED_OUTPUT)
def test_output_is_byte_identical_for_a_seed(cfg: SimConfig, count: int, digest: str) -> None:
    lines = list(iter_jsonl(generate(cfg)))
    assert len(lines) == count
    assert hashlib.sha256("".join(line + "\n" for line in lines).encode()).hexdigest() == digest

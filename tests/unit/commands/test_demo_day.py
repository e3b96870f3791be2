"""The demo's simulated day shows what the floor would see (issue #14 item 6), deterministically.

The day `kpistream demo` plays (its flags' defaults, a fixed date and seed) is run through the
core as `report` and the worker's alert logic run it: the understaffed hour fires the centre's LCR
and CAR alerts, which resolve again; the same day without it fires none by then; the ERP's hourly
postings make the balanced scorecard's finance figure, not empty from the first posting on.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.parse import parse_event
from stream.cli import build_parser
from stream.commands.demo import demo_config
from stream.core.alerts import FIRING, RESOLVED, AlertState, evaluate, rule_for
from stream.core.config import HOUR_MS, KpiConfig
from stream.core.contributions import CENTER
from stream.core.engine import Engine
from stream.core.keys import agg_key
from stream.core.periods import ROLLING
from stream.core.scoring import DEFAULT
from stream.simulator import SimConfig, generate, parse_start

START = "2026-03-02T08:00:00+00:00"
HOURS = "6"  # 08:00-14:00: the understaffed hour at 10:00 and the hour after it, in seconds of CPU
CFG = KpiConfig()


def demo_day(*flags: str) -> SimConfig:
    args = build_parser().parse_args(["demo", "--hours", HOURS, *flags])
    return demo_config(args, START, "UTC")


def centre_alerts(events: list[dict[str, Any]]) -> tuple[Engine, list[tuple[int, str, str]]]:
    """Every event through the engine; the centre's alerts evaluated each minute of event time."""
    engine = Engine(CFG, rolling=True)
    states = {kpi: AlertState() for kpi in ("lcr", "car")}
    key = agg_key(CENTER, "", ROLLING)
    out: list[tuple[int, str, str]] = []
    next_check = 0
    for i, e in enumerate(events):
        ev = parse_event(json.dumps(e))
        engine.process(ev, "file:0", i)
        if ev.ts < next_check or key not in engine.aggs:
            continue
        next_check = ev.ts + 60_000
        counts = engine.store.slid(key, engine.aggs[key]).counts
        for kpi, st in states.items():
            states[kpi], t = evaluate(st, rule_for(kpi, None, CFG), "center", "_center", counts, ev.ts)
            if t is not None:
                out.append((t.ts, kpi, t.status))
    assert next_check > 0, "the centre's rolling hour was never evaluated"
    return engine, out


@pytest.fixture(scope="module")
def day() -> tuple[SimConfig, list[dict[str, Any]]]:
    cfg = demo_day()
    return cfg, generate(cfg)


def test_the_understaffed_hour_fires_lcr_and_car_alerts_that_resolve_again(
    day: tuple[SimConfig, list[dict[str, Any]]],
) -> None:
    cfg, events = day
    assert cfg.understaffed_at == 10.0 and cfg.business_every_h == 1.0
    t0, _ = parse_start(START)
    at = t0 + 2 * HOUR_MS  # 10:00
    _, alerts = centre_alerts(events)
    for kpi in ("lcr", "car"):
        fired = [ts for ts, k, s in alerts if k == kpi and s == FIRING]
        resolved = [ts for ts, k, s in alerts if k == kpi and s == RESOLVED]
        assert fired and at <= fired[0] <= at + HOUR_MS, (kpi, alerts)  # within the understaffed hour
        assert resolved and fired[0] < resolved[0] <= at + 3 * HOUR_MS, (kpi, alerts)  # back to normal
    # Operators were called away (paused as they came free) from 10:00, and came back at 11:00.
    states = [e for e in events if e["type"] == "agent.state"]
    away = {
        e["operator_id"] for e in states if e["state"] == "paused" and "T10:00" <= e["ts"][10:16] < "T10:15"
    }
    back = [e for e in states if e["state"] == "available" and e["ts"].startswith("2026-03-02T11:00:00.000")]
    assert len(away) >= 15 and len(back) >= 5


def test_the_same_day_without_the_understaffed_hour_fires_no_alert() -> None:
    events = generate(demo_day("--understaffed-at", "-1"))
    _, alerts = centre_alerts(events)
    assert alerts == []


def test_the_erp_posts_every_hour_so_the_scorecard_has_a_finance_figure(
    day: tuple[SimConfig, list[dict[str, Any]]],
) -> None:
    _, events = day
    posted = sorted({e["ts"][11:16] for e in events if e["type"] in ("business.orders", "business.cost")})
    assert posted[:5] == ["09:00", "10:00", "11:00", "12:00", "13:00"]
    first_hour = [e for e in events if e["ts"] < "2026-03-02T09:00:00.001Z"]
    engine, _ = centre_alerts(first_hour)
    finance = engine.report(DEFAULT)["periods"]["day:2026-03-02"]["scorecard"]["finance"]
    assert finance["orders"] > 0 and finance["cost_per_order"] is not None
    assert finance["cost_per_order_value"] is not None

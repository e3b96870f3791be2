"""Alerts over the rolling hour, and the live queue state, in the pure core."""

from __future__ import annotations

from typing import Any

from stream.core.alerts import FIRING, OK, AlertState, evaluate, rule_for
from stream.core.config import KpiConfig
from stream.core.engine import Engine
from stream.core.events import Event
from stream.core.live import live_state

T0 = 1_768_467_600_000  # 2026-01-15T09:00:00Z


def counts(offered: int, abandoned: int = 0, lost: int = 0) -> dict[str, int]:
    return {"offered": offered, "answered": offered - abandoned - lost, "abandoned": abandoned, "lost": lost}


def run(seq: list[dict[str, int]], cfg: KpiConfig | None = None, kpi: str = "car") -> list[tuple[str, Any]]:
    cfg = cfg or KpiConfig()
    state = AlertState()
    out = []
    for i, c in enumerate(seq):
        state, t = evaluate(state, rule_for(kpi, "q", cfg), "queue", "q", c, T0 + i * 1000)
        if t is not None:
            out.append((t.status, t.value))
    return out


def test_fires_once_above_threshold_with_volume_and_resolves_once_at_threshold() -> None:
    seq = [counts(20, 1), counts(20, 2), counts(21, 3), counts(22, 3), counts(40, 2), counts(41, 2)]
    # 1/20 = 5 % is not above 5 %; 2/20 fires; still above: nothing; 2/40 = 5 % resolves; stays resolved.
    assert run(seq) == [("firing", 0.1), ("resolved", 0.05)]


def test_below_minimum_volume_nothing_fires() -> None:
    assert run([counts(19, 10), counts(19, 19)]) == []


def test_lcr_counts_abandoned_and_lost() -> None:
    assert run([counts(20, 1, 1), counts(20, 1, 2)], kpi="lcr") == [("firing", 0.15)]


def test_hysteresis_margin_and_minimum_duration() -> None:
    cfg = KpiConfig(alert_margin=0.01, alert_min_duration_ms=2000)
    # above at t=0 (pending), t=1 s (pending), t=2 s fires; 0.05 is not <= 0.04; 0.04 resolves.
    seq = [counts(20, 2), counts(20, 2), counts(20, 2), counts(20, 1), counts(25, 1)]
    assert run(seq, cfg) == [("firing", 0.1), ("resolved", 0.04)]
    # a dip below the threshold before the duration has passed cancels the pending alert
    assert run([counts(20, 2), counts(20, 0), counts(20, 2), counts(20, 2)], cfg) == []


def test_per_queue_threshold_overrides_default() -> None:
    cfg = KpiConfig(queue_thresholds={"q": {"car": 0.2}})
    assert rule_for("car", "q", cfg).threshold * 100 == 20
    assert run([counts(20, 3)], cfg) == []


def test_firing_state_round_trips_and_carries_the_alert_id() -> None:
    state, t = evaluate(
        AlertState(), rule_for("car", None, KpiConfig()), "center", "_center", counts(20, 5), T0
    )
    assert state.status == FIRING and t is not None
    assert t.alert_id == f"car:center:_center:{T0}" == state.alert_id
    assert AlertState.from_bytes(state.to_bytes()) == state
    back, t2 = evaluate(
        state, rule_for("car", None, KpiConfig()), "center", "_center", counts(100, 5), T0 + 5
    )
    assert back.status == OK and t2 is not None and t2.alert_id == t.alert_id and t2.since == T0


def E(i: str, t: str, ms: int, **kw: Any) -> Event:
    return Event(event_id=i, type=t, ts=T0 + ms, **kw)


def live_of(events: list[Event], cfg: KpiConfig | None = None) -> dict[str, dict[str, Any]]:
    engine = Engine(cfg or KpiConfig(), rolling=True)
    engine.process_all(events)
    slid = {k: engine.store.slid(k, st) for k, st in engine.aggs.items()}
    return live_state(slid, engine.store.watermark, engine.cfg)


def test_calls_waiting_and_longest_wait() -> None:
    live = live_of(
        [
            E("1", "call.offered", 0, call_id="c1", queue="q"),
            E("2", "call.offered", 10_000, call_id="c2", queue="q"),
            E("3", "call.offered", 20_000, call_id="c3", queue="q"),
            E("4", "call.answered", 30_000, call_id="c1", operator_id="o"),
            E("5", "call.offered", 45_000, call_id="c4", queue="other"),
        ]
    )
    assert live["q"]["waiting"] == 2
    assert live["q"]["longest_wait_s"] == 35  # c2 waits since 10 s, now is 45 s
    assert live["other"]["waiting"] == 1 and live["other"]["longest_wait_s"] == 0


def test_agents_by_state_per_queue_latest_state_wins() -> None:
    live = live_of(
        [
            E("1", "agent.state", 0, operator_id="a", state="available", queues=("q", "r")),
            E("2", "agent.state", 0, operator_id="b", state="available", queues=("q",)),
            E("3", "agent.state", 5000, operator_id="a", state="busy", queues=("q", "r")),
            E("4", "agent.state", 9000, operator_id="b", state="paused", queues=("q",)),
            E("5", "agent.state", 1000, operator_id="b", state="wrap_up", queues=("q",)),  # late, older
            E("6", "agent.state", 9000, operator_id="c", state="logged_out", queues=("q",)),
        ]
    )
    assert live["q"]["agents_busy"] == 1 and live["q"]["agents_paused"] == 1
    assert live["q"]["agents_available"] == 0 and live["q"]["agents_wrap_up"] == 0
    assert live["r"]["agents_busy"] == 1


def test_chats_waiting_and_emails_overdue() -> None:
    live = live_of(
        [
            E("1", "chat.started", 0, chat_id="h", queue="q"),
            E("2", "chat.message", 1000, chat_id="h", message_id="m1", sender="customer"),
            E("3", "email.received", 0, email_id="m", queue="q"),
            E("4", "email.received", 100_000, email_id="n", queue="q"),
            E("5", "email.received", 0, email_id="p", queue="q"),
            E("6", "email.replied", 60_000, email_id="p", operator_id="o"),
            E("7", "call.offered", 200_000, call_id="c", queue="x"),
        ]
    )
    assert live["q"]["chats_waiting"] == 1
    assert live["q"]["emails_open"] == 2
    assert live["q"]["emails_overdue"] == 1  # m is 200 s old (> 180 s); n is 100 s old


def test_a_call_waiting_longer_than_the_live_limit_is_no_longer_shown() -> None:
    cfg = KpiConfig(live_max_wait_ms=60_000)
    live = live_of(
        [
            E("1", "call.offered", 0, call_id="c1", queue="q"),
            E("2", "call.offered", 61_000, call_id="c2", queue="q"),
        ],
        cfg,
    )
    assert live["q"]["waiting"] == 1 and live["q"]["longest_wait_s"] == 0


def test_alert_messages_validate_against_their_json_schema() -> None:
    import json
    from pathlib import Path

    import jsonschema

    from schemas.timestamps import format_ts

    schema = json.loads((Path(__file__).parents[3] / "schemas" / "json" / "alert.schema.json").read_text())
    cfg = KpiConfig()
    state, firing = evaluate(AlertState(), rule_for("car", "q", cfg), "queue", "q", counts(20, 5), T0)
    _, resolved = evaluate(state, rule_for("car", "q", cfg), "queue", "q", counts(200, 5), T0 + 60_000)
    assert firing is not None and resolved is not None
    for t in (firing, resolved):
        jsonschema.validate(t.to_json(format_ts), schema)

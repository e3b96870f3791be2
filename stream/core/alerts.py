"""LCR and CAR alerts over the rolling hour, per queue and for the centre (CONTRACT.md section 7).

An alert fires once when the value is above its threshold with at least `min_offered` calls in the
rolling hour (and, optionally, has stayed so for `min_duration_ms` of event time); it resolves once
the value is back at or below the threshold minus an optional hysteresis margin. Each transition is
one message. With the defaults (margin 0, duration 0) this is the contract's rule exactly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from stream.core.config import KpiConfig
from stream.core.kpis import queue_kpis
from stream.core.scoring import to_fraction

ALERT_KPIS: tuple[str, ...] = ("lcr", "car")
OK = "ok"
PENDING = "pending"
FIRING = "firing"
RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class AlertRule:
    kpi: str
    threshold: Fraction
    min_offered: int
    margin: Fraction = Fraction(0)
    min_duration_ms: int = 0


def rule_for(kpi: str, queue: str | None, cfg: KpiConfig) -> AlertRule:
    """The rule of a KPI for a queue: per-queue thresholds override the defaults."""
    default = cfg.lcr_threshold if kpi == "lcr" else cfg.car_threshold
    override = cfg.queue_thresholds.get(queue or "", {}) if queue else {}
    return AlertRule(
        kpi=kpi,
        threshold=to_fraction(str(override.get(kpi, default))),
        min_offered=int(override.get("min_offered", cfg.alert_min_offered)),
        margin=to_fraction(str(cfg.alert_margin)),
        min_duration_ms=cfg.alert_min_duration_ms,
    )


@dataclass(frozen=True, slots=True)
class AlertState:
    """Where one (kpi, scope, queue) alert stands; `since` is when the current status began."""

    status: str = OK
    since: int = 0
    alert_id: str = ""
    record: dict[str, Any] | None = None  # the firing message, kept for the active-alerts view

    def to_bytes(self) -> bytes:
        return json.dumps({"s": self.status, "t": self.since, "id": self.alert_id, "r": self.record}).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> AlertState:
        d = json.loads(raw)
        return cls(str(d["s"]), int(d["t"]), str(d["id"]), d.get("r"))


@dataclass(frozen=True, slots=True)
class Transition:
    """A firing or a resolution: one message on kpi.alerts."""

    alert_id: str
    kpi: str
    scope: str
    queue: str
    value: float | None
    threshold: float
    status: str
    since: int
    ts: int
    offered: int

    def to_json(self, format_ts: Any) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "kpi": self.kpi,
            "scope": self.scope,
            "queue": self.queue,
            "value": self.value,
            "threshold": self.threshold,
            "status": self.status,
            "since": format_ts(self.since),
            "ts": format_ts(self.ts),
            "offered": self.offered,
        }


def evaluate(
    state: AlertState, rule: AlertRule, scope: str, queue: str, counts: Mapping[str, int], now_ms: int
) -> tuple[AlertState, Transition | None]:
    """Advance one alert with the rolling counts as of event time `now_ms`."""
    offered = counts.get("offered", 0)
    value = queue_kpis(counts)[rule.kpi]
    above = value is not None and offered >= rule.min_offered and value > rule.threshold
    fval = None if value is None else float(value)

    def transition(status: str, since: int, alert_id: str) -> Transition:
        return Transition(
            alert_id, rule.kpi, scope, queue, fval, float(rule.threshold), status, since, now_ms, offered
        )

    if state.status == FIRING:
        if value is not None and value <= rule.threshold - rule.margin:
            return AlertState(OK, now_ms), transition(RESOLVED, state.since, state.alert_id)
        return state, None
    if not above:
        return (AlertState(OK, now_ms) if state.status != OK else state), None
    if state.status == OK and rule.min_duration_ms > 0:
        return AlertState(PENDING, now_ms), None
    since = state.since if state.status == PENDING else now_ms
    if now_ms - since < rule.min_duration_ms:
        return state, None
    alert_id = f"{rule.kpi}:{scope}:{queue}:{since}"
    return AlertState(FIRING, since, alert_id), transition(FIRING, since, alert_id)

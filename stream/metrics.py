"""The Prometheus metrics of CONTRACT.md section 5, on a registry given by the caller (never global)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

KPI_GAUGES: dict[str, str] = {
    "sl": "callcenter_service_level_ratio",
    "lcr": "callcenter_lost_call_ratio",
    "car": "callcenter_abandon_ratio",
    "answer_rate": "callcenter_answer_ratio",
    "fcr": "callcenter_first_contact_resolution_ratio",
    "fac": "callcenter_chat_fast_answer_ratio",
    "rt": "callcenter_email_on_time_ratio",
}


@dataclass(frozen=True, slots=True)
class Metrics:
    registry: CollectorRegistry
    kpi: dict[str, Gauge]
    operator_score: Gauge
    alert_active: Gauge
    calls_total: Counter
    events_total: Counter
    dead_letters_total: Counter
    sink_errors_total: Counter
    scorecard: Gauge
    messages_total: Counter
    offered_calls: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> Metrics:
        r = registry if registry is not None else CollectorRegistry()
        kpi = {
            k: Gauge(
                name,
                f"{k.upper()} as a fraction (undefined KPIs are absent)",
                ["scope", "queue", "period"],
                registry=r,
            )
            for k, name in KPI_GAUGES.items()
        }
        return cls(
            registry=r,
            kpi=kpi,
            operator_score=Gauge(
                "callcenter_operator_score",
                "F of an operator",
                ["operator", "strategy", "period"],
                registry=r,
            ),
            alert_active=Gauge(
                "callcenter_alert_active", "1 while the alert fires", ["kpi", "scope", "queue"], registry=r
            ),
            calls_total=Counter("callcenter_calls", "calls by outcome", ["queue", "outcome"], registry=r),
            events_total=Counter("callcenter_events", "valid input events by type", ["type"], registry=r),
            dead_letters_total=Counter(
                "callcenter_dead_letters", "messages sent to the dead letters", ["reason"], registry=r
            ),
            sink_errors_total=Counter(
                "kpistream_sink_errors", "failed writes to an output sink", ["sink"], registry=r
            ),
            messages_total=Counter(
                "kpistream_messages", "messages processed by each worker agent", ["agent"], registry=r
            ),
            offered_calls=Gauge(
                "callcenter_offered_calls",
                "offered calls, short abandons excluded: the denominator of SL, LCR and CAR",
                ["scope", "queue", "period"],
                registry=r,
            ),
            scorecard=Gauge(
                "callcenter_scorecard_value",
                "balanced scorecard figures",
                ["dimension", "figure", "period"],
                registry=r,
            ),
        )

"""The Prometheus metrics of CONTRACT.md section 5, on a registry given by the caller (never global).

Besides the KPIs, the operator's view (docs/metrics.md, "Operations"): consumer lag per input
partition, data freshness, the build, and the standard process_* / python_* collectors. `Exposition`
renders the page off the event loop.
"""

from __future__ import annotations

import asyncio
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

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
    consumer_lag: Gauge
    newest_event_time: Gauge
    data_freshness: Gauge
    build_info: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> Metrics:
        r = registry if registry is not None else CollectorRegistry()
        _standard_collectors(r)
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
            consumer_lag=Gauge(
                "kpistream_consumer_lag",
                "messages of an input partition this worker owns not yet processed: end offset minus "
                "committed offset (the position before the first commit)",
                ["topic", "partition"],
                registry=r,
            ),
            newest_event_time=Gauge(
                "kpistream_newest_event_timestamp_seconds",
                "the newest event time processed (Unix seconds; vouched by two events, 0 before any)",
                registry=r,
            ),
            data_freshness=Gauge(
                "kpistream_data_freshness_seconds",
                "wall clock minus the newest event time processed: how old the wallboard's newest data "
                "is (NaN before any event)",
                registry=r,
            ),
            build_info=_build_info(r),
        )

    def watch_event_time(self, newest_ms: Callable[[], int], clock: Callable[[], float] = time.time) -> None:
        """Read the newest processed event time (ms) at every scrape, and freshness from it."""

        def newest_s() -> float:
            return newest_ms() / 1000

        def freshness_s() -> float:
            ms = newest_ms()
            return clock() - ms / 1000 if ms > 0 else math.nan

        self.newest_event_time.set_function(newest_s)
        self.data_freshness.set_function(freshness_s)


def kpistream_version() -> str:
    """The installed package's version ("0+unknown" when run from a tree that is not installed)."""
    try:
        return metadata.version("kpistream")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _build_info(registry: CollectorRegistry) -> Gauge:
    info = Gauge(
        "kpistream_build_info",
        "always 1: the kpistream, Python and Faust versions of this worker",
        ["version", "python", "faust"],
        registry=registry,
    )
    try:
        faust_version = metadata.version("faust-streaming")
    except metadata.PackageNotFoundError:
        faust_version = "none"
    info.labels(kpistream_version(), platform.python_version(), faust_version).set(1)
    return info


def _standard_collectors(registry: CollectorRegistry) -> None:
    """process_* (CPU, memory, open files), python_info and python_gc_* on this registry.

    The default registry has them built in; ours is not the default (nothing global), so they are
    added here. Faust's sensors use the same registry: one page.
    """
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)


class Exposition:
    """The /metrics page, rendered in a worker thread so the event loop keeps processing.

    prometheus_client reads each metric under that metric's lock, so a render in a thread sees
    every metric consistent on its own while the loop goes on updating them. Scrapes that arrive
    while a render runs share it (one render at a time: a slow render never piles up threads).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._running: asyncio.Future[bytes] | None = None

    async def render(self) -> bytes:
        running = self._running
        if running is None:
            running = self._running = asyncio.ensure_future(asyncio.to_thread(generate_latest, self.registry))
            running.add_done_callback(self._finished)
        return await asyncio.shield(running)

    def _finished(self, future: asyncio.Future[bytes]) -> None:
        if self._running is future:
            self._running = None

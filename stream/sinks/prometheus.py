"""Prometheus sink: the KPI, score and scorecard gauges of the worker's `/metrics`.

Only the rolling period and the *current* day and month are exposed, under period labels
`rolling`, `day` and `month`, so label sets stay bounded: when the day turns, yesterday's label
sets go; an operator without activity in a period loses theirs. Undefined KPIs are absent.
"""

from __future__ import annotations

import contextlib
from typing import Any

from prometheus_client import Gauge

from stream.core.periods import ROLLING
from stream.metrics import KPI_GAUGES, Metrics
from stream.sinks.base import Batch, Record

QueueLabels = tuple[str, str, str]  # scope, queue, period kind


def _remove(gauge: Gauge, *labels: str) -> None:
    with contextlib.suppress(KeyError):
        gauge.remove(*labels)


class PrometheusSink:
    """Keeps the gauges equal to the newest records of the current periods."""

    name = "prometheus"

    def __init__(self, metrics: Metrics) -> None:
        self.alert_labels: set[tuple[str, str, str]] = set()
        self.metrics = metrics
        self.current: dict[str, str] = {"day": "", "month": ""}
        self.op_labels: dict[tuple[str, str], str] = {}  # (operator, period kind) -> strategy label
        self.queue_labels: dict[QueueLabels, set[str]] = {}  # label set -> KPI names set
        self.scorecard_labels: dict[tuple[str, str, str], None] = {}

    def _is_current(self, rec: Record) -> bool:
        kind = str(rec["period"])
        return kind == ROLLING or self.current.get(kind) == rec["period_key"]

    def _roll(self, kind: str, period_key: str) -> None:
        """A new day or month: drop every label set of the previous one."""
        if not period_key or self.current[kind] == period_key:
            return
        self.current[kind] = period_key
        self._drop(lambda k: k == kind, set(), set(), set())

    def _drop(
        self, kind_matches: Any, keep_ops: set[Any], keep_queues: set[Any], keep_cards: set[Any]
    ) -> None:
        m = self.metrics
        for (op, kind), strat in list(self.op_labels.items()):
            if kind_matches(kind) and (op, kind) not in keep_ops:
                _remove(m.operator_score, op, strat, kind)
                del self.op_labels[(op, kind)]
        for labels, names in list(self.queue_labels.items()):
            if kind_matches(labels[2]) and labels not in keep_queues:
                for name in names:
                    _remove(m.kpi[name], *labels)
                _remove(m.offered_calls, *labels)
                del self.queue_labels[labels]
        for labels in list(self.scorecard_labels):
            if kind_matches(labels[2]) and labels not in keep_cards:
                _remove(m.scorecard, *labels)
                del self.scorecard_labels[labels]

    def _operator(self, rec: Record) -> tuple[str, str]:
        op, kind, strat = str(rec["operator_id"]), str(rec["period"]), str(rec["strategy"])
        old = self.op_labels.get((op, kind))
        if old is not None and old != strat:
            _remove(self.metrics.operator_score, op, old, kind)
        if any(rec["counts"].values()):
            self.metrics.operator_score.labels(op, strat, kind).set(float(rec["f"]))
            self.op_labels[(op, kind)] = strat
        elif old is not None:
            _remove(self.metrics.operator_score, op, strat, kind)
            del self.op_labels[(op, kind)]
        return op, kind

    def _queue(self, rec: Record) -> QueueLabels:
        labels = (str(rec["scope"]), str(rec["queue"]), str(rec["period"]))
        names = self.queue_labels.setdefault(labels, set())
        for name in KPI_GAUGES:
            v = rec["kpis"].get(name)
            if v is None:
                _remove(self.metrics.kpi[name], *labels)
                names.discard(name)
            else:
                self.metrics.kpi[name].labels(*labels).set(float(v))
                names.add(name)
        # The denominator of SL, LCR and CAR, so alert rules can require a minimum volume.
        self.metrics.offered_calls.labels(*labels).set(float(rec["counts"].get("offered", 0)))
        return labels

    def _scorecard(self, rec: Record) -> set[tuple[str, str, str]]:
        kind = str(rec["period"])
        seen = set()
        for dim, figures in rec.items():
            if not isinstance(figures, dict):
                continue
            for fig, v in figures.items():
                labels = (dim, fig, kind)
                if v is None:
                    _remove(self.metrics.scorecard, *labels)
                    self.scorecard_labels.pop(labels, None)
                    continue
                self.metrics.scorecard.labels(*labels).set(float(v))
                self.scorecard_labels[labels] = None
                seen.add(labels)
        return seen

    async def write(self, batch: Batch) -> None:
        self._roll("day", batch.current_day)
        self._roll("month", batch.current_month)
        ops = {self._operator(r) for r in batch.operators if self._is_current(r)}
        queues = {self._queue(r) for r in batch.queues if self._is_current(r)}
        cards: set[tuple[str, str, str]] = set()
        for r in batch.scorecards:
            if self._is_current(r):
                cards |= self._scorecard(r)
        if batch.full:  # the complete state: whatever it lacks is gone
            self._drop(lambda _k: True, ops, queues, cards)
        self._alerts(batch)

    def _alerts(self, batch: Batch) -> None:
        """callcenter_alert_active{kpi,scope,queue}: 1 while firing, 0 once resolved."""
        gauge = self.metrics.alert_active
        if batch.active_alerts is not None:
            firing = {(r["kpi"], r["scope"], r["queue"]) for r in batch.active_alerts}
            for labels in list(self.alert_labels):
                if labels not in firing:
                    gauge.labels(*labels).set(0)
            for labels in firing:
                gauge.labels(*labels).set(1)
                self.alert_labels.add(labels)
        for r in batch.alerts:
            labels = (r["kpi"], r["scope"], r["queue"])
            gauge.labels(*labels).set(1 if r["status"] == "firing" else 0)
            self.alert_labels.add(labels)

    async def close(self) -> None:
        return None

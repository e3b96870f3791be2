"""The stream's computation in one process, over dicts: `kpistream report` and the tests.

`Engine.process` runs the very objects the worker runs (Stage1, AggregateStore, the watermark and
the event-time bounds), event by event. `Engine.process_batch` is the report's fast path: each
entity's contributions are a function of its event set, so it computes them once per entity; the
property tests hold both paths equal. Results are read with `stream/core/report.py`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from stream.core.aggregate import AggregateStore, AggState
from stream.core.config import KpiConfig
from stream.core.contributions import KIND_OF_STREAM, NOW_SCOPES, call_is_orphan, contributions
from stream.core.counts import add_into
from stream.core.entity import EntityState
from stream.core.events import STREAM_OF_TYPE, Event
from stream.core.eventtime import FromTheFuture, TooLate, Watermark, check_time
from stream.core.keys import agg_key
from stream.core.periods import ROLLING, is_expired, period_keys
from stream.core.report import PeriodData, group_by_period, period_report
from stream.core.scorecard import BusinessState
from stream.core.scoring import Fund, Strategy
from stream.core.stage1 import Stage1, state_key

Clock = Callable[[], float]


class Engine:
    """The stream's computation in one process, over dicts: `kpistream report` and the tests."""

    def __init__(self, cfg: KpiConfig, *, rolling: bool = False, clock: Clock = time.time) -> None:
        self.cfg = cfg
        self.clock = clock  # the wall clock: only for the `future` bound
        self.watermark = Watermark()
        self.entity_tables: dict[str, dict[str, EntityState]] = {
            k: {} for k in ("call", "chat", "email", "case", "agent")
        }
        self.stage1 = Stage1(self.entity_tables, cfg)
        self.aggs: dict[str, AggState] = {}
        self.store = AggregateStore(self.aggs, cfg, rolling=rolling, event_time=self.watermark)
        self.business = BusinessState()
        self.too_late = 0
        self.future = 0
        self.events = 0
        self._orphans: list[str] = []

    def process(self, event: Event, source: str = "file:0", offset: int = 0) -> None:
        """Apply one event, as the worker would: raises TooLate or FromTheFuture out of the time bounds."""
        check_time(event.ts, self.watermark.value, int(self.clock() * 1000), self.cfg)
        self.watermark.observe(event.ts, event.event_id)
        self.events += 1
        if event.stream == "business":
            self.business.apply(event)
            return
        for d in self.stage1.process(event, source, offset):
            self.store.apply(d)

    def process_all(self, events: Iterable[Event]) -> None:
        """Process every event; count those out of the event-time bounds (as the stream dead-letters them)."""
        for i, e in enumerate(events):
            try:
                self.process(e, "file:0", i)
            except TooLate:
                self.too_late += 1
            except FromTheFuture:
                self.future += 1

    def process_batch(
        self, numbered: Iterable[tuple[int, Event]]
    ) -> list[tuple[int, TooLate | FromTheFuture]]:
        """The same totals as `process` over the same events in the same order, for a whole file.

        Each entity's contributions are a function of its event set (contributions.py), so the sum
        the stream reaches by emitting differences event by event is the sum of every entity's
        final contributions: this computes those once per entity. Retention is checked in arrival
        order exactly as `process` does. Returns the events refused by the event-time bounds (line, error).
        """
        cfg = self.cfg
        late: list[tuple[int, TooLate | FromTheFuture]] = []
        groups: dict[tuple[str, str], list[Event]] = {}
        ids: dict[tuple[str, str], set[str]] = {}
        wm = self.watermark
        now_ms = int(self.clock() * 1000)
        for n, e in numbered:
            try:
                check_time(e.ts, wm.value, now_ms, cfg)
            except (TooLate, FromTheFuture) as exc:
                late.append((n, exc))
                continue
            wm.observe(e.ts, e.event_id)
            self.events += 1
            stream = STREAM_OF_TYPE[e.type]
            if stream == "business":
                self.business.apply(e)
                continue
            kind = KIND_OF_STREAM.get(stream)
            if kind is None or kind == "agent":
                continue  # operators' states feed only the live view, which a report has not
            key = (kind, state_key(e))
            seen = ids.get(key)
            if seen is None:
                seen = ids[key] = set()
                groups[key] = []
            if e.event_id not in seen:  # a repeated event_id changes nothing
                seen.add(e.event_id)
                groups[key].append(e)
        aggs = self.aggs
        tz = cfg.tz
        for (kind, entity), evs in groups.items():
            if kind == "call" and call_is_orphan(evs):
                self._orphans.append(entity)
            for (scope, sid, ts), counts in contributions(kind, evs, cfg).items():
                if scope in NOW_SCOPES:
                    continue
                for pk in period_keys(ts, tz):
                    ak = agg_key(scope, sid, pk)
                    st = aggs.get(ak)
                    if st is None:
                        st = aggs[ak] = AggState()
                    add_into(st.counts, counts)
        return late

    def orphan_calls(self) -> list[str]:
        incremental = (k for k, st in self.entity_tables["call"].items() if call_is_orphan(st.events))
        return sorted({*incremental, *self._orphans})

    def periods(self) -> dict[str, PeriodData]:
        """Day and month periods still in retention at the newest event (as the stream keeps them)."""
        cfg = self.cfg
        wm = self.watermark.value
        data = {
            pk: pd
            for pk, pd in group_by_period(self.aggs).items()
            if not is_expired(pk, wm, cfg.tz, cfg.retention_days, cfg.retention_months)
        }
        for pk in self.business.period_keys(cfg.tz):
            if not is_expired(pk, wm, cfg.tz, cfg.retention_days, cfg.retention_months):
                data.setdefault(pk, PeriodData())
        return data

    def report(
        self,
        strategy: Strategy,
        fund: Callable[[str], Fund | None] | None = None,
        strategy_of: Callable[[str], Strategy] | None = None,
    ) -> dict[str, Any]:
        """The JSON of `kpistream report`: the strategy, then every day and month period.

        `fund` gives the fund of a period key (None: no amounts), e.g. `StrategyBook.fund_for`;
        `strategy_of` an operator's own strategy (teams), as the stream scores them.
        """
        data = self.periods()
        return {
            "strategy": {"name": strategy.name, "weights": strategy.weights_json()},
            "periods": {
                pk: period_report(
                    pk, data[pk], strategy, self.cfg, self.business, fund(pk) if fund else None, strategy_of
                )
                for pk in sorted(data)
                if pk != ROLLING
            },
        }

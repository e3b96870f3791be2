"""The whole computation in one place: stage 1 (entities), stage 2 (aggregates), and the period view.

The worker runs `Stage1` and `AggregateStore` over Faust tables, partitioned; `kpistream report` runs
`Engine`, which holds the same objects over dicts in one process. Both read results with `PeriodView`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from stream.core.aggregate import NOW, AggregateStore, AggState, split_key
from stream.core.config import KpiConfig
from stream.core.contributions import (
    AGENTS,
    CENTER,
    CHANNEL,
    KIND_OF_STREAM,
    LIVE,
    MAIL,
    NOW_SCOPES,
    OP,
    QUEUE,
    call_is_orphan,
    contributions,
)
from stream.core.counts import OPERATOR_COUNT_FIELDS, QUEUE_COUNT_FIELDS, Counts, add_into, full
from stream.core.entity import Delta, EntityState, EntityStore
from stream.core.events import STREAM_OF_TYPE, Event
from stream.core.kpis import floats, operator_kpis, queue_kpis
from stream.core.periods import ROLLING, is_expired, period_keys, too_late
from stream.core.scorecard import BusinessState, scorecard
from stream.core.scoring import Fund, Strategy, amount_text, f_score, fund_shares, payroll_amounts
from stream.errors import InvalidEvent

CENTER_ID = "_center"  # how the centre appears where a queue name is expected (Kafka key, labels)


class TooLate(InvalidEvent):
    """The event's period is out of retention; it goes to the dead letters as `too_late`."""

    def __init__(self, detail: str) -> None:
        super().__init__("too_late", detail, "ts")


def state_key(event: Event) -> str:
    """The entity state key of an event (FCR by case key, the rest by their id)."""
    if STREAM_OF_TYPE[event.type] == "contact":
        return event.case_key or ""
    return event.entity_key


class Stage1:
    """Routes a validated event to its entity state and returns the count changes it causes."""

    def __init__(self, tables: Mapping[str, MutableMapping[str, EntityState]], cfg: KpiConfig) -> None:
        self.cfg = cfg
        self.stores = {kind: EntityStore(tables[kind], kind, cfg) for kind in tables}

    def check_time(self, event: Event, watermark_ms: int) -> None:
        cfg = self.cfg
        if too_late(event.ts, watermark_ms, cfg.tz, cfg.retention_days, cfg.retention_months):
            raise TooLate(f"event time is older than the {cfg.retention_days}-day retention")

    def process(self, event: Event, source: str, offset: int) -> list[Delta]:
        kind = KIND_OF_STREAM.get(event.stream)
        if kind is None:
            return []
        return self.stores[kind].apply(state_key(event), event, source, offset)


@dataclass(slots=True)
class PeriodData:
    """Counts of one period by scope."""

    operators: dict[str, Counts] = field(default_factory=dict)
    queues: dict[str, Counts] = field(default_factory=dict)
    channels: dict[str, Counts] = field(default_factory=dict)
    center: Counts = field(default_factory=dict)


def group_by_period(aggs: Mapping[str, AggState]) -> dict[str, PeriodData]:
    out: dict[str, PeriodData] = {}
    for key, st in aggs.items():
        if not st.counts:
            continue
        scope, sid, pk = split_key(key)
        if pk == NOW:
            continue  # live state, not a period (see live_state)
        pd = out.setdefault(pk, PeriodData())
        if scope == OP:
            pd.operators[sid] = st.counts
        elif scope == QUEUE:
            pd.queues[sid] = st.counts
        elif scope == CHANNEL:
            pd.channels[sid] = st.counts
        elif scope == CENTER:
            pd.center = st.counts
    return out


def operator_scores(
    operators: Mapping[str, Counts], strategy_of: Mapping[str, Strategy] | Strategy
) -> dict[str, tuple[dict[str, Any], Fraction, Strategy]]:
    """Per operator: exact KPIs, F and the strategy used."""
    out = {}
    for op, counts in operators.items():
        strat = strategy_of if isinstance(strategy_of, Strategy) else strategy_of[op]
        k = operator_kpis(counts)
        out[op] = (k, f_score(k, strat), strat)
    return out


def period_report(
    pk: str,
    pd: PeriodData,
    strategy: Strategy,
    cfg: KpiConfig,
    business: BusinessState | None = None,
    fund: Fund | None = None,
) -> dict[str, Any]:
    """One period of the report's JSON (CONTRACT.md section 8); `bonus` amounts with a fund."""
    scored = operator_scores(pd.operators, strategy)
    shares = fund_shares({op: f for op, (_, f, _) in scored.items()})
    amounts = (
        {}
        if fund is None
        else payroll_amounts({op: sc[1] for op, sc in scored.items()}, fund.amount, fund.minor_digits)
    )
    operators: dict[str, Any] = {}
    for op in sorted(scored):
        k, f, _ = scored[op]
        share = shares[op]
        row: dict[str, Any] = {
            "kpis": floats(k),
            "counts": full(pd.operators[op], OPERATOR_COUNT_FIELDS),
            "f": float(f),
            "fund_share": None if share is None else float(share),
        }
        if fund is not None:
            row["bonus"] = amount_text(amounts[op])
        operators[op] = row
    out: dict[str, Any] = {
        "operators": operators,
        "queues": {
            q: {"kpis": floats(queue_kpis(c)), "counts": full(c, QUEUE_COUNT_FIELDS)}
            for q, c in sorted(pd.queues.items())
        },
        "center": {"kpis": floats(queue_kpis(pd.center)), "counts": full(pd.center, QUEUE_COUNT_FIELDS)},
        "channels": {
            ch: {
                "kpis": {"fcr": floats(queue_kpis(c))["fcr"]},
                "counts": full(c, ("fcr_contacts", "fcr_resolved")),
            }
            for ch, c in sorted(pd.channels.items())
        },
    }
    if pk != ROLLING:
        out["scorecard"] = scorecard(pk, pd.center, business or BusinessState(), cfg)
    return out


LIVE_FIELDS: tuple[str, ...] = (
    "waiting",
    "longest_wait_s",
    "chats_waiting",
    "emails_open",
    "emails_overdue",
    "agents_available",
    "agents_busy",
    "agents_wrap_up",
    "agents_paused",
)


def live_state(aggs: Mapping[str, AggState], watermark_ms: int, cfg: KpiConfig) -> dict[str, dict[str, Any]]:
    """Per queue, now: calls and chats waiting, the longest wait, e-mails open and overdue, agents by state.

    `aggs` holds live aggregates already slid to the watermark (AggregateStore.slid). "Now" is event
    time: the newest event seen, so a replay shows the floor as it was.
    """
    out: dict[str, dict[str, Any]] = {}
    for key, st in aggs.items():
        scope, queue, pk = split_key(key)
        if pk != NOW or scope not in (LIVE, MAIL, AGENTS):
            continue
        row = out.setdefault(queue, dict.fromkeys(LIVE_FIELDS, 0))
        if scope == LIVE:
            row["waiting"] += st.counts.get("waiting", 0)
            row["chats_waiting"] += st.counts.get("chats_waiting", 0)
            oldest = next((ts for ts in st.times or () if (st.entries or {})[ts].get("waiting", 0) > 0), None)
            if oldest is not None:
                row["longest_wait_s"] = max(0, watermark_ms - oldest) // 1000
        elif scope == MAIL:
            row["emails_open"] += st.counts.get("emails_open", 0)
            due = watermark_ms - cfg.email_threshold_ms
            row["emails_overdue"] += sum(
                (st.entries or {})[ts].get("emails_open", 0) for ts in st.times or () if ts < due
            )
        else:
            for state in ("available", "busy", "wrap_up", "paused"):
                row[f"agents_{state}"] += st.counts.get(f"agents_{state}", 0)
    return out


class Engine:
    """The stream's computation in one process, over dicts: `kpistream report` and the tests."""

    def __init__(self, cfg: KpiConfig, *, rolling: bool = False) -> None:
        self.cfg = cfg
        self.entity_tables: dict[str, dict[str, EntityState]] = {
            k: {} for k in ("call", "chat", "email", "case", "agent")
        }
        self.stage1 = Stage1(self.entity_tables, cfg)
        self.aggs: dict[str, AggState] = {}
        self.store = AggregateStore(self.aggs, cfg, rolling=rolling)
        self.business = BusinessState()
        self.too_late = 0
        self.events = 0
        self._orphans: list[str] = []

    def process(self, event: Event, source: str = "file:0", offset: int = 0) -> None:
        """Apply one event, as the worker would: raises TooLate for an event out of retention."""
        self.stage1.check_time(event, self.store.watermark)
        self.store.observe(event.ts)
        self.events += 1
        if event.stream == "business":
            self.business.apply(event)
            return
        for d in self.stage1.process(event, source, offset):
            self.store.apply(d)

    def process_all(self, events: Iterable[Event]) -> None:
        for i, e in enumerate(events):
            try:
                self.process(e, "file:0", i)
            except TooLate:
                self.too_late += 1

    def process_batch(self, numbered: Iterable[tuple[int, Event]]) -> list[tuple[int, TooLate]]:
        """The same totals as `process` over the same events in the same order, for a whole file.

        Each entity's contributions are a function of its event set (contributions.py), so the sum
        the stream reaches by emitting differences event by event is the sum of every entity's
        final contributions: this computes those once per entity. Retention is checked in arrival
        order exactly as `process` does. Returns the events refused as too late (line, error).
        """
        cfg = self.cfg
        late: list[tuple[int, TooLate]] = []
        groups: dict[tuple[str, str], list[Event]] = {}
        ids: dict[tuple[str, str], set[str]] = {}
        wm = self.store.watermark
        for n, e in numbered:
            try:
                self.stage1.check_time(e, wm)
            except TooLate as exc:
                late.append((n, exc))
                continue
            if e.ts > wm:
                wm = e.ts
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
        self.store.observe(wm)
        aggs = self.aggs
        tz = cfg.tz
        for (kind, entity), evs in groups.items():
            if kind == "call" and call_is_orphan(evs):
                self._orphans.append(entity)
            for (scope, sid, ts), counts in contributions(kind, evs, cfg).items():
                if scope in NOW_SCOPES:
                    continue
                for pk in period_keys(ts, tz):
                    agg_key = f"{scope}|{sid}|{pk}"
                    st = aggs.get(agg_key)
                    if st is None:
                        st = aggs[agg_key] = AggState()
                    add_into(st.counts, counts)
        return late

    def orphan_calls(self) -> list[str]:
        incremental = (k for k, st in self.entity_tables["call"].items() if call_is_orphan(st.events))
        return sorted({*incremental, *self._orphans})

    def periods(self) -> dict[str, PeriodData]:
        """Day and month periods still in retention at the newest event (as the stream keeps them)."""
        cfg = self.cfg
        wm = self.store.watermark
        data = {
            pk: pd
            for pk, pd in group_by_period(self.aggs).items()
            if not is_expired(pk, wm, cfg.tz, cfg.retention_days, cfg.retention_months)
        }
        for pk in self.business.period_keys(cfg.tz):
            if not is_expired(pk, wm, cfg.tz, cfg.retention_days, cfg.retention_months):
                data.setdefault(pk, PeriodData())
        return data

    def report(self, strategy: Strategy, fund: Callable[[str], Fund | None] | None = None) -> dict[str, Any]:
        """The JSON of `kpistream report`: the strategy, then every day and month period.

        `fund` gives the fund of a period key (None: no amounts), e.g. `StrategyBook.fund_for`.
        """
        data = self.periods()
        return {
            "strategy": {"name": strategy.name, "weights": strategy.weights_json()},
            "periods": {
                pk: period_report(pk, data[pk], strategy, self.cfg, self.business, fund(pk) if fund else None)
                for pk in sorted(data)
                if pk != ROLLING
            },
        }

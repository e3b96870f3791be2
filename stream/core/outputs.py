"""The published records (CONTRACT.md sections 5 and 6), built from counts: one builder per message.

Every sink (Redis, Kafka, Prometheus) writes what these functions return, and `kpistream report`
computes the same numbers, so a wallboard, a topic consumer and a backfill never disagree. Pure:
the time of the update is passed in (`now_ms`), never read here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any

from stream.core.config import KpiConfig
from stream.core.counts import OPERATOR_COUNT_FIELDS, QUEUE_COUNT_FIELDS, Counts, full
from stream.core.keys import CENTER_ID
from stream.core.kpis import OPERATOR_KPIS, floats, operator_kpis, queue_kpis
from stream.core.periods import ROLLING, period_kind, period_start_iso
from stream.core.scorecard import BusinessState, scorecard
from stream.core.scoring import Fund, Strategy, amount_text, f_score, fund_shares, payroll_amounts
from stream.core.timefmt import format_ts

Record = dict[str, Any]
StrategyOf = Callable[[str], Strategy]

OPERATOR_SCORE_KPIS: tuple[str, ...] = OPERATOR_KPIS


def _period_fields(period_key: str, tz: str) -> tuple[str, str | None]:
    kind = period_kind(period_key)
    return kind, None if period_key == ROLLING else period_start_iso(period_key, tz)


def _constant(s: Strategy) -> StrategyOf:
    def strat(_op: str) -> Strategy:
        return s

    return strat


ScoredOperator = tuple[tuple[tuple[str, int], ...], Strategy, tuple[float | None, ...], Fraction]
"""(counts as items, strategy, KPIs as floats in OPERATOR_SCORE_KPIS order, F) of one operator.

Rule: nothing the record can cheaply rebuild is kept: the publisher holds one per operator of
each live period (15,000 at 5,000 operators), and the full counts record and a KPI dict were
two thirds of it (docs/benchmarks.md)."""


_ZERO = Fraction(0)


class PeriodScores(dict[str, ScoredOperator]):
    """The score cache of one period (operator -> ScoredOperator) and the sum of its positive F.

    Rule: the sum changes by the difference of each operator scored again (exact: Fractions), so
    a flush of a period of 5,000 operators adds up the few that changed, not 5,000 fractions of
    growing denominators (12 ms a flush, most of `operator_records` at that size).
    """

    __slots__ = ("positive_f",)

    def __init__(self) -> None:
        super().__init__()
        self.positive_f = _ZERO


def _positive(f: Fraction) -> Fraction:
    return f if f > _ZERO else _ZERO


def _score(
    op: str, counts: Counts, strategy: Strategy, cache: dict[str, ScoredOperator] | None
) -> ScoredOperator:
    items = tuple(counts.items())
    hit = cache.get(op) if cache is not None else None
    if hit is not None and hit[0] == items and (hit[1] is strategy or hit[1] == strategy):
        return hit
    k = operator_kpis(counts)
    kpis = floats(k)
    scored = (items, strategy, tuple(kpis[name] for name in OPERATOR_SCORE_KPIS), f_score(k, strategy))
    if cache is not None:
        cache[op] = scored
    return scored


def operator_records(
    period_key: str,
    operators: Mapping[str, Counts],
    strategy_of: StrategyOf | Strategy,
    now_ms: int,
    tz: str,
    fund: Fund | None = None,
    cache: PeriodScores | None = None,
    *,
    changed_only: bool = False,
) -> dict[str, Record]:
    """`kpi.operator-scores` values of every operator of one period.

    Fund shares are over every operator with activity in the period (non-empty counts), so the
    caller passes all operators of the period, not only the changed ones. An operator without
    activity (a rolling window that slid past them) gets zero counts, null KPIs, F 0 and a null share.
    `cache` (one dict per period, kept by the caller) remembers each operator's KPIs and F for its
    counts and strategy, so with thousands of operators only those whose counts changed are scored
    again; the records are the same with or without it (it also keeps the sum of the positive F,
    so the shares cost the changed operators, not all). With `changed_only` (and a
    cache), only the records of operators whose own counts or strategy changed since the last call
    (or who joined or left the period) are built; their shares are still over everyone.
    """
    strat: StrategyOf = _constant(strategy_of) if isinstance(strategy_of, Strategy) else strategy_of
    scored: dict[str, ScoredOperator] = {}
    changed: list[str] = []  # operators scored anew, joined or left (with a cache)
    for op, c in operators.items():
        old = cache.get(op) if cache is not None else None
        if c:
            new = scored[op] = _score(op, c, strat(op), cache)
            if cache is not None and new is not old:
                cache.positive_f += _positive(new[3]) - (_ZERO if old is None else _positive(old[3]))
                changed.append(op)
        elif old is not None:
            changed.append(op)  # left the period: removed from the cache below
    if cache is not None and len(cache) > len(scored):
        for op in [op for op in cache if op not in scored]:
            cache.positive_f -= _positive(cache[op][3])
            del cache[op]
    positive_sum = None if cache is None else cache.positive_f
    wanted: Iterable[str] = operators
    scores = {op: sc[3] for op, sc in scored.items()}
    if changed_only and cache is not None:
        wanted = changed
        shares = fund_shares(scores, [op for op in wanted if op in scores], positive_sum)
    else:
        shares = fund_shares(scores, positive_sum=positive_sum)
    amounts = {} if fund is None else payroll_amounts(scores, fund.amount, fund.minor_digits)
    kind, start = _period_fields(period_key, tz)
    updated = format_ts(now_ms)
    out: dict[str, Record] = {}
    for op in sorted(wanted):
        sc = scored.get(op)
        if sc is not None:
            s = sc[1]
            kpis = dict(zip(OPERATOR_SCORE_KPIS, sc[2], strict=True))
            share = shares[op]
            f_value = float(sc[3])
        else:
            s = strat(op)
            kpis = dict.fromkeys(OPERATOR_SCORE_KPIS)
            share = None
            f_value = 0.0
        rec: Record = {
            "operator_id": op,
            "period": kind,
            "period_key": period_key,
            "period_start": start,
            "strategy": s.name,
            "kpis": kpis,
            "counts": full(operators[op], OPERATOR_COUNT_FIELDS),
            "f": f_value,
            "fund_share": None if share is None else float(share),
        }
        if fund is not None:
            rec["bonus"] = amount_text(amounts.get(op))
        rec["updated_at"] = updated
        out[op] = rec
    return out


def queue_record(period_key: str, queue: str | None, counts: Counts, now_ms: int) -> Record:
    """`kpi.queue-kpis` value of one queue, or of the centre when `queue` is None (queue `_center`)."""
    k = floats(queue_kpis(counts))
    return {
        "scope": "center" if queue is None else "queue",
        "queue": CENTER_ID if queue is None else queue,
        "period": period_kind(period_key),
        "period_key": period_key,
        "kpis": k,
        "counts": full(counts, QUEUE_COUNT_FIELDS),
        "updated_at": format_ts(now_ms),
    }


def scorecard_record(
    period_key: str, center: Counts, business: BusinessState, cfg: KpiConfig, now_ms: int
) -> Record:
    """`kpi.scorecard` value of one day or month period (CONTRACT.md section 6)."""
    return {
        "period": period_kind(period_key),
        "period_key": period_key,
        "period_start": period_start_iso(period_key, cfg.tz),
        **scorecard(period_key, center, business, cfg),
        "updated_at": format_ts(now_ms),
    }


def decimal_string(value: object) -> str:
    """A value as Redis stores it: plain decimal text (never exponent form), '' for null.

    Floats keep their shortest round-trip digits, so float(text) gives back the published number.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = format(Decimal(repr(value)), "f")
        return text
    return str(value)


def operator_hash(rec: Mapping[str, Any]) -> dict[str, str]:
    """Fields of `kpi:op:{operator_id}:{period_key}`: KPIs, F, share, strategy, time and every count."""
    h = {k: decimal_string(v) for k, v in rec["kpis"].items()}
    h.update({k: decimal_string(v) for k, v in rec["counts"].items()})
    for name in ("f", "fund_share", "bonus"):
        if name in rec:
            h[name] = decimal_string(rec[name])
    h["strategy"] = rec["strategy"]
    h["period"] = rec["period"]
    h["period_start"] = decimal_string(rec["period_start"])
    h["updated_at"] = rec["updated_at"]
    return h


def queue_hash(rec: Mapping[str, Any]) -> dict[str, str]:
    """Fields of `kpi:queue:{queue}:{period_key}` and `kpi:center:{period_key}`."""
    h = {k: decimal_string(v) for k, v in rec["kpis"].items()}
    h.update({k: decimal_string(v) for k, v in rec["counts"].items()})
    h["period"] = rec["period"]
    h["updated_at"] = rec["updated_at"]
    return h


def scorecard_hash(rec: Mapping[str, Any]) -> dict[str, str]:
    """Fields of `kpi:scorecard:{period_key}`: `dimension.figure` -> decimal string (booleans 1/0)."""
    h: dict[str, str] = {}
    for dim, figures in rec.items():
        if isinstance(figures, Mapping):
            for name, v in figures.items():
                h[f"{dim}.{name}"] = decimal_string(v)
    h["period"] = rec["period"]
    h["period_start"] = decimal_string(rec["period_start"])
    h["updated_at"] = rec["updated_at"]
    return h

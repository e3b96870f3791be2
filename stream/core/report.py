"""Period results from aggregate counts: the view both `kpistream report` and the worker's API give.

`group_by_period` reads aggregates (a dict in `report`, a Faust table in the worker) into counts per
period and scope; `period_report` turns one period into the JSON of CONTRACT.md section 8.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from stream.core.aggregate import NOW, AggState
from stream.core.config import KpiConfig
from stream.core.contributions import CENTER, CHANNEL, OP, QUEUE
from stream.core.counts import OPERATOR_COUNT_FIELDS, QUEUE_COUNT_FIELDS, Counts, full
from stream.core.keys import AggKey
from stream.core.kpis import floats, operator_kpis, queue_kpis
from stream.core.periods import ROLLING
from stream.core.scorecard import BusinessState, scorecard
from stream.core.scoring import Fund, Strategy, amount_text, f_score, fund_shares, payroll_amounts


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
        scope, sid, pk = AggKey.decode(key)
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
    strategy_of: Callable[[str], Strategy] | None = None,
) -> dict[str, Any]:
    """One period of the report's JSON (CONTRACT.md section 8); `bonus` amounts with a fund.

    `strategy_of` scores each operator with their own strategy (a team's, as the stream does);
    without it every operator is scored with `strategy`.
    """
    scored = operator_scores(
        pd.operators, strategy if strategy_of is None else {op: strategy_of(op) for op in pd.operators}
    )
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

"""The balanced scorecard (CONTRACT.md section 6): customer, finance, operations, growth.

Business facts arrive rarely (daily orders and costs, staff changes), so their state is small: the
event ids seen, sums per calendar date, and the staff timeline. Everything is derived from that state
at read time, which keeps it exact and independent of arrival order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from stream.core import events as ev
from stream.core import jsonbytes
from stream.core.config import KpiConfig
from stream.core.events import Event
from stream.core.kpis import Ratio, as_float, ratio
from stream.core.periods import DAY_PREFIX, MONTH_PREFIX, period_bounds, period_keys

MONTHLY_ATTRITION_LIMIT = Fraction(2, 100)
ANNUAL_ATTRITION_LIMIT = Fraction(30, 100)


@dataclass(slots=True)
class BusinessState:
    """Orders and costs per calendar date, and the staff timeline."""

    event_ids: set[str] = field(default_factory=set)
    orders: dict[str, tuple[int, Decimal]] = field(default_factory=dict)  # date -> (count, amount)
    cost: dict[str, Decimal] = field(default_factory=dict)  # date -> amount
    staff: list[tuple[int, str, int, str]] = field(default_factory=list)  # (ts, type, count, event_id)

    def apply(self, e: Event) -> bool:
        """Add one business or staff event; False if it was seen before (idempotent)."""
        if e.event_id in self.event_ids:
            return False
        self.event_ids.add(e.event_id)
        if e.type == ev.BUSINESS_ORDERS:
            assert e.date is not None
            n, amt = self.orders.get(e.date, (0, Decimal(0)))
            self.orders[e.date] = (n + (e.count or 0), amt + Decimal(e.amount or "0"))
        elif e.type == ev.BUSINESS_COST:
            assert e.date is not None
            self.cost[e.date] = self.cost.get(e.date, Decimal(0)) + Decimal(e.amount or "0")
        else:
            self.staff.append((e.ts, e.type, e.count or 0, e.event_id))
            self.staff.sort()
        return True

    def period_keys(self, tz: str) -> set[str]:
        """Every day and month period holding a business or staff fact."""
        out: set[str] = set()
        for d in (*self.orders, *self.cost):
            out.update((f"{DAY_PREFIX}{d}", f"{MONTH_PREFIX}{d[:7]}"))
        for ts, *_ in self.staff:
            out.update(period_keys(ts, tz))
        return out

    def headcount_at(self, t: int) -> int | None:
        """The last staff.headcount at or before t, plus hires minus leavers after it and before t."""
        base: int | None = None
        base_ts = 0
        for ts, kind, count, _ in self.staff:
            if ts <= t and kind == ev.STAFF_HEADCOUNT:
                base, base_ts = count, ts
        if base is None:
            return None
        for ts, kind, _, _ in self.staff:
            if base_ts < ts < t:
                if kind == ev.STAFF_HIRED:
                    base += 1
                elif kind == ev.STAFF_LEFT:
                    base -= 1
        return base

    def count_between(self, kind: str, start: int, end: int) -> int:
        return sum(1 for ts, k, _, _ in self.staff if k == kind and start <= ts < end)

    def attrition(self, start: int, end: int) -> tuple[Ratio, int, int | None, int | None]:
        """Leavers in [start, end) over the mean of the headcount at start and end."""
        leavers = self.count_between(ev.STAFF_LEFT, start, end)
        h0, h1 = self.headcount_at(start), self.headcount_at(end)
        if h0 is None or h1 is None or h0 + h1 <= 0:
            return None, leavers, h0, h1
        return Fraction(2 * leavers, h0 + h1), leavers, h0, h1

    def to_json(self) -> dict[str, Any]:
        return {
            "ids": sorted(self.event_ids),
            "orders": {d: [n, str(a)] for d, (n, a) in self.orders.items()},
            "cost": {d: str(a) for d, a in self.cost.items()},
            "staff": [list(s) for s in self.staff],
        }

    def to_bytes(self) -> bytes:
        return jsonbytes.dumps(self.to_json())

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> BusinessState:
        return cls(
            event_ids=set(d.get("ids", ())),
            orders={k: (int(v[0]), Decimal(v[1])) for k, v in d.get("orders", {}).items()},
            cost={k: Decimal(v) for k, v in d.get("cost", {}).items()},
            staff=sorted((int(s[0]), str(s[1]), int(s[2]), str(s[3])) for s in d.get("staff", ())),
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> BusinessState:
        return cls.from_json(jsonbytes.loads(raw))


def _dates_of(period_key: str) -> tuple[str, str]:
    """Inclusive ISO date range [first, last] of a day or month key (business facts are dated)."""
    if period_key.startswith(DAY_PREFIX):
        d = period_key[len(DAY_PREFIX) :]
        return d, d
    y, m = (int(p) for p in period_key[len(MONTH_PREFIX) :].split("-"))
    nxt = date(y + (m == 12), m % 12 + 1, 1)
    return f"{y:04d}-{m:02d}-01", (nxt - timedelta(days=1)).isoformat()


def _year_before(ms_end: int, period_key: str, tz: str) -> int:
    """Start of the 12 months that end at the period's end (local calendar)."""
    if period_key.startswith(MONTH_PREFIX):
        y, m = (int(p) for p in period_key[len(MONTH_PREFIX) :].split("-"))
        idx = y * 12 + (m - 1) - 11
        return period_bounds(f"{MONTH_PREFIX}{idx // 12:04d}-{idx % 12 + 1:02d}", tz)[0]
    d = date.fromisoformat(period_key[len(DAY_PREFIX) :]) + timedelta(days=1)
    try:
        start = d.replace(year=d.year - 1)
    except ValueError:  # 29 February
        start = d.replace(year=d.year - 1, day=28)
    return period_bounds(f"{DAY_PREFIX}{start.isoformat()}", tz)[0]


def _healthy(v: Ratio, limit: Fraction) -> bool | None:
    return None if v is None else v <= limit


def _money(v: Decimal | None) -> float | None:
    return None if v is None else float(v)


def scorecard(
    period_key: str, center: Mapping[str, int], biz: BusinessState, cfg: KpiConfig
) -> dict[str, Any]:
    """The four dimensions for one day or month period; undefined figures are None."""
    tz = cfg.tz
    first, last = _dates_of(period_key)
    n_orders = 0
    amount = Decimal(0)
    has_orders = False
    for d, (n, a) in biz.orders.items():
        if first <= d <= last:
            has_orders = True
            n_orders += n
            amount += a
    cost: Decimal | None = None
    for d, a in biz.cost.items():
        if first <= d <= last:
            cost = (cost or Decimal(0)) + a
    cpo = None if cost is None or not has_orders or n_orders == 0 else cost / n_orders
    cpov = None if cost is None or not has_orders or amount == 0 else cost / amount

    start, end = period_bounds(period_key, tz)
    month_start = period_bounds(period_keys(start, tz)[1], tz)[0]
    monthly, leavers_m, _, hc_end = biz.attrition(month_start, end)
    year_start = _year_before(end, period_key, tz)
    annual, leavers_y, _, _ = biz.attrition(year_start, end)
    return {
        "customer": {
            "fcr": as_float(ratio(center.get("fcr_resolved", 0), center.get("fcr_contacts", 0))),
            "fcr_contacts": center.get("fcr_contacts", 0),
            "fcr_resolved": center.get("fcr_resolved", 0),
        },
        "finance": {
            "cost": _money(cost),
            "orders": n_orders if has_orders else None,
            "orders_amount": _money(amount) if has_orders else None,
            "cost_per_order": _money(cpo),
            "cost_per_order_value": _money(cpov),
        },
        "operations": {
            "answer_rate": as_float(ratio(center.get("answered", 0), center.get("offered", 0))),
            "offered": center.get("offered", 0),
            "answered": center.get("answered", 0),
        },
        "growth": {
            "headcount_start": biz.headcount_at(start),
            "headcount_end": hc_end,
            "hires": biz.count_between(ev.STAFF_HIRED, start, end),
            "leavers": biz.count_between(ev.STAFF_LEFT, start, end),
            "leavers_month": leavers_m,
            "attrition_month": as_float(monthly),
            "attrition_month_limit": float(MONTHLY_ATTRITION_LIMIT),
            "attrition_month_healthy": _healthy(monthly, MONTHLY_ATTRITION_LIMIT),
            "leavers_12m": leavers_y,
            "attrition_12m": as_float(annual),
            "attrition_12m_limit": float(ANNUAL_ATTRITION_LIMIT),
            "attrition_12m_healthy": _healthy(annual, ANNUAL_ATTRITION_LIMIT),
        },
    }

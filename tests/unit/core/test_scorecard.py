"""The balanced scorecard (CONTRACT.md section 6), values computed by hand.

- cost per order = business.cost amount / business.orders count; cost per order value = cost / amount;
  undefined (None, not 0) without orders;
- headcount at a time = last staff.headcount + staff.hired - staff.left since then;
- monthly attrition = leavers in the month / mean(headcount at month start, at month end), healthy <= 2 %;
- annual attrition = leavers in the 12 months up to the period's end / mean(headcount at their start and
  end), healthy <= 30 %.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest

from stream.core import events as ev
from stream.core.config import DAY_MS, HOUR_MS, KpiConfig
from stream.core.engine import Engine
from stream.core.events import Event
from stream.core.scorecard import BusinessState, scorecard
from stream.core.scoring import DEFAULT

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ids = itertools.count()
CFG = KpiConfig()


def ms(iso: str) -> int:
    return (datetime.fromisoformat(iso.replace("Z", "+00:00")) - _EPOCH) // timedelta(milliseconds=1)


def E(type_: str, ts: int, **kw: Any) -> Event:  # a tiny event factory
    return Event(event_id=f"bsc-{next(_ids)}", type=type_, ts=ts, **kw)


def orders(date: str, count: int, amount: str) -> Event:
    return E(ev.BUSINESS_ORDERS, ms(f"{date}T20:00:00Z"), date=date, count=count, amount=amount)


def cost(date: str, amount: str) -> Event:
    return E(ev.BUSINESS_COST, ms(f"{date}T20:00:00Z"), date=date, amount=amount)


def headcount(iso: str, n: int) -> Event:
    return E(ev.STAFF_HEADCOUNT, ms(iso), count=n)


def hired(iso: str, op: str = "x") -> Event:
    return E(ev.STAFF_HIRED, ms(iso), operator_id=op)


def left(iso: str, op: str = "x") -> Event:
    return E(ev.STAFF_LEFT, ms(iso), operator_id=op)


def state(*events: Event) -> BusinessState:
    b = BusinessState()
    for e in events:
        b.apply(e)
    return b


def card(pk: str, b: BusinessState, center: dict[str, int] | None = None) -> dict[str, Any]:
    return scorecard(pk, center or {}, b, CFG)


# --------------------------------------------------------------------------- finance


def finance_state() -> BusinessState:
    return state(
        orders("2026-01-15", 40, "2000.00"),
        cost("2026-01-15", "500.00"),
        cost("2026-01-16", "100.00"),  # a day with cost but no orders
        orders("2026-01-17", 10, "500.00"),  # a day with orders but no cost
    )


def test_cost_per_order_for_a_day() -> None:
    f = card("day:2026-01-15", finance_state())["finance"]
    assert f["cost"] == 500.0
    assert f["orders"] == 40
    assert f["orders_amount"] == 2000.0
    assert f["cost_per_order"] == 12.5  # 500 / 40
    assert f["cost_per_order_value"] == 0.25  # 500 / 2000


def test_day_without_orders_is_undefined_not_zero() -> None:
    f = card("day:2026-01-16", finance_state())["finance"]
    assert f["cost"] == 100.0
    assert f["cost_per_order"] is None
    assert f["cost_per_order_value"] is None


def test_day_with_orders_but_no_cost_is_undefined() -> None:
    """AMBIGUITY: the contract is silent on a period with orders and no business.cost; the code says None."""
    f = card("day:2026-01-17", finance_state())["finance"]
    assert f["orders"] == 10
    assert f["cost_per_order"] is None
    assert f["cost_per_order_value"] is None


def test_cost_per_order_for_the_month() -> None:
    f = card("month:2026-01", finance_state())["finance"]
    # cost 500 + 100 = 600; orders 40 + 10 = 50; amount 2000 + 500 = 2500
    assert f["cost"] == 600.0
    assert f["orders"] == 50
    assert f["cost_per_order"] == 12.0
    assert f["cost_per_order_value"] == 0.24


def test_orders_and_costs_of_a_date_add_up_and_duplicates_do_not() -> None:
    o1 = orders("2026-01-15", 30, "1000.10")
    c1 = cost("2026-01-15", "300.03")
    b = state(o1, orders("2026-01-15", 10, "999.90"), c1, cost("2026-01-15", "99.97"), o1, c1)
    f = card("day:2026-01-15", b)["finance"]
    assert f["orders"] == 40
    assert f["cost"] == 400.0
    assert f["cost_per_order"] == 10.0
    assert f["cost_per_order_value"] == 0.2


def test_zero_orders_is_undefined() -> None:
    b = state(orders("2026-01-15", 0, "0"), cost("2026-01-15", "10"))
    f = card("day:2026-01-15", b)["finance"]
    assert f["cost_per_order"] is None
    assert f["cost_per_order_value"] is None


def test_a_month_without_business_facts() -> None:
    f = card("month:2026-05", finance_state())["finance"]
    assert f["cost"] is None
    assert f["orders"] is None
    assert f["cost_per_order"] is None
    assert f["cost_per_order_value"] is None


# --------------------------------------------------------------------------- headcount and attrition


def staff_state() -> BusinessState:
    return state(
        headcount("2025-12-31T12:00:00Z", 100),
        hired("2026-01-05T09:00:00Z", "h1"),
        hired("2026-01-10T09:00:00Z", "h2"),
        left("2026-01-12T17:00:00Z", "l1"),
        left("2026-01-20T17:00:00Z", "l2"),
        left("2026-01-25T17:00:00Z", "l3"),
        left("2026-02-10T17:00:00Z", "l4"),
        # A new count resets the base: 50 on March 15, then one hire.
        headcount("2026-03-15T00:00:00Z", 50),
        hired("2026-03-16T09:00:00Z", "h3"),
    )


@pytest.mark.parametrize(
    ("iso", "expected"),
    [
        ("2025-12-31T11:59:59Z", None),  # before any staff.headcount: unknown
        ("2025-12-31T12:00:00Z", 100),
        ("2026-01-01T00:00:00Z", 100),
        ("2026-01-05T10:00:00Z", 101),
        ("2026-01-11T00:00:00Z", 102),
        ("2026-01-13T00:00:00Z", 101),
        ("2026-02-01T00:00:00Z", 99),
        ("2026-03-01T00:00:00Z", 98),
        ("2026-03-15T12:00:00Z", 50),
        ("2026-03-20T00:00:00Z", 51),
    ],
)
def test_headcount_at(iso: str, expected: int | None) -> None:
    assert staff_state().headcount_at(ms(iso)) == expected


def test_monthly_attrition_with_headcount_changing_during_the_month() -> None:
    g = card("month:2026-01", staff_state())["growth"]
    assert g["headcount_start"] == 100
    assert g["headcount_end"] == 99
    assert g["hires"] == 2
    assert g["leavers"] == 3
    # 3 / mean(100, 99) = 3 / 99.5
    assert g["attrition_month"] == float(Fraction(6, 199))
    assert g["attrition_month_healthy"] is False
    assert g["attrition_month_limit"] == 0.02


def test_monthly_attrition_healthy() -> None:
    g = card("month:2026-02", staff_state())["growth"]
    assert (g["headcount_start"], g["headcount_end"], g["leavers"]) == (99, 98, 1)
    assert g["attrition_month"] == float(Fraction(2, 197))  # 1 / 98.5
    assert g["attrition_month_healthy"] is True


@pytest.mark.parametrize(("moves", "healthy"), [(2, True), (3, False)])
def test_monthly_attrition_limit_is_inclusive(moves: int, healthy: bool) -> None:
    events = [headcount("2026-03-31T12:00:00Z", 100)]
    for i in range(moves):
        events.append(hired(f"2026-04-0{i + 2}T09:00:00Z", f"h{i}"))
        events.append(left(f"2026-04-2{i}T09:00:00Z", f"l{i}"))
    g = card("month:2026-04", state(*events))["growth"]
    assert (g["headcount_start"], g["headcount_end"]) == (100, 100)
    assert g["attrition_month"] == moves / 100
    assert g["attrition_month_healthy"] is healthy


def _year_state(moves: int) -> BusinessState:
    events = [headcount("2025-12-31T12:00:00Z", 100)]
    start = ms("2026-01-01T06:00:00Z")
    for i in range(moves):
        t = start + i * 11 * DAY_MS  # spread over 2026 (the last one on Nov 26 or Dec 7)
        events.append(E(ev.STAFF_LEFT, t, operator_id=f"l{i}"))
        events.append(E(ev.STAFF_HIRED, t + HOUR_MS, operator_id=f"h{i}"))
    return state(*events)


@pytest.mark.parametrize(("moves", "healthy"), [(30, True), (31, False)])
def test_annual_attrition(moves: int, healthy: bool) -> None:
    g = card("month:2026-12", _year_state(moves))["growth"]
    # 12 months: 2026-01-01 .. 2027-01-01; headcount 100 at both ends; `moves` leavers.
    assert g["leavers_12m"] == moves
    assert g["attrition_12m"] == moves / 100
    assert g["attrition_12m_healthy"] is healthy
    assert g["attrition_12m_limit"] == 0.3


def test_annual_attrition_with_headcount_change() -> None:
    b = state(
        headcount("2025-05-31T00:00:00Z", 200),
        *(left(f"2025-{m:02d}-15T12:00:00Z", f"a{m}") for m in range(6, 13)),  # 7 leavers in 2025
        *(left(f"2026-{m:02d}-15T12:00:00Z", f"b{m}") for m in range(1, 8)),  # 7 leavers Jan-Jul 2026
    )
    # month:2026-05: 12 months from 2025-06-01 to 2026-06-01: leavers Jun 2025 .. May 2026 = 7 + 5 = 12;
    # headcount 200 at the start, 200 - 12 = 188 at the end; 12 / 194.
    g = card("month:2026-05", b)["growth"]
    assert g["leavers_12m"] == 12
    assert g["attrition_12m"] == float(Fraction(12, 194))
    assert g["attrition_12m_healthy"] is True
    # month:2026-05 itself: 1 leaver, headcount 189 -> 188: 1 / 188.5
    assert g["attrition_month"] == float(Fraction(2, 377))


def test_attrition_undefined_without_a_known_headcount() -> None:
    """AMBIGUITY: headcount unknown at the window's start (no staff.headcount before it) -> None."""
    g = card("month:2026-01", state(left("2026-01-10T00:00:00Z")))["growth"]
    assert g["attrition_month"] is None
    assert g["attrition_month_healthy"] is None
    g = card("month:2026-06", staff_state())["growth"]
    assert g["attrition_12m"] is None  # the 12 months start 2025-07-01, before the first count


def test_day_period_reports_month_to_date_attrition() -> None:
    """AMBIGUITY: monthly attrition on a *day* period. The code uses the month up to the day's end."""
    g = card("day:2026-01-15", staff_state())["growth"]
    # Jan 1 .. Jan 16 00:00: leaver l1 only; headcount 100 -> 101
    assert g["leavers_month"] == 1
    assert g["attrition_month"] == float(Fraction(2, 201))
    assert g["leavers"] == 0  # none on the day itself
    assert g["headcount_start"] == 101  # 100 + 2 hired - 1 left (Jan 12)
    assert g["headcount_end"] == 101


# --------------------------------------------------------------------------- through the engine


def test_scorecard_in_the_report() -> None:
    t = ms("2026-01-15T09:00:00Z")
    events = [
        orders("2026-01-15", 40, "2000.00"),
        cost("2026-01-15", "500.00"),
        cost("2026-01-16", "100.00"),
        headcount("2025-12-31T12:00:00Z", 100),
        left("2026-01-20T12:00:00Z"),
        # 3 calls on Jan 15: 2 answered, 1 lost -> answer rate 2/3
        E(ev.CALL_OFFERED, t, call_id="c1", queue="q"),
        E(ev.CALL_ANSWERED, t + 5000, call_id="c1", operator_id="A"),
        E(ev.CALL_OFFERED, t, call_id="c2", queue="q"),
        E(ev.CALL_ANSWERED, t + 50000, call_id="c2", operator_id="A"),
        E(ev.CALL_OFFERED, t, call_id="c3", queue="q"),
        E(ev.CALL_LOST, t + 90000, call_id="c3", reason="timeout"),
        # FCR: 2 first contacts on Jan 15, one resolved
        E(
            ev.CONTACT_DISPOSITION,
            t,
            contact_id="k1",
            channel="call",
            operator_id="A",
            resolved=True,
            case_id="K1",
        ),
        E(
            ev.CONTACT_DISPOSITION,
            t,
            contact_id="k2",
            channel="chat",
            operator_id="A",
            resolved=False,
            case_id="K2",
        ),
    ]
    eng = Engine(KpiConfig())
    eng.process_all(events)
    periods = eng.report(DEFAULT)["periods"]
    d15 = periods["day:2026-01-15"]["scorecard"]
    assert d15["customer"]["fcr"] == 0.5
    assert d15["operations"]["answer_rate"] == float(Fraction(2, 3))
    assert d15["finance"]["cost_per_order"] == 12.5
    assert d15["finance"]["cost_per_order_value"] == 0.25
    d16 = periods["day:2026-01-16"]["scorecard"]  # exists for its cost fact alone
    assert d16["finance"]["cost_per_order"] is None
    assert d16["operations"]["answer_rate"] is None
    assert d16["customer"]["fcr"] is None
    m = periods["month:2026-01"]["scorecard"]
    assert m["finance"]["cost_per_order"] == 15.0  # cost 500 + 100, orders only on the 15th: 600 / 40
    assert m["finance"]["cost_per_order_value"] == 0.3  # 600 / 2000
    assert m["operations"]["answer_rate"] == float(Fraction(2, 3))
    assert m["customer"]["fcr"] == 0.5
    assert m["growth"]["attrition_month"] == float(Fraction(2, 199))  # 1 / mean(100, 99)
    assert m["growth"]["attrition_month_healthy"] is True


def test_staff_changes_are_bucketed_by_the_configured_zone() -> None:
    """In Berlin, a leaver at 2026-01-31T23:30Z left on February 1 (00:30 local)."""
    b = state(headcount("2025-12-31T00:00:00Z", 100), left("2026-01-31T23:30:00Z"))
    berlin = KpiConfig(tz="Europe/Berlin")
    jan = scorecard("month:2026-01", {}, b, berlin)["growth"]
    feb = scorecard("month:2026-02", {}, b, berlin)["growth"]
    assert (jan["leavers"], jan["headcount_end"], jan["attrition_month"]) == (0, 100, 0.0)
    assert (feb["leavers"], feb["headcount_start"], feb["headcount_end"]) == (1, 100, 99)
    assert feb["attrition_month"] == float(Fraction(2, 199))
    utc = scorecard("month:2026-01", {}, b, CFG)["growth"]
    assert utc["leavers"] == 1

"""Period keys, bounds and retention (CONTRACT.md section 4; retention as configured in KpiConfig).

Expected instants are worked out by hand from the zones' published rules:
- Europe/Berlin: CET (+01) / CEST (+02); 2026-03-29 02:00 -> 03:00 (01:00Z),
  2026-10-25 03:00 -> 02:00 (01:00Z).
- America/New_York: EST (-05) / EDT (-04); 2026-03-08 02:00 -> 03:00, 2026-11-01 02:00 -> 01:00.
- America/Santiago: -04 / -03; DST starts 2026-09-06 at local midnight (00:00 -> 01:00) and ends
  2026-04-05 at local midnight (24:00 -03 -> 23:00 -04 on April 4).
- Asia/Kathmandu: +05:45 all year.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stream.core import events as ev
from stream.core.config import HOUR_MS, KpiConfig
from stream.core.engine import Engine
from stream.core.events import Event
from stream.core.periods import day_key, is_expired, month_key, period_bounds, period_keys
from stream.core.scoring import DEFAULT

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ids = itertools.count()


def ms(iso: str) -> int:
    return (datetime.fromisoformat(iso.replace("Z", "+00:00")) - _EPOCH) // timedelta(milliseconds=1)


def E(type_: str, ts: int, **kw: Any) -> Event:  # a tiny event factory
    return Event(event_id=f"per-{next(_ids)}", type=type_, ts=ts, **kw)


# --------------------------------------------------------------------------- keys


@pytest.mark.parametrize(
    ("iso", "tz", "day", "month"),
    [
        # UTC: the default zone
        ("2026-01-15T23:59:59.999Z", "UTC", "day:2026-01-15", "month:2026-01"),
        ("2026-01-16T00:00:00.000Z", "UTC", "day:2026-01-16", "month:2026-01"),
        ("2026-01-31T23:59:59.999Z", "UTC", "day:2026-01-31", "month:2026-01"),
        ("2026-02-01T00:00:00.000Z", "UTC", "day:2026-02-01", "month:2026-02"),
        ("2026-12-31T23:59:59.999Z", "UTC", "day:2026-12-31", "month:2026-12"),
        ("2027-01-01T00:00:00.000Z", "UTC", "day:2027-01-01", "month:2027-01"),
        # Berlin in winter (+01): local midnight is 23:00Z the day before
        ("2026-01-15T22:59:59.999Z", "Europe/Berlin", "day:2026-01-15", "month:2026-01"),
        ("2026-01-15T23:00:00.000Z", "Europe/Berlin", "day:2026-01-16", "month:2026-01"),
        ("2026-01-31T22:59:59.999Z", "Europe/Berlin", "day:2026-01-31", "month:2026-01"),
        ("2026-01-31T23:00:00.000Z", "Europe/Berlin", "day:2026-02-01", "month:2026-02"),
        # Berlin in summer (+02)
        ("2026-06-30T21:59:59.999Z", "Europe/Berlin", "day:2026-06-30", "month:2026-06"),
        ("2026-06-30T22:00:00.000Z", "Europe/Berlin", "day:2026-07-01", "month:2026-07"),
        # Berlin around the spring-forward day: midnight before is +01, midnight after is +02
        ("2026-03-28T22:59:59.999Z", "Europe/Berlin", "day:2026-03-28", "month:2026-03"),
        ("2026-03-28T23:00:00.000Z", "Europe/Berlin", "day:2026-03-29", "month:2026-03"),
        ("2026-03-29T00:59:59.999Z", "Europe/Berlin", "day:2026-03-29", "month:2026-03"),  # 01:59:59 CET
        ("2026-03-29T01:00:00.000Z", "Europe/Berlin", "day:2026-03-29", "month:2026-03"),  # 03:00 CEST
        ("2026-03-29T21:59:59.999Z", "Europe/Berlin", "day:2026-03-29", "month:2026-03"),
        ("2026-03-29T22:00:00.000Z", "Europe/Berlin", "day:2026-03-30", "month:2026-03"),
        ("2026-03-31T21:59:59.999Z", "Europe/Berlin", "day:2026-03-31", "month:2026-03"),
        ("2026-03-31T22:00:00.000Z", "Europe/Berlin", "day:2026-04-01", "month:2026-04"),
        # Berlin fall-back day: 25 hours, from 22:00Z to 23:00Z the next day
        ("2026-10-24T21:59:59.999Z", "Europe/Berlin", "day:2026-10-24", "month:2026-10"),
        ("2026-10-24T22:00:00.000Z", "Europe/Berlin", "day:2026-10-25", "month:2026-10"),
        ("2026-10-25T22:59:59.999Z", "Europe/Berlin", "day:2026-10-25", "month:2026-10"),
        ("2026-10-25T23:00:00.000Z", "Europe/Berlin", "day:2026-10-26", "month:2026-10"),
        # New York (-05 in winter, -04 in summer)
        ("2026-01-16T04:59:59.999Z", "America/New_York", "day:2026-01-15", "month:2026-01"),
        ("2026-01-16T05:00:00.000Z", "America/New_York", "day:2026-01-16", "month:2026-01"),
        ("2026-02-01T04:59:59.999Z", "America/New_York", "day:2026-01-31", "month:2026-01"),
        ("2026-02-01T05:00:00.000Z", "America/New_York", "day:2026-02-01", "month:2026-02"),
        ("2026-03-08T04:59:59.999Z", "America/New_York", "day:2026-03-07", "month:2026-03"),
        ("2026-03-08T05:00:00.000Z", "America/New_York", "day:2026-03-08", "month:2026-03"),
        ("2026-03-09T03:59:59.999Z", "America/New_York", "day:2026-03-08", "month:2026-03"),
        ("2026-03-09T04:00:00.000Z", "America/New_York", "day:2026-03-09", "month:2026-03"),
        ("2026-11-01T03:59:59.999Z", "America/New_York", "day:2026-10-31", "month:2026-10"),
        ("2026-11-01T04:00:00.000Z", "America/New_York", "day:2026-11-01", "month:2026-11"),
        ("2026-11-02T04:59:59.999Z", "America/New_York", "day:2026-11-01", "month:2026-11"),
        ("2026-11-02T05:00:00.000Z", "America/New_York", "day:2026-11-02", "month:2026-11"),
        # Kathmandu (+05:45): midnight is not on a whole UTC hour
        ("2026-01-15T18:14:59.999Z", "Asia/Kathmandu", "day:2026-01-15", "month:2026-01"),
        ("2026-01-15T18:15:00.000Z", "Asia/Kathmandu", "day:2026-01-16", "month:2026-01"),
        # Santiago: 2026-09-06 00:00 local does not exist (clocks go 23:59:59.999 -04 -> 01:00 -03)
        ("2026-09-06T03:59:59.999Z", "America/Santiago", "day:2026-09-05", "month:2026-09"),
        ("2026-09-06T04:00:00.000Z", "America/Santiago", "day:2026-09-06", "month:2026-09"),
    ],
)
def test_day_and_month_keys(iso: str, tz: str, day: str, month: str) -> None:
    ts = ms(iso)
    assert period_keys(ts, tz) == (day, month)
    assert day_key(ts, tz) == day
    assert month_key(ts, tz) == month


# --------------------------------------------------------------------------- bounds


@pytest.mark.parametrize(
    ("key", "tz", "start", "end", "hours"),
    [
        ("day:2026-01-15", "UTC", "2026-01-15T00:00:00Z", "2026-01-16T00:00:00Z", 24),
        ("day:2026-01-15", "Europe/Berlin", "2026-01-14T23:00:00Z", "2026-01-15T23:00:00Z", 24),
        ("day:2026-03-29", "Europe/Berlin", "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", 23),
        ("day:2026-10-25", "Europe/Berlin", "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z", 25),
        ("day:2026-03-08", "America/New_York", "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z", 23),
        ("day:2026-11-01", "America/New_York", "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z", 25),
        ("day:2026-09-06", "America/Santiago", "2026-09-06T04:00:00Z", "2026-09-07T03:00:00Z", 23),
        # Santiago falls back at 24:00 on Saturday 2026-04-04: 23:00-24:00 happens twice, the day has 25 h
        ("day:2026-04-04", "America/Santiago", "2026-04-04T03:00:00Z", "2026-04-05T04:00:00Z", 25),
        ("month:2026-01", "UTC", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", 31 * 24),
        ("month:2026-02", "UTC", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", 28 * 24),
        ("month:2028-02", "UTC", "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z", 29 * 24),
        ("month:2026-12", "UTC", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z", 31 * 24),
        ("month:2026-03", "Europe/Berlin", "2026-02-28T23:00:00Z", "2026-03-31T22:00:00Z", 31 * 24 - 1),
        ("month:2026-10", "Europe/Berlin", "2026-09-30T22:00:00Z", "2026-10-31T23:00:00Z", 31 * 24 + 1),
        ("month:2026-12", "America/New_York", "2026-12-01T05:00:00Z", "2027-01-01T05:00:00Z", 31 * 24),
    ],
)
def test_period_bounds(key: str, tz: str, start: str, end: str, hours: int) -> None:
    lo, hi = period_bounds(key, tz)
    assert (lo, hi) == (ms(start), ms(end))
    assert hi - lo == hours * HOUR_MS
    # The bounds agree with the keys: the first instant is inside, the one before is not.
    kind = 0 if key.startswith("day:") else 1
    assert period_keys(lo, tz)[kind] == key
    assert period_keys(hi - 1, tz)[kind] == key
    assert period_keys(lo - 1, tz)[kind] != key
    assert period_keys(hi, tz)[kind] != key


def test_period_bounds_rejects_other_keys() -> None:
    with pytest.raises(ValueError):
        period_bounds("rolling", "UTC")


def test_engine_uses_the_configured_zone() -> None:
    """A call answered at 23:30Z on Jan 15 is on Jan 16 in Berlin and on Jan 15 in New York."""
    t = ms("2026-01-15T23:30:00Z")
    events = [
        E(ev.CALL_OFFERED, t - 10_000, call_id="c1", queue="q"),
        E(ev.CALL_ANSWERED, t, call_id="c1", operator_id="A"),
    ]
    for tz, day in (
        ("Europe/Berlin", "day:2026-01-16"),
        ("America/New_York", "day:2026-01-15"),
        ("UTC", None),
    ):
        eng = Engine(KpiConfig(tz=tz))
        eng.process_all(events)
        keys = set(eng.report(DEFAULT)["periods"])
        assert keys == {day or "day:2026-01-15", "month:2026-01"}, tz


def test_engine_berlin_dst_day_holds_its_23_hours() -> None:
    """Calls answered at the first and last millisecond of Berlin's 23-hour day all land in it."""
    lo, hi = period_bounds("day:2026-03-29", "Europe/Berlin")
    events = []
    for i, t in enumerate((lo, lo + HOUR_MS, hi - 1, hi, lo - 1)):
        events.append(E(ev.CALL_OFFERED, t - 1000, call_id=f"c{i}", queue="q"))
        events.append(E(ev.CALL_ANSWERED, t, call_id=f"c{i}", operator_id="A"))
    eng = Engine(KpiConfig(tz="Europe/Berlin"))
    eng.process_all(events)
    periods = eng.report(DEFAULT)["periods"]
    assert periods["day:2026-03-29"]["center"]["counts"]["offered"] == 3
    assert periods["day:2026-03-28"]["center"]["counts"]["offered"] == 1
    assert periods["day:2026-03-30"]["center"]["counts"]["offered"] == 1
    assert periods["month:2026-03"]["center"]["counts"]["offered"] == 5


# --------------------------------------------------------------------------- retention

W = ms("2026-03-01T12:00:00Z")  # the newest event seen


def test_is_expired_days_relative_to_the_newest_event() -> None:
    """40 days kept: the newest day and the 39 before it (2026-01-21 .. 2026-03-01)."""
    assert not is_expired("day:2026-03-01", W, "UTC", 40, 13)
    assert not is_expired("day:2026-01-22", W, "UTC", 40, 13)
    assert not is_expired("day:2026-01-21", W, "UTC", 40, 13)
    assert is_expired("day:2026-01-20", W, "UTC", 40, 13)
    assert is_expired("day:2025-12-31", W, "UTC", 40, 13)
    assert not is_expired("rolling", W, "UTC", 40, 13)
    assert not is_expired("day:2020-01-01", 0, "UTC", 40, 13)  # nothing seen yet


def test_is_expired_months() -> None:
    """13 months kept: 2025-03 .. 2026-03."""
    assert not is_expired("month:2026-03", W, "UTC", 40, 13)
    assert not is_expired("month:2025-03", W, "UTC", 40, 13)
    assert is_expired("month:2025-02", W, "UTC", 40, 13)
    assert is_expired("month:2024-12", W, "UTC", 40, 13)

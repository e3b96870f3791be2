"""Event-time bounds and the watermark (CONTRACT.md section 1): `future`, `too_late`, no single outlier."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.core import events as ev
from stream.core.config import DAY_MS, HOUR_MS, KpiConfig
from stream.core.engine import Engine
from stream.core.events import Event
from stream.core.eventtime import FromTheFuture, TooLate, Watermark, check_time
from stream.core.periods import is_expired, month_key
from stream.core.scoring import DEFAULT

CFG = KpiConfig()


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


W = ms("2026-03-01T12:00:00Z")  # the newest event time vouched for
NOW = ms("2026-12-01T00:00:00Z")  # the processor's wall clock
_n = iter(range(10**9))


def E(etype: str, ts: int, **f: Any) -> Event:
    return Event(event_id=f"e{next(_n)}", type=etype, ts=ts, **f)


def engine() -> Engine:
    return Engine(KpiConfig(), clock=lambda: NOW / 1000)


def call(eng: Engine, cid: str, ts: int) -> None:
    eng.process(E(ev.CALL_OFFERED, ts - 5000, call_id=cid, queue="q"), "t:0", next(_n))
    eng.process(E(ev.CALL_ANSWERED, ts, call_id=cid, operator_id="A"), "t:0", next(_n))


def test_an_event_beyond_the_wall_clock_plus_skew_is_future() -> None:
    check_time(NOW + HOUR_MS, W, NOW, CFG)  # exactly the allowed skew: accepted
    with pytest.raises(FromTheFuture) as info:
        check_time(NOW + HOUR_MS + 1, W, NOW, CFG)
    assert info.value.reason == "future"
    with pytest.raises(FromTheFuture):
        check_time(ms("2099-01-01T00:00:00Z"), 0, NOW, CFG)  # also on a fresh worker
    check_time(NOW + 5 * HOUR_MS, W, NOW, KpiConfig(max_clock_skew_ms=6 * HOUR_MS))


def test_too_late_means_older_than_the_retention_of_every_period_it_counts_in() -> None:
    # 13 months of months back from March 2026: February 2025 is the newest month out of retention.
    check_time(ms("2025-03-01T00:00:00Z"), W, NOW, CFG)  # its day is long gone, its month is kept
    with pytest.raises(TooLate) as info:
        check_time(ms("2025-02-28T23:59:59Z"), W, NOW, CFG)
    assert info.value.reason == "too_late"
    check_time(ms("1970-01-02T00:00:00Z"), 0, NOW, CFG)  # nothing is too late before event time is known


def test_watermark_is_the_newest_time_vouched_for_by_two_events() -> None:
    wm = Watermark()
    wm.observe(100, "a")
    assert wm.value == 0  # one event alone does not move it
    wm.observe(200, "b")
    assert wm.value == 100
    wm.observe(10**15, "outlier")
    assert wm.value == 200
    wm.observe(10**15, "outlier")  # the same event again vouches for nothing
    assert wm.value == 200
    wm.observe(300, "c")
    assert wm.value == 300
    wm.advance(250)
    assert wm.value == 300  # never goes back
    wm.advance(400)
    assert wm.value == 400


@given(st.lists(st.integers(0, 10**6), min_size=2, max_size=40), st.integers(0, 10**9))
def test_no_single_event_moves_the_watermark(times: list[int], outlier: int) -> None:
    """The watermark with one extra event equals it without, or the newest of the others."""
    base = Watermark()
    for i, t in enumerate(times):
        base.observe(t, f"e{i}")
    with_outlier = Watermark()
    for i, t in enumerate(times):
        with_outlier.observe(t, f"e{i}")
    with_outlier.observe(outlier, "x")
    assert with_outlier.value <= max(times)


def test_one_outlier_makes_no_other_event_too_late_and_deletes_no_period() -> None:
    eng = engine()
    call(eng, "c1", W - 5 * DAY_MS)
    call(eng, "c2", W)
    # A valid event of a phone with a wrong clock: 11 months ahead, yet within the wall-clock bound.
    eng.process(E(ev.CALL_OFFERED, ms("2026-11-30T00:00:00Z"), call_id="x", queue="q"), "t:0", next(_n))
    call(eng, "c3", W - 39 * DAY_MS)  # still counted in its day: the outlier moved nothing
    periods = eng.report(DEFAULT)["periods"]
    assert periods["day:2026-01-21"]["center"]["counts"]["offered"] == 1
    assert periods["day:2026-02-24"]["center"]["counts"]["offered"] == 1
    assert periods["month:2026-03"]["center"]["counts"]["offered"] == 1
    assert eng.too_late == 0


def test_process_all_counts_events_out_of_bounds_and_does_not_use_them() -> None:
    eng = engine()
    old = ms("2024-12-15T00:00:00Z")
    eng.process_all(
        [
            E(ev.CALL_OFFERED, W - 5000, call_id="c1", queue="q"),
            E(ev.CALL_ANSWERED, W, call_id="c1", operator_id="A"),
            E(ev.CALL_OFFERED, old - 5000, call_id="c2", queue="q"),
            E(ev.CALL_ANSWERED, old, call_id="c2", operator_id="A"),
            E(ev.CALL_OFFERED, ms("2099-01-01T00:00:00Z"), call_id="c3", queue="q"),
        ]
    )
    assert (eng.too_late, eng.future) == (2, 1)
    assert set(eng.report(DEFAULT)["periods"]) == {"day:2026-03-01", "month:2026-03"}


def test_the_batch_path_applies_the_same_bounds() -> None:
    events = [
        E(ev.CALL_OFFERED, W - 5000, call_id="c1", queue="q"),
        E(ev.CALL_ANSWERED, W, call_id="c1", operator_id="A"),
        E(ev.CALL_OFFERED, ms("2024-12-15T00:00:00Z"), call_id="c2", queue="q"),
        E(ev.CALL_OFFERED, ms("2099-01-01T00:00:00Z"), call_id="c3", queue="q"),
    ]
    eng = engine()
    refused = eng.process_batch(enumerate(events))
    assert [(n, type(x)) for n, x in refused] == [(2, TooLate), (3, FromTheFuture)]
    inc = engine()
    inc.process_all(events)
    assert eng.report(DEFAULT) == inc.report(DEFAULT)


def test_an_old_event_whose_day_expired_still_counts_in_its_month() -> None:
    eng = engine()
    call(eng, "c1", W)
    call(eng, "c2", W + 1000)
    call(eng, "c3", ms("2025-06-10T10:00:00Z"))  # day out of its 40-day retention, month kept
    periods = eng.report(DEFAULT)["periods"]
    assert "day:2025-06-10" not in periods
    assert periods["month:2025-06"]["center"]["counts"]["offered"] == 1
    assert eng.too_late == 0


ZONES = ["UTC", "Europe/Berlin", "America/Santiago", "Australia/Lord_Howe", "Pacific/Kiritimati"]


def _too_late_is_the_plain_rule(ts: int, watermark: int, months: int, tz: str) -> None:
    cfg = KpiConfig(retention_months=months, tz=tz)
    expired = watermark > 0 and is_expired(month_key(ts, tz), watermark, tz, cfg.retention_days, months)
    try:
        check_time(ts, watermark, NOW, cfg)
    except TooLate:
        assert expired
    else:
        assert not expired


@given(
    ts=st.integers(ms("2025-10-01T00:00:00Z"), ms("2026-06-01T00:00:00Z")),
    offset=st.integers(-100 * DAY_MS, 100 * DAY_MS),
    months=st.integers(1, 3),
    tz=st.sampled_from(ZONES),
)
def test_too_late_is_exactly_the_retention_of_the_events_month(
    ts: int, offset: int, months: int, tz: str
) -> None:
    # check_time skips the month test for events at or after the watermark (their month is kept):
    # the rule it must equal is the plain one, for event times around the watermark (either side,
    # within a few months), any retention, and zones with daylight saving time on both hemispheres.
    _too_late_is_the_plain_rule(ts, max(0, ts + offset), months, tz)


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("months", [1, 2])
def test_too_late_at_month_boundaries_is_the_plain_rule(tz: str, months: int) -> None:
    for boundary in ("2026-03-01", "2026-04-01", "2026-10-01", "2026-11-01"):
        edge = int(
            datetime.fromisoformat(f"{boundary}T00:00:00").replace(tzinfo=ZoneInfo(tz)).timestamp() * 1000
        )
        for ts in (edge - 60_000, edge - 1, edge, edge + 1):
            for watermark in (edge - 1, edge, edge + 60_000, edge + 31 * DAY_MS, 0):
                _too_late_is_the_plain_rule(ts, watermark, months, tz)

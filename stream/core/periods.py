"""Period keys (CONTRACT.md section 4): `rolling`, `day:YYYY-MM-DD`, `month:YYYY-MM`."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from stream.core.config import DAY_MS, MINUTE_MS

ROLLING = "rolling"
DAY_PREFIX = "day:"
MONTH_PREFIX = "month:"


@lru_cache(maxsize=64)
def _zone(tz: str) -> ZoneInfo:
    return ZoneInfo(tz)


# The (day, month) pair of a minute is shared by the 1,440 minutes of a day: one tuple per day.
_PAIRS: dict[tuple[str, str], tuple[str, str]] = {}


@lru_cache(maxsize=65536)
def _keys_for_minute(minute: int, tz: str) -> tuple[str, str]:
    # Zone offsets only change on minute boundaries, so one look-up per minute is exact.
    local = datetime.fromtimestamp(minute * 60, tz=_zone(tz))
    pair = (f"{DAY_PREFIX}{local:%Y-%m-%d}", f"{MONTH_PREFIX}{local:%Y-%m}")
    if len(_PAIRS) > 100_000:  # bounded: a long backfill of many years starts over
        _PAIRS.clear()
    return _PAIRS.setdefault(pair, pair)


def period_keys(ts_ms: int, tz: str) -> tuple[str, str]:
    """The day and month keys holding the instant `ts_ms` in zone `tz`."""
    return _keys_for_minute(ts_ms // MINUTE_MS, tz)


def day_key(ts_ms: int, tz: str) -> str:
    return period_keys(ts_ms, tz)[0]


def month_key(ts_ms: int, tz: str) -> str:
    return period_keys(ts_ms, tz)[1]


def _local_midnight_ms(d: date, tz: str) -> int:
    # Midnight may not exist on some DST days; fold=0 and normalisation give the first instant of the day.
    local = datetime(d.year, d.month, d.day, tzinfo=_zone(tz))
    return int(local.astimezone(UTC).timestamp() * 1000)


def period_bounds(period_key: str, tz: str) -> tuple[int, int]:
    """[start, end) of a day or month period in epoch milliseconds (DST days are 23 or 25 hours)."""
    if period_key.startswith(DAY_PREFIX):
        d = date.fromisoformat(period_key[len(DAY_PREFIX) :])
        return _local_midnight_ms(d, tz), _local_midnight_ms(d + timedelta(days=1), tz)
    if period_key.startswith(MONTH_PREFIX):
        y, m = (int(p) for p in period_key[len(MONTH_PREFIX) :].split("-"))
        start = date(y, m, 1)
        nxt = date(y + (m == 12), m % 12 + 1, 1)
        return _local_midnight_ms(start, tz), _local_midnight_ms(nxt, tz)
    raise ValueError(f"not a day or month period key: {period_key!r}")


def period_start_iso(period_key: str, tz: str) -> str:
    """The period's first instant as RFC 3339 in its zone (for `period_start` in outputs)."""
    start, _ = period_bounds(period_key, tz)
    return datetime.fromtimestamp(start / 1000, tz=_zone(tz)).isoformat(timespec="milliseconds")


def period_kind(period_key: str) -> str:
    """'rolling', 'day' or 'month'."""
    if period_key == ROLLING:
        return ROLLING
    return period_key.split(":", 1)[0]


@lru_cache(maxsize=1024)
def _cutoffs(minute: int, tz: str, retention_days: int, retention_months: int) -> tuple[str, str]:
    """The oldest day key and month key still retained when the newest event is in `minute`."""
    day, month = _keys_for_minute(minute, tz)
    oldest = date.fromisoformat(day[len(DAY_PREFIX) :]) - timedelta(days=retention_days - 1)
    y, m = (int(p) for p in month[len(MONTH_PREFIX) :].split("-"))
    idx = y * 12 + (m - 1) - (retention_months - 1)
    return f"{DAY_PREFIX}{oldest:%Y-%m-%d}", f"{MONTH_PREFIX}{idx // 12:04d}-{idx % 12 + 1:02d}"


def is_expired(
    period_key: str, watermark_ms: int, tz: str, retention_days: int, retention_months: int
) -> bool:
    """True when a day/month period has fallen out of retention relative to event time `watermark_ms`."""
    if period_key == ROLLING or watermark_ms <= 0:
        return False
    oldest_day, oldest_month = _cutoffs(watermark_ms // MINUTE_MS, tz, retention_days, retention_months)
    if period_key.startswith(DAY_PREFIX):
        return period_key < oldest_day
    return period_key < oldest_month


def too_late(ts_ms: int, watermark_ms: int, tz: str, retention_days: int, retention_months: int) -> bool:
    """An event whose day is already out of retention can no longer be counted."""
    if watermark_ms <= 0 or ts_ms >= watermark_ms - DAY_MS:
        return False
    return is_expired(day_key(ts_ms, tz), watermark_ms, tz, retention_days, retention_months)

"""The one formatter of instants: RFC 3339 in UTC with milliseconds (every `ts` and `updated_at`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_ts(ms: int) -> str:
    """RFC 3339 in UTC with milliseconds and `Z`: 1768467600250 -> '2026-01-15T09:00:00.250Z'.

    Integer arithmetic on a timedelta, not a float timestamp: exact to the millisecond in any year.
    """
    dt = _EPOCH + timedelta(milliseconds=ms)
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
        f".{dt.microsecond // 1000:03d}Z"
    )

"""Event times: RFC 3339 text or epoch seconds to milliseconds (`parse_ts`), and back (`format_ts`).

Timestamps are compared in milliseconds: extra fractional digits are truncated, never rounded.
RFC 3339 allows ``t``/``z`` in lower case, so they are accepted; a space instead of ``T``, a
missing offset and a leap second (``:60``) are not. The range is
1970-01-01T00:00:00.000Z .. 9999-12-31T23:59:59.999Z.
"""

from __future__ import annotations

import decimal
import re
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Final

from schemas.describe import show
from stream.core.timefmt import format_ts as format_ts  # the one formatter lives in the core
from stream.errors import InvalidEvent

__all__ = [
    "DECIMAL_CONTEXT",
    "MAX_TS_MS",
    "MAX_TS_SECONDS_EXCLUSIVE",
    "MAX_YEAR",
    "MIN_YEAR",
    "format_ts",
    "parse_ts",
    "valid_date",
]

MIN_YEAR: Final = 1970
MAX_YEAR: Final = 9999
# Timestamps: 1970-01-01T00:00:00.000Z .. 9999-12-31T23:59:59.999Z, in ms.
MAX_TS_SECONDS_EXCLUSIVE: Final = 253402300800
MAX_TS_MS: Final = MAX_TS_SECONDS_EXCLUSIVE * 1000 - 1
_DAYS_IN_MONTH: Final = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
DECIMAL_CONTEXT: Final = decimal.Context(prec=60, rounding=ROUND_DOWN, Emax=999999, Emin=-999999)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def valid_date(y: int, m: int, d: int) -> bool:
    if not (MIN_YEAR <= y <= MAX_YEAR and 1 <= m <= 12 and d >= 1):
        return False
    if m == 2 and y % 4 == 0 and (y % 100 != 0 or y % 400 == 0):
        return d <= 29
    return d <= _DAYS_IN_MONTH[m]


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _bad_ts(detail: str) -> InvalidEvent:
    return InvalidEvent("bad_timestamp", detail, "ts")


# Fast path: most timestamps of a stream share their minute, so the milliseconds of each
# "YYYY-MM-DDTHH:MM" prefix (before the offset) are cached; -1 marks an impossible one.
_TS_FAST_RE: Final = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}):([0-9]{2})(?:\.([0-9]+))?(?:[Zz]|([+-][0-9]{2}:[0-9]{2}))"
)
_MINUTE_CACHE: dict[str, int] = {}
_MINUTE_CACHE_MAX: Final = 4096
_OFFSET_CACHE: dict[str, int] = {}


def _minute_ms(prefix: str) -> int:
    ms = _MINUTE_CACHE.get(prefix)
    if ms is None:
        y, mo, d, h, mi = (
            int(prefix[0:4]),
            int(prefix[5:7]),
            int(prefix[8:10]),
            int(prefix[11:13]),
            int(prefix[14:16]),
        )
        if valid_date(y, mo, d) and h <= 23 and mi <= 59:
            ms = ((_days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60_000
        else:
            ms = -1
        if len(_MINUTE_CACHE) >= _MINUTE_CACHE_MAX:
            _MINUTE_CACHE.clear()
        _MINUTE_CACHE[prefix] = ms
    return ms


def _offset_ms(offset: str) -> int:
    ms = _OFFSET_CACHE.get(offset)
    if ms is None:
        oh, om = int(offset[1:3]), int(offset[4:6])
        ms = -1 if oh > 23 or om > 59 else (oh * 60 + om) * 60_000 * (1 if offset[0] == "+" else -1)
        if len(_OFFSET_CACHE) < 512:  # there are fewer than 2 * 24 * 60 valid offsets anyway
            _OFFSET_CACHE[offset] = ms
    return ms


def _parse_ts_string(value: str) -> int:
    # The canonical form "YYYY-MM-DDTHH:MM:SS.mmmZ" of a minute already seen (so its prefix was
    # checked by the regex below when it entered the cache): only the seconds and milliseconds
    # need reading.
    if len(value) == 24 and value[23] == "Z" and value[19] == "." and value[16] == ":":
        minute = _MINUTE_CACHE.get(value[:16])
        if minute is not None and minute >= 0:
            digits = value[17:19] + value[20:23]
            if digits.isdigit() and digits.isascii():
                seconds = int(digits[:2])
                if seconds <= 59:
                    total = minute + seconds * 1000 + int(digits[2:])
                    if total <= MAX_TS_MS:
                        return total
    m = _TS_FAST_RE.fullmatch(value)
    if m is None:
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?", value):
            raise _bad_ts(f"timestamp {show(value)} has no offset: add 'Z' or '+hh:mm'")
        raise _bad_ts(f"{show(value)} is not an RFC 3339 timestamp like 2026-01-15T09:00:00.250Z")
    prefix, sec, frac, offset = m.groups()
    ms = _minute_ms(prefix)
    if ms < 0:
        raise _bad_ts(f"{show(value)} is not a real date and time between years {MIN_YEAR} and {MAX_YEAR}")
    s = int(sec)
    if s > 59:
        raise _bad_ts(f"{show(value)} has an impossible time of day (leap seconds are not accepted)")
    ms += s * 1000
    if frac is not None:
        ms += int((frac + "00")[:3])
    if offset is not None:
        off = _offset_ms(offset)
        if off == -1:
            raise _bad_ts(f"{show(value)} has an impossible UTC offset")
        ms -= off
    if not 0 <= ms <= MAX_TS_MS:
        raise _bad_ts(f"{show(value)} is outside 1970-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z")
    return ms


def _parse_ts_decimal(value: Decimal) -> int:
    if not value.is_finite():
        raise _bad_ts(f"{value} is not a finite number of seconds")
    if value < 0 or value >= MAX_TS_SECONDS_EXCLUSIVE:
        raise _bad_ts(f"{show(value)} seconds since the epoch is outside years {MIN_YEAR}..{MAX_YEAR}")
    # Exact: shift the decimal point (the context rounds toward zero, and keeps 60 digits: far more
    # than the 15 a millisecond needs), then int() truncates the fraction of a millisecond.
    return int(value.scaleb(3, context=DECIMAL_CONTEXT))


def parse_ts(value: object) -> int:
    """Milliseconds since the epoch (UTC) of an event time, or `InvalidEvent('bad_timestamp')`.

    Accepts an RFC 3339 string with an offset (fractional seconds of any length, truncated to
    milliseconds) or a number of seconds since the epoch (int, Decimal, or float; floats go through
    their shortest decimal representation, so 1768467600.25 is 1768467600250 exactly).
    """
    t = type(value)
    if t is str:
        return _parse_ts_string(value)  # type: ignore[arg-type]
    if t is int:
        v: int = value  # type: ignore[assignment]
        if not 0 <= v < MAX_TS_SECONDS_EXCLUSIVE:
            raise _bad_ts(f"{show(v)} seconds since the epoch is outside years {MIN_YEAR}..{MAX_YEAR}")
        return v * 1000
    if isinstance(value, Decimal):
        return _parse_ts_decimal(value)
    if t is float:
        f: float = value  # type: ignore[assignment]
        if f != f or f in (float("inf"), float("-inf")):
            raise _bad_ts(f"{f} is not a finite number of seconds")
        return _parse_ts_decimal(Decimal(repr(f)))
    raise _bad_ts(f"ts must be an RFC 3339 string or a number of seconds since the epoch, got {show(value)}")

"""Importers: a PBX's own records turned into contract input events (CONTRACT.md section 1).

Each importer is a pure function from the lines of a file to an `ImportResult`: the events, as
JSON-ready dicts in the order they were derived, every line that could not be used (its line
number and why), and counts of what was ignored or reconstructed. Nothing here is fatal for a
single bad line, and every emitted event has passed `schemas.parse.parse_event`, so the output
always validates. See docs/importers.md.

This module holds what both importers share: the result types and the time helpers (an emitted
``ts`` is always RFC 3339 in UTC with milliseconds and ``Z``; a naive local time is placed in a
named IANA zone first, never emitted as is).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schemas.parse import parse_event
from schemas.timestamps import MAX_TS_MS, format_ts
from stream.errors import InvalidEvent

__all__ = [
    "ImportResult",
    "LineError",
    "Skipped",
    "check_event",
    "epoch_to_ms",
    "load_zone",
    "localize",
    "make_event",
    "to_jsonl",
]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)
_EPOCH_RE: Final = re.compile(r"\d{1,17}(?:\.\d+)?")
# An epoch at or above 1e11 is not seconds (that would be year 5138): it is milliseconds; at or
# above 1e14 (year 5138 in milliseconds) it is microseconds.
_MS_FROM: Final = Decimal(10) ** 11
_US_FROM: Final = Decimal(10) ** 14


class LineError(Exception):
    """One input line or row cannot be used; `reason` is a short code, `detail` the explanation."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Skipped:
    """A line (1-based physical line number) that produced no events, and why."""

    line: int
    reason: str
    detail: str


@dataclass(slots=True)
class ImportResult:
    """What an importer made of a file."""

    events: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    # Source records deliberately not turned into events (by event name or kind), with counts.
    ignored: Counter[str] = field(default_factory=Counter)
    # Things worth knowing that are not errors (e.g. "call.offered reconstructed from the wait").
    notes: Counter[str] = field(default_factory=Counter)


def load_zone(name: str) -> ZoneInfo:
    """The IANA zone `name`, or ValueError naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def epoch_to_ms(text: str) -> int | None:
    """Milliseconds of an epoch number (seconds, milliseconds or microseconds), or None if not one.

    Fractions beyond the millisecond are truncated, as the contract compares at millisecond
    precision.
    """
    if not _EPOCH_RE.fullmatch(text):
        return None
    try:
        v = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex admits only decimals
        return None
    if v >= _US_FROM:
        return int(v) // 1000
    if v >= _MS_FROM:
        return int(v)
    return int(v.scaleb(3))


def localize(dt: datetime, zone: ZoneInfo, notes: Counter[str] | None = None) -> int:
    """Milliseconds since the epoch of `dt`; a naive `dt` is a wall-clock time in `zone`.

    A wall-clock time that does not exist in the zone (the hour skipped when clocks go forward)
    raises LineError; one that exists twice (the hour repeated when clocks go back) is taken as the
    first of the two, and counted in `notes`.
    """
    try:
        return _localize(dt, zone, notes)
    except OverflowError:
        raise LineError("bad_time", f"{dt.isoformat(sep=' ')} is out of range") from None


def _localize(dt: datetime, zone: ZoneInfo, notes: Counter[str] | None) -> int:
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        aware = dt.replace(tzinfo=zone, fold=0)
        back = aware.astimezone(UTC).astimezone(zone)
        if back.replace(tzinfo=None) != dt.replace(fold=0):
            raise LineError(
                "bad_time", f"{dt.isoformat(sep=' ')} does not exist in {zone.key} (clocks went forward)"
            )
        if notes is not None and aware.utcoffset() != dt.replace(tzinfo=zone, fold=1).utcoffset():
            notes[f"ambiguous local time in {zone.key} taken as the first occurrence"] += 1
        dt = aware
    return (dt - _EPOCH) // _MS


def check_event(event: dict[str, Any]) -> dict[str, Any]:
    """`event` if it is a valid contract event, else LineError('invalid_event')."""
    try:
        parse_event(json.dumps(event, ensure_ascii=False))
    except InvalidEvent as exc:
        raise LineError("invalid_event", f"{event.get('type')}: {exc.reason}: {exc.detail}") from None
    return event


def make_event(event_id: str, etype: str, ts_ms: int, **fields: Any) -> dict[str, Any]:
    """A contract event dict with an RFC 3339 UTC timestamp; None-valued fields are left out."""
    if not 0 <= ts_ms <= MAX_TS_MS:
        raise LineError("bad_time", f"{etype} time is outside 1970..9999 ({ts_ms} ms since the epoch)")
    out: dict[str, Any] = {"event_id": event_id, "type": etype, "ts": format_ts(ts_ms)}
    out.update({k: v for k, v in fields.items() if v is not None})
    return out


def to_jsonl(events: Iterable[dict[str, Any]]) -> Iterator[str]:
    """One compact JSON line (with its newline) per event."""
    for e in events:
        yield json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n"

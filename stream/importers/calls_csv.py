"""A CSV of calls, one row per call (a PBX or ACD report export), to contract events.

Columns are named by ``--map COLUMN=FIELD,...`` (a mapping of the file's header names to these
fields; a column not mapped is not read):

============  ===========================================================================
field         meaning
============  ===========================================================================
call_id       the call's id (default: ``row-{line number}``)
queue         the queue the call waited in (required)
entered       when the call entered the queue (required)
answered      when an operator answered it (empty when it was not answered)
abandoned     when it left the queue unanswered (abandon or loss time)
ended         when the call ended
operator_id   the operator (agent) who answered it
customer_id   the caller (caller id, customer number)
outcome       the row's outcome: its value is matched, case-insensitively, against the
              answered / abandoned / lost value lists (configurable)
============  ===========================================================================

Events of a row (``event_id`` = ``csv-{call_id}-{line}-{n}``):

- always ``call.offered`` {call_id, queue, customer_id?} at ``entered``;
- answered: ``call.ringing`` and ``call.answered`` {operator_id} at ``answered`` (the ring start is
  not in such a file: the ring is taken to start when it was answered), then ``call.ended`` at
  ``ended`` when that is set;
- abandoned: ``call.abandoned`` at ``abandoned`` (else ``ended``); its operator_id only with
  ``abandoned_at_agent`` (a row does not say whether the call was ringing at its agent when the
  caller hung up, so by default it is not charged to anyone);
- lost: ``call.lost`` {reason} at ``abandoned`` (else ``ended``), reason = the outcome value
  lower-cased (``timeout``...), or ``lost`` without an outcome column.

Without an outcome column the outcome is inferred: an ``answered`` time means answered, else an
``abandoned`` time means abandoned; anything else cannot be classified and the row is skipped.
``call.ended`` needs an operator in the contract, so unanswered calls get none.

Times: ISO 8601 (``2026-01-15T10:00:00+01:00``, ``2026-01-15 10:00:00``), epoch seconds (or
milliseconds, 10**11 and above), or the ``time_format`` strptime pattern when one is given. A time
without an offset is wall clock in ``tz`` (default UTC) and converted; a wall-clock time that does
not exist there (clocks going forward) skips the row, one that exists twice (clocks going back) is
taken as the first. Empty cells, ``NULL``, ``-``, ``0`` and ``0000-00-00 00:00:00`` mean
"no time"; in the other columns an empty cell, ``NULL`` or ``NONE`` means "no value".

A row is skipped (and reported) when a required value is missing, a time cannot be read, the
outcome value is in none of the lists, the times are out of order (answered or left before
entered), or the outcome needs a time the row does not have.

What such a file cannot tell: which operators the call rang at without answering (no missed calls,
so operators' presented counts only their answered calls), the ring start, dispositions (no FCR),
and anything about chat or e-mail.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from stream.importers import ImportResult, LineError, Skipped, check_event, epoch_to_ms, load_zone, localize
from stream.importers import make_event as _make

__all__ = [
    "DEFAULT_ABANDONED",
    "DEFAULT_ANSWERED",
    "DEFAULT_LOST",
    "FIELDS",
    "CsvOptions",
    "convert",
    "iter_events",
    "parse_map",
    "parse_values",
]

FIELDS: Final = (
    "call_id",
    "queue",
    "entered",
    "answered",
    "abandoned",
    "ended",
    "operator_id",
    "customer_id",
    "outcome",
)
TIME_FIELDS: Final = ("entered", "answered", "abandoned", "ended")
REQUIRED: Final = ("queue", "entered")
DEFAULT_ANSWERED: Final = frozenset(
    {"answered", "answer", "connected", "completed", "completeagent", "completecaller"}
)
DEFAULT_ABANDONED: Final = frozenset({"abandoned", "abandon"})
DEFAULT_LOST: Final = frozenset(
    {"lost", "timeout", "exitwithtimeout", "exitempty", "exitwithkey", "no_agents", "overflow", "failed"}
)
# Cells that mean "no value": for times (a PBX export writes 0 or a zero date for "never"), and
# for the other fields ("NONE" is how Asterisk writes "no agent").
NULL_TIMES: Final = frozenset({"", "null", "none", "-", "0", "n/a", "0000-00-00 00:00:00"})
NULL_VALUES: Final = frozenset({"", "null", "none"})


def parse_map(specs: Sequence[str]) -> dict[str, str]:
    """``["Col A=queue,Col B=entered", ...]`` -> {field: column}; ValueError when malformed."""
    out: dict[str, str] = {}
    for spec in specs:
        for item in spec.split(","):
            if not item.strip():
                continue
            column, sep, fld = item.rpartition("=")
            column, fld = column.strip(), fld.strip()
            if not sep or not column:
                raise ValueError(f"--map item {item.strip()!r} is not COLUMN=FIELD")
            if fld not in FIELDS:
                raise ValueError(
                    f"--map item {item.strip()!r}: unknown field {fld!r}; fields: {', '.join(FIELDS)}"
                )
            if fld in out and out[fld] != column:
                raise ValueError(f"--map: field {fld!r} mapped twice ({out[fld]!r} and {column!r})")
            out[fld] = column
    missing = [f for f in REQUIRED if f not in out]
    if missing:
        raise ValueError(f"--map must name a column for: {', '.join(missing)}")
    if not {"outcome", "answered", "abandoned"} & set(out):
        raise ValueError("--map must name an outcome column or an answered/abandoned time column")
    return out


def parse_values(text: str) -> frozenset[str]:
    """A comma-separated list of outcome values, compared case-insensitively."""
    values = frozenset(v.strip().lower() for v in text.split(",") if v.strip())
    if not values:
        raise ValueError("an outcome value list must not be empty")
    return values


@dataclass(frozen=True, slots=True)
class CsvOptions:
    """How to read the file; `mapping` is {field: column} (see `parse_map`)."""

    mapping: Mapping[str, str]
    tz: str = "UTC"
    time_format: str | None = None
    answered_values: frozenset[str] = DEFAULT_ANSWERED
    abandoned_values: frozenset[str] = DEFAULT_ABANDONED
    lost_values: frozenset[str] = DEFAULT_LOST
    abandoned_at_agent: bool = False
    delimiter: str = ","

    def __post_init__(self) -> None:
        overlap = (
            (self.answered_values & self.abandoned_values)
            | (self.answered_values & self.lost_values)
            | (self.abandoned_values & self.lost_values)
        )
        if overlap:
            raise ValueError(f"outcome values in more than one list: {', '.join(sorted(overlap))}")


@dataclass(slots=True)
class _Row:
    line: int
    cells: dict[str, str] = field(default_factory=dict)  # field -> raw cell, stripped

    def text(self, fld: str) -> str | None:
        v = self.cells.get(fld, "")
        nulls = NULL_TIMES if fld in TIME_FIELDS else NULL_VALUES
        return None if v.lower() in nulls else v


def _time(row: _Row, fld: str, opts: CsvOptions, zone: ZoneInfo, notes: Counter[str]) -> int | None:
    text = row.text(fld)
    if text is None:
        return None
    try:
        if opts.time_format is not None:
            dt = datetime.strptime(text, opts.time_format)  # noqa: DTZ007 - localized just below
        else:
            ms = epoch_to_ms(text)
            if ms is not None:
                return ms
            dt = datetime.fromisoformat(text)
    except ValueError:
        want = f"the format {opts.time_format!r}" if opts.time_format else "ISO 8601 or epoch seconds"
        raise LineError("bad_time", f"{fld} {text[:40]!r} is not a time in {want}") from None
    return localize(dt, zone, notes)


def _outcome(row: _Row, opts: CsvOptions, answered: int | None, left: int | None) -> str:
    raw = row.text("outcome")
    if "outcome" in opts.mapping and raw is not None:
        v = raw.lower()
        if v in opts.answered_values:
            return "answered"
        if v in opts.abandoned_values:
            return "abandoned"
        if v in opts.lost_values:
            return "lost"
        raise LineError(
            "unknown_outcome", f"outcome {raw[:40]!r} is in none of the answered/abandoned/lost lists"
        )
    if answered is not None:
        return "answered"
    if left is not None:
        return "abandoned"
    raise LineError("no_outcome", "no outcome value and neither an answered nor an abandoned time")


def _row_events(row: _Row, opts: CsvOptions, zone: ZoneInfo, notes: Counter[str]) -> list[dict[str, Any]]:
    for fld in REQUIRED:
        if row.text(fld) is None:
            raise LineError("missing_field", f"{fld} (column {opts.mapping[fld]!r}) is empty")
    call_id = row.text("call_id") or f"row-{row.line}"
    queue = row.text("queue")
    times = {f: _time(row, f, opts, zone, notes) for f in TIME_FIELDS}
    entered = times["entered"]
    assert entered is not None and queue is not None  # checked above
    answered, left, ended = times["answered"], times["abandoned"], times["ended"]
    outcome = _outcome(row, opts, answered, left)
    operator = row.text("operator_id")
    for name in ("answered", "abandoned", "ended"):
        t = times[name]
        if t is not None and t < entered:
            raise LineError("bad_order", f"{name} is before entered")

    out: list[tuple[str, int, dict[str, Any]]] = [
        (
            "call.offered",
            entered,
            {"call_id": call_id, "queue": queue, "customer_id": row.text("customer_id")},
        )
    ]
    if outcome == "answered":
        if answered is None:
            raise LineError("missing_field", "an answered call has no answered time")
        if operator is None:
            raise LineError("missing_field", "an answered call has no operator")
        out.append(("call.ringing", answered, {"call_id": call_id, "operator_id": operator}))
        out.append(("call.answered", answered, {"call_id": call_id, "operator_id": operator}))
        if ended is not None:
            if ended < answered:
                raise LineError("bad_order", "ended is before answered")
            out.append(("call.ended", ended, {"call_id": call_id, "operator_id": operator}))
    else:
        at = left if left is not None else ended
        if at is None:
            raise LineError("missing_field", f"a call {outcome} has neither an abandoned nor an ended time")
        if outcome == "abandoned":
            op = operator if opts.abandoned_at_agent else None
            out.append(("call.abandoned", at, {"call_id": call_id, "operator_id": op}))
        else:
            raw = row.text("outcome")
            reason = raw.lower() if "outcome" in opts.mapping and raw is not None else "lost"
            out.append(("call.lost", at, {"call_id": call_id, "reason": reason}))
    return [
        check_event(_make(f"csv-{call_id}-{row.line}-{n}", etype, ts, **fields))
        for n, (etype, ts, fields) in enumerate(out)
    ]


def iter_events(lines: Iterable[str], options: CsvOptions, result: ImportResult) -> Iterator[dict[str, Any]]:
    """The contract events derived from a CSV of calls, row by row; rows it cannot use and notes
    go into `result`.

    The first row is the header; it is read at once, and ValueError is raised at once when it lacks
    a mapped column or the time zone is unknown (nothing could be read then).
    """
    zone = load_zone(options.tz)
    reader = csv.reader(lines, delimiter=options.delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ValueError("the file is empty: no header row") from None
    if header and header[0].startswith("\ufeff"):
        header[0] = header[0][1:]
    index: dict[str, int] = {}
    missing: list[str] = []
    for fld, column in options.mapping.items():
        if column in header:
            index[fld] = header.index(column)
        else:
            missing.append(column)
    if missing:
        raise ValueError(
            f"column(s) {', '.join(repr(c) for c in missing)} not in the header; it has: "
            + ", ".join(repr(h) for h in header)
        )
    return _rows(reader, index, options, zone, result)


def _rows(
    reader: Any, index: dict[str, int], options: CsvOptions, zone: ZoneInfo, result: ImportResult
) -> Iterator[dict[str, Any]]:
    width = max(index.values()) + 1
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            result.skipped.append(Skipped(start, "bad_csv", str(exc)))
            continue
        if not any(c.strip() for c in cells):
            continue
        row = _Row(start)
        try:
            if len(cells) < width:
                raise LineError("too_few_fields", f"{len(cells)} columns; the mapped columns need {width}")
            row.cells = {fld: cells[i].strip() for fld, i in index.items()}
            events = _row_events(row, options, zone, result.notes)
        except LineError as exc:
            result.skipped.append(Skipped(start, exc.reason, exc.detail))
            continue
        yield from events


def convert(lines: Iterable[str], options: CsvOptions) -> ImportResult:
    """Every contract event derived from a CSV of calls, with the rows it could not use (see
    `iter_events`, which does the same without holding the events)."""
    result = ImportResult()
    result.events.extend(iter_events(lines, options, result))
    return result

"""Strict validation of input events (CONTRACT.md section 1) and the dead-letter value (section 5).

`parse_event` turns one raw message (a Kafka value or one JSON line) into the normalised
`stream.core.events.Event`, or raises `InvalidEvent` whose `reason` is one of `REASONS`:

- ``too_large``     the raw message is longer than ``max_bytes`` bytes of UTF-8
- ``invalid_json``  not UTF-8, not JSON (NaN/Infinity, duplicate keys and nesting too deep
                    included), or not a JSON object
- ``missing_field`` a required field is absent or null
- ``unknown_type``  ``type`` is a string but not one of the contract's event types
- ``bad_timestamp`` ``ts`` is not an RFC 3339 string with an offset nor a number of seconds
                    since the epoch, or lies outside 1970-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z
- ``invalid_field`` a field has the wrong JSON type or an unacceptable value
- ``wrong_topic``   a known type arrived on another stream's topic (only when ``stream`` is given)

Rules beyond the contract's table, chosen here and documented in docs/:

- Unknown extra fields are ignored (forward compatible: producers may add fields).
- ``null`` is the same as an absent field: fine for an optional field, ``missing_field`` for a
  required one.
- Ids and free-text values (``reason``) are non-empty strings of at most 256 characters; numbers
  are not accepted as ids. Lone surrogates (``"\\ud800"``) are rejected: they cannot be encoded.
- ``call.lost`` ``reason`` is free text (the contract's list is illustrative), not an enum.
- ``count`` is an integer 0 .. 2**53-1; as in JSON Schema, a number with a zero fraction (``5.0``)
  is an integer. ``amount`` is a number 0 <= amount < 10**15, kept exactly as decimal text.
- Timestamps are compared in milliseconds: extra fractional digits are truncated, never rounded.
  RFC 3339 allows ``t``/``z`` in lower case, so they are accepted; a space instead of ``T``, a
  missing offset and a leap second (``:60``) are not.
"""

from __future__ import annotations

import decimal
import json
import re
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any, Final

import orjson as _orjson

from stream.core.events import (
    AGENT_STATES,
    CHANNELS,
    SENDERS,
    STREAM_OF_TYPE,
    STREAMS,
    Event,
)
from stream.errors import InvalidEvent

__all__ = [
    "DEAD_LETTER_RAW_BYTES",
    "DEAD_LETTER_REASONS",
    "DEFAULT_MAX_BYTES",
    "MAX_ID_LENGTH",
    "REASONS",
    "TYPE_FIELDS",
    "FieldSpec",
    "dead_letter",
    "format_ts",
    "parse_event",
    "parse_ts",
]

# --------------------------------------------------------------------------------------------
# Constants

REASONS: Final[tuple[str, ...]] = (
    "too_large",
    "invalid_json",
    "missing_field",
    "unknown_type",
    "bad_timestamp",
    "invalid_field",
    "wrong_topic",
)
# Reasons a dead letter may carry: parse_event's, plus those the pipeline adds itself
# (agents/pipeline.py: an event older than the allowed lateness; a call with no call.offered).
DEAD_LETTER_REASONS: Final[tuple[str, ...]] = (*REASONS, "future", "too_late", "orphan")
DEFAULT_MAX_BYTES: Final = 65536
DEAD_LETTER_RAW_BYTES: Final = 4096
MAX_ID_LENGTH: Final = 256
MAX_COUNT: Final = 2**53 - 1  # the largest integer every JSON consumer reads exactly
MAX_AMOUNT_EXCLUSIVE: Final = 10**15
MIN_YEAR: Final = 1970
MAX_YEAR: Final = 9999
# Timestamps: 1970-01-01T00:00:00.000Z .. 9999-12-31T23:59:59.999Z, in ms.
MAX_TS_SECONDS_EXCLUSIVE: Final = 253402300800
MAX_TS_MS: Final = MAX_TS_SECONDS_EXCLUSIVE * 1000 - 1

# Field kinds.
ID: Final = "id"  # non-empty string, <= 256 characters
TEXT: Final = "text"  # same constraints as an id, but free text
ENUM: Final = "enum"
BOOL: Final = "bool"
DATE: Final = "date"  # YYYY-MM-DD, a real calendar date
COUNT: Final = "count"
AMOUNT: Final = "amount"
ID_LIST: Final = "id_list"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One type-specific field: the single definition both the validator and the JSON Schema use."""

    name: str
    kind: str
    required: bool = True
    choices: tuple[str, ...] = ()
    description: str = ""


def _f(
    name: str, kind: str = ID, required: bool = True, choices: tuple[str, ...] = (), d: str = ""
) -> FieldSpec:
    return FieldSpec(name, kind, required, choices, d)


# The contract's table, in its order. `?` fields are required=False.
TYPE_FIELDS: Final[dict[str, tuple[FieldSpec, ...]]] = {
    "call.offered": (
        _f("call_id"),
        _f("queue"),
        _f("customer_id", required=False),
        _f("case_id", required=False),
    ),
    "call.ringing": (_f("call_id"), _f("operator_id")),
    "call.missed": (_f("call_id"), _f("operator_id")),
    "call.answered": (_f("call_id"), _f("operator_id")),
    "call.abandoned": (
        _f("call_id"),
        _f("operator_id", required=False, d="set when the call was ringing at this operator"),
    ),
    "call.lost": (
        _f("call_id"),
        _f("reason", TEXT, d="why the call left the queue unanswered (timeout, overflow, no agents, error)"),
    ),
    "call.ended": (_f("call_id"), _f("operator_id")),
    "chat.started": (_f("chat_id"), _f("queue"), _f("customer_id", required=False)),
    "chat.assigned": (_f("chat_id"), _f("operator_id")),
    "chat.message": (
        _f("chat_id"),
        _f("message_id"),
        _f("sender", ENUM, choices=SENDERS),
        _f("operator_id", required=False, d='required when sender is "operator"'),
    ),
    "chat.ended": (_f("chat_id"),),
    "email.received": (_f("email_id"), _f("queue"), _f("customer_id", required=False)),
    "email.replied": (_f("email_id"), _f("operator_id")),
    "agent.state": (
        _f("operator_id"),
        _f("state", ENUM, choices=AGENT_STATES),
        _f("queues", ID_LIST, required=False, d="the queues the operator serves"),
    ),
    "contact.disposition": (
        _f("contact_id"),
        _f("channel", ENUM, choices=CHANNELS),
        _f("operator_id"),
        _f("resolved", BOOL),
        _f("case_id", required=False, d="at least one of case_id, customer_id"),
        _f("customer_id", required=False, d="at least one of case_id, customer_id"),
    ),
    "business.orders": (_f("date", DATE), _f("count", COUNT), _f("amount", AMOUNT)),
    "business.cost": (_f("date", DATE), _f("amount", AMOUNT)),
    "staff.headcount": (_f("count", COUNT),),
    "staff.hired": (_f("operator_id"),),
    "staff.left": (_f("operator_id"),),
}
assert set(TYPE_FIELDS) == set(STREAM_OF_TYPE), "TYPE_FIELDS must cover every event type"

_STREAM_SET: Final = frozenset(STREAMS)
# The hot loop's view of TYPE_FIELDS: (name, shortcut, enum choices, required, spec); shortcut 1 is
# an id or text field, 2 an enum, 3 a list of ids, 0 anything else (always `_check_value`).
_PLANS: Final[dict[str, tuple[tuple[str, int, frozenset[str], bool, FieldSpec], ...]]] = {
    t: tuple(
        (
            f.name,
            1 if f.kind in (ID, TEXT) else 2 if f.kind == ENUM else 3 if f.kind == ID_LIST else 0,
            frozenset(f.choices or ()),
            f.required,
            f,
        )
        for f in specs
    )
    for t, specs in TYPE_FIELDS.items()
}

# --------------------------------------------------------------------------------------------
# Helpers


def _json_type(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | Decimal | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def _q(s: str) -> str:
    """A string quoted as JSON, shortened to 40 characters."""
    return json.dumps(s[:40] + ("..." if len(s) > 40 else ""))


def _show(v: object) -> str:
    """A short rendering of a JSON value for a detail sentence."""
    if isinstance(v, str):
        return f"the string {_q(v)}"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v) if v.bit_length() < 128 else "a very large integer"
    if isinstance(v, Decimal | float):
        text = str(v)
        return text if len(text) <= 40 else text[:40] + "..."
    if isinstance(v, list | dict):
        return f"an {_json_type(v)}"
    return f"a {_json_type(v)}"


def _encodable(s: str) -> bool:
    if s.isascii():
        return True
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Timestamps

_DATE_RE: Final = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DAYS_IN_MONTH: Final = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_DEC_CTX: Final = decimal.Context(prec=60, rounding=ROUND_DOWN, Emax=999999, Emin=-999999)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _valid_date(y: int, m: int, d: int) -> bool:
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
        if _valid_date(y, mo, d) and h <= 23 and mi <= 59:
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
            raise _bad_ts(f"timestamp {_show(value)} has no offset: add 'Z' or '+hh:mm'")
        raise _bad_ts(f"{_show(value)} is not an RFC 3339 timestamp like 2026-01-15T09:00:00.250Z")
    prefix, sec, frac, offset = m.groups()
    ms = _minute_ms(prefix)
    if ms < 0:
        raise _bad_ts(f"{_show(value)} is not a real date and time between years {MIN_YEAR} and {MAX_YEAR}")
    s = int(sec)
    if s > 59:
        raise _bad_ts(f"{_show(value)} has an impossible time of day (leap seconds are not accepted)")
    ms += s * 1000
    if frac is not None:
        ms += int((frac + "00")[:3])
    if offset is not None:
        off = _offset_ms(offset)
        if off == -1:
            raise _bad_ts(f"{_show(value)} has an impossible UTC offset")
        ms -= off
    if not 0 <= ms <= MAX_TS_MS:
        raise _bad_ts(f"{_show(value)} is outside 1970-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z")
    return ms


def _parse_ts_decimal(value: Decimal) -> int:
    if not value.is_finite():
        raise _bad_ts(f"{value} is not a finite number of seconds")
    if value < 0 or value >= MAX_TS_SECONDS_EXCLUSIVE:
        raise _bad_ts(f"{_show(value)} seconds since the epoch is outside years {MIN_YEAR}..{MAX_YEAR}")
    # Exact: shift the decimal point (the context rounds toward zero, and keeps 60 digits: far more
    # than the 15 a millisecond needs), then int() truncates the fraction of a millisecond.
    return int(value.scaleb(3, context=_DEC_CTX))


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
            raise _bad_ts(f"{_show(v)} seconds since the epoch is outside years {MIN_YEAR}..{MAX_YEAR}")
        return v * 1000
    if isinstance(value, Decimal):
        return _parse_ts_decimal(value)
    if t is float:
        f: float = value  # type: ignore[assignment]
        if f != f or f in (float("inf"), float("-inf")):
            raise _bad_ts(f"{f} is not a finite number of seconds")
        return _parse_ts_decimal(Decimal(repr(f)))
    raise _bad_ts(f"ts must be an RFC 3339 string or a number of seconds since the epoch, got {_show(value)}")


def format_ts(ms: int) -> str:
    """RFC 3339 in UTC with milliseconds and `Z`: 1768467600250 -> '2026-01-15T09:00:00.250Z'."""
    dt = _EPOCH + timedelta(milliseconds=ms)
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
        f".{dt.microsecond // 1000:03d}Z"
    )


# --------------------------------------------------------------------------------------------
# JSON decoding


class _JsonRejected(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _JsonRejected(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise _JsonRejected(f"duplicate key {json.dumps(k[:40])} in a JSON object")
            seen.add(k)
    return d


_DECODER: Final = json.JSONDecoder(
    parse_float=Decimal, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates
)
_decode = _DECODER.decode
_orjson_loads: Final = _orjson.loads
_scan_once: Final[Any] = _DECODER.scan_once  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------
# Building an Event fast
#
# `Event` is a frozen, slotted dataclass: its generated __init__ sets all 21 fields through
# object.__setattr__, which costs ~3 us, as much as the rest of parsing. `_new_event` builds the
# same object through a plain slotted twin class (ordinary attribute stores) and then switches the
# instance's class to `Event` — legal because both have the identical slot layout. It is checked
# once at import; if `Event` ever changes shape in a way that breaks this, the plain constructor
# is used instead.

_EVENT_FIELDS: Final = tuple(f.name for f in fields(Event))


def _make_fast_constructor() -> Any:
    src = (
        "def __init__(self, "
        + ", ".join(f"{n}=None" for n in _EVENT_FIELDS)
        + "):\n"
        + "\n".join(f"    self.{n} = {n}" for n in _EVENT_FIELDS)
        + "\n"
    )
    ns: dict[str, Any] = {}
    exec(src, ns)  # generated from the field names only: no external input
    twin = type("_EventTwin", (), {"__slots__": _EVENT_FIELDS, "__init__": ns["__init__"]})

    def new_event(**kw: Any) -> Event:
        obj = twin(**kw)
        obj.__class__ = Event
        return obj  # type: ignore[no-any-return]

    return new_event


def _pick_constructor() -> Any:
    sample: dict[str, Any] = dict.fromkeys(_EVENT_FIELDS)
    sample.update(event_id="e", type="agent.state", ts=1, operator_id="o", queues=("q",))
    try:
        fast = _make_fast_constructor()
        made = fast(**sample)
        if type(made) is Event and made == Event(**sample) and made.to_dict() == Event(**sample).to_dict():
            return fast
    except (TypeError, AttributeError, ValueError):  # pragma: no cover - only if Event changes shape
        pass
    return Event  # pragma: no cover


_new_event: Final = _pick_constructor()

# --------------------------------------------------------------------------------------------
# parse_event


def _missing(name: str, etype: str) -> InvalidEvent:
    return InvalidEvent("missing_field", f"field {name!r} is required for {etype}", name)


def _invalid(name: str, detail: str) -> InvalidEvent:
    return InvalidEvent("invalid_field", f"field {name!r} {detail}", name)


def _short_str(v: object) -> bool:
    return type(v) is str and 0 < len(v) <= MAX_ID_LENGTH


def _check_id(name: str, v: object) -> str:
    if not isinstance(v, str):
        raise _invalid(name, f"must be a string, got {_show(v)}")
    s = v
    if not s:
        raise _invalid(name, "must not be empty")
    if len(s) > MAX_ID_LENGTH:
        raise _invalid(name, f"is {len(s)} characters long; the limit is {MAX_ID_LENGTH}")
    if not _encodable(s):
        raise _invalid(name, "contains a lone surrogate (not encodable as UTF-8)")
    return s


def _check_value(spec: FieldSpec, v: object) -> Any:
    kind = spec.kind
    name = spec.name
    if kind in (ID, TEXT):
        return _check_id(name, v)
    if kind == ENUM:
        if isinstance(v, str) and v in spec.choices:
            return v
        raise _invalid(name, f"must be one of {', '.join(spec.choices)}; got {_show(v)}")
    if kind == BOOL:
        if type(v) is bool:
            return v
        raise _invalid(name, f"must be true or false, got {_show(v)}")
    if kind == DATE:
        if isinstance(v, str):
            m = _DATE_RE.fullmatch(v)
            if m is not None and _valid_date(int(m[1]), int(m[2]), int(m[3])):
                return v
        raise _invalid(name, f"must be a calendar date YYYY-MM-DD ({MIN_YEAR}..{MAX_YEAR}), got {_show(v)}")
    if kind == COUNT:
        t = type(v)
        if t is int:
            n: int = v  # type: ignore[assignment]
            if 0 <= n <= MAX_COUNT:
                return n
        elif t is Decimal:
            dv: Decimal = v  # type: ignore[assignment]
            if dv.is_finite() and 0 <= dv <= MAX_COUNT and dv == dv.to_integral_value(context=_DEC_CTX):
                return int(dv)
        raise _invalid(name, f"must be an integer from 0 to {MAX_COUNT}, got {_show(v)}")
    if kind == AMOUNT:
        t = type(v)
        if t is int:
            i: int = v  # type: ignore[assignment]
            if 0 <= i < MAX_AMOUNT_EXCLUSIVE:
                return str(i)
        elif t is Decimal:
            a: Decimal = v  # type: ignore[assignment]
            if a.is_finite() and 0 <= a < MAX_AMOUNT_EXCLUSIVE:
                return str(a.copy_abs())  # copy_abs: -0.00 -> 0.00
        raise _invalid(name, f"must be a number >= 0 and < 10**15, got {_show(v)}")
    if kind == ID_LIST:
        if not isinstance(v, list):
            raise _invalid(name, f"must be an array of strings, got {_show(v)}")
        for idx, item in enumerate(v):
            _check_id(f"{name}[{idx}]", item)
        return tuple(v)
    raise AssertionError(f"unknown field kind {kind!r}")  # pragma: no cover


def _fast_decode(raw: bytes | str) -> dict[str, Any] | None:
    """The message as a dict when it is a plain event; None when `_strict_decode` must look.

    orjson is ~3x faster than the standard decoder but differs from it where this module is
    strict: it keeps the last of duplicate keys, reads numbers with a fraction as floats, and
    has its own error messages. So its result is only used for a flat object of strings,
    integers, booleans, nulls and lists of strings, with no backslash anywhere in the message
    and exactly one `":` per key: without backslashes every `"` delimits a string, so each `":`
    closes a key, and a duplicate key would leave fewer keys than `":`. Everything else (errors
    included) goes through the strict decoder, which also gives the error message.
    """
    try:
        if ("\\" in raw) if type(raw) is str else (b"\\" in raw):
            return None
        obj = _orjson_loads(raw)
    except (_orjson.JSONDecodeError, TypeError):
        return None
    if type(obj) is not dict:
        return None
    for v in obj.values():
        t = type(v)
        if t is str or t is int or v is None or t is bool:
            continue
        if t is list and all(type(x) is str for x in v):
            continue
        return None
    marks = raw.count('":') if type(raw) is str else raw.count(b'":')  # type: ignore[arg-type]
    if marks != len(obj):
        return None
    return obj


def _strict_decode(raw: bytes | str, max_bytes: int) -> Any:
    """The standard library's decoder with Decimal numbers and no duplicate keys or NaN."""
    if isinstance(raw, str):
        text = raw
        if text.isascii():
            size = len(text)
            encodable = True
        else:
            try:
                size = len(text.encode("utf-8"))
                encodable = True
            except UnicodeEncodeError:
                size = len(text.encode("utf-8", "surrogatepass"))
                encodable = False
        if size > max_bytes:
            raise InvalidEvent("too_large", f"message is {size} bytes; the limit is {max_bytes}")
        if not encodable:
            raise InvalidEvent("invalid_json", "message contains lone surrogates: not valid UTF-8 text")
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidEvent("invalid_json", f"message is not valid UTF-8 (byte {exc.start})") from None
        except AttributeError:
            raise TypeError(f"raw must be bytes or str, not {type(raw).__name__}") from None

    try:
        try:
            obj, end = _scan_once(text, 0)  # decode() minus its two whitespace regexes
        except StopIteration:
            obj, end = _decode(text), len(text)  # leading whitespace, or not JSON: decode() says why
        if end != len(text) and text[end:].strip(" \t\n\r"):
            raise json.JSONDecodeError("Extra data", text, end)
    except json.JSONDecodeError as exc:
        raise InvalidEvent("invalid_json", f"not valid JSON: {exc.msg} at character {exc.pos}") from None
    except RecursionError:
        raise InvalidEvent("invalid_json", "JSON nested too deeply") from None
    except ValueError as exc:  # _JsonRejected, or an integer beyond Python's digit limit
        raise InvalidEvent("invalid_json", f"not acceptable JSON: {exc}") from None
    return obj


def parse_event(raw: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES, stream: str | None = None) -> Event:
    """Validate one raw message and return its `Event`; raise `InvalidEvent` otherwise.

    `max_bytes` limits the UTF-8 size of the message (exactly `max_bytes` is accepted). `stream`,
    when given, is the logical stream of the topic the message came from ("telephony", "chat",
    ...); a known type belonging to another stream is then `wrong_topic`.
    """
    if stream is not None and stream not in _STREAM_SET:
        raise ValueError(f"unknown stream {stream!r}; expected one of {', '.join(STREAMS)}")

    # Size first; then the fast decoder, which hands anything unusual to the strict one.
    if isinstance(raw, str):
        size = len(raw) if raw.isascii() else -1  # otherwise the strict decoder measures it
    else:
        size = len(raw)
    if size > max_bytes:
        raise InvalidEvent("too_large", f"message is {size} bytes; the limit is {max_bytes}")
    obj = _fast_decode(raw) if size != -1 else None
    # orjson accepts only valid UTF-8 and no lone surrogate escapes: its strings are all encodable.
    utf8 = obj is not None
    if obj is None:
        obj = _strict_decode(raw, max_bytes)
    if type(obj) is not dict:
        raise InvalidEvent("invalid_json", f"message must be a JSON object, got {_show(obj)}")

    # type
    etype = obj.get("type")
    if etype is None:
        raise InvalidEvent("missing_field", "field 'type' is required", "type")
    if type(etype) is not str:
        raise _invalid("type", f"must be a string, got {_show(etype)}")
    plan = _PLANS.get(etype)
    if plan is None:
        raise InvalidEvent("unknown_type", f"unknown event type {_q(etype)}", "type")
    if stream is not None and STREAM_OF_TYPE[etype] != stream:
        raise InvalidEvent(
            "wrong_topic",
            f"{etype} belongs on the {STREAM_OF_TYPE[etype]} topic, not the {stream} topic",
            "type",
        )

    # common fields
    event_id = obj.get("event_id")
    if event_id is None:
        raise _missing("event_id", etype)
    if not (type(event_id) is str and 0 < len(event_id) <= MAX_ID_LENGTH and (utf8 or event_id.isascii())):
        event_id = _check_id("event_id", event_id)
    ts = obj.get("ts")
    if ts is None:
        raise _missing("ts", etype)
    ts_ms = parse_ts(ts)

    # type-specific fields
    kw: dict[str, Any] = {"event_id": event_id, "type": etype, "ts": ts_ms}
    for name, shortcut, choices, required, spec in plan:
        v = obj.get(name)
        if v is None:
            if required:
                raise _missing(name, etype)
        elif shortcut == 1 and type(v) is str and 0 < len(v) <= MAX_ID_LENGTH and (utf8 or v.isascii()):
            kw[name] = v  # the common case, inlined: a short id that is valid UTF-8
        elif shortcut == 2 and type(v) is str and v in choices:
            kw[name] = v
        elif shortcut == 3 and utf8 and type(v) is list and all(_short_str(x) for x in v):
            kw[name] = tuple(v)
        else:
            kw[name] = _check_value(spec, v)

    # cross-field rules
    if etype == "chat.message":
        if kw["sender"] == "operator" and "operator_id" not in kw:
            raise InvalidEvent(
                "missing_field",
                "field 'operator_id' is required for chat.message when sender is \"operator\"",
                "operator_id",
            )
    elif etype == "contact.disposition" and "case_id" not in kw and "customer_id" not in kw:
        raise InvalidEvent(
            "missing_field",
            "contact.disposition needs at least one of the fields 'case_id', 'customer_id'",
            "case_id",
        )

    event: Event = _new_event(**kw)
    return event


# --------------------------------------------------------------------------------------------
# Dead letters


def _cut_utf8(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    # `data` is valid UTF-8, so "ignore" only drops the character split at the cut.
    return data[:limit].decode("utf-8", "ignore")


def dead_letter(
    raw: bytes | str,
    reason: str,
    detail: str,
    source_topic: str,
    partition: int | None,
    offset: int | None,
    now_ms: int,
    field: str | None = None,
) -> dict[str, Any]:
    """The `kpi.dead-letters` value for a rejected message (CONTRACT.md section 5).

    `raw` is decoded as UTF-8 with invalid bytes replaced by U+FFFD and cut to at most 4096
    bytes of UTF-8 without splitting a character; `ts` is when it was dead-lettered (`now_ms`).
    """
    if isinstance(raw, str):
        text = raw.encode("utf-8", "surrogatepass")[: DEAD_LETTER_RAW_BYTES + 4].decode("utf-8", "replace")
    else:
        # A character is at most 4 bytes, so a prefix of limit + 4 bytes decodes the kept part
        # exactly as the whole message would.
        text = bytes(raw[: DEAD_LETTER_RAW_BYTES + 4]).decode("utf-8", "replace")
    return {
        "reason": reason,
        "source_topic": source_topic,
        "partition": partition,
        "offset": offset,
        "raw": _cut_utf8(text, DEAD_LETTER_RAW_BYTES),
        "ts": format_ts(now_ms),
        "detail": detail,
        "field": field,
    }

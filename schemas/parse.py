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

import re
from decimal import Decimal
from sys import intern
from typing import Any, Final

from schemas.describe import encodable, quote, show
from schemas.event_factory import new_event
from schemas.fields import (
    AMOUNT,
    BOOL,
    COUNT,
    DATE,
    ENUM,
    ID,
    ID_LIST,
    MAX_AMOUNT_EXCLUSIVE,
    MAX_COUNT,
    MAX_ID_LENGTH,
    TEXT,
    TYPE_FIELDS,
    FieldSpec,
)
from schemas.json_decode import fast_decode, strict_decode
from schemas.timestamps import DECIMAL_CONTEXT, MAX_YEAR, MIN_YEAR, parse_ts, valid_date
from stream.core.events import SHARED_FIELDS, STREAM_OF_TYPE, STREAMS, Event
from stream.errors import InvalidEvent

__all__ = ["DEFAULT_MAX_BYTES", "REASONS", "parse_event"]

REASONS: Final[tuple[str, ...]] = (
    "too_large",
    "invalid_json",
    "missing_field",
    "unknown_type",
    "bad_timestamp",
    "invalid_field",
    "wrong_topic",
)
DEFAULT_MAX_BYTES: Final = 65536
_DATE_RE: Final = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_STREAM_SET: Final = frozenset(STREAMS)


def _shortcut(f: FieldSpec) -> int:
    """How the hot loop reads a field: 1 an id or text field, 4 one of the few-valued ones (interned,
    SHARED_FIELDS), 2 an enum (interned too), 3 a list of ids, 0 anything else (`_check_value`)."""
    if f.kind in (ID, TEXT):
        return 4 if f.name in SHARED_FIELDS else 1
    return 2 if f.kind == ENUM else 3 if f.kind == ID_LIST else 0


_ID_SHORTCUTS: Final = (1, 4)
# The hot loop's view of TYPE_FIELDS: (name, shortcut, enum choices, required, spec).
_PLANS: Final[dict[str, tuple[tuple[str, int, frozenset[str], bool, FieldSpec], ...]]] = {
    t: tuple(
        (
            f.name,
            _shortcut(f),
            frozenset(f.choices or ()),
            f.required,
            f,
        )
        for f in specs
    )
    for t, specs in TYPE_FIELDS.items()
}
# Per type, the fields with reserved values (FieldSpec.reserved): checked after the hot loop.
_RESERVED: Final[dict[str, tuple[tuple[str, frozenset[str]], ...]]] = {
    t: tuple((f.name, frozenset(f.reserved)) for f in specs if f.reserved) for t, specs in TYPE_FIELDS.items()
}


def _missing(name: str, etype: str) -> InvalidEvent:
    return InvalidEvent("missing_field", f"field {name!r} is required for {etype}", name)


def _invalid(name: str, detail: str) -> InvalidEvent:
    return InvalidEvent("invalid_field", f"field {name!r} {detail}", name)


def _short_str(v: object) -> bool:
    return type(v) is str and 0 < len(v) <= MAX_ID_LENGTH


def _check_id(name: str, v: object) -> str:
    if not isinstance(v, str):
        raise _invalid(name, f"must be a string, got {show(v)}")
    s = v
    if not s:
        raise _invalid(name, "must not be empty")
    if len(s) > MAX_ID_LENGTH:
        raise _invalid(name, f"is {len(s)} characters long; the limit is {MAX_ID_LENGTH}")
    if not encodable(s):
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
        raise _invalid(name, f"must be one of {', '.join(spec.choices)}; got {show(v)}")
    if kind == BOOL:
        if type(v) is bool:
            return v
        raise _invalid(name, f"must be true or false, got {show(v)}")
    if kind == DATE:
        if isinstance(v, str):
            m = _DATE_RE.fullmatch(v)
            if m is not None and valid_date(int(m[1]), int(m[2]), int(m[3])):
                return v
        raise _invalid(name, f"must be a calendar date YYYY-MM-DD ({MIN_YEAR}..{MAX_YEAR}), got {show(v)}")
    if kind == COUNT:
        t = type(v)
        if t is int:
            n: int = v  # type: ignore[assignment]
            if 0 <= n <= MAX_COUNT:
                return n
        elif t is Decimal:
            dv: Decimal = v  # type: ignore[assignment]
            if (
                dv.is_finite()
                and 0 <= dv <= MAX_COUNT
                and dv == dv.to_integral_value(context=DECIMAL_CONTEXT)
            ):
                return int(dv)
        raise _invalid(name, f"must be an integer from 0 to {MAX_COUNT}, got {show(v)}")
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
        raise _invalid(name, f"must be a number >= 0 and < 10**15, got {show(v)}")
    if kind == ID_LIST:
        if not isinstance(v, list):
            raise _invalid(name, f"must be an array of strings, got {show(v)}")
        for idx, item in enumerate(v):
            _check_id(f"{name}[{idx}]", item)
        return tuple(v)
    raise AssertionError(f"unknown field kind {kind!r}")  # pragma: no cover


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
    obj = fast_decode(raw) if size != -1 else None
    # orjson accepts only valid UTF-8 and no lone surrogate escapes: its strings are all encodable.
    utf8 = obj is not None
    if obj is None:
        obj = strict_decode(raw, max_bytes)
    if type(obj) is not dict:
        raise InvalidEvent("invalid_json", f"message must be a JSON object, got {show(obj)}")

    # type
    etype = obj.get("type")
    if etype is None:
        raise InvalidEvent("missing_field", "field 'type' is required", "type")
    if type(etype) is not str:
        raise _invalid("type", f"must be a string, got {show(etype)}")
    plan = _PLANS.get(etype)
    if plan is None:
        raise InvalidEvent("unknown_type", f"unknown event type {quote(etype)}", "type")
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
    kw: dict[str, Any] = {"event_id": event_id, "type": intern(etype), "ts": ts_ms}
    for name, shortcut, choices, required, spec in plan:
        v = obj.get(name)
        if v is None:
            if required:
                raise _missing(name, etype)
        elif (
            shortcut in _ID_SHORTCUTS
            and type(v) is str
            and 0 < len(v) <= MAX_ID_LENGTH
            and (utf8 or v.isascii())
        ):
            # the common case, inlined: a short id that is valid UTF-8; a few-valued one is shared
            kw[name] = intern(v) if shortcut == 4 else v
        elif shortcut == 2 and type(v) is str and v in choices:
            kw[name] = intern(v)  # one string for every event holding the value
        elif shortcut == 3 and utf8 and type(v) is list and all(_short_str(x) for x in v):
            kw[name] = tuple(v)
        else:
            kw[name] = _check_value(spec, v)

    for name, reserved in _RESERVED[etype]:
        v = kw.get(name)
        if v is not None and (v in reserved if type(v) is str else not reserved.isdisjoint(v)):
            value = v if type(v) is str else next(x for x in v if x in reserved)
            raise _invalid(name, f"must not be {quote(value)}: reserved for the centre's records")

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

    event: Event = new_event(**kw)
    return event

"""Property-based tests of schemas.events against hostile and generated input."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import schemas.parse as parse_module
from schemas.dead_letters import DEAD_LETTER_RAW_BYTES, dead_letter
from schemas.examples import example
from schemas.fields import TYPE_FIELDS
from schemas.parse import REASONS, parse_event
from schemas.timestamps import MAX_TS_MS, format_ts, parse_ts
from stream.core.events import AGENT_STATES, CHANNELS, EVENT_TYPES, STREAMS, Event
from stream.errors import InvalidEvent

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EVENT_SCHEMA = json.loads((Path(__file__).parents[3] / "schemas/json/event.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(EVENT_SCHEMA)
KNOWN_FIELDS = sorted({"event_id", "type", "ts"} | {f.name for fs in TYPE_FIELDS.values() for f in fs})


def outcome(raw: bytes | str, **kw: Any) -> Event | InvalidEvent:
    """parse_event's result; any exception other than InvalidEvent fails the test."""
    try:
        return parse_event(raw, **kw)
    except InvalidEvent as exc:
        assert exc.reason in REASONS, exc.reason
        assert isinstance(exc.detail, str) and exc.detail.strip()
        assert exc.field is None or isinstance(exc.field, str)
        return exc


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@SETTINGS
@given(st.binary(max_size=400))
def test_random_bytes(raw: bytes) -> None:
    outcome(raw)
    outcome(raw, max_bytes=50, stream="telephony")


@SETTINGS
@given(st.text(max_size=200))
def test_random_text(raw: str) -> None:
    outcome(raw)


@SETTINGS
@given(json_values)
def test_random_json_values(value: Any) -> None:
    result = outcome(json.dumps(value))
    if not isinstance(value, dict):
        assert isinstance(result, InvalidEvent) and result.reason == "invalid_json"


@SETTINGS
@given(
    st.sampled_from(EVENT_TYPES),
    st.dictionaries(st.sampled_from(KNOWN_FIELDS), json_values, max_size=10),
    st.sampled_from([None, *STREAMS]),
)
def test_random_fields_of_a_known_type(etype: str, fields: dict[str, Any], stream: str | None) -> None:
    msg = {"type": etype, **fields} if "type" not in fields else fields
    outcome(json.dumps(msg), stream=stream)


# --------------------------------------------------------------------------------------------
# valid events

ids = st.text(min_size=1, max_size=24)
optional_ids = st.none() | ids


@st.composite
def timestamps(draw: st.DrawFn) -> tuple[Any, int]:
    """(ts as placed in the JSON text, expected ms). Strings carry random offsets and fractions."""
    ms = draw(st.integers(min_value=86_400_000, max_value=MAX_TS_MS - 86_400_000))
    if draw(st.booleans()):
        if draw(st.booleans()):
            return {"$number": f"{ms // 1000}.{ms % 1000:03d}{draw(st.text('0123456789', max_size=4))}"}, ms
        ms -= ms % 1000
        return {"$number": str(ms // 1000)}, ms
    offset = draw(st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59))
    local = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms + offset * 60_000)
    digits = draw(st.integers(min_value=0, max_value=7))
    extra = draw(st.text("0123456789", min_size=max(digits - 3, 0), max_size=max(digits - 3, 0)))
    frac = f"{local.microsecond // 1000:03d}"[:digits] + extra
    if digits == 0:
        ms -= local.microsecond // 1000
    elif digits < 3:
        ms -= local.microsecond // 1000 - int(frac.ljust(3, "0"))
    text = (
        f"{local.year:04d}-{local.month:02d}-{local.day:02d}"
        f"{draw(st.sampled_from('Tt'))}{local.hour:02d}:{local.minute:02d}:{local.second:02d}"
        + (f".{frac}" if digits else "")
    )
    if offset == 0 and draw(st.booleans()):
        text += draw(st.sampled_from("Zz"))
    else:
        sign = "-" if offset < 0 else "+"
        text += f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
    return text, ms


def dumps(msg: dict[str, Any]) -> str:
    """json.dumps, writing {"$number": "text"} as the bare JSON number `text`."""
    text = json.dumps(msg)
    for key in ("ts", "amount"):
        value = msg.get(key)
        if isinstance(value, dict) and "$number" in value:
            text = text.replace(json.dumps({key: value})[1:-1], f"{json.dumps(key)}: {value['$number']}")
    return text


def field_values(etype: str) -> st.SearchStrategy[dict[str, Any]]:
    """The type's own fields, valid, with optional ones sometimes absent or null."""
    req: dict[str, st.SearchStrategy[Any]] = {}
    opt: dict[str, st.SearchStrategy[Any]] = {}
    for spec in TYPE_FIELDS[etype]:
        if spec.kind in ("id", "text"):
            s: st.SearchStrategy[Any] = ids
        elif spec.kind == "enum":
            s = st.sampled_from(spec.choices)
        elif spec.kind == "bool":
            s = st.booleans()
        elif spec.kind == "date":
            s = st.dates(min_value=date(1970, 1, 1), max_value=date(9999, 12, 31)).map(
                lambda d: d.isoformat()
            )
        elif spec.kind == "count":
            s = st.integers(min_value=0, max_value=2**53 - 1)
        elif spec.kind == "amount":
            s = st.decimals(min_value=0, max_value=10**15 - 1, places=2).map(
                lambda d: {"$number": str(d.copy_abs())}
            )
        else:
            s = st.lists(ids, max_size=4)
        (req if spec.required else opt)[spec.name] = s
    return st.fixed_dictionaries(req, optional={k: st.none() | v for k, v in opt.items()})


@st.composite
def valid_messages(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """(message, the Event.to_dict() it must produce)."""
    etype = draw(st.sampled_from(EVENT_TYPES))
    fields = draw(field_values(etype))
    if etype == "chat.message" and fields["sender"] == "operator" and fields.get("operator_id") is None:
        fields["operator_id"] = draw(ids)
    if etype == "contact.disposition" and fields.get("case_id") is None and fields.get("customer_id") is None:
        fields[draw(st.sampled_from(["case_id", "customer_id"]))] = draw(ids)
    ts, ms = draw(timestamps())
    event_id = draw(ids)
    extra = draw(
        st.dictionaries(st.text(max_size=8).filter(lambda k: k not in KNOWN_FIELDS), json_values, max_size=3)
    )
    msg = {**extra, "event_id": event_id, "type": etype, "ts": ts, **fields}
    expected: dict[str, Any] = {"event_id": event_id, "type": etype, "ts": ms}
    for key, value in fields.items():
        if value is None:
            continue
        expected[key] = value["$number"] if isinstance(value, dict) else value
    return msg, expected


@SETTINGS
@given(valid_messages())
def test_valid_events_parse_and_round_trip(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    msg, expected = case
    text = dumps(msg)
    ev = parse_event(text)
    assert ev.to_dict() == expected
    assert Event.from_dict(ev.to_dict()) == ev
    assert parse_event(text.encode(), stream=ev.stream) == ev
    assert VALIDATOR.is_valid(json.loads(text))
    assert parse_ts(format_ts(ev.ts)) == ev.ts


# --------------------------------------------------------------------------------------------
# mutations of valid events


@SETTINGS
@given(st.data(), st.sampled_from(EVENT_TYPES))
def test_one_field_removed(data: st.DataObject, etype: str) -> None:
    msg = example(etype)
    name = data.draw(st.sampled_from(sorted(msg)))
    del msg[name]
    result = outcome(json.dumps(msg))
    required = {"event_id", "type", "ts"} | {f.name for f in TYPE_FIELDS[etype] if f.required}
    if name in required or (etype == "chat.message" and name == "operator_id"):
        assert isinstance(result, InvalidEvent) and result.reason == "missing_field"
        assert result.field == name
    elif etype == "contact.disposition" and name in ("case_id", "customer_id"):
        assert isinstance(result, Event)  # the other one is still there
    else:
        assert isinstance(result, Event)


@SETTINGS
@given(st.data(), st.sampled_from(EVENT_TYPES), json_values)
def test_one_field_mutated(data: st.DataObject, etype: str, value: Any) -> None:
    msg = example(etype)
    name = data.draw(st.sampled_from(sorted(msg)))
    msg[name] = value
    text = json.dumps(msg)
    result = outcome(text)
    # Whatever the JSON Schema rejects, parse_event rejects too.
    if not VALIDATOR.is_valid(json.loads(text)):
        assert isinstance(result, InvalidEvent), f"schema rejects but parse_event accepts: {text}"
    if isinstance(result, InvalidEvent) and result.reason in (
        "invalid_field",
        "bad_timestamp",
        "unknown_type",
    ):
        assert result.field is not None and result.field.split("[")[0] == name


@SETTINGS
@given(st.sampled_from(EVENT_TYPES), st.sampled_from(["state", "channel", "sender"]), st.text(max_size=12))
def test_enum_values(etype: str, name: str, value: str) -> None:
    msg = example(etype, **{name: value})
    result = outcome(json.dumps(msg))
    allowed = {"state": AGENT_STATES, "channel": CHANNELS, "sender": ("customer", "operator")}[name]
    if name in {f.name for f in TYPE_FIELDS[etype]} and value not in allowed:
        assert isinstance(result, InvalidEvent) and result.reason == "invalid_field"


@SETTINGS
@given(st.binary(max_size=3 * DEAD_LETTER_RAW_BYTES), st.integers(min_value=0, max_value=MAX_TS_MS))
def test_dead_letter_raw(raw: bytes, now: int) -> None:
    dl = dead_letter(raw, "invalid_json", "detail", "events.chat", 0, 7, now)
    full = raw.decode("utf-8", "replace")
    assert len(dl["raw"].encode()) <= DEAD_LETTER_RAW_BYTES
    assert full.startswith(dl["raw"])
    # nothing more could be kept without passing the limit
    rest = full[len(dl["raw"]) :]
    if rest:
        assert len((dl["raw"] + rest[0]).encode()) > DEAD_LETTER_RAW_BYTES
    assert parse_ts(dl["ts"]) == now


# --------------------------------------------------------------------------------------------
# the fast decoder (orjson) never changes an outcome


def strict_outcome(raw: bytes | str, **kw: Any) -> Event | InvalidEvent:
    """parse_event's result with the fast decoder switched off."""
    original = parse_module.fast_decode
    parse_module.fast_decode = lambda raw: None  # type: ignore[assignment]
    try:
        return outcome(raw, **kw)
    finally:
        parse_module.fast_decode = original


def same(a: Event | InvalidEvent, b: Event | InvalidEvent) -> bool:
    if isinstance(a, InvalidEvent) and isinstance(b, InvalidEvent):
        return (a.reason, a.detail, a.field) == (b.reason, b.detail, b.field)
    return a == b


@SETTINGS
@given(valid_messages(), st.booleans(), st.sampled_from([None, "first", "last"]), json_values)
def test_fast_and_strict_decoders_agree(
    case: tuple[dict[str, Any], dict[str, Any]], compact: bool, duplicate: str | None, value: Any
) -> None:
    msg, _ = case
    text = json.dumps(msg, separators=(",", ":") if compact else None)
    if duplicate is not None:  # the same key twice: the strict decoder rejects it, so must the fast one
        key = "type" if duplicate == "first" else sorted(msg)[-1]
        text = text[:-1] + ("," if compact else ", ") + json.dumps(key) + ":" + json.dumps(value) + "}"
    for raw in (text, text.encode()):
        assert same(outcome(raw), strict_outcome(raw))


@SETTINGS
@given(json_values | st.text(max_size=60))
def test_fast_and_strict_decoders_agree_on_any_json(value: Any) -> None:
    text = value if isinstance(value, str) else json.dumps(value)
    for raw in (text, text.encode()):
        assert same(outcome(raw), strict_outcome(raw))


def test_a_duplicate_key_is_rejected_by_the_fast_path_too() -> None:
    raw = (
        b'{"event_id":"e1","type":"call.offered","ts":"2026-01-15T09:00:00Z",'
        b'"call_id":"c1","queue":"q","queue":"r"}'
    )
    result = outcome(raw)
    assert isinstance(result, InvalidEvent) and result.reason == "invalid_json"
    assert "duplicate key" in result.detail

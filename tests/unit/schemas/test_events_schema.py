"""Hand-written cases for schemas.events: every type, every reason, timestamps, boundaries."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.dead_letters import DEAD_LETTER_RAW_BYTES, dead_letter
from schemas.examples import EXAMPLES, example
from schemas.fields import TYPE_FIELDS
from schemas.parse import REASONS, parse_event
from schemas.timestamps import format_ts, parse_ts
from stream.core.events import EVENT_TYPES, STREAM_OF_TYPE, STREAMS, Event
from stream.errors import InvalidEvent

T0 = 1768467600250  # 2026-01-15T09:00:00.250Z


def enc(msg: Any) -> bytes:
    return json.dumps(msg).encode()


def rejects(
    raw: bytes | str | dict[str, Any], reason: str, field: str | None = None, **kw: Any
) -> InvalidEvent:
    if isinstance(raw, dict):
        raw = enc(raw)
    with pytest.raises(InvalidEvent) as info:
        parse_event(raw, **kw)
    exc = info.value
    assert exc.reason == reason, exc.detail
    assert exc.reason in REASONS
    assert exc.detail
    if field is not None:
        assert exc.field == field
    return exc


# --------------------------------------------------------------------------------------------
# valid events


def test_examples_cover_every_type() -> None:
    assert set(EXAMPLES) == set(EVENT_TYPES) == set(TYPE_FIELDS)


@pytest.mark.parametrize("etype", EVENT_TYPES)
def test_every_example_parses(etype: str) -> None:
    msg = example(etype)
    ev = parse_event(enc(msg), stream=STREAM_OF_TYPE[etype])
    assert isinstance(ev, Event)
    assert ev.type == etype
    assert ev.event_id == msg["event_id"]
    assert ev.ts == T0
    for key, value in msg.items():
        if key in ("event_id", "type", "ts"):
            continue
        got = getattr(ev, key)
        if key == "queues":
            assert got == tuple(value)
        elif key == "amount":
            assert got == str(value)
        else:
            assert got == value
    assert Event.from_dict(ev.to_dict()) == ev
    # the same from str input
    assert parse_event(json.dumps(msg)) == ev


@pytest.mark.parametrize("etype", EVENT_TYPES)
def test_optional_fields_may_be_absent_or_null(etype: str) -> None:
    optional = [f.name for f in TYPE_FIELDS[etype] if not f.required]
    if etype == "contact.disposition":
        optional = ["customer_id"]  # one of case_id/customer_id must stay
    if etype == "chat.message":
        optional = []  # operator_id is required for an operator message
    for name in optional:
        assert getattr(parse_event(enc(example(etype, **{name: ...}))), name) is None
        assert getattr(parse_event(enc(example(etype, **{name: None}))), name) is None


def test_unknown_fields_are_ignored() -> None:
    ev = parse_event(enc(example("call.answered", extra={"nested": [1, 2.5, None]}, priority=3)))
    assert ev.operator_id == "op-2"
    assert ev.to_dict() == parse_event(enc(example("call.answered"))).to_dict()


def test_fields_of_other_types_are_not_carried() -> None:
    ev = parse_event(enc(example("call.ringing", queue="sales", chat_id="ch-1")))
    assert ev.queue is None and ev.chat_id is None


def test_call_offered_minimal() -> None:
    ev = parse_event(enc(example("call.offered", customer_id=..., case_id=...)))
    assert (ev.call_id, ev.queue, ev.customer_id, ev.case_id) == ("c-1", "sales", None, None)


def test_call_abandoned_operator_optional() -> None:
    assert parse_event(enc(example("call.abandoned", operator_id=...))).operator_id is None


def test_chat_message_customer_needs_no_operator() -> None:
    ev = parse_event(enc(example("chat.message", sender="customer", operator_id=...)))
    assert ev.sender == "customer" and ev.operator_id is None


def test_chat_message_operator_needs_operator_id() -> None:
    exc = rejects(example("chat.message", operator_id=...), "missing_field", "operator_id")
    assert "sender" in exc.detail
    rejects(example("chat.message", operator_id=None), "missing_field", "operator_id")


@pytest.mark.parametrize(
    ("case_id", "customer_id"), [("case-1", ...), (..., "cu-1"), ("case-1", "cu-1"), ("case-1", None)]
)
def test_disposition_case_or_customer(case_id: Any, customer_id: Any) -> None:
    ev = parse_event(enc(example("contact.disposition", case_id=case_id, customer_id=customer_id)))
    assert ev.case_key is not None


def test_disposition_needs_case_or_customer() -> None:
    rejects(example("contact.disposition", case_id=..., customer_id=...), "missing_field", "case_id")
    rejects(example("contact.disposition", case_id=None, customer_id=None), "missing_field", "case_id")


@pytest.mark.parametrize("state", ["logged_out", "available", "busy", "wrap_up", "paused"])
def test_agent_states(state: str) -> None:
    assert parse_event(enc(example("agent.state", state=state))).state == state


def test_agent_queues() -> None:
    assert parse_event(enc(example("agent.state", queues=[]))).queues == ()
    assert parse_event(enc(example("agent.state", queues=...))).queues is None
    rejects(example("agent.state", queues="sales"), "invalid_field", "queues")
    rejects(example("agent.state", queues=["sales", 3]), "invalid_field", "queues[1]")
    rejects(example("agent.state", queues=[""]), "invalid_field", "queues[0]")


@pytest.mark.parametrize("etype", ["call.offered", "chat.started", "email.received"])
def test_a_queue_named_as_the_centre_is_invalid(etype: str) -> None:
    """`_center` is how the centre appears where a queue name is expected (kpi.queue-kpis key
    `_center|{period_key}`): a queue of that name would overwrite the centre's records."""
    exc = rejects(example(etype, queue="_center"), "invalid_field", "queue")
    assert "reserved" in exc.detail
    for fine in ("center", "_centre", "x_center", "_Center"):
        assert parse_event(enc(example(etype, queue=fine))).queue == fine
    rejects(example("agent.state", queues=["sales", "_center"]), "invalid_field", "queues")
    assert parse_event(enc(example("agent.state", queues=["center"]))).queues == ("center",)


@pytest.mark.parametrize("channel", ["call", "chat", "email"])
def test_disposition_channels(channel: str) -> None:
    assert parse_event(enc(example("contact.disposition", channel=channel))).channel == channel


def test_business_amounts_are_exact_text() -> None:
    ev = parse_event(
        b'{"event_id":"b","type":"business.orders","ts":0,"date":"2026-01-15","count":3,"amount":0.10}'
    )
    assert ev.amount == "0.10" and ev.count == 3 and ev.date == "2026-01-15" and ev.ts == 0
    raw = COST.format("12345678901234.123456789")
    assert parse_event(raw).amount == "12345678901234.123456789"
    assert parse_event(enc(example("business.cost", amount=0))).amount == "0"
    assert (
        parse_event(
            b'{"event_id":"b","type":"business.cost","ts":0,"date":"2026-01-15","amount":-0.0}'
        ).amount
        == "0.0"
    )
    assert (
        parse_event(b'{"event_id":"b","type":"business.cost","ts":0,"date":"2026-01-15","amount":1e3}').amount
        == "1E+3"
    )


def test_count_integral_numbers() -> None:
    assert parse_event(b'{"event_id":"h","type":"staff.headcount","ts":0,"count":0}').count == 0
    assert parse_event(b'{"event_id":"h","type":"staff.headcount","ts":0,"count":5.0}').count == 5
    assert parse_event(b'{"event_id":"h","type":"staff.headcount","ts":0,"count":1e2}').count == 100
    assert parse_event(enc(example("staff.headcount", count=2**53 - 1))).count == 2**53 - 1


# --------------------------------------------------------------------------------------------
# every reason


def padded(size: int) -> bytes:
    """A valid call.ended message of exactly `size` bytes."""
    msg = example("call.ended", pad="")
    msg["pad"] = "x" * (size - len(enc(msg)))
    raw = enc(msg)
    assert len(raw) == size
    return raw


def test_too_large_boundary() -> None:
    raw = padded(200)
    assert parse_event(raw, max_bytes=200).type == "call.ended"
    rejects(raw, "too_large", max_bytes=199)
    rejects(padded(201), "too_large", max_bytes=200)
    rejects(raw + b" ", "too_large", max_bytes=200)
    assert parse_event(raw + b" ", max_bytes=201).type == "call.ended"


def test_too_large_counts_utf8_bytes_of_str() -> None:
    msg = example("call.ended", note="é" * 10)  # 2 bytes each in UTF-8
    text = json.dumps(msg, ensure_ascii=False)
    size = len(text.encode())
    assert size == len(text) + 10
    assert parse_event(text, max_bytes=size).chat_id is None
    rejects(text, "too_large", max_bytes=size - 1)


def test_default_limit_is_64_kib() -> None:
    assert parse_event(padded(65536)).type == "call.ended"
    rejects(padded(65537), "too_large")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   ",
        b"not json",
        b'{"event_id": "e"',
        b'{"a":1} {"b":2}',
        b"[1, 2]",
        b'"a string"',
        b"42",
        b"null",
        b"\xff\xfe{}",
        b'{"event_id":"\xc3"}',
        b'{"a":NaN}',
        b'{"a":Infinity}',
        b'{"a":-Infinity}',
        b'{"type":"call.ended","type":"call.ended"}',
        b"\xef\xbb\xbf{}",  # a UTF-8 byte order mark
        b"[" * 5000 + b"]" * 5000,
        '{"event_id":"\ud800"}',  # str with a lone surrogate
    ],
)
def test_invalid_json(raw: bytes | str) -> None:
    rejects(raw, "invalid_json")


def test_utf16_is_not_accepted() -> None:
    rejects(json.dumps(example("call.ended")).encode("utf-16"), "invalid_json")


def test_surrounding_whitespace_is_fine() -> None:
    assert parse_event(b"  \n" + enc(example("call.ended")) + b"\r\n ").type == "call.ended"


def test_missing_type() -> None:
    rejects(example("call.ended", type=...), "missing_field", "type")
    rejects(example("call.ended", type=None), "missing_field", "type")


@pytest.mark.parametrize("etype", ["call.unknown", "CALL.ENDED", "", "call_ended", "call.ended "])
def test_unknown_type(etype: str) -> None:
    rejects(example("call.ended", type=etype), "unknown_type", "type")


@pytest.mark.parametrize("value", [1, True, ["call.ended"], {"t": 1}])
def test_type_not_a_string(value: Any) -> None:
    rejects(example("call.ended", type=value), "invalid_field", "type")


@pytest.mark.parametrize("etype", EVENT_TYPES)
def test_every_required_field_is_required(etype: str) -> None:
    for name in ["event_id", "ts", *(f.name for f in TYPE_FIELDS[etype] if f.required)]:
        exc = rejects(example(etype, **{name: ...}), "missing_field", name)
        assert exc.detail == f"field {name!r} is required for {etype}"
        rejects(example(etype, **{name: None}), "missing_field", name)


def test_detail_sentence() -> None:
    exc = rejects(example("call.ringing", operator_id=...), "missing_field", "operator_id")
    assert exc.detail == "field 'operator_id' is required for call.ringing"


ID_FIELDS = {spec.name for specs in TYPE_FIELDS.values() for spec in specs if spec.kind in ("id", "text")} | {
    "event_id"
}


@pytest.mark.parametrize("etype", EVENT_TYPES)
@pytest.mark.parametrize("bad", [1, 0, 1.5, True, "", "x" * 257, ["a"], {"a": 1}, "\ud800"])
def test_bad_ids(etype: str, bad: Any) -> None:
    msg = example(etype)
    for name in [k for k in msg if k in ID_FIELDS]:
        rejects(example(etype, **{name: bad}), "invalid_field", name)  # "\ud800" goes as an escape


def test_long_and_unicode_ids_are_fine() -> None:
    assert parse_event(enc(example("call.ended", call_id="x" * 256))).call_id == "x" * 256
    ev = parse_event(json.dumps(example("call.ended", operator_id="Zoë 🎧"), ensure_ascii=False).encode())
    assert ev.operator_id == "Zoë 🎧"
    assert parse_event(enc(example("call.ended", operator_id="é" * 256))).operator_id == "é" * 256


@pytest.mark.parametrize(
    ("etype", "name", "bad"),
    [
        ("chat.message", "sender", "bot"),
        ("chat.message", "sender", "Operator"),
        ("chat.message", "sender", 1),
        ("agent.state", "state", "lunch"),
        ("agent.state", "state", "AVAILABLE"),
        ("agent.state", "state", ["busy"]),
        ("contact.disposition", "channel", "phone"),
        ("contact.disposition", "resolved", "true"),
        ("contact.disposition", "resolved", 1),
        ("contact.disposition", "resolved", 0),
        ("business.orders", "count", -1),
        ("business.orders", "count", 1.5),
        ("business.orders", "count", "3"),
        ("business.orders", "count", True),
        ("business.orders", "count", 2**53),
        ("business.orders", "amount", -0.01),
        ("business.orders", "amount", "12.50"),
        ("business.orders", "amount", False),
        ("business.orders", "amount", 10**15),
        ("business.orders", "date", "2026-02-30"),
        ("business.orders", "date", "2026-1-5"),
        ("business.orders", "date", "15/01/2026"),
        ("business.orders", "date", "2026-01-15T00:00:00Z"),
        ("business.orders", "date", "1969-12-31"),
        ("business.orders", "date", 20260115),
        ("business.cost", "amount", [1]),
        ("business.cost", "date", "2025-02-29"),
        ("staff.headcount", "count", -3),
        ("staff.headcount", "count", {"n": 1}),
    ],
)
def test_invalid_field(etype: str, name: str, bad: Any) -> None:
    rejects(example(etype, **{name: bad}), "invalid_field", name)


COST = '{{"event_id":"b","type":"business.cost","ts":0,"date":"2026-01-15","amount":{}}}'
HEADCOUNT = '{{"event_id":"h","type":"staff.headcount","ts":{},"count":{}}}'


@pytest.mark.parametrize("huge", ["1e999999999", "-1e999999999", "9" * 4000 + ".5"])
def test_huge_numbers_are_rejected_cheaply(huge: str) -> None:
    rejects(COST.format(huge), "invalid_field", "amount")
    rejects(HEADCOUNT.format(0, huge), "invalid_field", "count")
    rejects(HEADCOUNT.format(huge, 1), "bad_timestamp", "ts")


def test_tiny_numbers() -> None:
    assert parse_event(COST.format("1e-999999999")).amount == "1E-999999999"
    assert parse_event(HEADCOUNT.format("1e-999999999", 1)).ts == 0
    rejects(HEADCOUNT.format(0, "1e-999999999"), "invalid_field", "count")


def test_integers_beyond_pythons_digit_limit_are_not_acceptable_json() -> None:
    rejects(HEADCOUNT.format(0, "9" * 5000), "invalid_json")


@pytest.mark.parametrize(
    ("etype", "stream"),
    [
        ("call.ended", "chat"),
        ("agent.state", "telephony"),
        ("business.cost", "contact"),
        ("chat.ended", "email"),
    ],
)
def test_wrong_topic(etype: str, stream: str) -> None:
    exc = rejects(example(etype), "wrong_topic", "type", stream=stream)
    assert STREAM_OF_TYPE[etype] in exc.detail and stream in exc.detail


@pytest.mark.parametrize("etype", EVENT_TYPES)
def test_right_topic(etype: str) -> None:
    for stream in STREAMS:
        if stream == STREAM_OF_TYPE[etype]:
            assert parse_event(enc(example(etype)), stream=stream).type == etype
        else:
            rejects(example(etype), "wrong_topic", stream=stream)


def test_unknown_stream_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        parse_event(enc(example("call.ended")), stream="events.telephony")


def test_wrong_topic_is_checked_before_fields() -> None:
    rejects(example("call.ended", call_id=...), "wrong_topic", stream="chat")
    rejects(example("call.ended", call_id=...), "missing_field", "call_id", stream="telephony")


# --------------------------------------------------------------------------------------------
# timestamps


@pytest.mark.parametrize(
    ("value", "ms"),
    [
        ("2026-01-15T09:00:00.250Z", T0),
        ("2026-01-15T09:00:00Z", T0 - 250),
        ("2026-01-15T09:00:00.25Z", T0),
        ("2026-01-15T09:00:00.2Z", T0 - 50),
        ("2026-01-15T09:00:00.2509999999Z", T0),  # truncated, not rounded
        ("2026-01-15T09:00:00.999999Z", T0 + 749),
        ("2026-01-15t09:00:00.250z", T0),
        ("2026-01-15T14:30:00.250+05:30", T0),
        ("2026-01-15T04:00:00.250-05:00", T0),
        ("2026-01-15T09:00:00.250+00:00", T0),
        ("2026-01-15T09:00:00.250-00:00", T0),
        ("2026-01-16T08:59:00.250+23:59", T0),
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T05:30:00+05:30", 0),
        ("2024-02-29T00:00:00Z", 1709164800000),
        ("2000-02-29T12:00:00Z", 951825600000),
        ("9999-12-31T23:59:59.999Z", 253402300799999),
        (1768467600.25, T0),
        (1768467600, T0 - 250),
        (0, 0),
        (0.001, 1),
        (253402300799.999, 253402300799999),
    ],
)
def test_timestamps(value: Any, ms: int) -> None:
    assert parse_ts(value) == ms
    ev = parse_event(enc(example("call.ended", ts=value)))
    assert ev.ts == ms


def test_numeric_timestamps_are_exact_from_json_text() -> None:
    for k in range(0, 2000):
        text = f"1768467600.{k:03d}" if k < 1000 else f"1768467600.{k - 1000:03d}9"
        raw = f'{{"event_id":"e","type":"chat.ended","ts":{text},"chat_id":"c"}}'
        assert parse_event(raw).ts == 1768467600000 + k % 1000
    assert parse_event('{"event_id":"e","type":"chat.ended","ts":1.7684676002505E9,"chat_id":"c"}').ts == T0
    assert parse_event('{"event_id":"e","type":"chat.ended","ts":1768467600250e-3,"chat_id":"c"}').ts == T0


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-15T09:00:00",  # no offset
        "2026-01-15T09:00:00.250",
        "2026-01-15 09:00:00Z",  # space separator
        "2026-01-15",
        "2026-01-15T09:00Z",
        "2026-01-15T09:00:00.Z",
        "2026-01-15T09:00:00,250Z",
        "2026-01-15T09:00:00+0530",
        "2026-01-15T09:00:00+05",
        "2026-13-15T09:00:00Z",
        "2026-02-29T09:00:00Z",
        "1900-02-29T09:00:00Z",
        "2026-01-32T09:00:00Z",
        "2026-01-15T24:00:00Z",
        "2026-01-15T09:60:00Z",
        "2016-12-31T23:59:60Z",  # leap second
        "2026-01-15T09:00:00+24:00",
        "2026-01-15T09:00:00+05:60",
        "1969-12-31T23:59:59.999Z",
        "1970-01-01T00:00:00+00:01",  # before the epoch once the offset is applied
        "9999-12-31T23:59:59-00:01",  # after 9999 once the offset is applied
        "10000-01-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "٢٠٢٦-01-15T09:00:00Z",  # non-ASCII digits
        "2026-01-15T09:00:00Z\n",
        " 2026-01-15T09:00:00Z",
        "1768467600",
        "",
        "yesterday",
        -1,
        -0.001,
        253402300800,
        1e300,
        True,
        False,
        [1768467600],
        {"seconds": 1768467600},
    ],
)
def test_bad_timestamps(value: Any) -> None:
    rejects(example("call.ended", ts=value), "bad_timestamp", "ts")
    with pytest.raises(InvalidEvent):
        parse_ts(value)


def test_parse_ts_python_values() -> None:
    from decimal import Decimal

    assert parse_ts(Decimal("1768467600.2509")) == T0
    assert parse_ts(1768467600.25) == T0
    for bad in (float("nan"), float("inf"), Decimal("NaN"), Decimal("-Infinity"), None, b"1"):
        with pytest.raises(InvalidEvent) as info:
            parse_ts(bad)
        assert info.value.reason == "bad_timestamp"


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (T0, "2026-01-15T09:00:00.250Z"),
        (0, "1970-01-01T00:00:00.000Z"),
        (1, "1970-01-01T00:00:00.001Z"),
        (253402300799999, "9999-12-31T23:59:59.999Z"),
        (951825600000, "2000-02-29T12:00:00.000Z"),
    ],
)
def test_format_ts(ms: int, text: str) -> None:
    assert format_ts(ms) == text
    assert parse_ts(text) == ms


def test_minute_cache_does_not_grow_without_bound() -> None:
    from schemas import timestamps

    for minute in range(timestamps._MINUTE_CACHE_MAX + 10):
        parse_ts(format_ts(minute * 60_000))
    assert len(timestamps._MINUTE_CACHE) <= timestamps._MINUTE_CACHE_MAX


# --------------------------------------------------------------------------------------------
# dead letters


def test_dead_letter_shape() -> None:
    raw = b'{"type":"call.ringing"}'
    with pytest.raises(InvalidEvent) as info:
        parse_event(raw)
    exc = info.value
    dl = dead_letter(raw, exc.reason, exc.detail, "events.telephony", 3, 42, T0, field=exc.field)
    assert dl == {
        "reason": "missing_field",
        "source_topic": "events.telephony",
        "partition": 3,
        "offset": 42,
        "raw": '{"type":"call.ringing"}',
        "ts": "2026-01-15T09:00:00.250Z",
        "detail": "field 'event_id' is required for call.ringing",
        "field": "event_id",
    }
    assert json.loads(json.dumps(dl)) == dl
    assert dead_letter(raw, "invalid_json", "x", "file.jsonl", None, None, 0)["field"] is None


def test_dead_letter_raw_is_replaced_and_cut() -> None:
    assert dead_letter(b"ab\xffcd", "invalid_json", "d", "t", 0, 0, 0)["raw"] == "ab\ufffdcd"
    exact = b"x" * DEAD_LETTER_RAW_BYTES
    assert dead_letter(exact, "too_large", "d", "t", 0, 0, 0)["raw"] == exact.decode()
    long = b"y" * 100_000
    assert dead_letter(long, "too_large", "d", "t", 0, 0, 0)["raw"] == "y" * DEAD_LETTER_RAW_BYTES
    # a 3-byte character straddling the limit is dropped whole
    euro = "€".encode()
    raw = b"a" * (DEAD_LETTER_RAW_BYTES - 1) + euro * 3
    out = dead_letter(raw, "too_large", "d", "t", 0, 0, 0)["raw"]
    assert out == "a" * (DEAD_LETTER_RAW_BYTES - 1)
    raw = b"a" * (DEAD_LETTER_RAW_BYTES - 3) + euro * 3
    out = dead_letter(raw, "too_large", "d", "t", 0, 0, 0)["raw"]
    assert out == "a" * (DEAD_LETTER_RAW_BYTES - 3) + "€"
    assert len(out.encode()) == DEAD_LETTER_RAW_BYTES


def test_parsed_events_are_ordinary_events() -> None:
    """parse_event builds Events through a fast path; they must behave exactly like Event(...)."""
    import dataclasses
    import pickle

    ev = parse_event(enc(example("agent.state")))
    plain = Event(
        event_id="ev-agent.state",
        type="agent.state",
        ts=T0,
        operator_id="op-1",
        state="available",
        queues=("sales", "support"),
    )
    assert type(ev) is Event and ev == plain and hash(ev) == hash(plain) and repr(ev) == repr(plain)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.state = "busy"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(ev)) == ev
    assert dataclasses.replace(ev, state="busy").state == "busy"
    assert dataclasses.asdict(ev) == dataclasses.asdict(plain)

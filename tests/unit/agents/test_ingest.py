"""HTTP ingest's pure part: a body split into the events as sent, judged by the stream's parser."""

from __future__ import annotations

import json

import pytest

from agents.ingest import BadBody, answer_status, body_kind, rejected_entry, split_body, validate
from stream.commands.produce import route

OFFERED = {"event_id": "e1", "type": "call.offered", "ts": 1768467600, "call_id": "c1", "queue": "sales"}
ANSWERED = {"event_id": "e2", "type": "call.answered", "ts": 1768467605, "call_id": "c1", "operator_id": "op"}


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        ("application/json", "json"),
        ("application/json; charset=utf-8", "json"),
        ("Application/JSON", "json"),
        ("application/x-ndjson", "lines"),
        ("application/jsonl", "lines"),
        ("text/plain", None),
        ("application/x-www-form-urlencoded", None),
        ("", None),
    ],
)
def test_body_kind(content_type: str, kind: str | None) -> None:
    assert body_kind(content_type) == kind


def test_an_array_gives_each_element_as_sent() -> None:
    a = '{"event_id": "e1",  "type":"call.offered","ts":1768467600,"call_id":"c1","queue":"sales"}'
    b = json.dumps(ANSWERED)
    body = f' [ {a} ,\n{b}, 5, "x" ] \n'.encode()
    assert split_body(body, "json") == [(None, a.encode()), (None, b.encode()), (None, b"5"), (None, b'"x"')]
    assert split_body(b"[]", "json") == []


def test_one_object_is_one_event_whatever_it_holds() -> None:
    body = json.dumps(OFFERED, indent=2).encode()
    assert split_body(body, "json") == [(None, body)]
    assert split_body(b'{"broken": ', "json") == [(None, b'{"broken":')]


@pytest.mark.parametrize("body", [b"[1, 2", b"[1 2]", b"[1,]", b"[1] x", b"[\xff]", b"[" * 100_000])
def test_a_broken_array_is_refused_whole(body: bytes) -> None:
    with pytest.raises(BadBody):
        split_body(body, "json")


def test_json_lines_keep_line_numbers_and_skip_blank_lines() -> None:
    body = json.dumps(OFFERED).encode() + b"\r\n\n   \n" + json.dumps(ANSWERED).encode() + b"\n"
    assert split_body(body, "lines") == [
        (1, json.dumps(OFFERED).encode()),
        (4, json.dumps(ANSWERED).encode()),
    ]


def test_validation_is_the_streams_with_its_reasons() -> None:
    parts = [
        (1, json.dumps(OFFERED).encode()),
        (2, b'{"event_id": "e3", "type": "call.offered", "ts": 1768467600, "queue": "q"}'),
        (3, b"not json"),
        (4, b'{"event_id": "e4", "type": "call.teleported", "ts": 1}'),
        (
            5,
            b'{"event_id": "e5", "type": "call.offered", "ts": 1, "call_id": "c", "queue": "q", '
            b'"queue": "r"}',
        ),
        (6, json.dumps({**OFFERED, "pad": "x" * 200}).encode()),
    ]
    items = validate(parts, max_bytes=200)
    assert items[0].event is not None and items[0].event.event_id == "e1"
    assert [i.reason for i in items] == [
        None,
        "missing_field",
        "invalid_json",
        "unknown_type",
        "invalid_json",
        "too_large",
    ]
    entry = rejected_entry(items[1])
    assert entry == {
        "index": 1,
        "status": "rejected",
        "reason": "missing_field",
        "line": 2,
        "event_id": "e3",
        "field": "call_id",
        "detail": items[1].detail,
    }
    assert "event_id" not in rejected_entry(items[2])


def test_route_is_produces() -> None:
    (item,) = validate([(None, json.dumps(OFFERED).encode())], 65536)
    assert item.event is not None
    assert route("p-", item.event) == ("p-events.telephony", b"c1")


def test_answer_status() -> None:
    ok = {"status": "accepted"}
    bad = {"status": "rejected", "reason": "missing_field"}
    down = {"status": "rejected", "reason": "produce_timeout"}
    assert answer_status([ok, ok]) == 200
    assert answer_status([ok, bad]) == 422
    assert answer_status([ok, bad, down]) == 503

"""The committed JSON Schema files are current, and agree with parse_event on examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from schemas.dead_letters import DEAD_LETTER_REASONS, dead_letter
from schemas.examples import example
from schemas.generate import JSON_DIR, all_schemas, main, render
from schemas.parse import REASONS, parse_event
from stream.core.events import EVENT_TYPES
from stream.errors import InvalidEvent


def load(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((JSON_DIR / name).read_text(encoding="utf-8"))
    return schema


def validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load(name), format_checker=jsonschema.FormatChecker())


def test_committed_files_are_current() -> None:
    expected = all_schemas()
    on_disk = {p.name for p in JSON_DIR.glob("*.json")}
    assert on_disk == set(expected), "run: python -m schemas.generate"
    for name, schema in expected.items():
        assert (JSON_DIR / name).read_text(encoding="utf-8") == render(schema), f"{name} is stale"


def test_generate_is_deterministic_and_check_mode(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path)]) == 0
    first = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert main(["--out", str(tmp_path), "--check"]) == 0
    assert main(["--out", str(tmp_path)]) == 0
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == first
    for data in first.values():
        assert data.endswith(b"}\n") and b'\n  "' in data
    (tmp_path / "call.offered.schema.json").write_text("{}\n")
    assert main(["--out", str(tmp_path), "--check"]) == 1


@pytest.mark.parametrize("name", sorted(all_schemas()))
def test_files_are_valid_draft_2020_12(name: str) -> None:
    schema = load(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("etype", EVENT_TYPES)
def test_examples_validate(etype: str) -> None:
    msg = example(etype)
    parse_event(json.dumps(msg))
    validator(f"{etype}.schema.json").validate(msg)
    validator("event.schema.json").validate(msg)
    for other in EVENT_TYPES:
        if other != etype:
            assert not validator(f"{other}.schema.json").is_valid(msg)


# Representative invalid messages: (type, overrides). Each is rejected by parse_event, by the type's
# schema and by event.schema.json.
INVALID: list[tuple[str, dict[str, Any]]] = [
    ("call.offered", {"queue": ...}),
    ("call.offered", {"call_id": ""}),
    ("call.offered", {"call_id": 17}),
    ("call.offered", {"customer_id": ""}),
    ("call.ringing", {"operator_id": None}),
    ("call.ringing", {"event_id": "x" * 257}),
    ("call.answered", {"ts": "2026-01-15T09:00:00"}),
    ("call.answered", {"ts": "2026-01-15 09:00:00Z"}),
    ("call.answered", {"ts": "1969-12-31T23:59:59Z"}),
    ("call.answered", {"ts": -1}),
    ("call.answered", {"ts": True}),
    ("call.answered", {"ts": 253402300800}),
    ("call.answered", {"ts": "2016-12-31T23:59:60Z"}),
    ("call.abandoned", {"call_id": ...}),
    ("call.lost", {"reason": ...}),
    ("call.ended", {"event_id": ...}),
    ("chat.started", {"queue": ["q"]}),
    ("chat.message", {"operator_id": ...}),
    ("chat.message", {"sender": "bot"}),
    ("chat.ended", {"chat_id": None}),
    ("email.received", {"email_id": 3}),
    ("email.replied", {"operator_id": ...}),
    ("agent.state", {"state": "lunch"}),
    ("agent.state", {"queues": [1]}),
    ("agent.state", {"queues": "sales"}),
    ("contact.disposition", {"case_id": ..., "customer_id": ...}),
    ("contact.disposition", {"case_id": None, "customer_id": None}),
    ("contact.disposition", {"resolved": "yes"}),
    ("contact.disposition", {"channel": "fax"}),
    ("business.orders", {"count": -1}),
    ("business.orders", {"count": 1.5}),
    ("business.orders", {"amount": -5}),
    ("business.orders", {"amount": "5"}),
    ("business.orders", {"date": "2026-13-01"}),
    ("business.cost", {"date": ...}),
    ("staff.headcount", {"count": "42"}),
    ("staff.hired", {"operator_id": ""}),
    ("staff.left", {"type": "staff.gone"}),
]


@pytest.mark.parametrize(("etype", "overrides"), INVALID)
def test_invalid_examples_are_rejected_everywhere(etype: str, overrides: dict[str, Any]) -> None:
    msg = example(etype, **overrides)
    with pytest.raises(InvalidEvent):
        parse_event(json.dumps(msg))
    assert not validator(f"{etype}.schema.json").is_valid(msg)
    assert not validator("event.schema.json").is_valid(msg)


def test_unknown_type_and_non_objects() -> None:
    v = validator("event.schema.json")
    assert not v.is_valid({"event_id": "e", "type": "call.unknown", "ts": 0})
    assert not v.is_valid([example("call.ended")])
    assert not v.is_valid({"event_id": "e", "ts": 0})


def test_dead_letter_schema() -> None:
    v = validator("dead-letter.schema.json")
    assert load("dead-letter.schema.json")["properties"]["reason"]["enum"] == list(DEAD_LETTER_REASONS)
    assert set(REASONS) < set(DEAD_LETTER_REASONS)
    for reason in DEAD_LETTER_REASONS:
        v.validate(
            dead_letter(b"\xff" * 9000, reason, "why", "events.chat", 0, 12, 1768467600250, field="ts")
        )
        v.validate(dead_letter(b"{}", reason, "why", "events.jsonl", None, None, 0))
    good = dead_letter(b"{}", "invalid_json", "why", "t", 0, 0, 0)
    assert not v.is_valid({**good, "reason": "bogus"})
    assert not v.is_valid({k: val for k, val in good.items() if k != "raw"})

"""Events held in state share one string per operator, queue, type and enum value (memory, issue #15)."""

from __future__ import annotations

import json

from schemas.parse import parse_event
from stream.core.events import Event


def _raw(i: int) -> bytes:
    # json.dumps makes new string objects for every message, as a consumer's decoder does.
    return json.dumps(
        {
            "event_id": f"e{i}",
            "type": "contact.disposition",
            "ts": "2026-01-15T09:00:00Z",
            "contact_id": f"c{i}",
            "channel": "call",
            "operator_id": "op-" + "7" * 3,
            "customer_id": f"cust-{i}",
            "resolved": True,
        }
    ).encode()


def test_parsed_events_share_their_few_valued_strings_and_not_their_ids() -> None:
    a, b = parse_event(_raw(1)), parse_event(_raw(2))
    assert a.operator_id is b.operator_id and a.type is b.type and a.channel is b.channel
    assert a.customer_id != b.customer_id


def test_events_read_back_from_state_share_them_too() -> None:
    a, b = (Event.from_dict(json.loads(json.dumps(parse_event(_raw(i)).to_dict()))) for i in (1, 2))
    assert a.operator_id is b.operator_id and a.type is b.type and a.channel is b.channel
    assert a == parse_event(_raw(1))

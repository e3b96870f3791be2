"""One valid example message per event type (as JSON-ready dicts), for tests and docs."""

from __future__ import annotations

import copy
from typing import Any, Final

_TS: Final = "2026-01-15T09:00:00.250Z"

EXAMPLES: Final[dict[str, dict[str, Any]]] = {
    "call.offered": {"call_id": "c-1", "queue": "sales", "customer_id": "cu-1", "case_id": "case-1"},
    "call.ringing": {"call_id": "c-1", "operator_id": "op-1"},
    "call.missed": {"call_id": "c-1", "operator_id": "op-1"},
    "call.answered": {"call_id": "c-1", "operator_id": "op-2"},
    "call.abandoned": {"call_id": "c-2", "operator_id": "op-1"},
    "call.lost": {"call_id": "c-3", "reason": "timeout"},
    "call.ended": {"call_id": "c-1", "operator_id": "op-2"},
    "chat.started": {"chat_id": "ch-1", "queue": "support", "customer_id": "cu-2"},
    "chat.assigned": {"chat_id": "ch-1", "operator_id": "op-3"},
    "chat.message": {"chat_id": "ch-1", "message_id": "m-1", "sender": "operator", "operator_id": "op-3"},
    "chat.ended": {"chat_id": "ch-1"},
    "email.received": {"email_id": "em-1", "queue": "billing", "customer_id": "cu-3"},
    "email.replied": {"email_id": "em-1", "operator_id": "op-4"},
    "agent.state": {"operator_id": "op-1", "state": "available", "queues": ["sales", "support"]},
    "contact.disposition": {
        "contact_id": "k-1",
        "channel": "call",
        "operator_id": "op-2",
        "resolved": True,
        "case_id": "case-1",
        "customer_id": "cu-1",
    },
    "business.orders": {"date": "2026-01-15", "count": 120, "amount": 15430.5},
    "business.cost": {"date": "2026-01-15", "amount": 8200},
    "staff.headcount": {"count": 42},
    "staff.hired": {"operator_id": "op-9"},
    "staff.left": {"operator_id": "op-8"},
}


def example(etype: str, **overrides: Any) -> dict[str, Any]:
    """A fresh valid message of `etype`; `overrides` replace fields (a value of ... removes one)."""
    msg: dict[str, Any] = {"event_id": f"ev-{etype}", "type": etype, "ts": _TS}
    msg.update(copy.deepcopy(EXAMPLES[etype]))
    for key, value in overrides.items():
        if value is ...:
            msg.pop(key, None)
        else:
            msg[key] = value
    return msg

"""The normalised input event the core computes on.

Validation (schemas/) turns a raw message into an `Event`; the core never sees JSON.
Time is integer milliseconds since the epoch (UTC) everywhere inside.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from sys import intern
from typing import Any

# Event types (CONTRACT.md section 1).
CALL_OFFERED = "call.offered"
CALL_RINGING = "call.ringing"
CALL_MISSED = "call.missed"
CALL_ANSWERED = "call.answered"
CALL_ABANDONED = "call.abandoned"
CALL_LOST = "call.lost"
CALL_ENDED = "call.ended"
CHAT_STARTED = "chat.started"
CHAT_ASSIGNED = "chat.assigned"
CHAT_MESSAGE = "chat.message"
CHAT_ENDED = "chat.ended"
EMAIL_RECEIVED = "email.received"
EMAIL_REPLIED = "email.replied"
AGENT_STATE = "agent.state"
CONTACT_DISPOSITION = "contact.disposition"
BUSINESS_ORDERS = "business.orders"
BUSINESS_COST = "business.cost"
STAFF_HEADCOUNT = "staff.headcount"
STAFF_HIRED = "staff.hired"
STAFF_LEFT = "staff.left"

# Which logical stream (and default topic) each type belongs to.
STREAM_OF_TYPE: dict[str, str] = {
    CALL_OFFERED: "telephony",
    CALL_RINGING: "telephony",
    CALL_MISSED: "telephony",
    CALL_ANSWERED: "telephony",
    CALL_ABANDONED: "telephony",
    CALL_LOST: "telephony",
    CALL_ENDED: "telephony",
    CHAT_STARTED: "chat",
    CHAT_ASSIGNED: "chat",
    CHAT_MESSAGE: "chat",
    CHAT_ENDED: "chat",
    EMAIL_RECEIVED: "email",
    EMAIL_REPLIED: "email",
    AGENT_STATE: "agent",
    CONTACT_DISPOSITION: "contact",
    BUSINESS_ORDERS: "business",
    BUSINESS_COST: "business",
    STAFF_HEADCOUNT: "business",
    STAFF_HIRED: "business",
    STAFF_LEFT: "business",
}
EVENT_TYPES: tuple[str, ...] = tuple(STREAM_OF_TYPE)
STREAMS: tuple[str, ...] = ("telephony", "chat", "email", "agent", "contact", "business")

AGENT_STATES: tuple[str, ...] = ("logged_out", "available", "busy", "wrap_up", "paused")
CHANNELS: tuple[str, ...] = ("call", "chat", "email")
SENDERS: tuple[str, ...] = ("customer", "operator")


# Fields with few distinct values among a centre's events: their strings are interned when an event
# is read, so the events held in state (FCR cases for their 7-day window, calls in progress) share
# one string per operator, queue, type or enum value instead of holding one each (docs/benchmarks.md).
SHARED_FIELDS: frozenset[str] = frozenset(
    {"type", "operator_id", "queue", "channel", "state", "sender", "reason"}
)


@dataclass(frozen=True, slots=True)
class Event:
    """One validated event. Only the fields of its type are set; the rest stay None."""

    event_id: str
    type: str
    ts: int
    call_id: str | None = None
    chat_id: str | None = None
    email_id: str | None = None
    queue: str | None = None
    operator_id: str | None = None
    customer_id: str | None = None
    case_id: str | None = None
    reason: str | None = None
    message_id: str | None = None
    sender: str | None = None
    state: str | None = None
    queues: tuple[str, ...] | None = None
    contact_id: str | None = None
    channel: str | None = None
    resolved: bool | None = None
    date: str | None = None
    count: int | None = None
    amount: str | None = None  # a decimal number kept as text: money is never a float

    @property
    def stream(self) -> str:
        return STREAM_OF_TYPE[self.type]

    @property
    def case_key(self) -> str | None:
        """FCR groups dispositions by case_id, else customer_id (namespaced so they never collide)."""
        if self.case_id is not None:
            return f"case:{self.case_id}"
        if self.customer_id is not None:
            return f"customer:{self.customer_id}"
        return None

    @property
    def entity_key(self) -> str:
        """The key of the state this event belongs to (also its Kafka message key)."""
        s = self.stream
        if s == "telephony":
            return str(self.call_id)
        if s == "chat":
            return str(self.chat_id)
        if s == "email":
            return str(self.email_id)
        if s == "agent":
            return str(self.operator_id)
        if s == "contact":
            return str(self.case_id if self.case_id is not None else self.customer_id)
        return ""

    def to_dict(self) -> dict[str, Any]:
        """Compact form for state and JSON: only the fields that are set."""
        out: dict[str, Any] = {}
        for f in _FIELD_NAMES:
            v = getattr(self, f)
            if v is not None:
                out[f] = list(v) if f == "queues" else v
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Event:
        q = d.get("queues")
        kw: dict[str, Any] = {
            k: intern(v) if k in SHARED_FIELDS and type(v) is str else v
            for k, v in d.items()
            if k in _FIELD_SET
        }
        if q is not None:
            kw["queues"] = tuple(intern(x) if type(x) is str else x for x in q)
        return cls(**kw)


_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Event))
_FIELD_SET = frozenset(_FIELD_NAMES)

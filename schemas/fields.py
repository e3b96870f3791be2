"""The contract's table of type-specific fields: the one definition the validator and the JSON Schemas use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from stream.core.events import AGENT_STATES, CHANNELS, SENDERS, STREAM_OF_TYPE
from stream.core.keys import CENTER_ID

__all__ = [
    "AMOUNT",
    "BOOL",
    "COUNT",
    "DATE",
    "ENUM",
    "ID",
    "ID_LIST",
    "MAX_AMOUNT_EXCLUSIVE",
    "MAX_COUNT",
    "MAX_ID_LENGTH",
    "TEXT",
    "TYPE_FIELDS",
    "FieldSpec",
]

MAX_ID_LENGTH: Final = 256
MAX_COUNT: Final = 2**53 - 1  # the largest integer every JSON consumer reads exactly
MAX_AMOUNT_EXCLUSIVE: Final = 10**15

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
    reserved: tuple[str, ...] = ()  # values an id (or a list's item) must not take


def _f(
    name: str,
    kind: str = ID,
    required: bool = True,
    choices: tuple[str, ...] = (),
    d: str = "",
    reserved: tuple[str, ...] = (),
) -> FieldSpec:
    return FieldSpec(name, kind, required, choices, d, reserved)


# Rule: no queue is named as the centre appears where a queue name is expected (the `kpi.queue-kpis`
# key `_center|{period_key}`, the `queue` label): such a queue's records would overwrite the
# centre's on the compacted topic.
_QUEUE_NOTE = f"a queue name; {CENTER_ID!r} is reserved for the centre"


# The contract's table, in its order. `?` fields are required=False.
TYPE_FIELDS: Final[dict[str, tuple[FieldSpec, ...]]] = {
    "call.offered": (
        _f("call_id"),
        _f("queue", d=_QUEUE_NOTE, reserved=(CENTER_ID,)),
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
    "chat.started": (
        _f("chat_id"),
        _f("queue", d=_QUEUE_NOTE, reserved=(CENTER_ID,)),
        _f("customer_id", required=False),
    ),
    "chat.assigned": (_f("chat_id"), _f("operator_id")),
    "chat.message": (
        _f("chat_id"),
        _f("message_id"),
        _f("sender", ENUM, choices=SENDERS),
        _f("operator_id", required=False, d='required when sender is "operator"'),
    ),
    "chat.ended": (_f("chat_id"),),
    "email.received": (
        _f("email_id"),
        _f("queue", d=_QUEUE_NOTE, reserved=(CENTER_ID,)),
        _f("customer_id", required=False),
    ),
    "email.replied": (_f("email_id"), _f("operator_id")),
    "agent.state": (
        _f("operator_id"),
        _f("state", ENUM, choices=AGENT_STATES),
        _f(
            "queues",
            ID_LIST,
            required=False,
            d=f"the queues the operator serves ({CENTER_ID!r} is reserved for the centre)",
            reserved=(CENTER_ID,),
        ),
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

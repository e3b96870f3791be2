"""`new_event(**fields)`: builds a `stream.core.events.Event` without the frozen dataclass's setattr cost.

Parsing builds one `Event` per message, so its constructor is on the hot path; the comment below
says how the fast one is generated and when the plain one is used instead.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Final

from stream.core.events import Event

__all__ = ["new_event"]

# `Event` is a frozen, slotted dataclass: its generated __init__ sets all 21 fields through
# object.__setattr__, which costs ~3 us, as much as the rest of parsing. `new_event` builds the
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


new_event: Final = _pick_constructor()

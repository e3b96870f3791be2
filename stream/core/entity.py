"""Stage 1: the state of one call, chat, e-mail or case, and the count changes each event causes.

The state keeps the entity's events in arrival order with the source position of each. Processing an
event recomputes the entity's contributions from its event set and emits the difference as deltas,
each with a deterministic id (source, offset, index). That gives exactly-once totals on an
at-least-once stream:
- a duplicate (same event_id from another position) is not added and emits nothing;
- a redelivery of the same position (a replay after a crash) re-emits the very same deltas, which the
  aggregates drop by their per-source high-water mark (aggregate.py) if they were applied already.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from sys import intern
from typing import Any

from stream.core import jsonbytes
from stream.core.config import KpiConfig
from stream.core.contributions import MAIL, Contributions, call_is_orphan, contributions, diff
from stream.core.counts import Counts
from stream.core.events import Event
from stream.core.keys import entity_agg

AGENT_HISTORY = 16
# A case lives for the whole FCR repeat window (7 days) and rarely sees a second disposition, so its
# state does not keep its contributions (about 0.9 KB a case, a dict of tuple keys and count dicts):
# they are recomputed from its one or two events when another comes. Calls, chats, e-mails and
# agents are short-lived or few, and see several events each: theirs are kept.
KEEPS_CONTRIBUTIONS = frozenset({"call", "chat", "email", "agent"})


@dataclass(frozen=True, slots=True)
class Delta:
    """A change of counts for one aggregate (scope, scope_id) at event time `ts`.

    (source, offset, index) is unique per change and increases along a source partition.
    """

    scope: str
    scope_id: str
    ts: int
    counts: Counts
    source: str
    offset: int
    index: int

    @property
    def agg_key(self) -> str:
        return entity_agg(self.scope, self.scope_id)


@dataclass(slots=True)
class EntityState:
    """Everything known of one entity; serialisable with to_bytes/from_bytes."""

    kind: str
    # Tuples, not lists: a case is held for the whole 7-day repeat window (52,709 of them at 5,000
    # operators x 40 days), and a list of pairs cost it ~170 bytes more (docs/benchmarks.md).
    events: tuple[Event, ...] = ()
    positions: tuple[str | int, ...] = ()  # where each event was read, flat: (source, offset, ...)
    contribs: Contributions | None = None  # None: not computed yet, or not kept (see above)
    orphan_reported: bool = False

    @property
    def first_ts(self) -> int:
        return min(e.ts for e in self.events)

    @property
    def last_ts(self) -> int:
        return max(e.ts for e in self.events)

    def position(self, i: int) -> tuple[str, int]:
        """(source, offset) of the i-th event."""
        return str(self.positions[2 * i]), int(self.positions[2 * i + 1])

    def add(self, event: Event, source: str, offset: int) -> None:
        self.events = (*self.events, event)
        self.positions = (*self.positions, intern(source), offset)

    def remove(self, i: int) -> None:
        self.events = self.events[:i] + self.events[i + 1 :]
        self.positions = self.positions[: 2 * i] + self.positions[2 * i + 2 :]

    def index_of(self, event_id: str) -> int:
        for i, e in enumerate(self.events):
            if e.event_id == event_id:
                return i
        return -1

    def to_json(self) -> dict[str, Any]:
        return {
            "k": self.kind,
            "e": [[*self.position(i), e.to_dict()] for i, e in enumerate(self.events)],
            "r": self.orphan_reported,
        }

    def to_bytes(self) -> bytes:
        return jsonbytes.dumps(self.to_json())

    @classmethod
    def from_json(cls, d: dict[str, Any], cfg: KpiConfig) -> EntityState:
        st = cls(kind=str(d["k"]), orphan_reported=bool(d.get("r", False)))
        items = d["e"]
        st.events = tuple(Event.from_dict(e) for _, _, e in items)
        st.positions = tuple(x for s, o, _ in items for x in (intern(str(s)), int(o)))
        st.contribs = contributions(st.kind, st.events, cfg) if st.kind in KEEPS_CONTRIBUTIONS else None
        return st

    @classmethod
    def from_bytes(cls, raw: bytes, cfg: KpiConfig) -> EntityState:
        return cls.from_json(jsonbytes.loads(raw), cfg)


def contributions_of(state: EntityState, cfg: KpiConfig) -> Contributions:
    """The entity's current contributions: kept in its state, or recomputed from its events."""
    if state.contribs is not None:
        return state.contribs
    return contributions(state.kind, state.events, cfg) if state.events else {}


def _deltas(changes: list[tuple[tuple[str, str, int], Counts]], source: str, offset: int) -> list[Delta]:
    return [
        Delta(scope, sid, ts, counts, source, offset, i)
        for i, ((scope, sid, ts), counts) in enumerate(changes)
    ]


def apply_event(
    state: EntityState | None, kind: str, event: Event, source: str, offset: int, cfg: KpiConfig
) -> tuple[EntityState, list[Delta]]:
    """Add `event` (read at `source`/`offset`) to the entity; return its state and the deltas to emit."""
    if state is None:
        state = EntityState(kind=kind)
    i = state.index_of(event.event_id)
    if i >= 0:
        if state.position(i) != (source, offset):
            return state, []  # a duplicate: the repeated event_id changes nothing
        # A redelivery of the same message: emit again exactly what it emitted the first time.
        before = contributions(kind, state.events[:i], cfg)
        after = contributions(kind, state.events[: i + 1], cfg)
        return state, _deltas(diff(before, after), source, offset)
    before = contributions_of(state, cfg)
    state.add(event, source, offset)
    if kind == "agent" and len(state.events) > AGENT_HISTORY:
        # Only the latest state matters; keep a short history so redeliveries are still recognised.
        oldest = min(range(len(state.events)), key=lambda j: (state.events[j].ts, state.events[j].event_id))
        state.remove(oldest)
    new = contributions(kind, state.events, cfg)
    changes = diff(before, new)
    state.contribs = new if kind in KEEPS_CONTRIBUTIONS else None
    return state, _deltas(changes, source, offset)


def needs_orphan_report(state: EntityState, watermark_ms: int, cfg: KpiConfig) -> bool:
    """A call with an outcome and no offer, older than `orphan_after_ms` of event time, not yet reported."""
    return (
        state.kind == "call"
        and not state.orphan_reported
        and watermark_ms - state.first_ts >= cfg.orphan_after_ms
        and call_is_orphan(state.events)
    )


def is_expired_entity(state: EntityState, watermark_ms: int, cfg: KpiConfig) -> bool:
    """Whether the state can be dropped: idle longer than its grace (cases: the repeat window too)."""
    if state.kind == "agent":
        return False  # one small state per operator: the live board needs it for as long as they work
    grace = cfg.entity_grace_ms + (cfg.fcr_window_ms if state.kind == "case" else 0)
    if state.kind == "email" and any(k[0] == MAIL for k in contributions_of(state, cfg)):
        grace = max(grace, cfg.retention_days * 86_400_000)  # an unanswered e-mail may be answered late
    return watermark_ms - state.last_ts > grace


class EntityStore:
    """Stage 1 over any mapping of key -> EntityState (a dict in `report`, a Faust table in the worker)."""

    def __init__(self, table: MutableMapping[str, EntityState], kind: str, cfg: KpiConfig) -> None:
        self.table = table
        self.kind = kind
        self.cfg = cfg

    def apply(self, key: str, event: Event, source: str, offset: int) -> list[Delta]:
        state, deltas = apply_event(self.table.get(key), self.kind, event, source, offset, self.cfg)
        self.table[key] = state  # always re-assign: a Faust table logs only assignments
        return deltas

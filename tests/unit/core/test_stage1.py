"""Stage 1 over the fingerprints of expired entities: a repeat changes nothing, however late."""

from __future__ import annotations

from stream.core import events as ev
from stream.core.config import KpiConfig
from stream.core.entity import EntityState
from stream.core.events import Event
from stream.core.seen import SeenIds
from stream.core.stage1 import Stage1

T0 = 1_768_467_600_000
CFG = KpiConfig()


def call() -> list[Event]:
    return [
        Event(event_id="e1", type=ev.CALL_OFFERED, ts=T0, call_id="c1", queue="q"),
        Event(event_id="e2", type=ev.CALL_ANSWERED, ts=T0 + 500, call_id="c1", operator_id="o"),
    ]


def test_a_replay_after_the_state_expired_emits_nothing_even_behind_a_new_event() -> None:
    table: dict[str, EntityState] = {}
    seen = SeenIds({}, CFG.tz)
    stage1 = Stage1({"call": table}, CFG, expired=seen)
    first = [d for i, e in enumerate(call()) for d in stage1.process(e, "t:0", i)]
    assert sum(d.counts.get("offered", 0) for d in first if d.scope == "center") == 1
    # The sweep expires the state: its ids move to the fingerprints.
    seen.add_entities([("call", "c1", table.pop("c1").events)])
    new = Event(event_id="e3", type=ev.CALL_ENDED, ts=T0 + 900, call_id="c1", operator_id="o")
    replay = [new, *call()]
    assert [d for i, e in enumerate(replay) for d in stage1.process(e, "t:0", 10 + i)] == []
    assert [e.event_id for e in table["c1"].events] == ["e3"]


def test_without_the_fingerprints_the_same_replay_is_counted_again() -> None:
    """What the fingerprints prevent (the state alone forgets)."""
    table: dict[str, EntityState] = {}
    stage1 = Stage1({"call": table}, CFG)
    for i, e in enumerate(call()):
        stage1.process(e, "t:0", i)
    table.pop("c1")
    again = [d for i, e in enumerate(call()) for d in stage1.process(e, "t:0", 10 + i)]
    assert sum(d.counts.get("offered", 0) for d in again if d.scope == "center") == 1


def test_an_event_of_another_entity_with_a_reused_id_is_not_a_repeat() -> None:
    """The idempotency key is the event_id within its entity (docs/architecture.md, Guarantees)."""
    table: dict[str, EntityState] = {}
    seen = SeenIds({}, CFG.tz)
    stage1 = Stage1({"call": table}, CFG, expired=seen)
    for i, e in enumerate(call()):
        stage1.process(e, "t:0", i)
    seen.add_entities([("call", "c1", table.pop("c1").events)])
    other = Event(event_id="e1", type=ev.CALL_OFFERED, ts=T0, call_id="c2", queue="q")
    assert [d.scope for d in stage1.process(other, "t:0", 5)] == ["live"]  # waiting, counted
    assert [e.event_id for e in table["c2"].events] == ["e1"]

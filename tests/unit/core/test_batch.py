"""`Engine.process_batch` (report's path) equals the incremental path (the stream's) on any input."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.core.config import DAY_MS, KpiConfig
from stream.core.engine import Engine
from stream.core.events import Event
from stream.core.eventtime import TooLate
from stream.core.scoring import DEFAULT
from stream.simulator import SimConfig, generate

T0 = 1_768_467_600_000
OPS = ("a", "b", "c")


def LATER() -> float:
    """A wall clock after every event of these tests (none is `future`)."""
    return 2_000_000_000.0


def both(events: list[Event], cfg: KpiConfig | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    cfg = cfg or KpiConfig()
    inc = Engine(cfg, clock=LATER)
    inc.process_all(events)
    bat = Engine(cfg, clock=LATER)
    late = bat.process_batch(enumerate(events))
    assert len(late) == inc.too_late
    assert bat.orphan_calls() == inc.orphan_calls()
    return inc.report(DEFAULT), bat.report(DEFAULT)


@st.composite
def event_lists(draw: st.DrawFn) -> list[Event]:
    n = draw(st.integers(1, 40))
    out = []
    for i in range(n):
        kind = draw(st.sampled_from(["call", "call", "call", "chat", "email", "case", "agent", "dup"]))
        ts = T0 + draw(st.integers(0, 3 * DAY_MS // 1000)) * 1000
        ent = draw(st.sampled_from(["x", "y", "z"]))
        op = draw(st.sampled_from(OPS))
        if kind == "dup" and out:
            out.append(draw(st.sampled_from(out)))
            continue
        if kind == "call":
            t = draw(
                st.sampled_from(
                    [
                        "call.offered",
                        "call.ringing",
                        "call.missed",
                        "call.answered",
                        "call.abandoned",
                        "call.lost",
                    ]
                )
            )
            extra: dict[str, Any] = {"queue": "q"} if t == "call.offered" else {"operator_id": op}
            if t == "call.lost":
                extra = {"reason": "timeout"}
            out.append(Event(event_id=f"e{i}", type=t, ts=ts, call_id=ent, **extra))
        elif kind == "chat":
            t = draw(
                st.sampled_from(
                    ["chat.started", "chat.assigned", "chat.message", "chat.message", "chat.ended"]
                )
            )
            sender = draw(st.sampled_from(["customer", "operator"]))
            extra = {"started": {"queue": "q"}, "assigned": {"operator_id": op}}.get(t.split(".")[1], {})
            if t == "chat.message":
                extra = {
                    "message_id": f"m{i}",
                    "sender": sender,
                    **({"operator_id": op} if sender == "operator" else {}),
                }
            out.append(Event(event_id=f"e{i}", type=t, ts=ts, chat_id=ent, **extra))
        elif kind == "email":
            t = draw(st.sampled_from(["email.received", "email.replied"]))
            extra = {"queue": "q"} if t == "email.received" else {"operator_id": op}
            out.append(Event(event_id=f"e{i}", type=t, ts=ts, email_id=ent, **extra))
        elif kind == "case":
            out.append(
                Event(
                    event_id=f"e{i}",
                    type="contact.disposition",
                    ts=ts,
                    contact_id=f"k{i}",
                    channel="call",
                    operator_id=op,
                    resolved=draw(st.booleans()),
                    customer_id=ent,
                )
            )
        else:
            out.append(Event(event_id=f"e{i}", type="agent.state", ts=ts, operator_id=op, state="available"))
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_lists())
def test_batch_equals_incremental(events: list[Event]) -> None:
    inc, bat = both(events)
    assert bat == inc


def test_batch_equals_incremental_on_a_simulated_day_with_duplicates_and_shuffles() -> None:
    import json

    from schemas.parse import parse_event

    raw = generate(SimConfig(seed=5, hours=6, duplicate_prob=0.03))
    events = [parse_event(json.dumps(e)) for e in raw]
    random.Random(1).shuffle(events)
    inc, bat = both(events)
    assert bat == inc
    assert inc["periods"]


def test_retention_is_applied_alike() -> None:
    # 420 days of one answered call a day: the oldest days fall out of the 40-day retention (the
    # oldest months of the 13-month one), and an event sent after the newest, older than every
    # period it could count in, is refused as too late in both paths.
    events = []
    for d in range(420):
        ts = T0 + d * DAY_MS
        events.append(Event(event_id=f"o{d}", type="call.offered", ts=ts, call_id=f"c{d}", queue="q"))
        events.append(
            Event(event_id=f"a{d}", type="call.answered", ts=ts + 1000, call_id=f"c{d}", operator_id="a")
        )
    events.append(Event(event_id="late", type="call.offered", ts=T0, call_id="late", queue="q"))
    inc, bat = both(events)
    assert bat == inc
    days = [pk for pk in inc["periods"] if pk.startswith("day:")]
    assert len(days) == 40
    assert len([pk for pk in inc["periods"] if pk.startswith("month:")]) == 13
    e = Engine(KpiConfig(), clock=LATER)
    assert [type(x) for _, x in e.process_batch(enumerate(events))] == [TooLate]

"""FAC, RT and FCR of the pure core against CONTRACT.md section 2, expected values derived by hand.

- Chat: a customer message opens a wait unless one is open; the next operator message closes it for its
  sender (fast iff <= 15 s after the opening message); a wait open at chat.ended is a non-fast response of
  the last operator assigned (unattributed if none); counted in the closing event's period.
- E-mail: the first reply only; on time iff <= 180 s after email.received; counted in the reply's period.
- FCR: grouped by case_id else customer_id; first disposition opens the case; a later one within 7 days
  (inclusive) retracts a resolved first contact in the first contact's period; one after the window opens
  a new case; attributed to the first contact's operator, channel and the centre.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest

from stream.core import events as ev
from stream.core.config import DAY_MS, KpiConfig
from stream.core.engine import Engine
from stream.core.events import Event
from stream.core.scoring import DEFAULT

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ids = itertools.count()
S = 1000


def ms(iso: str) -> int:
    return (datetime.fromisoformat(iso.replace("Z", "+00:00")) - _EPOCH) // timedelta(milliseconds=1)


def E(type_: str, ts: int, **kw: Any) -> Event:  # a tiny event factory
    return Event(event_id=f"cef-{next(_ids)}", type=type_, ts=ts, **kw)


T0 = ms("2026-01-15T09:00:00.000Z")
DAY = "day:2026-01-15"
MONTH = "month:2026-01"


def run(events: list[Event], cfg: KpiConfig | None = None) -> tuple[Engine, dict[str, Any]]:
    eng = Engine(cfg or KpiConfig())
    eng.process_all(events)
    return eng, eng.report(DEFAULT)


def counts(rep: dict[str, Any], pk: str, scope: str, sid: str | None, *names: str) -> dict[str, int]:
    p = rep["periods"].get(pk)
    if p is None:
        return dict.fromkeys(names, 0)
    if scope == "center":
        c = p["center"]["counts"]
    else:
        row = p[scope].get(sid)
        if row is None:
            return dict.fromkeys(names, 0)
        c = row["counts"]
    return {n: c[n] for n in names}


# =========================================================================== chat (FAC)

_msg = itertools.count()


def started(chat: str, ts: int, queue: str = "chat-q") -> Event:
    return E(ev.CHAT_STARTED, ts, chat_id=chat, queue=queue)


def assigned(chat: str, ts: int, op: str) -> Event:
    return E(ev.CHAT_ASSIGNED, ts, chat_id=chat, operator_id=op)


def cust(chat: str, ts: int) -> Event:
    return E(ev.CHAT_MESSAGE, ts, chat_id=chat, message_id=f"m{next(_msg)}", sender="customer")


def oper(chat: str, ts: int, op: str) -> Event:
    return E(
        ev.CHAT_MESSAGE, ts, chat_id=chat, message_id=f"m{next(_msg)}", sender="operator", operator_id=op
    )


def chat_ended(chat: str, ts: int) -> Event:
    return E(ev.CHAT_ENDED, ts, chat_id=chat)


FAC = ("responses", "fast")


def test_customer_burst_opens_one_wait_measured_from_its_first_message() -> None:
    events = [
        started("h1", T0),
        assigned("h1", T0, "A"),
        cust("h1", T0 + 1 * S),  # opens the wait
        cust("h1", T0 + 3 * S),  # wait already open: nothing
        cust("h1", T0 + 10 * S),
        oper("h1", T0 + 16 * S, "A"),  # 15.000 s after the opening message: fast
        cust("h1", T0 + 20 * S),  # opens a new wait
        cust("h1", T0 + 30 * S),
        oper("h1", T0 + 35 * S + 1, "A"),  # 15.001 s after 20 s: not fast (though 5.001 s after the last)
        chat_ended("h1", T0 + 60 * S),
    ]
    _, rep = run(events)
    assert counts(rep, DAY, "operators", "A", *FAC) == {"responses": 2, "fast": 1}
    assert rep["periods"][DAY]["operators"]["A"]["kpis"]["fac"] == 0.5
    assert counts(rep, DAY, "queues", "chat-q", *FAC) == {"responses": 2, "fast": 1}
    assert counts(rep, DAY, "center", None, *FAC) == {"responses": 2, "fast": 1}
    assert rep["periods"][DAY]["center"]["kpis"]["fac"] == 0.5


@pytest.mark.parametrize(("delay", "fast"), [(15_000, 1), (15_001, 0), (14_999, 1), (0, 1)])
def test_fast_boundary(delay: int, fast: int) -> None:
    events = [started("h1", T0), cust("h1", T0 + 1 * S), oper("h1", T0 + 1 * S + delay, "A")]
    _, rep = run(events)
    assert counts(rep, DAY, "operators", "A", *FAC) == {"responses": 1, "fast": fast}


def test_the_closing_message_counts_for_its_sender_not_the_assignee() -> None:
    events = [
        started("h1", T0),
        assigned("h1", T0, "A"),
        cust("h1", T0 + 1 * S),
        oper("h1", T0 + 4 * S, "B"),  # B answers although A is assigned
    ]
    _, rep = run(events)
    assert counts(rep, DAY, "operators", "B", *FAC) == {"responses": 1, "fast": 1}
    assert "A" not in rep["periods"][DAY]["operators"]


def test_operator_message_without_open_wait_counts_for_nothing() -> None:
    events = [
        started("h1", T0),
        assigned("h1", T0, "A"),
        oper("h1", T0 + 1 * S, "A"),  # greeting: no wait open
        cust("h1", T0 + 2 * S),
        oper("h1", T0 + 4 * S, "A"),  # closes the wait: fast
        oper("h1", T0 + 5 * S, "A"),  # follow-up: no wait open
        oper("h1", T0 + 6 * S, "B"),  # another operator: no wait open
        chat_ended("h1", T0 + 60 * S),  # nothing open at the end
    ]
    _, rep = run(events)
    assert counts(rep, DAY, "operators", "A", *FAC) == {"responses": 1, "fast": 1}
    assert "B" not in rep["periods"][DAY]["operators"]
    assert counts(rep, DAY, "center", None, *FAC) == {"responses": 1, "fast": 1}


def test_wait_open_at_end_counts_non_fast_for_last_assigned_operator() -> None:
    events = [
        started("h1", T0),
        assigned("h1", T0, "A"),
        assigned("h1", T0 + 2 * S, "B"),  # reassigned: B is the last operator assigned
        cust("h1", T0 + 3 * S),
        chat_ended("h1", T0 + 5 * S),  # open wait, even though only 2 s old: a response, not fast
    ]
    _, rep = run(events)
    assert counts(rep, DAY, "operators", "B", *FAC) == {"responses": 1, "fast": 0}
    assert "A" not in rep["periods"][DAY]["operators"]
    assert rep["periods"][DAY]["operators"]["B"]["kpis"]["fac"] == 0.0
    assert counts(rep, DAY, "queues", "chat-q", *FAC) == {"responses": 1, "fast": 0}
    assert counts(rep, DAY, "center", None, *FAC) == {"responses": 1, "fast": 0}


def test_wait_open_at_end_without_assignment_is_unattributed() -> None:
    events = [started("h1", T0), cust("h1", T0 + 1 * S), chat_ended("h1", T0 + 40 * S)]
    _, rep = run(events)
    p = rep["periods"][DAY]
    assert p["operators"] == {}
    assert counts(rep, DAY, "queues", "chat-q", *FAC) == {"responses": 1, "fast": 0}
    assert counts(rep, DAY, "center", None, *FAC) == {"responses": 1, "fast": 0}
    assert p["center"]["kpis"]["fac"] == 0.0


def test_chat_response_counts_in_the_period_of_the_closing_event() -> None:
    events = [
        started("h1", ms("2026-01-31T23:59:40Z")),
        assigned("h1", ms("2026-01-31T23:59:41Z"), "A"),
        cust("h1", ms("2026-01-31T23:59:55.000Z")),
        oper("h1", ms("2026-02-01T00:00:10.000Z"), "A"),  # 15.000 s: fast, on Feb 1
        cust("h1", ms("2026-02-01T23:59:59.000Z")),
        chat_ended("h1", ms("2026-02-02T00:00:01.000Z")),  # open wait closed by the end, on Feb 2
    ]
    _, rep = run(events)
    assert counts(rep, "day:2026-01-31", "center", None, *FAC) == {"responses": 0, "fast": 0}
    assert counts(rep, "month:2026-01", "center", None, *FAC) == {"responses": 0, "fast": 0}
    assert counts(rep, "day:2026-02-01", "operators", "A", *FAC) == {"responses": 1, "fast": 1}
    assert counts(rep, "day:2026-02-02", "operators", "A", *FAC) == {"responses": 1, "fast": 0}
    assert counts(rep, "month:2026-02", "operators", "A", *FAC) == {"responses": 2, "fast": 1}


def test_chat_events_out_of_order() -> None:
    """The reply arrives before the customer message it answers; the result is the same."""
    events = [
        oper("h1", T0 + 9 * S, "A"),
        started("h1", T0),
        cust("h1", T0 + 2 * S),
        assigned("h1", T0 + 1 * S, "A"),
    ]
    _, rep = run(events)
    assert counts(rep, DAY, "operators", "A", *FAC) == {"responses": 1, "fast": 1}
    assert counts(rep, DAY, "queues", "chat-q", *FAC) == {"responses": 1, "fast": 1}


# =========================================================================== e-mail (RT)

RT = ("replied", "on_time")


def received(mail: str, ts: int, queue: str = "mail-q") -> Event:
    return E(ev.EMAIL_RECEIVED, ts, email_id=mail, queue=queue)


def replied(mail: str, ts: int, op: str) -> Event:
    return E(ev.EMAIL_REPLIED, ts, email_id=mail, operator_id=op)


@pytest.mark.parametrize(("delay", "on_time"), [(180_000, 1), (180_001, 0), (179_999, 1)])
def test_reply_on_time_boundary(delay: int, on_time: int) -> None:
    _, rep = run([received("m1", T0), replied("m1", T0 + delay, "A")])
    assert counts(rep, DAY, "operators", "A", *RT) == {"replied": 1, "on_time": on_time}
    assert rep["periods"][DAY]["operators"]["A"]["kpis"]["rt"] == float(on_time)
    assert counts(rep, DAY, "queues", "mail-q", *RT) == {"replied": 1, "on_time": on_time}
    assert counts(rep, DAY, "center", None, *RT) == {"replied": 1, "on_time": on_time}


@pytest.mark.parametrize("later_first", [False, True])
def test_only_the_first_reply_counts(later_first: bool) -> None:
    first = replied("m1", T0 + 200 * S, "A")  # late
    second = replied("m1", T0 + 210 * S, "B")
    events = [received("m1", T0), *((second, first) if later_first else (first, second))]
    _, rep = run(events)
    assert counts(rep, DAY, "operators", "A", *RT) == {"replied": 1, "on_time": 0}
    assert "B" not in rep["periods"][DAY]["operators"]
    assert counts(rep, DAY, "center", None, *RT) == {"replied": 1, "on_time": 0}


def test_rt_is_on_time_over_replied() -> None:
    events = [
        received("m1", T0),
        replied("m1", T0 + 60 * S, "A"),
        received("m2", T0),
        replied("m2", T0 + 400 * S, "A"),
        received("m3", T0),
        replied("m3", T0 + 180 * S, "A"),
        received("m4", T0),  # never replied: not counted
    ]
    _, rep = run(events)
    assert counts(rep, DAY, "operators", "A", *RT) == {"replied": 3, "on_time": 2}
    assert rep["periods"][DAY]["operators"]["A"]["kpis"]["rt"] == float(Fraction(2, 3))
    assert rep["periods"][DAY]["center"]["kpis"]["rt"] == float(Fraction(2, 3))


def test_reply_counts_in_the_period_of_the_reply() -> None:
    events = [
        received("m1", ms("2026-01-31T23:58:30Z")),
        replied("m1", ms("2026-02-01T00:01:30Z"), "A"),  # 180.000 s later: on time
    ]
    _, rep = run(events)
    assert counts(rep, "day:2026-01-31", "center", None, *RT) == {"replied": 0, "on_time": 0}
    assert counts(rep, "month:2026-01", "center", None, *RT) == {"replied": 0, "on_time": 0}
    assert counts(rep, "day:2026-02-01", "operators", "A", *RT) == {"replied": 1, "on_time": 1}
    assert counts(rep, "month:2026-02", "operators", "A", *RT) == {"replied": 1, "on_time": 1}


def test_reply_arriving_before_received() -> None:
    events = [replied("m1", T0 + 181 * S, "A"), received("m1", T0)]
    _, rep = run(events)
    assert counts(rep, DAY, "operators", "A", *RT) == {"replied": 1, "on_time": 0}


# =========================================================================== FCR

FCR = ("fcr_contacts", "fcr_resolved")


def disp(
    ts: int,
    op: str,
    resolved: bool,
    *,
    case: str | None = None,
    customer: str | None = None,
    channel: str = "call",
) -> Event:
    return E(
        ev.CONTACT_DISPOSITION,
        ts,
        contact_id=f"ct{next(_ids)}",
        channel=channel,
        operator_id=op,
        resolved=resolved,
        case_id=case,
        customer_id=customer,
    )


def test_single_resolved_first_contact() -> None:
    _, rep = run([disp(T0, "A", True, case="K1")])
    p = rep["periods"][DAY]
    assert counts(rep, DAY, "operators", "A", *FCR) == {"fcr_contacts": 1, "fcr_resolved": 1}
    assert p["operators"]["A"]["kpis"]["fcr"] == 1.0
    assert p["channels"]["call"]["counts"] == {"fcr_contacts": 1, "fcr_resolved": 1}
    assert p["center"]["kpis"]["fcr"] == 1.0
    assert p["scorecard"]["customer"]["fcr"] == 1.0


def test_repeat_within_window_retracts_resolved_first_contact() -> None:
    events = [
        disp(T0, "A", True, case="K1", channel="chat"),
        disp(T0 + 3 * DAY_MS, "B", True, case="K1", channel="email"),  # repeat: counts for nothing else
    ]
    _, rep = run(events)
    assert counts(rep, DAY, "operators", "A", *FCR) == {"fcr_contacts": 1, "fcr_resolved": 0}
    assert rep["periods"][DAY]["operators"]["A"]["kpis"]["fcr"] == 0.0
    assert rep["periods"][DAY]["channels"]["chat"]["counts"] == {"fcr_contacts": 1, "fcr_resolved": 0}
    assert counts(rep, DAY, "center", None, *FCR) == {"fcr_contacts": 1, "fcr_resolved": 0}
    # The repeat's operator and channel get nothing, on any day.
    for pk, p in rep["periods"].items():
        assert "B" not in p["operators"], pk
        assert "email" not in p["channels"], pk
    assert counts(rep, "day:2026-01-18", "center", None, *FCR) == {"fcr_contacts": 0, "fcr_resolved": 0}
    assert counts(rep, MONTH, "center", None, *FCR) == {"fcr_contacts": 1, "fcr_resolved": 0}


@pytest.mark.parametrize(
    ("gap", "repeat"),
    [(7 * DAY_MS, True), (7 * DAY_MS - 1, True), (7 * DAY_MS + 1, False)],
)
def test_repeat_window_boundary(gap: int, repeat: bool) -> None:
    events = [disp(T0, "A", True, case="K1"), disp(T0 + gap, "B", True, case="K1")]
    _, rep = run(events)
    a = counts(rep, DAY, "operators", "A", *FCR)
    total_b = {"fcr_contacts": 0, "fcr_resolved": 0}
    for pk in rep["periods"]:
        if pk.startswith("day:"):
            b = counts(rep, pk, "operators", "B", *FCR)
            total_b = {k: total_b[k] + b[k] for k in b}
    if repeat:
        assert a == {"fcr_contacts": 1, "fcr_resolved": 0}
        assert total_b == {"fcr_contacts": 0, "fcr_resolved": 0}
    else:  # after the window: a new case, whose first contact is B's
        assert a == {"fcr_contacts": 1, "fcr_resolved": 1}
        assert total_b == {"fcr_contacts": 1, "fcr_resolved": 1}


def test_unresolved_first_contact_with_repeat() -> None:
    events = [disp(T0, "A", False, case="K1"), disp(T0 + 1 * DAY_MS, "A", True, case="K1")]
    _, rep = run(events)
    assert counts(rep, MONTH, "operators", "A", *FCR) == {"fcr_contacts": 1, "fcr_resolved": 0}


def test_window_is_measured_from_the_first_contact() -> None:
    """Day 0 first, day 5 repeat, day 9: 9 days after the first, so it opens a new case."""
    events = [
        disp(T0, "A", True, case="K1"),
        disp(T0 + 5 * DAY_MS, "B", True, case="K1"),
        disp(T0 + 9 * DAY_MS, "C", True, case="K1"),
    ]
    _, rep = run(events)
    assert counts(rep, MONTH, "operators", "A", *FCR) == {"fcr_contacts": 1, "fcr_resolved": 0}
    assert counts(rep, MONTH, "operators", "B", *FCR) == {"fcr_contacts": 0, "fcr_resolved": 0}
    assert counts(rep, "day:2026-01-24", "operators", "C", *FCR) == {"fcr_contacts": 1, "fcr_resolved": 1}
    assert counts(rep, MONTH, "center", None, *FCR) == {"fcr_contacts": 2, "fcr_resolved": 1}


def test_grouped_by_case_id_else_customer_id() -> None:
    events = [
        # Customer C1 without case ids: grouped by customer, so the second is a repeat.
        disp(T0, "A", True, customer="C1"),
        disp(T0 + 1 * DAY_MS, "B", True, customer="C1"),
        # A case id takes precedence: same customer C2, different cases: two first contacts.
        disp(T0, "A", True, case="K1", customer="C2"),
        disp(T0 + 1 * DAY_MS, "B", True, case="K2", customer="C2"),
        # Case K3 with changing customer ids is one case.
        disp(T0, "A", True, case="K3", customer="C3"),
        disp(T0 + 2 * DAY_MS, "B", False, case="K3", customer="C4"),
    ]
    _, rep = run(events)
    # A: C1 (retracted), K1 (resolved), K3 (retracted)
    assert counts(rep, DAY, "operators", "A", *FCR) == {"fcr_contacts": 3, "fcr_resolved": 1}
    # B: K2 only (resolved), on the 16th
    assert counts(rep, "day:2026-01-16", "operators", "B", *FCR) == {"fcr_contacts": 1, "fcr_resolved": 1}
    assert counts(rep, MONTH, "center", None, *FCR) == {"fcr_contacts": 4, "fcr_resolved": 2}
    assert rep["periods"][MONTH]["center"]["kpis"]["fcr"] == 0.5


def test_case_id_and_customer_id_namespaces_do_not_collide() -> None:
    """case_id "X" and customer_id "X" are different case keys."""
    events = [disp(T0, "A", True, case="X"), disp(T0 + 1 * S, "B", True, customer="X")]
    _, rep = run(events)
    assert counts(rep, DAY, "center", None, *FCR) == {"fcr_contacts": 2, "fcr_resolved": 2}


def test_fcr_attributed_to_first_contacts_channel() -> None:
    events = [
        disp(T0, "A", True, case="K1", channel="call"),
        disp(T0, "A", True, case="K2", channel="chat"),
        disp(T0, "A", False, case="K3", channel="chat"),
        disp(T0, "A", True, case="K4", channel="email"),
        disp(T0 + 1 * DAY_MS, "A", True, case="K4", channel="call"),
    ]
    _, rep = run(events)
    ch = rep["periods"][DAY]["channels"]
    assert ch["call"]["counts"] == {"fcr_contacts": 1, "fcr_resolved": 1}
    assert ch["chat"]["counts"] == {"fcr_contacts": 2, "fcr_resolved": 1}
    assert ch["chat"]["kpis"]["fcr"] == 0.5
    assert ch["email"]["counts"] == {"fcr_contacts": 1, "fcr_resolved": 0}
    assert rep["periods"][DAY]["operators"]["A"]["kpis"]["fcr"] == 0.5


def test_retraction_across_a_day_boundary_changes_day_one() -> None:
    eng = Engine(KpiConfig())
    d1 = ms("2026-01-15T10:00:00Z")
    eng.process(disp(d1, "A", True, case="K1"), "contact:0", 0)
    eng.process(disp(d1 + 2 * S, "A", True, case="K2"), "contact:0", 1)
    before = eng.report(DEFAULT)["periods"]["day:2026-01-15"]
    assert before["operators"]["A"]["kpis"]["fcr"] == 1.0
    assert before["center"]["kpis"]["fcr"] == 1.0
    assert before["scorecard"]["customer"]["fcr"] == 1.0

    eng.process(disp(ms("2026-01-17T08:00:00Z"), "B", False, case="K1"), "contact:0", 2)  # day 3
    rep = eng.report(DEFAULT)
    after = rep["periods"]["day:2026-01-15"]
    assert after["operators"]["A"]["counts"]["fcr_contacts"] == 2
    assert after["operators"]["A"]["counts"]["fcr_resolved"] == 1
    assert after["operators"]["A"]["kpis"]["fcr"] == 0.5
    assert after["center"]["kpis"]["fcr"] == 0.5
    assert after["scorecard"]["customer"]["fcr"] == 0.5
    assert rep["periods"]["month:2026-01"]["center"]["kpis"]["fcr"] == 0.5
    day3 = rep["periods"].get("day:2026-01-17")
    assert day3 is None or (day3["center"]["kpis"]["fcr"] is None and "B" not in day3["operators"])
    # F of A on day 1 follows: only FCR defined, so F = 3 * 0.5.
    assert after["operators"]["A"]["f"] == 1.5


def test_repeat_arriving_before_first_contact() -> None:
    events = [disp(T0 + 2 * DAY_MS, "B", True, case="K1"), disp(T0, "A", True, case="K1")]
    _, rep = run(events)
    assert counts(rep, DAY, "operators", "A", *FCR) == {"fcr_contacts": 1, "fcr_resolved": 0}
    assert counts(rep, MONTH, "operators", "B", *FCR) == {"fcr_contacts": 0, "fcr_resolved": 0}


def test_fcr_window_is_configurable() -> None:
    cfg = KpiConfig(fcr_window_ms=1 * DAY_MS)
    events = [disp(T0, "A", True, case="K1"), disp(T0 + 2 * DAY_MS, "B", True, case="K1")]
    _, rep = run(events, cfg)
    assert counts(rep, MONTH, "center", None, *FCR) == {"fcr_contacts": 2, "fcr_resolved": 2}


def test_repeated_event_id_in_the_same_case_changes_nothing() -> None:
    d = disp(T0, "A", True, case="K1")
    again = Event(**{**{f: getattr(d, f) for f in d.__dataclass_fields__}, "ts": T0 + DAY_MS})
    _, rep = run([d, again])  # same event_id, later ts: it is not a repeat contact, it is nothing
    assert counts(rep, DAY, "operators", "A", *FCR) == {"fcr_contacts": 1, "fcr_resolved": 1}


def test_an_event_id_reused_under_another_case_key_is_that_cases_event() -> None:
    """A retry that changed the case key (customer_id, then case_id) is another case's disposition.

    The idempotency key is the event_id within its entity (docs/architecture.md, Guarantees): the
    case key decides the partition and the state, so the stream could not know the first delivery
    without routing every event by id; `report` counts it the same way. Producers must re-send an
    event unchanged.
    """
    first = E(
        ev.CONTACT_DISPOSITION,
        T0,
        contact_id="ct-x",
        channel="call",
        operator_id="A",
        resolved=True,
        customer_id="U1",
    )
    retry = Event(**{**{f: getattr(first, f) for f in first.__dataclass_fields__}, "case_id": "K1"})
    _, rep = run([first, retry])
    assert counts(rep, DAY, "operators", "A", *FCR) == {"fcr_contacts": 2, "fcr_resolved": 2}

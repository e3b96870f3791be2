"""Asterisk ``queue_log`` (native pipe format) to contract events.

Each line is ``TIME|CALLID|QUEUENAME|AGENT|EVENT|DATA1|DATA2|...`` (docs.asterisk.org, Operation >
Logging > Queue Logs; the data fields below are those of that page, checked against
``apps/app_queue.c``). TIME is a Unix epoch in seconds, with or without a fraction; a value of
10**11 or more is taken as milliseconds (10**14 or more: microseconds). Exports of the realtime
``queue_log`` table that carry a date-time instead (``2026-01-15 09:00:00.250``) are read as wall
clock in ``tz`` (default UTC) unless they carry an offset.

Mapping (``ts`` is the line's time; a wait/hold/ring time is in seconds unless marked ms):

=========================================  ====================================================
queue_log event (data fields)              events emitted
=========================================  ====================================================
ENTERQUEUE(url|callerid|origpos[|name])    call.offered {queue, customer_id = callerid}
RINGNOANSWER(ringtime ms)                  call.ringing at ts - ringtime, call.missed at ts
RINGCANCELED(ringtime ms)                  call.ringing at ts - ringtime (ts if not logged);
                                           the caller cancelled the ring: the outcome follows
CONNECT(holdtime|bridged uniqueid|         call.ringing at ts - ringtime, call.answered at ts
ringtime)
ABANDON(pos|origpos|waittime)              call.abandoned, operator_id: see below
EXITWITHTIMEOUT(pos|origpos|waittime)      call.lost reason "timeout"
EXITEMPTY(pos|origpos|waittime)            call.lost reason "no_agents"
EXITWITHKEY(key|pos|origpos|waittime)      call.lost reason "caller_key"
WITHDRAW(pos|origpos|waittime|info)        call.lost reason "withdrawn"
SYSCOMPAT                                  call.lost reason "error"
AGENTDUMP                                  call.missed (the member hung up during the announcement)
COMPLETEAGENT, COMPLETECALLER              call.ended {operator_id = agent}
(holdtime|calltime|origpos)
TRANSFER, BLINDTRANSFER,                   call.ended {operator_id = agent}
ATTENDEDTRANSFER (..|holdtime|calltime|..)
AGENTLOGIN, AGENTCALLBACKLOGIN, ADDMEMBER  agent.state available (ADDMEMBER|PAUSED: paused)
AGENTLOGOFF, AGENTCALLBACKLOGOFF,          agent.state logged_out (REMOVEMEMBER from one of
REMOVEMEMBER                               several known queues: same state, fewer queues)
PAUSE, PAUSEALL / UNPAUSE, UNPAUSEALL      agent.state paused / available
anything else (CONFIGRELOAD, QUEUESTART,   nothing; counted in `ignored` by name
PENALTY, RINGINUSE, custom events, ...)
=========================================  ====================================================

Choices, where the source leaves room:

- ``call_id`` is the CALLID (the caller channel's uniqueid). A call that enters a queue again with
  the same CALLID (a transfer or overflow into another queue) is a new queue visit and so a new
  contract call: ``CALLID#2``, ``CALLID#3``, ... ; the first visit keeps the bare CALLID.
- ``operator_id`` is the AGENT field as logged (``SIP/1001``, ``PJSIP/alice``,
  ``Local/1001@from-queue/n``, ``Agent/1001`` or a member name with ``log_membername_as_agent``);
  nothing is stripped, so one person logged under two interfaces is two operators.
- ``event_id`` is ``ql-{CALLID}-{line number}-{n}``, n counting the events of that line from 0:
  deterministic, so importing the same file twice changes nothing downstream.
- Ring start is reconstructed as ts - ringtime. RINGNOANSWER and RINGCANCELED log it in
  milliseconds; CONNECT logs it in whole seconds, truncated, so that ring start may be up to a
  second late. A reconstructed time is never put before the call's ``call.offered``.
- A RINGNOANSWER with ringtime 0 is a member that could not be rung at all (device busy or
  unreachable): it is not a presentation to that operator and emits nothing (counted in notes).
- ABANDON: ``operator_id`` is the AGENT field when Asterisk logged one (the caller hung up while
  the member was being connected), else the member whose ring the caller's hang-up cancelled
  (the RINGCANCELED lines logged just before). With several members ringing at once (ringall) the
  contract's single operator_id cannot name them all: it is left out, and each of them is still
  presented (and lost) through its call.ringing. A RINGNOANSWER ends a ring, so it never makes an
  abandon count against that member.
- EXITWITHKEY is a caller's choice (a menu key: voicemail, callback...), but not a hang-up, so it
  is not counted as an abandon (CAR); as the call never reached an operator it is a call.lost with
  reason "caller_key", which counts in LCR.
- Transfers: the member's part of the call ends at the transfer, so it is that member's
  call.ended; where the caller goes next is not a queue event unless it enters a queue again (a new
  visit, above).
- A call whose ENTERQUEUE is not in the file (the file starts mid-call) gets its call.offered
  reconstructed from the wait logged by CONNECT, ABANDON and EXIT* (ts - wait), and its answer from
  COMPLETE*/transfer lines (ts - calltime). Lines for a call after its outcome that would be a
  second outcome (e.g. the ABANDON Asterisk logs after SYSCOMPAT) are ignored: a call has one.
- Agent state is per operator, not per queue: pausing in any queue makes the operator paused.
  Repeated identical states (PAUSEALL followed by one PAUSE per queue) are emitted once.
  ``queues`` lists the queues the member was seen in (ADDMEMBER, PAUSE... with a queue name).

What the queue_log cannot tell (so the importer cannot emit it):

- No customer disposition or case: no ``contact.disposition``, hence no FCR.
- Calls only: no chat, no e-mail (no FAC, no RT). No business or staff events.
- No ring start: it is reconstructed from ringtime (above). No wrap-up or busy states: only
  login, pause and logoff are logged, so ``busy``/``wrap_up`` are never emitted.
- Time is whole seconds on most systems, so waits compared with the service-level threshold are
  exact only to the second.
- Calls that never reached a queue (IVR hang-ups, direct calls) are not in the queue_log at all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from schemas.timestamps import MAX_TS_MS
from stream.importers import ImportResult, LineError, Skipped, check_event, epoch_to_ms, load_zone, localize
from stream.importers import make_event as _make

__all__ = [
    "AGENT_STATE_EVENTS",
    "CALL_EVENTS",
    "IGNORED_EVENTS",
    "LineReader",
    "QueueLogLine",
    "convert",
    "iter_events",
    "parse_line",
]

NONE: Final = "NONE"
SECOND: Final = 1000
MAX_ID: Final = 256  # the contract's limit on ids
MAX_CALLID: Final = 200  # leaves room for "ql-{CALLID}-{line}-{n}" and "{CALLID}#{visit}"

LOST_REASONS: Final[dict[str, str]] = {
    "EXITWITHTIMEOUT": "timeout",
    "EXITEMPTY": "no_agents",
    "EXITWITHKEY": "caller_key",
    "WITHDRAW": "withdrawn",
    "SYSCOMPAT": "error",
}
# Index (0-based, into DATA1..) of the wait in seconds for the events that log one.
WAIT_FIELD: Final[dict[str, int]] = {
    "ABANDON": 2,
    "EXITWITHTIMEOUT": 2,
    "EXITEMPTY": 2,
    "EXITWITHKEY": 3,
    "WITHDRAW": 2,
}
# (holdtime, calltime) data indexes of the events that end a member's part of a call.
END_FIELDS: Final[dict[str, tuple[int, int]]] = {
    "COMPLETEAGENT": (0, 1),
    "COMPLETECALLER": (0, 1),
    "TRANSFER": (2, 3),
    "BLINDTRANSFER": (2, 3),
    "ATTENDEDTRANSFER": (2, 3),
}
CALL_EVENTS: Final = frozenset(
    {"ENTERQUEUE", "RINGNOANSWER", "RINGCANCELED", "CONNECT", "ABANDON", "AGENTDUMP"}
    | set(LOST_REASONS)
    | set(END_FIELDS)
)
AGENT_STATE_EVENTS: Final[dict[str, str]] = {
    "AGENTLOGIN": "available",
    "AGENTCALLBACKLOGIN": "available",
    "ADDMEMBER": "available",
    "AGENTLOGOFF": "logged_out",
    "AGENTCALLBACKLOGOFF": "logged_out",
    "REMOVEMEMBER": "logged_out",
    "PAUSE": "paused",
    "PAUSEALL": "paused",
    "UNPAUSE": "available",
    "UNPAUSEALL": "available",
}
# Known events that carry nothing for the contract (listed for the docs; any other name is
# ignored the same way).
IGNORED_EVENTS: Final = frozenset(
    {"CONFIGRELOAD", "QUEUESTART", "PENALTY", "RINGINUSE", "DID", "INFO", "OUTCALL", "REASON"}
)
# Caller ids that identify no one: not used as customer_id.
ANONYMOUS_CALLERS: Final = frozenset({"anonymous", "unknown", "restricted", "private", "unavailable"})


@dataclass(frozen=True, slots=True)
class QueueLogLine:
    """One parsed line."""

    line_no: int
    ts: int  # ms since the epoch, UTC
    callid: str
    queue: str
    agent: str
    event: str
    data: tuple[str, ...]

    def datum(self, i: int) -> str:
        """DATA{i+1}, stripped, '' when absent."""
        return self.data[i].strip() if i < len(self.data) else ""

    def number(self, i: int, what: str, *, required: bool = True) -> int | None:
        """DATA{i+1} as a non-negative integer; None when absent and not required."""
        text = self.datum(i)
        if not text:
            if required:
                raise LineError("missing_field", f"{self.event} has no {what} (data{i + 1})")
            return None
        if not text.isdigit():
            raise LineError("bad_field", f"{self.event} {what} (data{i + 1}) is not a whole number: {text!r}")
        return int(text)


def _parse_time(text: str, zone: ZoneInfo, notes: Counter[str]) -> int:
    ms = epoch_to_ms(text)
    if ms is not None:
        return ms
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise LineError("bad_time", f"not an epoch time nor a date-time: {text[:40]!r}") from None
    return localize(dt, zone, notes)


def parse_line(
    line: str, line_no: int, zone: ZoneInfo | None = None, notes: Counter[str] | None = None
) -> QueueLogLine:
    """Parse one queue_log line; LineError if it is not one."""
    fields = line.rstrip("\r\n").split("|")
    if len(fields) < 5:
        raise LineError("too_few_fields", f"{len(fields)} '|'-separated fields; at least 5 expected")
    ts = _parse_time(fields[0].strip(), zone or ZoneInfo("UTC"), notes if notes is not None else Counter())
    if not 0 <= ts <= MAX_TS_MS:
        raise LineError("bad_time", f"{fields[0].strip()[:40]!r} is outside 1970..9999")
    event = fields[4].strip().upper()
    if not event:
        raise LineError("missing_field", "the event name (field 5) is empty")
    return QueueLogLine(
        line_no=line_no,
        ts=ts,
        callid=fields[1].strip(),
        queue=fields[2].strip(),
        agent=fields[3].strip(),
        event=event,
        data=tuple(fields[5:]),
    )


def _is_none(value: str) -> bool:
    return not value or value.upper() == NONE


def _id(value: str, what: str, limit: int = MAX_ID) -> str:
    """An id usable in a contract event (its limit leaves room for the event_id around a CALLID)."""
    if len(value) > limit:
        raise LineError("bad_field", f"{what} is {len(value)} characters long; the limit is {limit}")
    return value


@dataclass(slots=True)
class _Visit:
    """One stay of a call in one queue: one contract call."""

    call_id: str
    offered_ms: int | None = None
    outcome: str | None = None
    ended: bool = False
    cancelled: list[str] = field(default_factory=list)  # members whose ring the caller cancelled
    seen_ms: int = 0  # time of the call's latest line (LineReader.forget_calls_before)


@dataclass(slots=True)
class _Agent:
    state: str | None = None
    queues: list[str] = field(default_factory=list)
    last: tuple[str, tuple[str, ...]] | None = None


@dataclass(slots=True)
class _Converter:
    result: ImportResult
    visits: dict[str, tuple[int, _Visit]] = field(default_factory=dict)  # callid -> (count, current)
    agents: dict[str, _Agent] = field(default_factory=dict)

    # -- helpers -------------------------------------------------------------------------------

    def _visit(self, ln: QueueLogLine, *, new: bool = False) -> _Visit:
        if _is_none(ln.callid):
            raise LineError("missing_field", f"{ln.event} has no call id (field 2)")
        _id(ln.callid, "the call id", MAX_CALLID)
        n, cur = self.visits.get(ln.callid, (0, None))
        if cur is None or new:
            n += 1
            cur = _Visit(ln.callid if n == 1 else f"{ln.callid}#{n}")
            self.visits[ln.callid] = (n, cur)
        cur.seen_ms = max(cur.seen_ms, ln.ts)
        return cur

    def _agent(self, ln: QueueLogLine) -> str:
        if _is_none(ln.agent):
            raise LineError("missing_field", f"{ln.event} has no agent (field 4)")
        return _id(ln.agent, "the agent")

    def _queue(self, ln: QueueLogLine) -> str:
        if _is_none(ln.queue):
            raise LineError("missing_field", f"{ln.event} has no queue name (field 3)")
        return _id(ln.queue, "the queue name")

    def _offered(
        self, ln: QueueLogLine, v: _Visit, out: list[tuple[str, int, dict[str, Any]]], at: int | None
    ) -> None:
        """Reconstruct the call.offered of a call whose ENTERQUEUE is not in the file."""
        if v.offered_ms is not None:
            return
        if at is None:
            self.result.notes["call with no ENTERQUEUE and no logged wait: no call.offered (orphan)"] += 1
            return
        queue = self._queue(ln)
        v.offered_ms = at
        out.append(("call.offered", at, {"call_id": v.call_id, "queue": queue}))
        self.result.notes["call.offered reconstructed from the logged wait (no ENTERQUEUE)"] += 1

    def _ring_start(self, v: _Visit, ts: int, ring_ms: int) -> int:
        start = max(ts - ring_ms, 0)
        if v.offered_ms is not None:
            start = max(start, v.offered_ms)
        return start

    def _after_outcome(self, ln: QueueLogLine, v: _Visit) -> bool:
        if v.outcome is None:
            return False
        self.result.notes[f"{ln.event} after the call's outcome ignored"] += 1
        return True

    # -- calls ---------------------------------------------------------------------------------

    def call(self, ln: QueueLogLine) -> list[tuple[str, int, dict[str, Any]]]:
        out: list[tuple[str, int, dict[str, Any]]] = []
        ev = ln.event
        ts = ln.ts
        if ev == "ENTERQUEUE":
            queue = self._queue(ln)
            _, prev = self.visits.get(ln.callid, (0, None))
            v = self._visit(ln, new=prev is not None)
            v.offered_ms = ts
            caller = ln.datum(1)
            customer = None if _is_none(caller) or caller.lower() in ANONYMOUS_CALLERS else caller
            if customer is not None and len(customer) > MAX_ID:
                customer = None  # not an identifier anyone can use; the call still counts
            out.append(("call.offered", ts, {"call_id": v.call_id, "queue": queue, "customer_id": customer}))
            return out

        v = self._visit(ln)
        if ev == "RINGNOANSWER":
            agent = self._agent(ln)
            ring = ln.number(0, "ringtime", required=False)
            if self._after_outcome(ln, v):
                return out
            if ring == 0:
                self.result.notes[
                    "RINGNOANSWER with ringtime 0 (member not reachable): not a presentation"
                ] += 1
                return out
            if ring is not None:
                out.append(
                    (
                        "call.ringing",
                        self._ring_start(v, ts, ring),
                        {"call_id": v.call_id, "operator_id": agent},
                    )
                )
            out.append(("call.missed", ts, {"call_id": v.call_id, "operator_id": agent}))
            if agent in v.cancelled:
                v.cancelled.remove(agent)
        elif ev == "RINGCANCELED":
            agent = self._agent(ln)
            ring = ln.number(0, "ringtime", required=False)
            if self._after_outcome(ln, v):
                return out
            start = self._ring_start(v, ts, ring or 0)
            out.append(("call.ringing", start, {"call_id": v.call_id, "operator_id": agent}))
            if agent not in v.cancelled:
                v.cancelled.append(agent)
        elif ev == "CONNECT":
            agent = self._agent(ln)
            hold = ln.number(0, "holdtime")
            ring_s = ln.number(2, "ringtime", required=False)
            if self._after_outcome(ln, v):
                return out
            self._offered(ln, v, out, ts - (hold or 0) * SECOND)
            if ring_s is not None:
                out.append(
                    (
                        "call.ringing",
                        self._ring_start(v, ts, ring_s * SECOND),
                        {"call_id": v.call_id, "operator_id": agent},
                    )
                )
            out.append(("call.answered", ts, {"call_id": v.call_id, "operator_id": agent}))
            v.outcome = "call.answered"
            v.cancelled.clear()
        elif ev == "ABANDON":
            wait = ln.number(WAIT_FIELD[ev], "waittime", required=False)
            if self._after_outcome(ln, v):
                return out
            self._offered(ln, v, out, None if wait is None else ts - wait * SECOND)
            operator: str | None = None
            if not _is_none(ln.agent):
                operator = self._agent(ln)
            elif len(v.cancelled) == 1:
                operator = v.cancelled[0]
            elif len(v.cancelled) > 1:
                self.result.notes["abandoned while ringing at several members: operator_id left out"] += 1
            out.append(("call.abandoned", ts, {"call_id": v.call_id, "operator_id": operator}))
            v.outcome = "call.abandoned"
        elif ev in LOST_REASONS:
            idx = WAIT_FIELD.get(ev)
            wait = None if idx is None else ln.number(idx, "waittime", required=False)
            if self._after_outcome(ln, v):
                return out
            self._offered(ln, v, out, None if wait is None else ts - wait * SECOND)
            out.append(("call.lost", ts, {"call_id": v.call_id, "reason": LOST_REASONS[ev]}))
            v.outcome = "call.lost"
        elif ev == "AGENTDUMP":
            agent = self._agent(ln)
            if self._after_outcome(ln, v):
                return out
            out.append(("call.missed", ts, {"call_id": v.call_id, "operator_id": agent}))
        elif ev in END_FIELDS:
            agent = self._agent(ln)
            hold_i, call_i = END_FIELDS[ev]
            hold = ln.number(hold_i, "holdtime", required=False)
            talk = ln.number(call_i, "calltime", required=False)
            if v.ended:
                self.result.notes[f"{ev} after the call had ended ignored"] += 1
                return out
            if v.outcome is None:
                if talk is None:
                    raise LineError(
                        "missing_field", f"{ev} of a call never answered in this file has no calltime"
                    )
                answered_at = ts - talk * SECOND
                self._offered(ln, v, out, None if hold is None else answered_at - hold * SECOND)
                out.append(("call.answered", answered_at, {"call_id": v.call_id, "operator_id": agent}))
                v.outcome = "call.answered"
                self.result.notes["call.answered reconstructed from the call time (no CONNECT)"] += 1
            elif v.outcome != "call.answered":
                self.result.notes[f"{ev} of a call that was never answered ignored"] += 1
                return out
            out.append(("call.ended", ts, {"call_id": v.call_id, "operator_id": agent}))
            v.ended = True
        return out

    # -- agents --------------------------------------------------------------------------------

    def agent(self, ln: QueueLogLine) -> list[tuple[str, int, dict[str, Any]]]:
        op = self._agent(ln)
        st = self.agents.setdefault(op, _Agent())
        ev = ln.event
        state = AGENT_STATE_EVENTS[ev]
        queue = None if _is_none(ln.queue) else self._queue(ln)
        if ev == "ADDMEMBER" and ln.datum(0).upper() == "PAUSED":
            state = "paused"
        if ev == "REMOVEMEMBER":
            if queue in st.queues:
                st.queues.remove(queue)
            if st.queues and st.state not in (None, "logged_out"):
                state = st.state  # still a member of other queues: only the list shrinks
        elif queue is not None and queue not in st.queues:
            st.queues.append(queue)
        if state == "logged_out" and ev != "REMOVEMEMBER":
            st.queues.clear()
        st.state = state
        key = (state, tuple(st.queues))
        if st.last == key:
            self.result.notes["repeated identical agent state not re-emitted"] += 1
            return []
        st.last = key
        queues = list(st.queues) if st.queues else None
        return [("agent.state", ln.ts, {"operator_id": op, "state": state, "queues": queues})]


def iter_events(lines: Iterable[str], result: ImportResult, tz: str = "UTC") -> Iterator[dict[str, Any]]:
    """The contract events derived from the lines of a queue_log, one by one (constant memory but
    for the open calls); lines it cannot use, ignored records and notes go into `result`.

    `tz` is the zone of date-time timestamps without an offset (epoch times need none). Raises
    ValueError at once for an unknown `tz`.
    """
    return _iter_events(lines, result, load_zone(tz))


def _iter_events(lines: Iterable[str], result: ImportResult, zone: ZoneInfo) -> Iterator[dict[str, Any]]:
    reader = LineReader(result, zone)
    for line_no, line in enumerate(lines, 1):
        yield from reader.feed(line_no, line)


class LineReader:
    """The importer fed one line at a time, its per-call and per-agent state kept between lines
    and exportable (`state`, `restore`), so a follower that stops between two lines of a call
    resumes it exactly as if the file had been read in one go (stream/importers/follow.py).

    `line_no` is the line's number in the whole log: it is part of every event id, so the same
    line fed again yields the same ids (a harmless duplicate downstream).
    """

    def __init__(self, result: ImportResult, zone: ZoneInfo) -> None:
        self.result = result
        self.zone = zone
        self._conv = _Converter(result)
        self.newest_ms = 0  # the latest line time fed, for `forget_calls_before`
        # Lines later than this do not move `newest_ms`: a line with a wrong clock (its events are
        # `future` dead letters downstream) must not make every open call look old.
        self.clock_limit_ms: int | None = None

    def feed(self, line_no: int, line: str) -> list[dict[str, Any]]:
        """The events of one line; a line it cannot use goes to `result.skipped` (never raises)."""
        result, conv = self.result, self._conv
        if not line.strip():
            return []
        try:
            ln = parse_line(line, line_no, self.zone, result.notes)
            # Ids are checked before any state changes, so a bad line leaves no trace.
            callid = _id(ln.callid or NONE, "the call id", MAX_CALLID)
            _id(ln.agent, "the agent")
            _id(ln.queue, "the queue name")
            if ln.event in CALL_EVENTS:
                derived = conv.call(ln)
            elif ln.event in AGENT_STATE_EVENTS:
                derived = conv.agent(ln)
            else:
                result.ignored[ln.event] += 1
                return []
            events = [
                check_event(_make(f"ql-{callid}-{line_no}-{n}", etype, at, **fields))
                for n, (etype, at, fields) in enumerate(derived)
            ]
        except LineError as exc:
            result.skipped.append(Skipped(line_no, exc.reason, exc.detail))
            return []
        if self.clock_limit_ms is None or ln.ts <= self.clock_limit_ms:
            self.newest_ms = max(self.newest_ms, ln.ts)
        return events

    def forget_calls_before(self, ms: int, finished_ms: int | None = None) -> int:
        """Drop the state of calls with no line since `ms`, and of finished calls (ended, or left
        the queue unanswered) with none since `finished_ms` (a follower's memory and state file
        stay small); how many were dropped. A line of such a call afterwards is read as a file
        starting mid-call would be (its visit count restarts)."""
        finished_ms = ms if finished_ms is None else finished_ms

        def gone(v: _Visit) -> bool:
            done = v.ended or (v.outcome is not None and v.outcome != "call.answered")
            return v.seen_ms < (finished_ms if done else ms)

        old = [c for c, (_, v) in self._conv.visits.items() if gone(v)]
        for c in old:
            del self._conv.visits[c]
        return len(old)

    def state(self) -> dict[str, Any]:
        """The reader's state as JSON-ready data (open calls, visit counts, agent states)."""
        return {
            "newest_ms": self.newest_ms,
            "visits": {
                callid: [n, v.call_id, v.offered_ms, v.outcome, v.ended, list(v.cancelled), v.seen_ms]
                for callid, (n, v) in self._conv.visits.items()
            },
            "agents": {
                op: [a.state, list(a.queues), None if a.last is None else [a.last[0], list(a.last[1])]]
                for op, a in self._conv.agents.items()
            },
        }

    @classmethod
    def restore(cls, state: dict[str, Any], result: ImportResult, zone: ZoneInfo) -> LineReader:
        """A reader that goes on from `state` (as returned by `state`); ValueError if malformed."""
        reader = cls(result, zone)
        try:
            reader.newest_ms = int(state["newest_ms"])
            for callid, (n, call_id, offered, outcome, ended, cancelled, seen) in state["visits"].items():
                visit = _Visit(str(call_id), offered, outcome, bool(ended), [str(c) for c in cancelled], seen)
                reader._conv.visits[str(callid)] = (int(n), visit)
            for op, (st, queues, last) in state["agents"].items():
                reader._conv.agents[str(op)] = _Agent(
                    st, [str(q) for q in queues], None if last is None else (str(last[0]), tuple(last[1]))
                )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a queue_log reader state: {exc!r}") from None
        return reader


def convert(lines: Iterable[str], tz: str = "UTC") -> ImportResult:
    """Every contract event derived from the lines of a queue_log, with the lines it could not use
    (see `iter_events`, which does the same without holding the events)."""
    result = ImportResult()
    result.events.extend(iter_events(lines, result, tz))
    return result

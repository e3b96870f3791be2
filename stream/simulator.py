"""A deterministic contact-centre simulator: a queueing model that emits contract events in time order.

Calls, chats and e-mails arrive as Poisson processes whose rate follows the time of day (morning and
afternoon peaks). Operators work shifts with breaks and serve the queues they have skills for;
calls wait in a FIFO per queue, ring at the longest-idle available operator (who may miss the ring),
are talked, wrapped up and disposed. Callers give up after an exponential patience; the system
loses calls that wait too long or find the queue full. Chats run concurrently next to calls;
e-mails are worked in idle time. Unresolved contacts come back (repeat contacts within days).
Everything is driven by event time, and the same `SimConfig` always gives the same events.
See docs/simulator.md for the model, its parameters and the KPIs it produces.
"""

from __future__ import annotations

import bisect
import heapq
import json
import math
import random
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from schemas.timestamps import format_ts
from stream.core.config import HOUR_MS, MINUTE_MS, SECOND_MS

DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True, slots=True)
class SimConfig:
    """The simulated centre. Rates are per hour at the peak of the day; times are in seconds."""

    seed: int = 7
    start: str = "2026-01-15T08:00:00+00:00"
    hours: float = 2.0
    queues: tuple[str, ...] = ("sales", "support", "billing")
    operators: int = 45
    calls_per_hour: float = 300.0
    chats_per_hour: float = 60.0
    emails_per_hour: float = 40.0
    miss_prob: float = 0.04  # a ring not picked up (the operator then pauses for a minute)
    lost_prob: float = 0.002  # technical failure of a call (call.lost reason "error")
    mean_patience_s: float = 240.0  # callers' exponential patience
    mean_answer_s: float = 4.0  # time to pick up a ringing call
    resolve_prob: float = 0.75  # a contact's disposition is resolved
    callback_prob: float = 0.08  # a resolved contact's customer comes back anyway
    duplicate_prob: float = 0.0  # re-send an event (at-least-once producers), right after itself
    staff_events: bool = True  # business.* and staff.* events
    tz: str = ""  # IANA zone of the opening hours; "" = the offset of `start`
    profile: str = "day"  # "day": opening hours 08-20 with peaks and shifts; "flat": 24 h at peak
    mean_handle_s: float = 240.0  # talk time (log-normal, varies by queue)
    mean_wrap_up_s: float = 20.0
    ring_timeout_s: float = 15.0  # a ring not answered by then is missed
    queue_timeout_s: float = 600.0  # the system drops a call waiting longer (call.lost "timeout")
    max_waiting: int = 25  # per queue; a call finding this many waiting is lost ("overflow")
    repeat_prob: float = 0.5  # an unresolved contact's customer comes back
    max_chats: int = 2  # concurrent chats per operator
    mean_email_handle_s: float = 150.0
    # An understaffed hour each day from this local hour (e.g. 10.0, the morning peak): a share of the
    # logged-in operators is called away (a meeting, an outage of their phones), paused until it ends.
    understaffed_at: float = -1.0  # < 0: none
    understaffed_share: float = 0.6
    # The ERP posts the day's orders and cost so far every this many hours while the centre is open
    # (the sums per date add up); 0: once, at the day's close.
    business_every_h: float = 0.0


# The call arrival rate as a fraction of the peak, by local hour (linear in between); 0 outside 08-20.
CALL_PROFILE: tuple[tuple[float, float], ...] = (
    (8.0, 0.45),
    (9.0, 0.80),
    (10.0, 1.00),
    (11.0, 0.95),
    (12.0, 0.70),
    (13.0, 0.72),
    (14.0, 0.88),
    (15.0, 0.95),
    (16.0, 0.80),
    (17.0, 0.60),
    (18.0, 0.42),
    (19.0, 0.28),
    (20.0, 0.20),
)
OPEN_HOUR, CLOSE_HOUR = 8.0, 20.0
GREETING_MS = 8 * SECOND_MS
FULL_SHIFT_H, PART_SHIFT_H = 8.5, 4.0
QUEUE_HANDLE = (1.0, 1.2, 0.9, 1.1, 0.8)  # handle-time factor of the 1st, 2nd, ... queue
ORDER_CONVERSION = 0.35  # orders per answered sales call (the first queue)
HOURLY_COST = 32.0  # cost of a logged-in operator hour
DAILY_FIXED_COST = 1500.0
NEED_SQRT, NEED_BASE = 2.0, 1.0  # staffing need per half hour: load + NEED_SQRT * sqrt(load) + NEED_BASE
EMAIL_RESERVE = 0.15  # share of the logged-in operators kept free for calls when e-mails wait


def call_rate_factor(hour: float) -> float:
    """Fraction of the peak call rate at a local hour of the day (the morning/afternoon profile)."""
    if hour < OPEN_HOUR or hour >= CLOSE_HOUR:
        return 0.0
    i = bisect.bisect_right([h for h, _ in CALL_PROFILE], hour) - 1
    (h0, v0), (h1, v1) = CALL_PROFILE[i], CALL_PROFILE[i + 1]
    return v0 + (v1 - v0) * (hour - h0) / (h1 - h0)


def email_rate_factor(hour: float) -> float:
    """E-mails arrive around the clock, with the day's shape on top of a night floor."""
    return 0.15 + 0.85 * call_rate_factor(hour)


def parse_start(start: str, tz: str = "") -> tuple[int, tzinfo]:
    """`start` (ISO date or date-time) as epoch ms, and the zone whose local hours drive the profile."""
    dt = datetime.fromisoformat(start)
    zone: tzinfo
    if tz:
        zone = ZoneInfo(tz)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=zone)
    elif dt.tzinfo is None:
        zone = UTC
        dt = dt.replace(tzinfo=UTC)
    else:
        zone = dt.tzinfo
    return int(dt.timestamp() * 1000), zone


class _Clock:
    """Local days and hours of event times (one lookup per question, DST handled per day)."""

    def __init__(self, t0: int, t_end: int, zone: tzinfo) -> None:
        first = datetime.fromtimestamp(t0 / 1000, tz=zone).date() - timedelta(days=1)
        self.days: list[date] = []
        self.midnights: list[int] = []
        d = first
        while True:
            ms = int(datetime.combine(d, time(0), tzinfo=zone).timestamp() * 1000)
            self.days.append(d)
            self.midnights.append(ms)
            if ms > t_end + DAY_MS:
                break
            d += timedelta(days=1)

    def day_index(self, t: int) -> int:
        return bisect.bisect_right(self.midnights, t) - 1

    def hour(self, t: int) -> float:
        i = self.day_index(t)
        return (t - self.midnights[i]) / HOUR_MS

    def at(self, day_index: int, hour: float) -> int:
        return self.midnights[day_index] + int(hour * HOUR_MS)


# Kinds of scheduled happenings (the heap's entries).
(
    ARRIVE_CALL,
    ARRIVE_CHAT,
    ARRIVE_EMAIL,
    ABANDON,
    TIMEOUT,
    RING_END,
    CALL_END,
    WRAP_END,
    EMAIL_DONE,
    LOGIN,
    SHIFT_END,
    BREAK_DUE,
    PAUSE_END,
    CHAT_FREE,
    CHAT_GIVE_UP,
    REPEAT,
    DAY_START,
    DAY_CLOSE,
    AWAY_START,
    AWAY_END,
    BUSINESS_POST,
) = range(21)


@dataclass(slots=True)
class _Call:
    call_id: str
    queue: str
    customer: str
    offered: int
    state: str = "waiting"  # waiting, ringing, answered, done
    ring_op: str | None = None
    ring_no: int = 0


@dataclass(slots=True)
class _Chat:
    chat_id: str
    queue: str
    customer: str
    started: int
    next_ts: int = 0  # when the customer's opening burst is over
    messages: int = 0
    assigned: bool = False


@dataclass(slots=True)
class _Op:
    op_id: str
    skills: tuple[str, ...]
    shift_start_h: float
    shift_h: float
    state: str = "logged_out"  # logged_out, available, ringing, busy, wrap_up, email, paused
    emitted: str = "logged_out"  # the last agent.state sent
    idle_since: int = 0
    chats: int = 0
    breaks: list[tuple[int, int]] = field(default_factory=list)  # (due, duration ms), in order
    shift_end: int = 0
    on_shift: bool = False
    call: _Call | None = None
    first_day: int = -(10**6)  # local day index of the first shift (a new hire starts the next day)
    last_day: int = 10**6  # the last day worked (a leaver)
    login_ms: int = 0
    logged_ms: int = 0
    away: bool = False  # called away in the understaffed hour: paused whenever free


def _plan_shifts(cfg: SimConfig, n: int) -> list[tuple[float, float]]:
    """Shift (start hour, length) per operator: a roster that follows the day's load.

    The need per half hour is the offered load in Erlangs plus twice its square root (the
    square-root staffing rule, generous for the small evening groups), scaled to the operators
    there are; full shifts are placed first, then part-time ones fill the gaps, each where it
    reduces the squared shortfall most. So understaffing is spread over the day like overstaffing.
    """
    if cfg.profile == "flat":
        return [(0.0, 24.0)] * n
    slots = [OPEN_HOUR + i / 2 for i in range(int((CLOSE_HOUR - OPEN_HOUR) * 2))]
    handle = cfg.mean_handle_s + cfg.mean_wrap_up_s + cfg.mean_answer_s
    need = []
    for h in slots:
        load = cfg.calls_per_hour * call_rate_factor(h + 0.25) * handle / 3600
        load += cfg.emails_per_hour * email_rate_factor(h + 0.25) * cfg.mean_email_handle_s / 3600
        need.append(load + NEED_SQRT * math.sqrt(load) + NEED_BASE)
    lengths = [PART_SHIFT_H if i % 4 == 3 else FULL_SHIFT_H for i in range(n)]
    supply = sum(length * 2 for length in lengths)
    target = [x * supply / sum(need) for x in need]
    cover = [0.0] * len(slots)
    plan: dict[int, tuple[float, float]] = {}
    for i in sorted(range(n), key=lambda i: -lengths[i]):
        length = lengths[i]
        best_gain, best_first = -math.inf, 0
        for first in range(len(slots) - int(length * 2) + 1):
            span = range(first, first + int(length * 2))
            gain = sum(2 * (target[s] - cover[s]) - 1 for s in span)
            if gain > best_gain + 1e-9:
                best_gain, best_first = gain, first
        for s in range(best_first, best_first + int(length * 2)):
            cover[s] += 1
        plan[i] = (slots[best_first], length)
    return [plan[i] for i in range(n)]


def _skills(rnd: random.Random, queues: tuple[str, ...], weights: list[float]) -> tuple[str, ...]:
    """A third of the operators serve every queue, most serve two, some one (always the primary)."""
    primary = rnd.choices(queues, weights)[0]
    r = rnd.random()
    if r < 0.35 or len(queues) == 1:
        return queues
    if r < 0.85:
        other = rnd.choice([q for q in queues if q != primary])
        return tuple(q for q in queues if q in (primary, other))
    return (primary,)


class _Sim:
    """One run of the model: a heap of scheduled happenings processed in event-time order."""

    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.rnd = random.Random(cfg.seed)
        self.t0, zone = parse_start(cfg.start, cfg.tz)
        self.t_end = self.t0 + int(cfg.hours * HOUR_MS)
        self.clock = _Clock(self.t0, self.t_end, zone)
        self.out: list[tuple[int, int, dict[str, Any]]] = []
        self.seq = 0
        self.heap: list[tuple[int, int, int, Any]] = []
        self.hseq = 0
        q = cfg.queues
        self.qweights = [1 / (i + 1.5) for i in range(len(q))]
        self.handle_factor = {name: QUEUE_HANDLE[i % len(QUEUE_HANDLE)] for i, name in enumerate(q)}
        self.waiting: dict[str, deque[_Call]] = {name: deque() for name in q}
        self.chat_wait: dict[str, deque[_Chat]] = {name: deque() for name in q}
        self.emails: dict[str, deque[tuple[str, str, int]]] = {name: deque() for name in q}
        self.ops: dict[str, _Op] = {}
        self.n_call = self.n_chat = self.n_mail = self.n_cust = 0
        self.sales_answered = 0
        self.business_since: dict[int, int] = {}  # local day -> the end of its last business posting
        self.flat = cfg.profile == "flat"
        plan = _plan_shifts(cfg, cfg.operators)
        for i, (start_h, length) in enumerate(plan, 1):
            oid = f"op-{i:03d}"
            self.ops[oid] = _Op(oid, _skills(self.rnd, q, self.qweights), start_h, length)
        self.next_op_no = cfg.operators + 1

    # -- plumbing ------------------------------------------------------------------------------
    def emit(self, ts: int, etype: str, **fields: Any) -> None:
        if ts >= self.t_end or ts < self.t0:
            return
        self.seq += 1
        ev = {"event_id": f"ev-{self.cfg.seed}-{self.seq}", "type": etype, "ts": format_ts(ts), **fields}
        self.out.append((ts, self.seq, ev))

    def at(self, ts: int, kind: int, payload: Any = None) -> None:
        if ts < self.t_end:
            self.hseq += 1
            heapq.heappush(self.heap, (ts, self.hseq, kind, payload))

    def secs(self, mean_s: float, sigma: float = 0.6, low_s: float = 1.0) -> int:
        """A log-normal duration with the given mean, in ms (service times are skewed like this)."""
        mu = math.log(max(mean_s, low_s)) - sigma * sigma / 2
        return int(max(low_s, self.rnd.lognormvariate(mu, sigma)) * SECOND_MS)

    def expo_ms(self, rate_per_hour: float) -> int:
        return int(self.rnd.expovariate(rate_per_hour / HOUR_MS)) + 1

    def pick_queue(self) -> str:
        return self.rnd.choices(self.cfg.queues, self.qweights)[0]

    def new_customer(self) -> str:
        self.n_cust += 1
        return f"cust-{self.cfg.seed}-{self.n_cust:06d}"

    def is_open(self, t: int) -> bool:
        return self.flat or call_rate_factor(self.clock.hour(t)) > 0

    def set_state(self, op: _Op, t: int, state: str) -> None:
        """Move an operator; emit agent.state when the contract's view of it changes."""
        if state == "available" and op.state != "available":
            op.idle_since = t
        op.state = state
        shown = {"ringing": "available", "email": "busy"}.get(state, state)
        if shown != op.emitted:
            op.emitted = shown
            self.emit(t, "agent.state", operator_id=op.op_id, state=shown, queues=list(op.skills))

    # -- arrivals ------------------------------------------------------------------------------
    def next_arrival(self, t: int, kind: int, peak: float, factor: Callable[[float], float]) -> None:
        """Thinning: candidates at the peak rate, each kept with the profile's factor at its time."""
        if peak <= 0:
            return
        while True:
            t += self.expo_ms(peak)
            if t >= self.t_end:
                return
            if self.flat or self.rnd.random() < factor(self.clock.hour(t)):
                self.at(t, kind)
                return

    def offer_call(self, t: int, queue: str, customer: str) -> None:
        cfg = self.cfg
        self.n_call += 1
        call = _Call(f"call-{cfg.seed}-{self.n_call}", queue, customer, t)
        self.emit(t, "call.offered", call_id=call.call_id, queue=queue, customer_id=customer)
        if self.rnd.random() < cfg.lost_prob:
            call.state = "done"
            self.emit(t + self.secs(8), "call.lost", call_id=call.call_id, reason="error")
            return
        if not any(op.on_shift and queue in op.skills for op in self.ops.values()):
            call.state = "done"
            self.emit(t + 2 * SECOND_MS, "call.lost", call_id=call.call_id, reason="no_agents")
            return
        if len(self.waiting[queue]) >= cfg.max_waiting:
            call.state = "done"
            self.emit(t + SECOND_MS, "call.lost", call_id=call.call_id, reason="overflow")
            return
        self.waiting[queue].append(call)
        # Everyone hears the greeting (8 s); beyond it, patience is exponential with a heavy tail:
        # four in five callers have 3/4 of the mean, one in five twice the mean (who may time out).
        mean = cfg.mean_patience_s * SECOND_MS * (0.75 if self.rnd.random() < 0.8 else 2.0)
        patience = GREETING_MS + int(self.rnd.expovariate(1 / mean))
        self.at(t + patience, ABANDON, call)
        self.at(t + int(cfg.queue_timeout_s * SECOND_MS), TIMEOUT, call)

    def start_chat(self, t: int, queue: str, customer: str) -> None:
        self.n_chat += 1
        chat = _Chat(f"chat-{self.cfg.seed}-{self.n_chat}", queue, customer, t)
        self.emit(t, "chat.started", chat_id=chat.chat_id, queue=queue, customer_id=customer)
        ts = t + self.rnd.randint(3, 20) * SECOND_MS
        ts = self.customer_burst(ts, chat)
        chat.next_ts = ts
        self.chat_wait[queue].append(chat)
        give_up = int(self.rnd.expovariate(1 / (180 * SECOND_MS))) + 10 * SECOND_MS
        self.at(ts + give_up, CHAT_GIVE_UP, chat)

    def customer_burst(self, ts: int, chat: _Chat) -> int:
        """One to three customer messages a few seconds apart; returns the time after the last."""
        for _ in range(self.rnd.choice((1, 1, 1, 2, 2, 3))):
            chat.messages += 1
            mid = f"{chat.chat_id}-m{chat.messages}"
            self.emit(ts, "chat.message", chat_id=chat.chat_id, message_id=mid, sender="customer")
            ts += self.rnd.randint(1, 5) * SECOND_MS
        return ts

    def receive_email(self, t: int, queue: str, customer: str) -> None:
        self.n_mail += 1
        eid = f"mail-{self.cfg.seed}-{self.n_mail}"
        self.emit(t, "email.received", email_id=eid, queue=queue, customer_id=customer)
        self.emails[queue].append((eid, customer, t))

    # -- matching ------------------------------------------------------------------------------
    def dispatch(self, t: int) -> None:
        """Oldest waiting call first, to the longest-idle available operator with its skill; then
        chats to operators with free chat capacity; then e-mails to idle operators if calls can wait."""
        while True:
            best: _Call | None = None
            best_op: _Op | None = None
            for q, dq in self.waiting.items():
                if not dq or (best is not None and dq[0].offered >= best.offered):
                    continue
                cand = None
                for op in self.ops.values():
                    if (
                        op.state == "available"
                        and q in op.skills
                        and (cand is None or op.idle_since < cand.idle_since)
                    ):
                        cand = op
                if cand is not None:
                    best, best_op = dq[0], cand
            if best is None or best_op is None:
                break
            self.waiting[best.queue].popleft()
            self.ring(t, best, best_op)
        for q, cq in self.chat_wait.items():
            while cq:
                cands = [
                    op
                    for op in self.ops.values()
                    if op.on_shift
                    and op.state not in ("logged_out", "paused")
                    and q in op.skills
                    and op.chats < self.cfg.max_chats
                ]
                if not cands:
                    break
                op = min(cands, key=lambda o: (o.chats, o.state != "available", o.idle_since))
                self.assign_chat(t, cq.popleft(), op)
        if not any(self.emails.values()):
            return
        idle = [op for op in self.ops.values() if op.state == "available" and op.on_shift]
        idle.sort(key=lambda o: o.idle_since)
        logged_in = sum(1 for op in self.ops.values() if op.on_shift)
        reserve = max(1, round(EMAIL_RESERVE * logged_in))
        while len(idle) > reserve:  # keep some operators free for the next calls
            op = idle.pop(0)
            queues = [q for q in op.skills if self.emails[q]]
            if not queues:
                continue
            oq = min(queues, key=lambda q: self.emails[q][0][2])
            mail = self.emails[oq].popleft()
            self.set_state(op, t, "email")
            self.at(t + self.secs(self.cfg.mean_email_handle_s, 0.7, 20), EMAIL_DONE, (op, mail, oq))

    def ring(self, t: int, call: _Call, op: _Op) -> None:
        cfg = self.cfg
        call.state, call.ring_op = "ringing", op.op_id
        call.ring_no += 1
        self.set_state(op, t, "ringing")
        op.call = call
        self.emit(t, "call.ringing", call_id=call.call_id, operator_id=op.op_id)
        timeout = int(cfg.ring_timeout_s * SECOND_MS)
        if self.rnd.random() < cfg.miss_prob:
            self.at(t + timeout, RING_END, (call, op, call.ring_no, False))
        else:
            pick = min(self.secs(cfg.mean_answer_s, 0.5, 1), timeout - 500)
            self.at(t + pick, RING_END, (call, op, call.ring_no, True))

    def assign_chat(self, t: int, chat: _Chat, op: _Op) -> None:
        """Assign, then write the conversation: operator replies (slower when busy) and customer bursts."""
        rnd = self.rnd
        chat.assigned = True
        op.chats += 1
        cid = chat.chat_id
        self.emit(t, "chat.assigned", chat_id=cid, operator_id=op.op_id)
        slow = (1.0 + 0.4 * (op.chats - 1)) * (1.6 if op.state in ("busy", "ringing", "wrap_up") else 1.0)
        ts = max(chat.next_ts, t + 2 * SECOND_MS)
        exchanges = rnd.randint(2, 6)
        for k in range(exchanges):
            ts += self.secs(5.0 * slow, 0.7, 2)
            chat.messages += 1
            mid = f"{cid}-m{chat.messages}"
            self.emit(
                ts, "chat.message", chat_id=cid, message_id=mid, sender="operator", operator_id=op.op_id
            )
            if k < exchanges - 1:
                ts = self.customer_burst(ts + self.secs(35, 0.6, 5), chat)
        if rnd.random() < 0.25:  # a last "thanks" nobody answers
            ts = self.customer_burst(ts + rnd_ms(rnd, 5, 30), chat)
        ts += rnd_ms(rnd, 5, 60)
        self.emit(ts, "chat.ended", chat_id=cid)
        self.at(ts, CHAT_FREE, op)
        self.dispose(ts + rnd_ms(rnd, 2, 20), cid, "chat", op.op_id, chat.customer, chat.queue)

    # -- outcomes ------------------------------------------------------------------------------
    def dispose(self, t: int, contact_id: str, channel: str, op_id: str, customer: str, queue: str) -> None:
        """The disposition, and maybe a repeat contact of the same customer (hours to days later)."""
        rnd = self.rnd
        resolved = rnd.random() < self.cfg.resolve_prob
        self.emit(
            t,
            "contact.disposition",
            contact_id=contact_id,
            channel=channel,
            operator_id=op_id,
            resolved=resolved,
            customer_id=customer,
        )
        if rnd.random() >= (self.cfg.callback_prob if resolved else self.cfg.repeat_prob):
            return
        if rnd.random() < 0.7:
            delay = rnd.uniform(20 * MINUTE_MS, 5 * HOUR_MS)
        else:
            delay = rnd.uniform(1 * DAY_MS, 5 * DAY_MS)
        when = t + int(delay)
        if when >= self.t_end:
            return
        if not self.is_open(when):  # the customer tries again when the centre is open
            day = self.clock.day_index(when)
            if self.clock.hour(when) >= CLOSE_HOUR:
                day += 1
            when = self.clock.at(day, OPEN_HOUR + rnd.uniform(0, 3))
        channel_next = rnd.choices(("call", "chat", "email"), (0.8, 0.1, 0.1))[0]
        self.at(when, REPEAT, (channel_next, queue, customer))

    def free(self, op: _Op, t: int) -> None:
        """After a contact: a due break, the end of the shift, or available again."""
        op.call = None
        if not op.on_shift or t >= op.shift_end:
            self.logout(op, t)
        elif op.away:
            self.set_state(op, t, "paused")  # back when the understaffed hour ends
        elif op.breaks and op.breaks[0][0] <= t:
            _, dur = op.breaks.pop(0)
            self.set_state(op, t, "paused")
            self.at(t + dur, PAUSE_END, op)
        else:
            self.set_state(op, t, "available")

    def logout(self, op: _Op, t: int) -> None:
        op.on_shift = False
        op.breaks.clear()
        op.logged_ms += t - op.login_ms
        self.set_state(op, t, "logged_out")

    def abandon(self, t: int, call: _Call) -> None:
        if call.state == "waiting":
            self.waiting[call.queue].remove(call)
            self.emit(t, "call.abandoned", call_id=call.call_id)
        elif call.state == "ringing":
            op = self.ops[str(call.ring_op)]
            self.emit(t, "call.abandoned", call_id=call.call_id, operator_id=op.op_id)
            self.free(op, t)
        else:
            return
        call.state = "done"

    def timeout(self, t: int, call: _Call) -> None:
        if call.state == "waiting":
            self.waiting[call.queue].remove(call)
        elif call.state == "ringing":
            self.free(self.ops[str(call.ring_op)], t)
        else:
            return
        call.state = "done"
        self.emit(t, "call.lost", call_id=call.call_id, reason="timeout")

    def ring_end(self, t: int, call: _Call, op: _Op, ring_no: int, picked: bool) -> None:
        if call.state != "ringing" or call.ring_no != ring_no:
            return  # abandoned or timed out while ringing
        if not picked:
            self.emit(t, "call.missed", call_id=call.call_id, operator_id=op.op_id)
            call.state, call.ring_op = "waiting", None
            self.waiting[call.queue].appendleft(call)  # keeps its place: it is the oldest
            op.call = None
            self.set_state(op, t, "paused")  # redirected on no answer: the ACD pauses the operator
            self.at(t + self.rnd.randint(30, 90) * SECOND_MS, PAUSE_END, op)
            return
        call.state = "answered"
        self.emit(t, "call.answered", call_id=call.call_id, operator_id=op.op_id)
        if call.queue == self.cfg.queues[0]:
            self.sales_answered += 1
        self.set_state(op, t, "busy")
        talk = self.secs(self.cfg.mean_handle_s * self.handle_factor[call.queue], 0.75, 15)
        self.at(t + talk, CALL_END, op)

    # -- days, shifts, business ----------------------------------------------------------------
    def plan_day(self, day: int) -> None:
        """Logins, breaks and shift ends of one local day; staff and business events of the day."""
        rnd = self.rnd
        clock = self.clock
        if self.flat:
            if day == clock.day_index(self.t0):
                for op in self.ops.values():
                    self.at(self.t0, LOGIN, (op, self.t_end + HOUR_MS))
            return
        for op in self.ops.values():
            if not op.first_day <= day <= op.last_day:
                continue
            login = clock.at(day, op.shift_start_h) - rnd.randint(0, 300) * SECOND_MS
            end = clock.at(day, op.shift_start_h + op.shift_h)
            if end <= self.t0:
                continue
            self.at(max(login, self.t0), LOGIN, (op, end))

    def login(self, t: int, op: _Op, shift_end: int) -> None:
        rnd = self.rnd
        op.on_shift, op.shift_end, op.login_ms = True, shift_end, t
        h = op.shift_h
        if self.flat:
            marks = [(2.0 + 4.0 * k, 15) for k in range(int(self.cfg.hours / 4) + 1)]
        elif h >= FULL_SHIFT_H:  # staggered like a planner would: a break, lunch, a break
            marks = [(rnd.uniform(1.5, 2.5), 15), (rnd.uniform(3.5, 5.0), 30), (rnd.uniform(6.0, 7.0), 15)]
        else:
            marks = [(rnd.uniform(1.5, 2.5), 10)]
        shift_start = shift_end - int(h * HOUR_MS)
        op.breaks = []
        for at_h, minutes in marks:
            due = shift_start + int(at_h * HOUR_MS)
            if due > t:
                op.breaks.append((due, minutes * MINUTE_MS))
                self.at(due, BREAK_DUE, op)
        self.at(shift_end, SHIFT_END, op)
        self.set_state(op, t, "available")

    def day_start(self, t: int, day: int) -> None:
        """Headcount, and now and then a leaver replaced by a hire who starts the next day."""
        if not self.cfg.staff_events:
            return
        active = [op for op in self.ops.values() if op.last_day >= day]
        self.emit(t, "staff.headcount", count=len(active))
        first_day = day == self.clock.day_index(self.t0)
        # About 3 % leave a month; the first day always has one, so short runs carry every type.
        if not active or not (first_day or self.rnd.random() < len(active) * 0.03 / 30):
            return
        leaver = active[-1] if first_day else self.rnd.choice(active)
        leaver.last_day = day
        hire = _Op(f"op-{self.next_op_no:03d}", leaver.skills, leaver.shift_start_h, leaver.shift_h)
        hire.first_day = day + 1
        self.next_op_no += 1
        self.ops[hire.op_id] = hire
        self.emit(t + rnd_ms(self.rnd, 1800, 5400), "staff.hired", operator_id=hire.op_id)
        leave_at = max(t, self.clock.at(day, leaver.shift_start_h + leaver.shift_h)) + MINUTE_MS
        self.emit(leave_at, "staff.left", operator_id=leaver.op_id)

    def day_close(self, t: int, day: int) -> None:
        """The day's orders and cost, as the ERP posts them at the close (or where the run ends)."""
        if self.cfg.staff_events:
            self.post_business(t, day)

    def post_business(self, t: int, day: int) -> None:
        """The orders and cost of the day since its last posting (all of it without `business_every_h`)."""
        rnd = self.rnd
        clock = self.clock
        since = self.business_since.get(day, max(self.t0, clock.midnights[day]))
        self.business_since[day] = t
        opened = max(since, clock.at(day, OPEN_HOUR))
        if self.flat:
            hours_open = 24.0 * (t - since) / DAY_MS if self.cfg.business_every_h > 0 else 24.0
        else:
            hours_open = max(0, min(t, clock.at(day, CLOSE_HOUR)) - opened) / HOUR_MS
        count = int(self.sales_answered * ORDER_CONVERSION + hours_open * self.cfg.calls_per_hour * 0.1)
        amount = round(sum(rnd.lognormvariate(math.log(70), 0.5) for _ in range(count)), 2)
        logged = 0
        for op in self.ops.values():
            logged += op.logged_ms
            op.logged_ms = 0
            if op.on_shift:
                logged += t - op.login_ms
                op.login_ms = t
        span = (t - since) / DAY_MS
        cost = round(logged / HOUR_MS * HOURLY_COST + DAILY_FIXED_COST * span, 2)
        d = clock.days[day].isoformat()
        self.emit(t, "business.orders", date=d, count=count, amount=amount)
        self.emit(t, "business.cost", date=d, amount=cost)
        self.sales_answered = 0

    # -- the happenings: one handler per kind, each (t, payload) ----------------------------------
    def on_arrive_call(self, t: int, _p: None) -> None:
        self.offer_call(t, self.pick_queue(), self.new_customer())
        self.next_arrival(t, ARRIVE_CALL, self.cfg.calls_per_hour, call_rate_factor)

    def on_arrive_chat(self, t: int, _p: None) -> None:
        self.start_chat(t, self.pick_queue(), self.new_customer())
        self.next_arrival(t, ARRIVE_CHAT, self.cfg.chats_per_hour, call_rate_factor)

    def on_arrive_email(self, t: int, _p: None) -> None:
        self.receive_email(t, self.pick_queue(), self.new_customer())
        self.next_arrival(t, ARRIVE_EMAIL, self.cfg.emails_per_hour, email_rate_factor)

    def on_ring_end(self, t: int, p: tuple[_Call, _Op, int, bool]) -> None:
        self.ring_end(t, *p)

    def on_call_end(self, t: int, op: _Op) -> None:
        call = op.call
        assert call is not None
        self.emit(t, "call.ended", call_id=call.call_id, operator_id=op.op_id)
        call.state = "done"
        self.set_state(op, t, "wrap_up")
        self.at(t + self.secs(self.cfg.mean_wrap_up_s, 0.5, 3), WRAP_END, op)

    def on_wrap_end(self, t: int, op: _Op) -> None:
        call = op.call
        assert call is not None
        self.dispose(t, call.call_id, "call", op.op_id, call.customer, call.queue)
        self.free(op, t)

    def on_email_done(self, t: int, p: tuple[_Op, tuple[str, str, int], str]) -> None:
        op, (eid, customer, _), queue = p
        self.emit(t, "email.replied", email_id=eid, operator_id=op.op_id)
        if self.rnd.random() < 0.05:  # a follow-up reply; only the first one counts for RT
            self.emit(t + rnd_ms(self.rnd, 300, 1800), "email.replied", email_id=eid, operator_id=op.op_id)
        self.dispose(t + SECOND_MS, eid, "email", op.op_id, customer, queue)
        self.free(op, t)

    def on_login(self, t: int, p: tuple[_Op, int]) -> None:
        op, end = p
        if not op.on_shift:
            self.login(t, op, end)

    def on_shift_end(self, t: int, op: _Op) -> None:
        if op.on_shift and op.state in ("available", "paused"):
            self.logout(op, t)

    def on_break_due(self, t: int, op: _Op) -> None:
        if op.on_shift and op.state == "available" and op.breaks and op.breaks[0][0] <= t:
            _, dur = op.breaks.pop(0)
            self.set_state(op, t, "paused")
            self.at(t + dur, PAUSE_END, op)

    def on_pause_end(self, t: int, op: _Op) -> None:
        if op.on_shift and op.state == "paused" and not op.away:
            self.free(op, t)

    def on_chat_free(self, t: int, op: _Op) -> None:
        op.chats -= 1

    def on_chat_give_up(self, t: int, chat: _Chat) -> None:
        if not chat.assigned:
            self.chat_wait[chat.queue].remove(chat)
            chat.assigned = True
            self.emit(t, "chat.ended", chat_id=chat.chat_id)

    def on_repeat(self, t: int, p: tuple[str, str, str]) -> None:
        channel, queue, customer = p
        if channel == "call":
            self.offer_call(t, queue, customer)
        elif channel == "chat":
            self.start_chat(t, queue, customer)
        else:
            self.receive_email(t, queue, customer)

    def on_day_start(self, t: int, day: int) -> None:
        self.day_start(t, day)
        self.plan_day(day)

    def on_away_start(self, t: int, _p: None) -> None:
        """The understaffed hour begins: a share of the operators on shift is called away."""
        on_shift = sorted((op for op in self.ops.values() if op.on_shift), key=lambda o: o.op_id)
        for op in self.rnd.sample(on_shift, round(self.cfg.understaffed_share * len(on_shift))):
            op.away = True
            if op.state == "available":
                self.set_state(op, t, "paused")

    def on_away_end(self, t: int, _p: None) -> None:
        for op in self.ops.values():
            if op.away:
                op.away = False
                if op.on_shift and op.state == "paused":
                    self.free(op, t)

    def on_business_post(self, t: int, day: int) -> None:
        self.post_business(t, day)

    def schedule_day_extras(self, day: int) -> None:
        """The understaffed hour and the ERP's postings of a local day, where configured."""
        cfg = self.cfg
        clock = self.clock
        if cfg.understaffed_at >= 0:
            start = clock.at(day, cfg.understaffed_at)
            if self.t0 <= start:
                self.at(start, AWAY_START)
                self.at(start + HOUR_MS, AWAY_END)
        if cfg.business_every_h > 0 and cfg.staff_events:
            first, last = (0.0, 24.0) if self.flat else (OPEN_HOUR, CLOSE_HOUR)
            k = 1
            while first + k * cfg.business_every_h < last:
                when = clock.at(day, first + k * cfg.business_every_h)
                if self.t0 < when < min(self.t_end - 1, clock.midnights[day + 1] - 1):
                    self.at(when, BUSINESS_POST, day)
                k += 1

    def handlers(self) -> tuple[Callable[[int, Any], None], ...]:
        """The handler of each kind of happening, indexed by the kind."""
        table: dict[int, Callable[[int, Any], None]] = {
            ARRIVE_CALL: self.on_arrive_call,
            ARRIVE_CHAT: self.on_arrive_chat,
            ARRIVE_EMAIL: self.on_arrive_email,
            ABANDON: self.abandon,
            TIMEOUT: self.timeout,
            RING_END: self.on_ring_end,
            CALL_END: self.on_call_end,
            WRAP_END: self.on_wrap_end,
            EMAIL_DONE: self.on_email_done,
            LOGIN: self.on_login,
            SHIFT_END: self.on_shift_end,
            BREAK_DUE: self.on_break_due,
            PAUSE_END: self.on_pause_end,
            CHAT_FREE: self.on_chat_free,
            CHAT_GIVE_UP: self.on_chat_give_up,
            REPEAT: self.on_repeat,
            DAY_START: self.on_day_start,
            DAY_CLOSE: self.day_close,
            AWAY_START: self.on_away_start,
            AWAY_END: self.on_away_end,
            BUSINESS_POST: self.on_business_post,
        }
        assert sorted(table) == list(range(len(table))), "every kind needs exactly one handler"
        return tuple(table[kind] for kind in range(len(table)))

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> list[dict[str, Any]]:
        """Process every scheduled happening in event-time order; the events sorted by time."""
        cfg = self.cfg
        clock = self.clock
        first = clock.day_index(self.t0)
        last = clock.day_index(self.t_end - 1)
        for day in range(first, last + 1):
            self.at(max(self.t0, clock.midnights[day]), DAY_START, day)
            self.at(min(self.t_end - 1, clock.midnights[day + 1] - 1), DAY_CLOSE, day)
            self.schedule_day_extras(day)
        self.next_arrival(self.t0 - 1, ARRIVE_CALL, cfg.calls_per_hour, call_rate_factor)
        self.next_arrival(self.t0 - 1, ARRIVE_CHAT, cfg.chats_per_hour, call_rate_factor)
        self.next_arrival(self.t0 - 1, ARRIVE_EMAIL, cfg.emails_per_hour, email_rate_factor)
        handlers = self.handlers()
        heap = self.heap
        while heap:
            t, _, kind, p = heapq.heappop(heap)
            handlers[kind](t, p)
            self.dispatch(t)
        self.out.sort(key=lambda x: (x[0], x[1]))
        return [e for _, _, e in self.out]


def rnd_ms(rnd: random.Random, low_s: int, high_s: int) -> int:
    return rnd.randint(low_s, high_s) * SECOND_MS


def generate(cfg: SimConfig) -> list[dict[str, Any]]:
    """Every event of the simulated interval, sorted by event time (ties keep generation order)."""
    events = _Sim(cfg).run()
    if cfg.duplicate_prob > 0:
        dup = random.Random(cfg.seed + 1)
        with_dups: list[dict[str, Any]] = []
        for e in events:
            with_dups.append(e)
            if dup.random() < cfg.duplicate_prob:
                with_dups.append(dict(e))
        events = with_dups
    return events


def iter_jsonl(events: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Compact JSON lines, as `kpistream produce` and `kpistream report` read them."""
    for e in events:
        yield json.dumps(e, separators=(",", ":"))

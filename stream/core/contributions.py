"""What one call, chat, e-mail or case contributes to the KPI counts: the one definition of each KPI.

Each function is pure: it maps the *set* of events of one entity to its contributions, a mapping
(scope, scope_id, ts) -> counts, where `ts` is the event time that decides the period. Because the
result depends on the set and not on arrival order, a duplicate changes nothing and any interleaving
gives the same totals; the stream emits the difference between successive results (see entity.py).

Scopes: "op" (operator), "queue", "center" (id ""), "channel" (FCR by channel of the first contact).
"""

from __future__ import annotations

from collections.abc import Sequence

from stream.core import events as ev
from stream.core.config import KpiConfig
from stream.core.counts import Counts, add_into
from stream.core.events import Event

ContribKey = tuple[str, str, int]
Contributions = dict[ContribKey, Counts]

OP = "op"
QUEUE = "queue"
CENTER = "center"
CHANNEL = "channel"
# The live state of a queue is not a period aggregate. Its entries are keyed by the time since when a
# call or chat waits (`live`) or an e-mail is open (`mail`), so the oldest is known and stale ones age
# out; operators' states (`agents`) use time 0 and never age.
LIVE = "live"
MAIL = "mail"
AGENTS = "agents"
NOW_SCOPES = (LIVE, MAIL, AGENTS)
ALL_QUEUES = "_all"

_OUTCOMES = (ev.CALL_ANSWERED, ev.CALL_ABANDONED, ev.CALL_LOST)
# On an exact tie of outcome times, an answer wins over an abandon over a loss (the caller was served).
_OUTCOME_RANK = {ev.CALL_ANSWERED: 0, ev.CALL_ABANDONED: 1, ev.CALL_LOST: 2}


def _put(out: Contributions, scope: str, sid: str, ts: int, counts: Counts) -> None:
    key = (scope, sid, ts)
    cur = out.get(key)
    if cur is None:
        out[key] = dict(counts)
    else:
        add_into(cur, counts)
        if not cur:
            del out[key]


def _first(events: Sequence[Event], etype: str) -> Event | None:
    best: Event | None = None
    for e in events:
        if e.type == etype and (best is None or (e.ts, e.event_id) < (best.ts, best.event_id)):
            best = e
    return best


def call_outcome(events: Sequence[Event]) -> Event | None:
    """The call's first terminal event in event time: answered, abandoned or lost."""
    best: Event | None = None
    for e in events:
        if e.type in _OUTCOME_RANK and (
            best is None
            or (e.ts, _OUTCOME_RANK[e.type], e.event_id) < (best.ts, _OUTCOME_RANK[best.type], best.event_id)
        ):
            best = e
    return best


def call_is_orphan(events: Sequence[Event]) -> bool:
    """A call with an outcome but no `call.offered`: it cannot be counted."""
    return call_outcome(events) is not None and _first(events, ev.CALL_OFFERED) is None


def call_contributions(events: Sequence[Event], cfg: KpiConfig) -> Contributions:
    """Queue, centre and per-operator call counts of one call (CONTRACT.md section 2, Calls)."""
    out: Contributions = {}
    offered = _first(events, ev.CALL_OFFERED)
    outcome = call_outcome(events)
    if offered is None:
        return out
    if outcome is None:
        _put(out, LIVE, offered.queue or "", offered.ts, {"waiting": 1})
        return out
    wait = max(0, outcome.ts - offered.ts)
    queue = offered.queue or ""
    ts = outcome.ts
    if outcome.type == ev.CALL_ABANDONED and wait < cfg.short_abandon_ms:
        short: Counts = {"short_abandoned": 1}
        _put(out, QUEUE, queue, ts, short)
        _put(out, CENTER, "", ts, short)
        return out
    within = wait <= cfg.sl_threshold_ms
    if outcome.type == ev.CALL_ANSWERED:
        q: Counts = {"offered": 1, "answered": 1, "sl_answered": int(within)}
    elif outcome.type == ev.CALL_ABANDONED:
        q = {"offered": 1, "abandoned": 1, "abandoned_in_sl": int(within)}
    else:
        q = {"offered": 1, "lost": 1}
    _put(out, QUEUE, queue, ts, {k: v for k, v in q.items() if v})
    _put(out, CENTER, "", ts, {k: v for k, v in q.items() if v})

    answerer = outcome.operator_id if outcome.type == ev.CALL_ANSWERED else None
    abandoned_at = outcome.operator_id if outcome.type == ev.CALL_ABANDONED else None
    presented: set[str] = set()
    for e in events:
        if e.operator_id is not None and e.ts <= ts and e.type in (ev.CALL_RINGING, ev.CALL_MISSED):
            presented.add(e.operator_id)
    if answerer is not None:
        presented.add(answerer)
    if abandoned_at is not None:
        presented.add(abandoned_at)
    for op in presented:
        c: Counts = {"presented": 1}
        if op == answerer:
            c["answered"] = 1
            if within:
                c["sl_answered"] = 1
        else:
            c["lost"] = 1
        if op == abandoned_at:
            c["abandoned"] = 1
            if within:
                c["abandoned_in_sl"] = 1
        _put(out, OP, op, ts, c)
    return out


_CHAT_RANK = {ev.CHAT_STARTED: 0, ev.CHAT_ASSIGNED: 1, ev.CHAT_MESSAGE: 2, ev.CHAT_ENDED: 4}


def _chat_order(e: Event) -> tuple[int, int, str]:
    rank = _CHAT_RANK[e.type]
    if e.type == ev.CHAT_MESSAGE and e.sender == "operator":
        rank = 3  # at the same millisecond a customer message comes before the reply to it
    return (e.ts, rank, e.event_id)


def chat_contributions(events: Sequence[Event], cfg: KpiConfig) -> Contributions:
    """FAC counts of one chat (CONTRACT.md section 2, Chat)."""
    out: Contributions = {}
    started = _first(events, ev.CHAT_STARTED)
    queue = started.queue if started is not None else None
    open_since: int | None = None
    last_assigned: str | None = None
    seen_messages: set[str] = set()

    def respond(op: str | None, ts: int, fast: bool) -> None:
        c: Counts = {"responses": 1, "fast": 1} if fast else {"responses": 1}
        if op is not None:
            _put(out, OP, op, ts, c)
        if queue is not None:
            _put(out, QUEUE, queue, ts, c)
        _put(out, CENTER, "", ts, c)

    for e in sorted(events, key=_chat_order):
        if e.type == ev.CHAT_ASSIGNED:
            last_assigned = e.operator_id
        elif e.type == ev.CHAT_MESSAGE:
            if e.message_id is not None:
                if e.message_id in seen_messages:
                    continue  # the same message delivered under two event ids
                seen_messages.add(e.message_id)
            if e.sender == "customer":
                if open_since is None:
                    open_since = e.ts
            elif open_since is not None:
                respond(e.operator_id, e.ts, e.ts - open_since <= cfg.chat_threshold_ms)
                open_since = None
        elif e.type == ev.CHAT_ENDED:
            if open_since is not None:
                respond(last_assigned, e.ts, False)
            open_since = None
            break  # nothing after the end of a chat counts
    if open_since is not None and queue is not None:
        _put(out, LIVE, queue, open_since, {"chats_waiting": 1})
    return out


def email_contributions(events: Sequence[Event], cfg: KpiConfig) -> Contributions:
    """RT counts of one e-mail: its first reply only (CONTRACT.md section 2, E-mail)."""
    out: Contributions = {}
    received = _first(events, ev.EMAIL_RECEIVED)
    reply = _first(events, ev.EMAIL_REPLIED)
    if received is not None and reply is None and received.queue is not None:
        _put(out, MAIL, received.queue, received.ts, {"emails_open": 1})
    if received is None or reply is None:
        return out
    c: Counts = {"replied": 1}
    if reply.ts - received.ts <= cfg.email_threshold_ms:
        c["on_time"] = 1
    if reply.operator_id is not None:
        _put(out, OP, reply.operator_id, reply.ts, c)
    if received.queue is not None:
        _put(out, QUEUE, received.queue, reply.ts, c)
    _put(out, CENTER, "", reply.ts, c)
    return out


def fcr_contributions(events: Sequence[Event], cfg: KpiConfig) -> Contributions:
    """FCR counts of one case key (CONTRACT.md section 2, FCR).

    The first disposition opens a case; any disposition within the repeat window of that first one
    makes it a repeat (a resolved first contact is then not counted resolved); one after the window
    opens a new case. Counted in the first contact's period for its operator, channel and the centre.
    """
    out: Contributions = {}
    ds = sorted((e for e in events if e.type == ev.CONTACT_DISPOSITION), key=lambda e: (e.ts, e.event_id))
    i = 0
    while i < len(ds):
        first = ds[i]
        j = i + 1
        while j < len(ds) and ds[j].ts - first.ts <= cfg.fcr_window_ms:
            j += 1
        resolved = bool(first.resolved) and j == i + 1
        c: Counts = {"fcr_contacts": 1, "fcr_resolved": 1} if resolved else {"fcr_contacts": 1}
        if first.operator_id is not None:
            _put(out, OP, first.operator_id, first.ts, c)
        if first.channel is not None:
            _put(out, CHANNEL, first.channel, first.ts, c)
        _put(out, CENTER, "", first.ts, c)
        i = j
    return out


def agent_contributions(events: Sequence[Event], cfg: KpiConfig) -> Contributions:
    """The operator's latest state counts once in each of its queues (`_all` when none are given)."""
    out: Contributions = {}
    latest: Event | None = None
    for e in events:
        if e.type == ev.AGENT_STATE and (latest is None or (e.ts, e.event_id) > (latest.ts, latest.event_id)):
            latest = e
    if latest is None or latest.state in (None, "logged_out"):
        return out
    for q in latest.queues or (ALL_QUEUES,):
        _put(out, AGENTS, q, 0, {f"agents_{latest.state}": 1})
    return out


KIND_OF_STREAM: dict[str, str] = {
    "telephony": "call",
    "chat": "chat",
    "email": "email",
    "contact": "case",
    "agent": "agent",
}


def contributions(kind: str, events: Sequence[Event], cfg: KpiConfig) -> Contributions:
    if kind == "call":
        return call_contributions(events, cfg)
    if kind == "chat":
        return chat_contributions(events, cfg)
    if kind == "email":
        return email_contributions(events, cfg)
    if kind == "case":
        return fcr_contributions(events, cfg)
    if kind == "agent":
        return agent_contributions(events, cfg)
    raise ValueError(f"unknown entity kind {kind!r}")


def diff(old: Contributions, new: Contributions) -> list[tuple[ContribKey, Counts]]:
    """new - old, as a deterministic list (sorted by key) of non-zero count changes."""
    out: list[tuple[ContribKey, Counts]] = []
    for key in sorted(old.keys() | new.keys()):
        d: Counts = dict(new.get(key, {}))
        add_into(d, old.get(key, {}), -1)
        if d:
            out.append((key, d))
    return out

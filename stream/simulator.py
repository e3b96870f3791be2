"""A deterministic contact-centre traffic generator (contract events as dicts, in event-time order).

Calls arrive as a Poisson process per queue; each rings at available operators who may miss it;
callers have a patience (abandon), the system loses some calls (timeout, overflow); chats carry
customer bursts; e-mails get replies; dispositions follow contacts and some customers call back.
The same seed always gives the same events.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stream.core.config import HOUR_MS, SECOND_MS


@dataclass(frozen=True, slots=True)
class SimConfig:
    seed: int = 7
    start: str = "2026-01-15T08:00:00+00:00"
    hours: float = 2.0
    queues: tuple[str, ...] = ("sales", "support", "billing")
    operators: int = 12
    calls_per_hour: float = 300.0
    chats_per_hour: float = 60.0
    emails_per_hour: float = 40.0
    miss_prob: float = 0.15
    lost_prob: float = 0.03
    mean_patience_s: float = 60.0
    mean_answer_s: float = 18.0
    resolve_prob: float = 0.7
    callback_prob: float = 0.15
    duplicate_prob: float = 0.0
    staff_events: bool = True


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def generate(cfg: SimConfig) -> list[dict[str, Any]]:
    """Every event of the simulated interval, sorted by event time (ties keep generation order)."""
    rnd = random.Random(cfg.seed)
    t0 = int(datetime.fromisoformat(cfg.start).timestamp() * 1000)
    t_end = t0 + int(cfg.hours * HOUR_MS)
    ops = [f"op-{i:03d}" for i in range(1, cfg.operators + 1)]
    out: list[tuple[int, int, dict[str, Any]]] = []
    seq = 0

    def emit(ts: int, etype: str, **fields: Any) -> None:
        nonlocal seq
        seq += 1
        out.append((ts, seq, {"event_id": f"ev-{cfg.seed}-{seq}", "type": etype, "ts": _iso(ts), **fields}))

    customers = [f"cust-{i:05d}" for i in range(max(50, int(cfg.calls_per_hour * cfg.hours / 3)))]
    for op in ops:
        emit(t0, "agent.state", operator_id=op, state="available", queues=list(cfg.queues))
    if cfg.staff_events:
        emit(t0, "staff.headcount", count=len(ops))
        emit(
            t0,
            "business.orders",
            date=_iso(t0)[:10],
            count=rnd.randint(200, 400),
            amount=rnd.randint(10000, 40000) + 0.5,
        )
        emit(t0, "business.cost", date=_iso(t0)[:10], amount=12500.00)

    def dispose(ts: int, contact_id: str, channel: str, op: str, customer: str) -> None:
        emit(
            ts,
            "contact.disposition",
            contact_id=contact_id,
            channel=channel,
            operator_id=op,
            resolved=rnd.random() < cfg.resolve_prob,
            customer_id=customer,
        )

    # Calls
    t = t0
    n = 0
    while True:
        t += int(rnd.expovariate(cfg.calls_per_hour / HOUR_MS))
        if t >= t_end:
            break
        n += 1
        cid = f"call-{cfg.seed}-{n}"
        queue = rnd.choice(cfg.queues)
        customer = rnd.choice(customers)
        emit(t, "call.offered", call_id=cid, queue=queue, customer_id=customer)
        patience = int(rnd.expovariate(1 / (cfg.mean_patience_s * SECOND_MS)))
        if rnd.random() < cfg.lost_prob:
            emit(
                t + rnd.randint(5, 120) * SECOND_MS,
                "call.lost",
                call_id=cid,
                reason=rnd.choice(["timeout", "overflow", "no_agents"]),
            )
            continue
        ring_at = t + rnd.randint(1, 30) * SECOND_MS
        answered = False
        while ring_at - t < patience:
            op = rnd.choice(ops)
            emit(ring_at, "call.ringing", call_id=cid, operator_id=op)
            if rnd.random() < cfg.miss_prob:
                ring_at += rnd.randint(5, 15) * SECOND_MS
                if ring_at - t < patience:
                    emit(ring_at, "call.missed", call_id=cid, operator_id=op)
                    continue
                emit(t + patience, "call.abandoned", call_id=cid, operator_id=op)
                break
            ans = ring_at + rnd.randint(1, 8) * SECOND_MS
            if ans - t >= patience:
                emit(t + patience, "call.abandoned", call_id=cid, operator_id=op)
                break
            emit(ans, "call.answered", call_id=cid, operator_id=op)
            end = ans + rnd.randint(30, 600) * SECOND_MS
            emit(end, "call.ended", call_id=cid, operator_id=op)
            dispose(end + 1000, cid, "call", op, customer)
            answered = True
            break
        else:
            emit(t + patience, "call.abandoned", call_id=cid)
        del answered

    # Chats
    t = t0
    n = 0
    while True:
        t += int(rnd.expovariate(cfg.chats_per_hour / HOUR_MS))
        if t >= t_end:
            break
        n += 1
        chid = f"chat-{cfg.seed}-{n}"
        op = rnd.choice(ops)
        customer = rnd.choice(customers)
        emit(t, "chat.started", chat_id=chid, queue=rnd.choice(cfg.queues), customer_id=customer)
        emit(t + 2000, "chat.assigned", chat_id=chid, operator_id=op)
        ts = t + 3000
        m = 0
        for _ in range(rnd.randint(1, 5)):
            for _ in range(rnd.randint(1, 3)):  # a customer burst
                m += 1
                emit(ts, "chat.message", chat_id=chid, message_id=f"{chid}-m{m}", sender="customer")
                ts += rnd.randint(1, 4) * SECOND_MS
            ts += rnd.randint(2, 30) * SECOND_MS
            m += 1
            emit(
                ts, "chat.message", chat_id=chid, message_id=f"{chid}-m{m}", sender="operator", operator_id=op
            )
            ts += rnd.randint(5, 40) * SECOND_MS
        if rnd.random() < 0.2:
            m += 1
            emit(ts, "chat.message", chat_id=chid, message_id=f"{chid}-m{m}", sender="customer")
            ts += 5000
        emit(ts, "chat.ended", chat_id=chid)
        dispose(ts + 500, chid, "chat", op, customer)

    # E-mails
    t = t0
    n = 0
    while True:
        t += int(rnd.expovariate(cfg.emails_per_hour / HOUR_MS))
        if t >= t_end:
            break
        n += 1
        eid = f"mail-{cfg.seed}-{n}"
        customer = rnd.choice(customers)
        emit(t, "email.received", email_id=eid, queue=rnd.choice(cfg.queues), customer_id=customer)
        if rnd.random() < 0.9:
            op = rnd.choice(ops)
            rt = t + rnd.randint(30, 400) * SECOND_MS
            emit(rt, "email.replied", email_id=eid, operator_id=op)
            if rnd.random() < 0.2:
                emit(rt + 60_000, "email.replied", email_id=eid, operator_id=rnd.choice(ops))
            dispose(rt + 100, eid, "email", op, customer)

    if cfg.staff_events:
        emit(t0 + HOUR_MS // 2, "staff.left", operator_id=ops[-1])
        emit(t0 + HOUR_MS, "staff.hired", operator_id="op-new-1")

    out.sort(key=lambda x: (x[0], x[1]))
    events = [e for _, _, e in out]
    if cfg.duplicate_prob > 0:
        dup = random.Random(cfg.seed + 1)
        with_dups: list[dict[str, Any]] = []
        for e in events:
            with_dups.append(e)
            if dup.random() < cfg.duplicate_prob:
                with_dups.append(dict(e))
        events = with_dups
    return events


def iter_jsonl(events: list[dict[str, Any]]) -> Iterator[str]:
    import json

    for e in events:
        yield json.dumps(e, separators=(",", ":"))

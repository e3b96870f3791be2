"""The benchmark's workloads (deterministic) and a fast producer that writes them to the input topics."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from schemas.parse import parse_event
from schemas.timestamps import format_ts
from stream.config import Settings
from stream.core.config import DAY_MS, SECOND_MS
from stream.simulator import SimConfig, generate
from stream.topics import INPUT_TOPICS

PROBE_QUEUE = "bench-probe"
_EVENTS_PER_SIM_HOUR = 9_700  # of THROUGHPUT_SIM at hours=1, measured; only sizes the first try


@dataclass(frozen=True, slots=True)
class Message:
    """One input message: its logical stream, Kafka key, value and (for probes) forced partition."""

    stream: str
    key: bytes | None
    value: bytes
    partition: int | None = None


def sim_config(hours: float, seed: int = 11) -> SimConfig:
    """A bigger centre than the demo's: 60 operators, 5 queues, busy around the clock."""
    extra: dict[str, Any] = {}
    if "profile" in SimConfig.__dataclass_fields__:  # the queueing simulator: no opening hours
        extra["profile"] = "flat"
    return SimConfig(
        **extra,
        seed=seed,
        start="2026-01-15T00:00:00+00:00",
        hours=hours,
        queues=("sales", "support", "billing", "vip", "tech"),
        operators=60,
        calls_per_hour=1500.0,
        chats_per_hour=200.0,
        emails_per_hour=200.0,
    )


def simulated_events(n: int, seed: int = 11) -> list[dict[str, Any]]:
    """The first `n` events (in event time) of a simulated centre big enough to have them."""
    hours = max(0.05, n / _EVENTS_PER_SIM_HOUR * 1.1)
    while True:
        events = generate(sim_config(hours, seed))
        if len(events) >= n:
            return events[:n]
        hours *= 1.5


# The ids of the things events are about (not who or where): renamed, they are other calls, chats,
# e-mails, messages and cases of the same operators and queues.
_RENAMED_IDS = (
    "event_id",
    "call_id",
    "chat_id",
    "email_id",
    "message_id",
    "contact_id",
    "case_id",
    "customer_id",
)


def renamed(events: Iterable[dict[str, Any]], suffix: str) -> list[dict[str, Any]]:
    """The same workload about other contacts: every contact id and event id gets `suffix`."""
    return [
        {k: f"{v}{suffix}" if k in _RENAMED_IDS and isinstance(v, str) else v for k, v in e.items()}
        for e in events
    ]


def to_message(event: dict[str, Any] | bytes) -> Message:
    """The message `kpistream produce` would send for this event (same topic, same key)."""
    raw = event if isinstance(event, bytes) else json.dumps(event, separators=(",", ":")).encode()
    ev = parse_event(raw)
    key = ev.entity_key.encode() if ev.stream != "business" else None
    return Message(ev.stream, key, raw)


def to_messages(events: Iterable[dict[str, Any]]) -> list[Message]:
    return [to_message(e) for e in events]


def fingerprint(messages: Iterable[Message]) -> str:
    """sha256 of the workload (topics, keys, values): equal fingerprints = the same workload."""
    import hashlib

    h = hashlib.sha256()
    for m in messages:
        h.update(m.stream.encode() + b"\0" + (m.key or b"") + b"\0" + m.value + b"\n")
    return h.hexdigest()[:16]


def write_jsonl(events: Iterable[dict[str, Any]], path: Path) -> int:
    n = 0
    with path.open("w", encoding="utf-8") as f:
        for e in events:
            f.write(json.dumps(e, separators=(",", ":")))
            f.write("\n")
            n += 1
    return n


def probe_pair(i: int, ts_ms: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A call offered and lost on the probe queue: it adds exactly 1 to the queue's `offered` count."""
    cid = f"probe-{i}"
    offered = {
        "event_id": f"probe-{i}-o",
        "type": "call.offered",
        "ts": format_ts(ts_ms),
        "call_id": cid,
        "queue": PROBE_QUEUE,
    }
    lost = {
        "event_id": f"probe-{i}-l",
        "type": "call.lost",
        "ts": format_ts(ts_ms + SECOND_MS),
        "call_id": cid,
        "reason": "timeout",
    }
    return offered, lost


def memory_events(
    operators: int, days: int, per_op_day: int = 2, seed: int = 5, start: datetime | None = None
) -> list[dict[str, Any]]:
    """`operators` operators active on each of `days` days, so every operator has a day aggregate
    for each day retained: per operator and day, an answered call (offered + answered) and, when
    `per_op_day` >= 3, a disposition (FCR counts); with `per_op_day` == 1 a disposition only."""
    rnd = random.Random(seed)
    t0 = int((start or datetime(2026, 1, 1, tzinfo=UTC)).timestamp() * 1000)
    queues = ("sales", "support", "billing", "vip", "tech")
    out: list[tuple[int, int, dict[str, Any]]] = []
    seq = 0

    def emit(ts: int, etype: str, **fields: Any) -> None:
        nonlocal seq
        seq += 1
        out.append((ts, seq, {"event_id": f"m-{seq}", "type": etype, "ts": format_ts(ts), **fields}))

    for d in range(days):
        day0 = t0 + d * DAY_MS + 8 * 3_600_000
        for i in range(operators):
            op = f"op-{i:05d}"
            t = day0 + rnd.randint(0, 10 * 3_600_000)
            if per_op_day >= 2:
                cid = f"mc-{d}-{i}"
                emit(t, "call.offered", call_id=cid, queue=queues[i % len(queues)])
                emit(t + rnd.randint(2, 40) * SECOND_MS, "call.answered", call_id=cid, operator_id=op)
            if per_op_day != 2:
                emit(
                    t + 600 * SECOND_MS,
                    "contact.disposition",
                    contact_id=f"mc-{d}-{i}",
                    channel="call",
                    operator_id=op,
                    resolved=rnd.random() < 0.7,
                    customer_id=f"mcust-{d}-{i}",
                )
    out.sort(key=lambda x: (x[0], x[1]))
    return [e for _, _, e in out]


async def produce(
    bootstrap: Settings | str,
    prefix: str,
    messages: Sequence[Message],
    *,
    streams: Iterable[str] | None = None,
) -> int:
    """Send the messages as fast as the broker takes them (acks=all); returns how many were sent."""
    from stream import kafka_clients

    wanted = set(streams) if streams is not None else None
    producer = kafka_clients.producer(bootstrap, acks="all", linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    sent = 0
    try:
        for m in messages:
            if wanted is not None and m.stream not in wanted:
                continue
            await producer.send(
                f"{prefix}{INPUT_TOPICS[m.stream]}", value=m.value, key=m.key, partition=m.partition
            )
            sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def produce_sync(
    bootstrap: Settings | str,
    prefix: str,
    messages: Sequence[Message],
    *,
    streams: Iterable[str] | None = None,
) -> int:
    return asyncio.run(produce(bootstrap, prefix, messages, streams=streams))

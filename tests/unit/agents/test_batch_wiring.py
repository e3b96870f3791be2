"""The agents' batch code, driven directly with random batch boundaries, equals the Engine.

Faust's test_context() hands an agent one message at a time; this drives `ingest_batch` and
`aggregate_batch` with batches that mix partitions and streams, as a busy worker sees them, with
plain dicts as tables and the deltas routed to partitions the way Kafka would.
"""

from __future__ import annotations

import json
import random
import zlib
from pathlib import Path
from types import SimpleNamespace as NS
from typing import Any

import pytest

from agents.pipeline import Pipeline
from schemas.parse import parse_event
from stream.config import load_settings
from stream.core.aggregate import AggregateStore
from stream.core.config import KpiConfig
from stream.core.contributions import KIND_OF_STREAM
from stream.core.engine import Engine
from stream.core.report import group_by_period
from stream.simulator import SimConfig, generate

PARTITIONS = 4


class _Stream:
    def _set_current_event(self, ev: Any) -> None:  # plain dicts need no current event
        pass


def _partition(key: bytes) -> int:
    return zlib.crc32(key) % PARTITIONS


@pytest.mark.parametrize("seed", [0, 1, 2])
async def test_random_batches_give_the_engines_totals(seed: int, tmp_path: Path) -> None:
    settings = load_settings(env={}, overrides={"partitions": PARTITIONS, "data_dir": str(tmp_path)})
    p = Pipeline(settings)
    for kind in p.entity_tables:
        p.entity_tables[kind] = {}
    p.agg_table, p.business_table, p.alert_table, p.seen_table = {}, {}, {}, {}
    p.store = AggregateStore(p.agg_table, p.cfg, rolling=True)
    sent: list[tuple[bytes, bytes]] = []

    async def send(key: bytes | None = None, value: bytes = b"", **_: Any) -> None:
        sent.append((key or b"", value))

    async def dead(**_: Any) -> None:
        pass

    p.deltas_topic.send = send  # type: ignore[method-assign]
    p.alerts_topic.send = send  # type: ignore[method-assign]
    p.dead_topic.send = dead  # type: ignore[method-assign]

    raw = generate(SimConfig(seed=seed + 20, hours=3, duplicate_prob=0.02))
    lines = [json.dumps(e) for e in raw]
    events = [parse_event(line) for line in lines]
    offsets: dict[tuple[str, int], int] = {}
    by_stream: dict[str, list[Any]] = {}
    for e, line in zip(events, lines, strict=True):
        part = 0 if e.stream == "business" else _partition(e.entity_key.encode())
        topic = f"events.{e.stream}"
        off = offsets.get((topic, part), 0)
        offsets[(topic, part)] = off + 1
        msg = NS(
            message=NS(topic=topic, partition=part, offset=off),
            key=e.entity_key.encode(),
            value=line.encode(),
        )
        by_stream.setdefault(e.stream, []).append(msg)

    rnd = random.Random(seed)
    pending = {s: list(ms) for s, ms in by_stream.items()}
    while any(pending.values()):  # streams interleave; batch sizes vary
        stream = rnd.choice([s for s, ms in pending.items() if ms])
        n = rnd.randint(1, 300)
        batch, pending[stream] = pending[stream][:n], pending[stream][n:]
        await p.ingest_batch(_Stream(), stream, KIND_OF_STREAM.get(stream), batch)

    doffs: dict[int, int] = {}
    deltas = []
    for key, value in sent:
        part = _partition(key)
        deltas.append(
            NS(
                message=NS(topic="kpi.deltas", partition=part, offset=doffs.get(part, 0)),
                key=key,
                value=value,
            )
        )
        doffs[part] = doffs.get(part, 0) + 1
    i = 0
    while i < len(deltas):
        n = rnd.randint(1, 500)
        await p.aggregate_batch(_Stream(), deltas[i : i + n])
        i += n

    engine = Engine(KpiConfig())
    engine.process_all(events)
    got = group_by_period(p.agg_table)
    want = group_by_period(engine.aggs)
    assert {
        pk: (v.operators, v.queues, v.center, v.channels) for pk, v in got.items() if pk != "rolling"
    } == {pk: (v.operators, v.queues, v.center, v.channels) for pk, v in want.items()}


async def test_a_partition_days_ahead_does_not_expire_another_partitions_entities(tmp_path: Path) -> None:
    """Entity state expires by its own partition's event time: a backlog elsewhere expires nothing."""
    settings = load_settings(env={}, overrides={"partitions": 2, "data_dir": str(tmp_path)})
    ticks = iter(range(1_900_000_000, 10**10, 60))  # every look at the clock is a minute on: sweeps run
    p = Pipeline(settings, clock=lambda: float(next(ticks)))
    for kind in p.entity_tables:
        p.entity_tables[kind] = {}
    p.agg_table, p.business_table, p.alert_table, p.seen_table = {}, {}, {}, {}
    p.store = AggregateStore(p.agg_table, p.cfg, rolling=True, event_time=p.event_time)

    async def discard(**_: Any) -> None:
        pass

    p.deltas_topic.send = discard  # type: ignore[method-assign]
    p.dead_topic.send = discard  # type: ignore[method-assign]
    day = 86_400
    t0 = 1_768_467_600  # 2026-01-15T09:00:00Z

    def msg(part: int, offset: int, event: dict[str, Any]) -> Any:
        value = json.dumps({"ts": event["t"], **{k: v for k, v in event.items() if k != "t"}}).encode()
        return NS(message=NS(topic="events.telephony", partition=part, offset=offset), key=b"k", value=value)

    offered = {"event_id": "o1", "type": "call.offered", "t": t0, "call_id": "c1", "queue": "q"}
    await p.ingest_batch(_Stream(), "telephony", "call", [msg(0, 0, offered)])
    ahead = [  # partition 1 is three days ahead (a backlog on partition 0, or a replay)
        msg(
            1,
            i,
            {
                "event_id": f"x{i}",
                "type": "call.offered",
                "t": t0 + 3 * day + i,
                "call_id": f"x{i}",
                "queue": "q",
            },
        )
        for i in range(3)
    ]
    await p.ingest_batch(_Stream(), "telephony", "call", ahead)
    await p.ingest_batch(
        _Stream(), "telephony", "call", [msg(0, 1, {**offered, "event_id": "o2", "call_id": "c2"})]
    )
    assert "c1" in p.entity_tables["call"], "c1 expired by another partition's event time"


async def test_a_queues_alert_follows_its_rolling_hour_when_only_other_queues_have_traffic(
    tmp_path: Path,
) -> None:
    """The rolling hour of a queue slides with event time, whichever queue's events move it: its
    alert resolves (or fires) then, not at its own next call. Stage 1 sends a watermark tick to
    every `kpi.deltas` partition, so the partition holding the quiet queue evaluates it too."""
    settings = load_settings(env={}, overrides={"partitions": PARTITIONS, "data_dir": str(tmp_path)})
    ticks = iter(range(1_900_000_000, 10**10, 60))  # a minute per look at the clock: ticks go out
    p = Pipeline(settings, clock=lambda: float(next(ticks)))
    for kind in p.entity_tables:
        p.entity_tables[kind] = {}
    p.agg_table, p.business_table, p.alert_table, p.seen_table = {}, {}, {}, {}
    p.store = AggregateStore(p.agg_table, p.cfg, rolling=True, event_time=p.event_time)
    deltas: list[Any] = []
    alerts: list[dict[str, Any]] = []

    async def send_delta(key: bytes | None = None, value: bytes = b"", partition: int | None = None) -> None:
        part = _partition(key or b"") if partition is None else partition
        offset = sum(1 for d in deltas if d.message.partition == part)
        deltas.append(NS(message=NS(topic="kpi.deltas", partition=part, offset=offset), key=key, value=value))

    async def send_alert(key: bytes | None = None, value: bytes = b"", **_: Any) -> None:
        alerts.append(json.loads(value))

    async def discard(**_: Any) -> None:
        pass

    p.deltas_topic.send = send_delta  # type: ignore[method-assign]
    p.alerts_topic.send = send_alert  # type: ignore[method-assign]
    p.dead_topic.send = discard  # type: ignore[method-assign]
    quiet = "q"
    busy = next(f"q{i}" for i in range(2, 99) if _partition(f"queue|q{i}".encode()) != _partition(b"queue|q"))
    t0 = 1_768_467_600  # 2026-01-15T09:00:00Z
    events: list[dict[str, Any]] = []
    for i in range(20):  # 20 offered on the quiet queue, 3 lost: LCR 15 % fires
        events.append({"type": "call.offered", "ts": t0 + i, "call_id": f"a{i}", "queue": quiet})
        if i < 3:
            events.append({"type": "call.lost", "ts": t0 + 30 + i, "call_id": f"a{i}", "reason": "timeout"})
        else:
            events.append({"type": "call.ringing", "ts": t0 + 30 + i, "call_id": f"a{i}", "operator_id": "o"})
            events.append(
                {"type": "call.answered", "ts": t0 + 32 + i, "call_id": f"a{i}", "operator_id": "o"}
            )
    for i in range(5):  # half an hour on, 5 answered: 3 lost of 25, LCR 12 %, still firing
        events.append({"type": "call.offered", "ts": t0 + 1800 + i, "call_id": f"c{i}", "queue": quiet})
        events.append({"type": "call.ringing", "ts": t0 + 1801 + i, "call_id": f"c{i}", "operator_id": "o"})
        events.append({"type": "call.answered", "ts": t0 + 1803 + i, "call_id": f"c{i}", "operator_id": "o"})
    later = []
    for i in range(2):  # an hour on: calls on another queue only; the quiet queue's hour holds 5 answered
        later.append({"type": "call.offered", "ts": t0 + 3700 + i, "call_id": f"b{i}", "queue": busy})
        later.append({"type": "call.answered", "ts": t0 + 3705 + i, "call_id": f"b{i}", "operator_id": "o"})

    async def run(batch: list[dict[str, Any]]) -> None:
        offsets: dict[int, int] = {}
        msgs = []
        for e in batch:
            key = e["call_id"].encode()
            part = _partition(key)
            msgs.append(
                NS(
                    message=NS(topic="events.telephony", partition=part, offset=offsets.get(part, 0)),
                    key=key,
                    value=json.dumps({"event_id": f"{e['call_id']}-{e['type']}", **e}).encode(),
                )
            )
            offsets[part] = offsets.get(part, 0) + 1
        start = len(deltas)
        await p.ingest_batch(_Stream(), "telephony", "call", msgs)
        await p.aggregate_batch(_Stream(), deltas[start:])

    await run(events)
    assert [(a["kpi"], a["queue"], a["status"]) for a in alerts if a["scope"] == "queue"] == [
        ("lcr", quiet, "firing")
    ]
    await run(later)
    assert [(a["kpi"], a["queue"], a["status"]) for a in alerts if a["scope"] == "queue"] == [
        ("lcr", quiet, "firing"),
        ("lcr", quiet, "resolved"),
    ]
    assert p.alert_table[f"lcr|queue|{quiet}"].status != "firing"
    assert {d.message.partition for d in deltas if d.key == b"tick@"} == set(range(PARTITIONS))
    # What a complete Redis write of this worker answers for (Batch.alert_scopes).
    assert {("queue", quiet), ("center", "_center")} <= p.alert_scopes()

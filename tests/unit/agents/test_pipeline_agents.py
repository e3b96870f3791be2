"""The Faust wiring with Faust's test_context(): raw bytes in, tables and dead letters out, no broker."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agents import faust_compat
from agents.pipeline import Pipeline
from stream.config import load_settings
from stream.core.aggregate import AggState
from stream.core.entity import EntityState
from stream.core.events import Event
from stream.core.report import group_by_period

T0 = "2026-01-15T09:00:00"


def ev(event_id: str, etype: str, ts: str, **fields: Any) -> bytes:
    return json.dumps({"event_id": event_id, "type": etype, "ts": ts, **fields}).encode()


class Harness:
    """Ingest agents under test; their deltas and dead letters are captured instead of sent."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.deltas: list[tuple[bytes, bytes]] = []
        self.dead: list[dict[str, Any]] = []

        async def send_delta(key: bytes, value: bytes, **_: Any) -> None:
            self.deltas.append((key, value))

        async def send_dead(value: bytes, **_: Any) -> None:
            self.dead.append(json.loads(value))

        pipeline.deltas_topic.send = send_delta  # type: ignore[method-assign]
        pipeline.dead_topic.send = send_dead  # type: ignore[method-assign]

    def agent(self, name: str) -> Any:
        return self.pipeline.app.agents[name]

    async def feed(self, stream: str, items: list[tuple[bytes, bytes]]) -> None:
        """Put raw messages through an ingest agent, then the captured deltas through the aggregate agent."""
        async with self.agent(f"kpistream.ingest.{stream}").test_context() as ingest:
            for key, value in items:
                await ingest.put(value, key=key)
        pending, self.deltas = self.deltas, []
        async with self.agent("kpistream.aggregate").test_context() as agg:
            for key, value in pending:
                await agg.put(value, key=key)


@pytest.fixture()
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    settings = load_settings(
        env={},
        overrides={"partitions": 1, "data_dir": str(tmp_path), "app_id": "kpi-agents", "batch_size": 1},
    )
    # Wall clock from 2028 on (the events are older: none is `future`); every look is a minute later,
    # so sweeps run each batch.
    ticks = iter(range(1_830_000_000, 10**10, 60))
    pipeline = Pipeline(settings, clock=lambda: float(next(ticks)))
    pipeline.app.finalize()
    pipeline.app.conf.store = "memory://"
    pipeline.app.flow_control.resume()
    yield Harness(pipeline)


async def test_a_call_flows_to_queue_center_and_operator_aggregates(harness: Harness) -> None:
    await harness.feed(
        "telephony",
        [
            (b"c1", ev("e1", "call.offered", f"{T0}Z", call_id="c1", queue="sales")),
            (b"c1", ev("e2", "call.ringing", f"{T0}.500Z", call_id="c1", operator_id="o1")),
            (b"c1", ev("e3", "call.answered", "2026-01-15T09:00:20Z", call_id="c1", operator_id="o1")),
        ],
    )
    periods = group_by_period(harness.pipeline.local_aggregates())
    day = periods["day:2026-01-15"]
    assert day.queues["sales"] == {"offered": 1, "answered": 1, "sl_answered": 1}
    assert day.center == {"offered": 1, "answered": 1, "sl_answered": 1}
    assert day.operators["o1"] == {"presented": 1, "answered": 1, "sl_answered": 1}
    assert periods["rolling"].center == {"offered": 1, "answered": 1, "sl_answered": 1}
    assert harness.dead == []


async def test_redelivered_and_duplicated_events_count_once(harness: Harness) -> None:
    offered = ev("e1", "call.offered", f"{T0}Z", call_id="c1", queue="sales")
    lost = ev("e2", "call.lost", "2026-01-15T09:01:00Z", call_id="c1", reason="timeout")
    # The same event twice under one event_id, at two offsets: the second changes nothing.
    await harness.feed("telephony", [(b"c1", offered), (b"c1", lost), (b"c1", lost), (b"c1", offered)])
    day = group_by_period(harness.pipeline.local_aggregates())["day:2026-01-15"]
    assert day.center == {"offered": 1, "lost": 1}


async def test_a_delta_delivered_twice_is_applied_once(harness: Harness) -> None:
    async with harness.agent("kpistream.ingest.telephony").test_context() as ingest:
        await ingest.put(ev("e1", "call.offered", f"{T0}Z", call_id="c1", queue="q"), key=b"c1")
        await ingest.put(ev("e2", "call.answered", f"{T0}.100Z", call_id="c1", operator_id="o"), key=b"c1")
    deltas = list(harness.deltas)
    assert deltas
    async with harness.agent("kpistream.aggregate").test_context() as agg:
        for key, value in deltas + deltas:  # a replay after a crash sends the same deltas again
            await agg.put(value, key=key)
    day = group_by_period(harness.pipeline.local_aggregates())["day:2026-01-15"]
    assert day.center == {"offered": 1, "answered": 1, "sl_answered": 1}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{oops", "invalid_json"),
        (json.dumps({"event_id": "x", "type": "call.offered", "ts": f"{T0}Z"}).encode(), "missing_field"),
        (json.dumps({"event_id": "x", "type": "call.zapped", "ts": f"{T0}Z"}).encode(), "unknown_type"),
        (
            json.dumps({"event_id": "x", "type": "call.lost", "ts": "soon", "call_id": "c"}).encode(),
            "bad_timestamp",
        ),
        (
            json.dumps(
                {"event_id": "x", "type": "chat.started", "ts": f"{T0}Z", "chat_id": "h", "queue": "q"}
            ).encode(),
            "wrong_topic",
        ),
        (b'{"pad": "' + b"x" * 70000 + b'"}', "too_large"),
    ],
)
async def test_bad_messages_go_to_dead_letters_and_change_nothing(
    harness: Harness, raw: bytes, reason: str
) -> None:
    await harness.feed("telephony", [(b"k", raw)])
    assert [d["reason"] for d in harness.dead] == [reason]
    letter = harness.dead[0]
    assert letter["source_topic"].endswith("events.telephony")
    assert len(letter["raw"].encode()) <= 4096
    assert harness.pipeline.local_aggregates() == {}
    text = harness.pipeline.metrics.registry.get_sample_value(
        "callcenter_dead_letters_total", {"reason": reason}
    )
    assert text == 1.0


async def test_an_event_out_of_retention_is_too_late(harness: Harness) -> None:
    await harness.feed(
        "email",
        [
            # Two events vouch for event time (no single event moves it), then one of a month
            # older than the 13-month retention of months.
            (b"m1", ev("e1", "email.received", "2027-03-01T09:00:00Z", email_id="m1", queue="q")),
            (b"m2", ev("e2", "email.received", "2027-03-01T09:00:01Z", email_id="m2", queue="q")),
            (b"m0", ev("e0", "email.received", "2026-01-31T09:00:00Z", email_id="m0", queue="q")),
        ],
    )
    assert [d["reason"] for d in harness.dead] == ["too_late"]


async def test_business_events_reach_the_scorecard_state(harness: Harness) -> None:
    await harness.feed(
        "business",
        [
            (
                b"",
                json.dumps(
                    {
                        "event_id": "b1",
                        "type": "business.orders",
                        "ts": f"{T0}Z",
                        "date": "2026-01-15",
                        "count": 40,
                        "amount": 2000,
                    }
                ).encode(),
            ),
            (
                b"",
                json.dumps(
                    {
                        "event_id": "b2",
                        "type": "business.cost",
                        "ts": f"{T0}Z",
                        "date": "2026-01-15",
                        "amount": 1000,
                    }
                ).encode(),
            ),
        ],
    )
    biz = harness.pipeline.business()
    assert biz.orders["2026-01-15"][0] == 40
    assert str(biz.cost["2026-01-15"]) == "1000"


async def test_an_orphan_call_is_reported_once_and_old_state_is_dropped(harness: Harness) -> None:
    await harness.feed(
        "telephony",
        [
            (b"c0", ev("e0", "call.answered", f"{T0}Z", call_id="c0", operator_id="o")),  # never offered
            (b"c1", ev("e1", "call.offered", "2026-01-15T09:04:00Z", call_id="c1", queue="q")),
            (b"c2", ev("e2", "call.offered", "2026-01-15T09:06:00Z", call_id="c2", queue="q")),
            (b"c3", ev("e3", "call.offered", "2026-01-15T09:07:00Z", call_id="c3", queue="q")),
        ],
    )
    orphans = [d for d in harness.dead if d["reason"] == "orphan"]
    assert len(orphans) == 1 and "c0" in orphans[0]["detail"]
    assert harness.pipeline.entity_tables["call"]["c0"].orphan_reported
    # Three days later the orphan's state (and the waiting calls') is dropped: idle past the grace.
    await harness.feed(
        "telephony",
        [
            (b"c8", ev("e8", "call.offered", "2026-01-18T09:00:00Z", call_id="c8", queue="q")),
            (b"c9", ev("e9", "call.offered", "2026-01-18T09:00:01Z", call_id="c9", queue="q")),
        ],
    )
    assert "c0" not in harness.pipeline.entity_tables["call"]
    assert [d["reason"] for d in harness.dead].count("orphan") == 1


async def test_a_replay_after_the_entity_state_expired_changes_nothing(harness: Harness) -> None:
    """CONTRACT s.1: a repeated event_id changes nothing while its periods are retained, however late."""
    call = [
        (b"c1", ev("e1", "call.offered", f"{T0}Z", call_id="c1", queue="q")),
        (b"c1", ev("e2", "call.answered", f"{T0}.500Z", call_id="c1", operator_id="o")),
    ]
    later = [  # ten days later: two events vouch for the new event time, so c1's state expires
        (b"c8", ev("e8", "call.offered", "2026-01-25T09:00:00Z", call_id="c8", queue="q")),
        (b"c9", ev("e9", "call.offered", "2026-01-25T09:00:01Z", call_id="c9", queue="q")),
    ]
    await harness.feed("telephony", call)
    await harness.feed("telephony", later)
    assert "c1" not in harness.pipeline.entity_tables["call"]
    # The PBX re-sends the day, and one event of it is new: the repeats still change nothing.
    new_event = (b"c1", ev("e3", "call.ended", f"{T0}.900Z", call_id="c1", operator_id="o"))
    await harness.feed("telephony", [new_event, *call, *later])
    day = group_by_period(harness.pipeline.local_aggregates())["day:2026-01-15"]
    assert day.center == {"offered": 1, "answered": 1, "sl_answered": 1}
    assert day.operators["o"]["answered"] == 1


async def test_day_aggregates_out_of_retention_are_deleted_and_their_month_is_kept(
    harness: Harness,
) -> None:
    """The sweep deletes whole periods that left retention (days after `retention_days`)."""
    await harness.feed(
        "telephony",
        [
            (b"c1", ev("e1", "call.offered", f"{T0}Z", call_id="c1", queue="q")),
            (b"c1", ev("e2", "call.answered", f"{T0}.500Z", call_id="c1", operator_id="o")),
        ],
    )
    table = harness.pipeline.agg_table
    assert {"op|o|day:2026-01-15", "queue|q|day:2026-01-15"} <= set(table.keys())
    later = [  # three months later: two events vouch for the new event time
        (b"c8", ev("e8", "call.offered", "2026-04-20T09:00:00Z", call_id="c8", queue="q")),
        (b"c9", ev("e9", "call.offered", "2026-04-20T09:00:01Z", call_id="c9", queue="q")),
    ]
    await harness.feed("telephony", later)
    await harness.feed("telephony", [])  # the next batch's sweep sees the vouched time
    keys = set(table.keys())
    assert not {k for k in keys if k.endswith("|day:2026-01-15")}
    assert {"op|o|month:2026-01", "queue|q|month:2026-01"} <= keys


async def test_state_recovered_at_start_is_swept_like_state_written_here(harness: Harness) -> None:
    """State read back from a changelog arrives without a write: the sweeps must still expire it.

    They once visited only keys written since the worker started, so what a restart recovered
    stayed in memory and in the changelog for good, and came back at every restart.
    """
    pipeline = harness.pipeline
    old_call = Event.from_dict(
        {"event_id": "r1", "type": "call.offered", "ts": 1768467600000, "call_id": "cold", "queue": "q"}
    )
    recovered: list[tuple[Any, str, Any]] = [
        (pipeline.agg_table, "op|o|day:2026-01-15", AggState(counts={"answered": 1})),
        (pipeline.agg_table, "op|o|month:2026-01", AggState(counts={"answered": 1})),
        (pipeline.entity_tables["call"], "cold", EntityState("call", [old_call], [("t:0", 0)])),
    ]
    for table, key, value in recovered:  # what Faust's memory store does with a changelog record
        table.data[key] = value
        faust_compat.key_partitions(table)[key] = 0
    later = [  # three months later: two events vouch for the new event time
        (b"c8", ev("e8", "call.offered", "2026-04-20T09:00:00Z", call_id="c8", queue="q")),
        (b"c9", ev("e9", "call.offered", "2026-04-20T09:00:01Z", call_id="c9", queue="q")),
    ]
    await harness.feed("telephony", later)
    await harness.feed("telephony", [])  # the next batch's sweep sees the vouched time
    keys = set(pipeline.agg_table.keys())
    assert "op|o|day:2026-01-15" not in keys
    assert "op|o|month:2026-01" in keys  # months are retained longer
    assert "cold" not in pipeline.entity_tables["call"]

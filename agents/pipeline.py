"""The Faust wiring: topic -> core -> table -> sinks. No KPI logic lives here.

Stage 1 agents (one per input topic, partitioned by entity key) validate each message, keep the
entity's state in a table and send the count changes to `kpi.deltas`, keyed by aggregate.
The stage 2 agent applies them to the period aggregates table and marks what changed for the
publisher. Both tables are changelogged; exactly-once totals come from the core (see entity.py).
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import faust
from faust.types import EventT, StreamT

from agents.codecs import AGG, ALERT, BUSINESS, ENTITY, TEXT, register_codecs
from schemas.events import dead_letter, format_ts, parse_event
from stream.config import Settings
from stream.core.aggregate import AggregateStore, AggState, split_key
from stream.core.alerts import ALERT_KPIS, FIRING, AlertState, evaluate, rule_for
from stream.core.contributions import KIND_OF_STREAM
from stream.core.engine import Stage1
from stream.core.entity import Delta, EntityState, is_expired_entity, needs_orphan_report
from stream.core.events import Event
from stream.core.periods import ROLLING
from stream.core.scorecard import BusinessState
from stream.errors import InvalidEvent
from stream.metrics import Metrics
from stream.topics import ALERTS, DEAD_LETTERS, DELTAS, INPUT_TOPICS

log = logging.getLogger(__name__)

BUSINESS_KEY = "business"
CENTER_QUEUE = "_center"  # the centre where a queue name is expected
CENTER_AGG_KEY = "center|"
SWEEP_EVERY_S = 10.0

Clock = Callable[[], float]


def _now_ms(clock: Clock) -> int:
    return int(clock() * 1000)


class Pipeline:
    """Builds the Faust app, its topics, tables and agents from settings (nothing global)."""

    def __init__(
        self,
        settings: Settings,
        *,
        metrics: Metrics | None = None,
        clock: Clock = time.time,
        app: faust.App | None = None,
    ) -> None:
        self.settings = settings
        self.cfg = settings.kpi
        self.metrics = metrics or Metrics.create()
        self.clock = clock
        register_codecs(self.cfg)
        self.app = app or make_app(settings)
        self.on_change: list[Callable[[list[str]], None]] = []
        self.watermark = 0
        p = settings.partitions
        self.input_topics = {
            stream: self.app.topic(
                settings.topic(name),
                partitions=1 if stream == "business" else p,
                key_type=bytes,
                value_type=bytes,
                key_serializer="raw",
                value_serializer="raw",
            )
            for stream, name in INPUT_TOPICS.items()
        }
        self.deltas_topic = self.app.topic(
            settings.topic(DELTAS), partitions=p, key_serializer="raw", value_serializer="raw", internal=True
        )
        self.dead_topic = self.app.topic(
            settings.topic(DEAD_LETTERS), key_serializer="raw", value_serializer="raw"
        )
        self.entity_tables: dict[str, Any] = {
            kind: self._table(f"{kind}-state", ENTITY, f"{kind} state by id")
            for kind in ("call", "chat", "email", "case", "agent")
        }
        self.agg_table: Any = self._table("aggregates", AGG, "period aggregates by scope|id|period")
        self.business_table: Any = self._table("business", BUSINESS, "business and staff facts")
        self.alert_table: Any = self._table("alerts", ALERT, "alert state by kpi|scope|queue")
        self.alerts_topic = self.app.topic(
            settings.topic(ALERTS), key_serializer="raw", value_serializer="raw"
        )
        self.on_alert: list[Callable[[dict[str, Any]], None]] = []
        self.stage1 = Stage1(self.entity_tables, self.cfg)
        self.store = AggregateStore(self.agg_table, self.cfg, rolling=True)
        # Keys written per table partition, so sweeps can delete them while processing that partition.
        self._keys: dict[tuple[str, int], set[str]] = defaultdict(set)
        self._last_sweep: dict[tuple[str, int], float] = {}
        for stream, topic in self.input_topics.items():
            self.app.agent(topic, name=f"kpistream.ingest.{stream}")(self._make_ingest(stream))
        self.app.agent(self.deltas_topic, name="kpistream.aggregate")(self._aggregate)

    def _table(self, name: str, value_codec: str, help_text: str) -> Any:
        table: Any = self.app.Table(name, partitions=self.settings.partitions, help=help_text)
        # Faust derives serializers from model types; ours are codecs, set before first use.
        table.key_serializer = TEXT
        table.value_serializer = value_codec
        # The changelog topic was built at registration with JSON serializers; recovery reads through
        # it, so build it again with ours (same name) before the app starts.
        table.changelog_topic = table._new_changelog_topic()
        return table

    # ---------------------------------------------------------------- stage 1
    def _make_ingest(self, stream_name: str) -> Callable[[StreamT[bytes]], AsyncIterator[None]]:
        kind = KIND_OF_STREAM.get(stream_name)

        async def ingest(stream: StreamT[bytes]) -> AsyncIterator[None]:
            async for ev in stream.events():
                await self.ingest_one(stream_name, kind, ev)
                yield None

        ingest.__name__ = f"ingest_{stream_name}"
        return ingest

    async def ingest_one(self, stream_name: str, kind: str | None, ev: EventT[bytes]) -> None:
        msg = ev.message
        raw = bytes(ev.value) if isinstance(ev.value, bytes | bytearray) else str(ev.value).encode()
        try:
            event = parse_event(raw, max_bytes=self.settings.max_message_bytes, stream=stream_name)
            self.stage1.check_time(event, self.watermark)
        except InvalidEvent as exc:  # TooLate is one too
            await self.send_dead_letter(
                raw, exc.reason, exc.detail, msg.topic, msg.partition, msg.offset, exc.field
            )
            return
        self.metrics.events_total.labels(event.type).inc()
        if event.ts > self.watermark:
            self.watermark = event.ts
        source = f"{msg.topic}:{msg.partition}"
        if stream_name == "business":
            value = {"s": source, "o": msg.offset, "wm": self.watermark, "b": event.to_dict()}
            await self.deltas_topic.send(key=CENTER_AGG_KEY.encode(), value=json.dumps(value).encode())
            return
        if kind is None:
            return
        deltas = self.stage1.process(event, source, msg.offset)
        self._keys[(kind, msg.partition)].add(_state_key(event))
        await self.send_deltas(deltas, source, msg.offset)
        await self._maybe_sweep_entities(kind, msg.partition, msg.topic)

    async def send_deltas(self, deltas: list[Delta], source: str, offset: int) -> None:
        by_key: dict[str, list[list[Any]]] = defaultdict(list)
        for d in deltas:
            by_key[d.agg_key].append([d.index, d.ts, d.counts])
        for key, items in by_key.items():
            value = {"s": source, "o": offset, "wm": self.watermark, "d": items}
            await self.deltas_topic.send(
                key=key.encode(), value=json.dumps(value, separators=(",", ":")).encode()
            )

    async def send_dead_letter(
        self,
        raw: bytes,
        reason: str,
        detail: str,
        topic: str,
        partition: int | None,
        offset: int | None,
        field: str | None = None,
    ) -> None:
        self.metrics.dead_letters_total.labels(reason).inc()
        log.warning("dead letter %s at %s[%s]@%s: %s", reason, topic, partition, offset, detail)
        value = dead_letter(bytes(raw), reason, detail, topic, partition, offset, _now_ms(self.clock))
        if field is not None:
            value["field"] = field
        await self.dead_topic.send(value=json.dumps(value).encode())

    async def _maybe_sweep_entities(self, kind: str, partition: int, topic: str) -> None:
        """Report orphan calls and drop idle entity state of this partition, every few seconds."""
        slot = (kind, partition)
        now = self.clock()
        if now - self._last_sweep.get(slot, 0.0) < SWEEP_EVERY_S:
            return
        self._last_sweep[slot] = now
        table = self.entity_tables[kind]
        keys = self._keys[slot]
        for key in list(keys):
            st: EntityState | None = table.get(key)
            if st is None:
                keys.discard(key)
                continue
            if needs_orphan_report(st, self.watermark, self.cfg):
                st.orphan_reported = True
                table[key] = st
                raw = json.dumps([e.to_dict() for e in st.events]).encode()
                await self.send_dead_letter(
                    raw, "orphan", f"call {key!r} has an outcome but no call.offered", topic, partition, None
                )
            if is_expired_entity(st, self.watermark, self.cfg):
                del table[key]
                keys.discard(key)

    # ---------------------------------------------------------------- stage 2
    async def _aggregate(self, stream: StreamT[bytes]) -> AsyncIterator[None]:
        async for ev in stream.events():
            changed = self.aggregate_one(ev)
            await self.evaluate_alerts(changed)
            yield None

    def aggregate_one(self, ev: EventT[bytes]) -> list[str]:
        msg = ev.message
        key = ev.key.decode() if isinstance(ev.key, bytes | bytearray) else str(ev.key)
        value = json.loads(ev.value)
        self.store.observe(int(value["wm"]))
        if value["wm"] > self.watermark:
            self.watermark = int(value["wm"])
        changed: list[str] = []
        if "b" in value:
            biz: BusinessState = self.business_table.get(BUSINESS_KEY) or BusinessState()
            if biz.apply(Event.from_dict(value["b"])):
                self.business_table[BUSINESS_KEY] = biz
                changed.append(BUSINESS_KEY)
        else:
            scope, sid = key.split("|", 1)
            for index, ts, counts in value["d"]:
                d = Delta(scope, sid, int(ts), counts, value["s"], int(value["o"]), int(index))
                applied = self.store.apply(d)
                if applied and scope == "queue" and applied[0].split("|")[-1].startswith("day:"):
                    self._count_calls(sid, counts)
                changed.extend(applied)
        self._keys[("agg", msg.partition)].update(changed)
        self._sweep_aggregates(msg.partition)
        for cb in self.on_change:
            cb(changed)
        return changed

    async def evaluate_alerts(self, changed: list[str]) -> None:
        """LCR/CAR alerts of the queues and the centre whose rolling hour changed (event time)."""
        for key in changed:
            if not key.endswith(f"|{ROLLING}"):
                continue
            scope, sid, _ = split_key(key)
            if scope not in ("queue", "center"):
                continue
            counts = self.store.slid(key, self.agg_table[key]).counts
            queue = sid if scope == "queue" else CENTER_QUEUE
            for kpi in ALERT_KPIS:
                akey = f"{kpi}|{scope}|{queue}"
                state: AlertState = self.alert_table.get(akey) or AlertState()
                new, transition = evaluate(
                    state,
                    rule_for(kpi, sid if scope == "queue" else None, self.cfg),
                    scope,
                    queue,
                    counts,
                    self.store.watermark,
                )
                if transition is not None:
                    record = transition.to_json(format_ts)
                    if new.status == FIRING:
                        new = AlertState(new.status, new.since, new.alert_id, record)
                    self.alert_table[akey] = new
                    await self.alerts_topic.send(
                        key=record["alert_id"].encode(), value=json.dumps(record).encode()
                    )
                    for cb in self.on_alert:
                        cb(record)
                elif new != state:
                    self.alert_table[akey] = new

    def active_alerts(self) -> list[dict[str, Any]]:
        """The firing alerts of this worker's partitions (their firing messages)."""
        return [st.record for st in list(self.alert_table.values()) if st.status == FIRING and st.record]

    def _count_calls(self, queue: str, counts: dict[str, int]) -> None:
        for outcome in ("answered", "abandoned", "lost", "short_abandoned"):
            n = counts.get(outcome, 0)
            if n > 0:
                self.metrics.calls_total.labels(queue, outcome).inc(n)

    def _sweep_aggregates(self, partition: int) -> None:
        slot = ("agg", partition)
        now = self.clock()
        if now - self._last_sweep.get(slot, 0.0) < SWEEP_EVERY_S:
            return
        self._last_sweep[slot] = now
        keys = self._keys[slot]
        expired = set(self.store.expired_keys()) & keys
        for k in expired:
            del self.agg_table[k]
            keys.discard(k)

    # ---------------------------------------------------------------- reads
    def local_aggregates(self) -> dict[str, AggState]:
        """This worker's aggregates, rolling and live ones slid to the current watermark."""
        return {k: self.store.slid(k, st) for k, st in list(self.agg_table.items())}

    def business(self) -> BusinessState:
        biz: BusinessState | None = self.business_table.get(BUSINESS_KEY)
        return biz or BusinessState()


def _state_key(event: Event) -> str:
    from stream.core.engine import state_key

    return state_key(event)


def make_app(settings: Settings) -> faust.App:
    """The Faust app with settings that suit us: raw bytes in, explicit topics, small rebalance waits."""
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    return faust.App(
        settings.app_id,
        broker=settings.broker,
        store=settings.store,
        topic_partitions=settings.partitions,
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=True,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        datadir=f"{settings.data_dir}/worker-{settings.app_id}",
        broker_rebalance_timeout=settings.rebalance_timeout_s,
        broker_session_timeout=max(6.0, settings.rebalance_timeout_s * 2),
        broker_heartbeat_interval=1.0,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=True,
        topic_disable_leader=True,
        producer_acks=-1,
        table_standby_replicas=0,
        processing_guarantee="at_least_once",
        logging_config=None,
    )

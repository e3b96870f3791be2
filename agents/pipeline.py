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
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, MutableMapping
from pathlib import Path
from typing import Any

import faust
from faust.types import EventT

from agents.batching import WriteBack, run_bulk
from agents.codecs import AGG, ALERT, BUSINESS, ENTITY, TEXT, register_codecs
from agents.transport import FastTransport
from schemas.events import dead_letter, format_ts, parse_event
from stream.config import Settings
from stream.core import jsonbytes
from stream.core.aggregate import AggregateStore, AggState, split_key
from stream.core.alerts import ALERT_KPIS, FIRING, AlertState, evaluate, rule_for
from stream.core.contributions import KIND_OF_STREAM
from stream.core.engine import Stage1, state_key
from stream.core.entity import Delta, EntityState, EntityStore, is_expired_entity, needs_orphan_report
from stream.core.events import Event
from stream.core.periods import ROLLING
from stream.core.scorecard import BusinessState
from stream.errors import InvalidEvent
from stream.metrics import Metrics
from stream.topics import ALERTS, DEAD_LETTERS, DELTAS, INPUT_TOPICS, faust_topic_class

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
    def _make_ingest(self, stream_name: str) -> Callable[[Any], AsyncIterator[None]]:
        kind = KIND_OF_STREAM.get(stream_name)
        settings = self.settings

        async def ingest(stream: Any) -> AsyncIterator[None]:
            async def handle(events: list[EventT[bytes]]) -> None:
                await self.ingest_batch(stream, stream_name, kind, events)

            async for _ in run_bulk(stream, handle, settings.batch_size, settings.batch_linger_s):
                yield None

        ingest.__name__ = f"ingest_{stream_name}"
        return ingest

    async def ingest_batch(
        self, stream: Any, stream_name: str, kind: str | None, events: list[EventT[bytes]]
    ) -> None:
        """Validate, apply to entity state, and send the coalesced deltas of a batch of messages."""
        caches: dict[int, WriteBack[EntityState]] = {}
        stores: dict[int, EntityStore] = {}  # one per partition, over that partition's cache
        last_event: dict[int, EventT[bytes]] = {}
        # One message per aggregate per batch; inside it, the changes by source partition in order.
        items: dict[str, dict[str, list[list[Any]]]] = defaultdict(lambda: defaultdict(list))
        business: list[tuple[str, int, dict[str, Any]]] = []
        types: Counter[str] = Counter()
        table = self.entity_tables[kind] if kind is not None else None
        for ev in events:
            msg = ev.message
            raw = bytes(ev.value) if isinstance(ev.value, bytes | bytearray) else str(ev.value).encode()
            try:
                event = parse_event(raw, max_bytes=self.settings.max_message_bytes, stream=stream_name)
                self.stage1.check_time(event, self.watermark)
            except InvalidEvent as exc:  # TooLate is one too
                await self.send_dead_letter(
                    raw, exc.reason, exc.detail, msg.topic, msg.partition, msg.offset, exc.field
                )
                continue
            types[event.type] += 1
            if event.ts > self.watermark:
                self.watermark = event.ts
            source = f"{msg.topic}:{msg.partition}"
            if table is None or kind is None:
                business.append((source, msg.offset, event.to_dict()))
                continue
            store = stores.get(msg.partition)
            if store is None:
                caches[msg.partition] = WriteBack(table)
                store = stores[msg.partition] = EntityStore(caches[msg.partition], kind, self.cfg)
            last_event[msg.partition] = ev
            key = state_key(event)
            for d in store.apply(key, event, source, msg.offset):
                items[d.agg_key][source].append([d.offset, d.index, d.ts, d.counts])
            self._keys[(kind, msg.partition)].add(key)
        for t, n in types.items():
            self.metrics.events_total.labels(t).inc(n)
        self.metrics.messages_total.labels(f"ingest.{stream_name}").inc(len(events))
        for partition, cache in caches.items():
            assert kind is not None
            await self._sweep_entities(kind, partition, cache, last_event[partition])
            stream._set_current_event(last_event[partition])  # changelog records go to this partition
            cache.flush()
        for agg_key, by_source in items.items():
            value = {"wm": self.watermark, "i": by_source}
            await self.deltas_topic.send(key=agg_key.encode(), value=_dumps(value))
        for source, offset, event_dict in business:
            value = {"s": source, "o": offset, "wm": self.watermark, "b": event_dict}
            await self.deltas_topic.send(key=CENTER_AGG_KEY.encode(), value=_dumps(value))

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

    async def _sweep_entities(
        self, kind: str, partition: int, cache: WriteBack[EntityState], ev: EventT[bytes]
    ) -> None:
        """Report orphan calls and drop idle entity state of this partition, every few seconds."""
        slot = (kind, partition)
        now = self.clock()
        if now - self._last_sweep.get(slot, 0.0) < SWEEP_EVERY_S:
            return
        self._last_sweep[slot] = now
        keys = self._keys[slot]
        for key in list(keys):
            st: EntityState | None = cache.get(key)
            if st is None:
                keys.discard(key)
                continue
            if needs_orphan_report(st, self.watermark, self.cfg):
                st.orphan_reported = True
                cache[key] = st
                raw = json.dumps([e.to_dict() for e in st.events]).encode()
                await self.send_dead_letter(
                    raw,
                    "orphan",
                    f"call {key!r} has an outcome but no call.offered",
                    ev.message.topic,
                    partition,
                    None,
                )
            if is_expired_entity(st, self.watermark, self.cfg):
                del cache[key]
                keys.discard(key)

    # ---------------------------------------------------------------- stage 2
    async def _aggregate(self, stream: Any) -> AsyncIterator[None]:
        settings = self.settings

        async def handle(events: list[EventT[bytes]]) -> None:
            await self.aggregate_batch(stream, events)

        async for _ in run_bulk(stream, handle, settings.batch_size, settings.batch_linger_s):
            yield None

    async def aggregate_batch(self, stream: Any, events: list[EventT[bytes]]) -> list[str]:
        """Apply a batch of delta messages, partition by partition; then alerts and the publisher."""
        self.metrics.messages_total.labels("aggregate").inc(len(events))
        by_partition: dict[int, list[EventT[bytes]]] = defaultdict(list)
        for ev in events:
            by_partition[ev.message.partition].append(ev)
        changed: list[str] = []
        for partition, evs in by_partition.items():
            # Faust's RocksDB store reads and writes the bucket of the current event's partition:
            # one of this partition's events is current for its reads and for the flush below.
            stream._set_current_event(evs[-1])
            aggs: WriteBack[AggState] = WriteBack(self.agg_table)
            biz_cache: WriteBack[BusinessState] = WriteBack(self.business_table)
            alerts: WriteBack[AlertState] = WriteBack(self.alert_table)
            self.store.table = aggs
            try:
                part_changed: list[str] = []
                for ev in evs:
                    part_changed.extend(self._apply_deltas(ev, biz_cache))
                self._keys[("agg", partition)].update(part_changed)
                self._sweep_aggregates(partition, aggs)
                await self.evaluate_alerts(part_changed, aggs, alerts)
            finally:
                self.store.table = self.agg_table
            aggs.flush()
            biz_cache.flush()
            alerts.flush()
            changed.extend(part_changed)
        unique = list(dict.fromkeys(changed))
        for cb in self.on_change:
            cb(unique)
        return unique

    def _apply_deltas(self, ev: EventT[bytes], biz_cache: WriteBack[BusinessState]) -> list[str]:
        key = ev.key.decode() if isinstance(ev.key, bytes | bytearray) else str(ev.key)
        value = jsonbytes.loads(ev.value)
        wm = int(value["wm"])
        self.store.observe(wm)
        if wm > self.watermark:
            self.watermark = wm
        if "b" in value:
            biz: BusinessState = biz_cache.get(BUSINESS_KEY) or BusinessState()
            if biz.apply(Event.from_dict(value["b"])):
                biz_cache[BUSINESS_KEY] = biz
                return [BUSINESS_KEY]
            return []
        scope, sid = key.split("|", 1)
        changed: list[str] = []
        for source, items in value["i"].items():
            for offset, index, ts, counts in items:
                applied = self.store.apply(
                    Delta(scope, sid, int(ts), counts, source, int(offset), int(index))
                )
                if applied and scope == "queue" and applied[0].rsplit("|", 1)[1].startswith("day:"):
                    self._count_calls(sid, counts)
                changed.extend(applied)
        return changed

    async def evaluate_alerts(
        self, changed: list[str], aggs: MutableMapping[str, AggState], alerts: MutableMapping[str, AlertState]
    ) -> None:
        """LCR/CAR alerts of the queues and the centre whose rolling hour changed (event time)."""
        for key in dict.fromkeys(changed):
            if not key.endswith(f"|{ROLLING}"):
                continue
            scope, sid, _ = split_key(key)
            if scope not in ("queue", "center"):
                continue
            counts = self.store.slid(key, aggs[key]).counts
            queue = sid if scope == "queue" else CENTER_QUEUE
            for kpi in ALERT_KPIS:
                akey = f"{kpi}|{scope}|{queue}"
                state: AlertState = alerts.get(akey) or AlertState()
                rule = rule_for(kpi, sid if scope == "queue" else None, self.cfg)
                new, transition = evaluate(state, rule, scope, queue, counts, self.store.watermark)
                if transition is not None:
                    record = transition.to_json(format_ts)
                    if new.status == FIRING:
                        new = AlertState(new.status, new.since, new.alert_id, record)
                    alerts[akey] = new
                    await self.alerts_topic.send(key=record["alert_id"].encode(), value=_dumps(record))
                    for cb in self.on_alert:
                        cb(record)
                elif new != state:
                    alerts[akey] = new

    def active_alerts(self) -> list[dict[str, Any]]:
        """The firing alerts of this worker's partitions (their firing messages)."""
        return [st.record for st in list(self.alert_table.values()) if st.status == FIRING and st.record]

    def _count_calls(self, queue: str, counts: dict[str, int]) -> None:
        for outcome in ("answered", "abandoned", "lost", "short_abandoned"):
            n = counts.get(outcome, 0)
            if n > 0:
                self.metrics.calls_total.labels(queue, outcome).inc(n)

    def _sweep_aggregates(self, partition: int, aggs: MutableMapping[str, AggState]) -> None:
        slot = ("agg", partition)
        now = self.clock()
        if now - self._last_sweep.get(slot, 0.0) < SWEEP_EVERY_S:
            return
        self._last_sweep[slot] = now
        keys = self._keys[slot]
        for k in set(self.store.expired_keys()) & keys:
            del aggs[k]
            keys.discard(k)

    # ---------------------------------------------------------------- reads
    def local_aggregates(self) -> dict[str, AggState]:
        """This worker's aggregates, rolling and live ones slid to the current watermark."""
        return {k: self.store.slid(k, st) for k, st in list(self.agg_table.items())}

    def business(self) -> BusinessState:
        biz: BusinessState | None = self.business_table.get(BUSINESS_KEY)
        return biz or BusinessState()


def _dumps(value: Any) -> bytes:
    return jsonbytes.dumps(value)


class KpiApp(faust.App):
    """A Faust app whose Kafka consumer delivers messages without a task each (agents/transport.py)."""

    def _new_transport(self) -> Any:
        url = self.conf.broker_consumer[0]
        if url.scheme in ("kafka", "aiokafka"):
            return FastTransport(self.conf.broker_consumer, self)
        return super()._new_transport()


def make_app(settings: Settings) -> faust.App:
    """The Faust app with settings that suit us: raw bytes in, explicit topics, small rebalance waits."""
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    return KpiApp(
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
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=1.0,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=True,
        topic_disable_leader=True,
        producer_acks=-1,
        # Deltas and changelog records are many and small: let the producer batch them for a few ms.
        producer_linger=0.005,
        producer_max_batch_size=256 * 1024,
        table_standby_replicas=settings.table_standby_replicas,
        # Every changelog Faust declares: the settings' replicas and min.insync.replicas (stream/topics.py).
        topic_replication_factor=settings.replication_factor,
        Topic=faust_topic_class(settings),
        processing_guarantee="at_least_once",
        logging_config=None,
    )

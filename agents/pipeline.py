"""The Faust wiring: topic -> core -> table -> sinks. No KPI logic lives here.

Stage 1 agents (one per input topic, partitioned by entity key) validate each message, keep the
entity's state in a table and send the count changes to `kpi.deltas`, keyed by aggregate.
The stage 2 agent applies them to the period aggregates table and marks what changed for the
publisher. Both tables are changelogged; exactly-once totals come from the core (see entity.py).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, MutableMapping
from pathlib import Path
from typing import Any

import faust
from faust.types import EventT

from agents import faust_compat
from agents.batching import WriteBack, run_bulk
from agents.codecs import TableCodecs
from agents.rocksdb_memory import RocksDBMemory
from agents.transport import FastTransport
from agents.web_auth import canonical_url, web_server_options
from schemas.dead_letters import dead_letter
from schemas.parse import parse_event
from schemas.timestamps import format_ts
from stream import kafka_clients
from stream.config import Settings
from stream.core import jsonbytes
from stream.core.aggregate import AggregateStore, AggState, HeldPeriods
from stream.core.alerts import ALERT_KPIS, FIRING, AlertState, evaluate, rule_for
from stream.core.contributions import CENTER, KIND_OF_STREAM, QUEUE
from stream.core.deltas import DeltaBatch, encode_business, encode_tick
from stream.core.deltas import decode as decode_deltas
from stream.core.entity import EntityState, is_expired_entity, needs_orphan_report
from stream.core.events import Event
from stream.core.eventtime import Watermark, check_time
from stream.core.keys import BUSINESS_KEY, CENTER_ID, AggKey, alert_key, alert_scope, period_of
from stream.core.periods import DAY_PREFIX, ROLLING
from stream.core.scorecard import BusinessState
from stream.core.seen import SeenIds, partition_prefix
from stream.core.stage1 import Stage1, state_key
from stream.errors import InvalidEvent
from stream.metrics import Metrics
from stream.topics import ALERTS, DEAD_LETTERS, DELTAS, ENTITY_KINDS, INPUT_TOPICS, faust_topic_class

log = logging.getLogger(__name__)

SWEEP_EVERY_S = 10.0
TICK_EVERY_S = 1.0  # at most this often, stage 1 tells every stage-2 partition that event time moved

Clock = Callable[[], float]


def _is_rolling_alert_key(key: str) -> bool:
    """A rolling queue or centre aggregate: the keys alerts are evaluated on."""
    if key == BUSINESS_KEY or not key.endswith(ROLLING):
        return False
    agg = AggKey.decode(key)
    return agg.period == ROLLING and agg.scope in (QUEUE, CENTER)


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
        self.codecs = TableCodecs.of(self.cfg)
        self.app = app or make_app(settings)
        self.rocksdb_memory = rocksdb_memory(settings)
        if self.rocksdb_memory is not None:
            self.rocksdb_memory.register(self.metrics.registry)
        self.on_change: list[Callable[[list[str]], None]] = []
        self.event_time = Watermark()  # see stream/core/eventtime.py: no single event moves it
        # Freshness is measured from the vouched time, so one event stamped in the future cannot hide it.
        self.metrics.watch_event_time(lambda: self.event_time.value, clock)
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
            kind: self._table(f"{kind}-state", self.codecs.entity, f"{kind} state by id")
            for kind in ENTITY_KINDS
        }
        self.seen_table: Any = self._table(
            "seen-ids", self.codecs.raw, "fingerprints of expired entities' event ids"
        )
        self._seen: dict[tuple[str, int], SeenIds] = {}  # readers, one per entity partition
        self.agg_table: Any = self._table(
            "aggregates", self.codecs.agg, "period aggregates by scope|id|period"
        )
        self.business_table: Any = self._table("business", self.codecs.business, "business and staff facts")
        self.alert_table: Any = self._table("alerts", self.codecs.alert, "alert state by kpi|scope|queue")
        self.alerts_topic = self.app.topic(
            settings.topic(ALERTS), key_serializer="raw", value_serializer="raw"
        )
        self.on_alert: list[Callable[[dict[str, Any]], None]] = []
        # Reads only (the API and the publisher): the agents write through per-partition stores.
        self.store = AggregateStore(self.agg_table, self.cfg, rolling=True, event_time=self.event_time)
        # Keys written per table partition, so sweeps can delete them while processing that partition.
        # Seeded from the table partition at its first batch here (`_entity_keys`, `_held_periods`):
        # state recovered at start or rebalanced in comes without a write, and must expire too.
        # The entity keys are dicts with None values, not sets: a set of 12,000 strings takes 4x the
        # slots a dict does (CPython grows sets under 50,000 fourfold).
        self._keys: dict[tuple[str, int], dict[str, None]] = {}
        self._agg_periods: dict[int, HeldPeriods] = {}
        self._last_sweep: dict[tuple[str, int], float] = {}
        self._tick_watermark, self._tick_at = 0, float("-inf")
        # Per stage-2 partition: its rolling queue and centre keys (their alerts), and the event
        # time its alerts were last evaluated at.
        self._rolling_alert_keys: dict[int, dict[str, None]] = {}
        self._alerts_at: dict[int, int] = {}
        # Event time per input partition: an entity's events all come through its partition, so its
        # state expires by that partition's time, not by another partition that is days ahead
        # (a backlog, a replay). A vouched watermark each, like the worker's.
        self._partition_time: defaultdict[tuple[str, int], Watermark] = defaultdict(Watermark)
        self._slot_of_topic = {
            topic.get_topic_name(): KIND_OF_STREAM.get(s) for s, topic in self.input_topics.items()
        }
        self._slot_of_topic[self.deltas_topic.get_topic_name()] = "agg"
        self.app.on_partitions_revoked.connect(self._on_partitions_revoked)
        for stream, topic in self.input_topics.items():
            self.app.agent(topic, name=f"kpistream.ingest.{stream}")(self._make_ingest(stream))
        self.app.agent(self.deltas_topic, name="kpistream.aggregate")(self._aggregate)

    def _table(self, name: str, value_codec: Any, help_text: str) -> Any:
        p = self.settings.partitions
        # Faust derives serializers from model types; ours are codecs: the changelog topic (which
        # recovery reads through) is built with them, and the table writes with them.
        topic = faust_compat.changelog_topic(self.app, name, p, self.codecs.text, value_codec)
        table: Any = self.app.Table(
            name, partitions=p, help=help_text, changelog_topic=topic, options=store_options(self.settings)
        )
        table.key_serializer = self.codecs.text
        table.value_serializer = value_codec
        if self.rocksdb_memory is not None:
            faust_compat.share_rocksdb_memory(table, self.rocksdb_memory)
        return table

    @property
    def watermark(self) -> int:
        """The newest event time this worker has seen (stream/core/eventtime.py)."""
        return self.event_time.newest

    def _on_partitions_revoked(self, sender: Any, /, *args: Any, signal: Any = None, **_: Any) -> None:
        """Forget the keys of partitions given away: another worker sweeps and publishes them now."""
        for tp in args[0] if args else ():
            slot = self._slot_of_topic.get(tp.topic)
            if slot is not None:
                self._keys.pop((slot, tp.partition), None)
                if slot == "agg":
                    self._agg_periods.pop(tp.partition, None)
                    self._rolling_alert_keys.pop(tp.partition, None)
                    self._alerts_at.pop(tp.partition, None)
                self._last_sweep.pop((slot, tp.partition), None)

    # ---------------------------------------------------------------- stage 1
    def _make_ingest(self, stream_name: str) -> Callable[[Any], AsyncIterator[None]]:
        kind = KIND_OF_STREAM.get(stream_name)
        settings = self.settings

        async def ingest(stream: Any) -> AsyncIterator[None]:
            async def handle(events: list[EventT[bytes]]) -> None:
                await self.ingest_batch(stream, stream_name, kind, events)

            async for _ in run_bulk(
                stream, handle, settings.batch_size, settings.batch_linger_s, settings.producer_backlog_max
            ):
                yield None

        ingest.__name__ = f"ingest_{stream_name}"
        return ingest

    async def ingest_batch(
        self, stream: Any, stream_name: str, kind: str | None, events: list[EventT[bytes]]
    ) -> None:
        """Validate, apply to entity state, and send the coalesced deltas of a batch of messages."""
        caches: dict[int, WriteBack[EntityState]] = {}
        stages: dict[int, Stage1] = {}  # one per partition, over that partition's cache
        keysets: dict[int, dict[str, None]] = {}  # the sweep's entity keys of each partition
        sources: dict[int, str] = {}  # one interned source string per partition
        last_event: dict[int, EventT[bytes]] = {}
        deltas = DeltaBatch(self.cfg.tz)
        business: list[tuple[str, int, dict[str, Any]]] = []
        types: Counter[str] = Counter()
        table = self.entity_tables[kind] if kind is not None else None
        event_time = self.event_time
        now_ms = _now_ms(self.clock)
        for ev in events:
            msg = ev.message
            raw = bytes(ev.value) if isinstance(ev.value, bytes | bytearray) else str(ev.value).encode()
            try:
                event = parse_event(raw, max_bytes=self.settings.max_message_bytes, stream=stream_name)
                check_time(event.ts, event_time.value, now_ms, self.cfg)
            except InvalidEvent as exc:  # TooLate and FromTheFuture are too
                await self.send_dead_letter(
                    raw, exc.reason, exc.detail, msg.topic, msg.partition, msg.offset, exc.field
                )
                continue
            types[event.type] += 1
            event_time.observe(event.ts, event.event_id)
            self._partition_time[(stream_name, msg.partition)].observe(event.ts, event.event_id)
            source = sources.get(msg.partition)
            if source is None:  # one string per partition: held events keep it in their positions
                source = sources[msg.partition] = sys.intern(f"{msg.topic}:{msg.partition}")
            if table is None or kind is None:
                business.append((source, msg.offset, event.to_dict()))
                continue
            stage1 = stages.get(msg.partition)
            if stage1 is None:
                caches[msg.partition] = WriteBack(table, msg.partition)
                stage1 = stages[msg.partition] = Stage1(
                    {kind: caches[msg.partition]}, self.cfg, expired=self._seen_ids(kind, msg.partition)
                )
                keysets[msg.partition] = self._entity_keys(kind, msg.partition)
            last_event[msg.partition] = ev
            for d in stage1.process(event, source, msg.offset):
                deltas.add(d)
            keysets[msg.partition][state_key(event)] = None
        for t, n in types.items():
            self.metrics.events_total.labels(t).inc(n)
        self.metrics.messages_total.labels(f"ingest.{stream_name}").inc(len(events))
        for partition, cache in caches.items():
            assert kind is not None
            faust_compat.set_current_event(
                stream, last_event[partition]
            )  # changelog records go to this partition
            await self._sweep_entities(stream_name, kind, partition, cache, last_event[partition])
            cache.flush()
        wm, newest = event_time.value, event_time.newest
        for key, value in deltas.encoded(wm, newest):
            await self.deltas_topic.send(key=key, value=value)
        for source, offset, event_dict in business:
            key, value = encode_business(source, offset, wm, newest, event_dict)
            await self.deltas_topic.send(key=key, value=value)
        await self._tick(wm, newest)

    async def _tick(self, wm: int, newest: int) -> None:
        """A watermark tick to every `kpi.deltas` partition when the vouched event time moved (at
        most every TICK_EVERY_S): each then re-evaluates the alerts of the rolling hours it holds."""
        now = self.clock()
        if wm == self._tick_watermark or now - self._tick_at < TICK_EVERY_S:
            return
        self._tick_watermark, self._tick_at = wm, now
        key, value = encode_tick(wm, newest)
        for partition in range(self.settings.partitions):
            await self.deltas_topic.send(key=key, value=value, partition=partition)

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

    def _seen_ids(self, kind: str, partition: int, table: Any = None) -> SeenIds:
        """The expired event ids of one entity partition (a reader over the table, or a writer)."""
        prefix = partition_prefix(kind, partition)
        if table is not None:
            return SeenIds(table, self.cfg.tz, prefix=prefix)
        reader = self._seen.get((kind, partition))
        if reader is None or reader.table is not self.seen_table:
            reader = self._seen[(kind, partition)] = SeenIds(self.seen_table, self.cfg.tz, prefix=prefix)
        return reader

    async def _sweep_entities(
        self, stream_name: str, kind: str, partition: int, cache: WriteBack[EntityState], ev: EventT[bytes]
    ) -> None:
        """Report orphan calls and drop idle entity state of this partition, every few seconds.

        The event ids of a dropped entity go to the seen-ids table first, so a later repeat of one of
        its events still changes nothing (CONTRACT.md s.1); buckets whose month left retention go.
        The caller has made an event of this partition current.
        """
        slot = (kind, partition)
        now = self.clock()
        if now - self._last_sweep.get(slot, 0.0) < SWEEP_EVERY_S:
            return
        self._last_sweep[slot] = now
        keys = self._entity_keys(kind, partition)
        vouched = self._partition_time[(stream_name, partition)].value
        expired: list[tuple[str, str, tuple[Event, ...]]] = []
        for key in list(keys):
            st: EntityState | None = cache.get(key)
            if st is None:
                keys.pop(key, None)
                continue
            if needs_orphan_report(st, vouched, self.cfg):
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
            if is_expired_entity(st, vouched, self.cfg):
                expired.append((kind, key, st.events))
                del cache[key]
                keys.pop(key, None)
        seen_cache: WriteBack[bytes] = WriteBack(self.seen_table, partition)
        seen = self._seen_ids(kind, partition, seen_cache)
        seen.add_entities(expired)
        if vouched > 0:
            for k in seen.expired_keys(vouched, self.cfg):
                del seen_cache[k]
        seen_cache.flush()

    # ---------------------------------------------------------------- stage 2
    async def _aggregate(self, stream: Any) -> AsyncIterator[None]:
        settings = self.settings

        async def handle(events: list[EventT[bytes]]) -> None:
            await self.aggregate_batch(stream, events)

        async for _ in run_bulk(
            stream,
            handle,
            settings.batch_size,
            settings.batch_linger_s,
            settings.producer_backlog_max,
            max_bytes=settings.aggregate_batch_bytes,
        ):
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
            faust_compat.set_current_event(stream, evs[-1])
            aggs: WriteBack[AggState] = WriteBack(self.agg_table, partition)
            biz_cache: WriteBack[BusinessState] = WriteBack(self.business_table, partition)
            alerts: WriteBack[AlertState] = WriteBack(self.alert_table, partition)
            store = AggregateStore(aggs, self.cfg, rolling=True, event_time=self.event_time)
            part_changed: list[str] = []
            for ev in evs:
                part_changed.extend(self._apply_deltas(ev, store, biz_cache))
            self._held_periods(partition).add(part_changed)
            self._sweep_aggregates(partition, store, aggs)
            await self.evaluate_alerts(self._alert_keys(partition, part_changed), store, alerts)
            aggs.flush()
            biz_cache.flush()
            alerts.flush()
            changed.extend(part_changed)
        unique = list(dict.fromkeys(changed))
        for cb in self.on_change:
            cb(unique)
        return unique

    def _apply_deltas(
        self, ev: EventT[bytes], store: AggregateStore, biz_cache: WriteBack[BusinessState]
    ) -> list[str]:
        msg = decode_deltas(bytes(ev.key or b""), bytes(ev.value))
        self.event_time.advance(msg.watermark, msg.newest)
        if msg.business is not None:
            biz: BusinessState = biz_cache.get(BUSINESS_KEY) or BusinessState()
            if biz.apply(Event.from_dict(msg.business)):
                biz_cache[BUSINESS_KEY] = biz
                return [BUSINESS_KEY]
            return []
        changed: list[str] = []
        for delta in msg.deltas:
            if msg.period is not None:
                changed.extend(store.apply_period(delta, msg.period))
                continue
            applied = store.apply(delta)
            if applied and delta.scope == QUEUE and period_of(applied[0]).startswith(DAY_PREFIX):
                self._count_calls(delta.scope_id, delta.counts)
            changed.extend(applied)
        return changed

    def _alert_keys(self, partition: int, changed: list[str]) -> list[str]:
        """The keys whose alerts this batch evaluates: those it changed, and every rolling queue and
        centre key of the partition when event time moved since its last evaluation (the rolling
        hour slid: a queue without traffic may be back under its threshold, or over it)."""
        held = self._rolling_alert_keys.get(partition)
        if held is None:
            listed = faust_compat.partition_keys(self.agg_table, partition)
            held = self._rolling_alert_keys[partition] = dict.fromkeys(
                k for k in (self.agg_table.keys() if listed is None else listed) if _is_rolling_alert_key(k)
            )
        for k in changed:
            if k not in held and _is_rolling_alert_key(k):
                held[k] = None
        wm = self.event_time.value
        if self._alerts_at.get(partition) == wm:
            return changed
        self._alerts_at[partition] = wm
        return [*changed, *held]

    async def evaluate_alerts(
        self, changed: list[str], store: AggregateStore, alerts: MutableMapping[str, AlertState]
    ) -> None:
        """LCR/CAR alerts of the queues and the centre whose rolling hour changed (event time)."""
        for key in dict.fromkeys(changed):
            if not _is_rolling_alert_key(key):
                continue
            agg = AggKey.decode(key)
            state_now = store.table.get(key)
            if state_now is None:
                continue
            counts = store.slid(key, state_now).counts
            queue = agg.sid if agg.scope == QUEUE else CENTER_ID
            for kpi in ALERT_KPIS:
                akey = alert_key(kpi, agg.scope, queue)
                state: AlertState = alerts.get(akey) or AlertState()
                rule = rule_for(kpi, agg.sid if agg.scope == QUEUE else None, self.cfg)
                new, transition = evaluate(state, rule, agg.scope, queue, counts, store.watermark)
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

    def alert_scopes(self) -> frozenset[tuple[str, str]]:
        """The (scope, queue) of the alerts this worker's partitions hold state for (see
        `Batch.alert_scopes`): a complete Redis write replaces only their part of the active alerts."""
        return frozenset(alert_scope(key) for key in list(self.alert_table.keys()))

    def active_alerts(self) -> list[dict[str, Any]]:
        """The firing alerts of this worker's partitions (their firing messages)."""
        return [st.record for st in list(self.alert_table.values()) if st.status == FIRING and st.record]

    def _count_calls(self, queue: str, counts: dict[str, int]) -> None:
        for outcome in ("answered", "abandoned", "lost", "short_abandoned"):
            n = counts.get(outcome, 0)
            if n > 0:
                self.metrics.calls_total.labels(queue, outcome).inc(n)

    def _sweep_aggregates(self, partition: int, store: AggregateStore, aggs: WriteBack[AggState]) -> None:
        """Delete this partition's day and month aggregates that fell out of retention."""
        slot = ("agg", partition)
        now = self.clock()
        if now - self._last_sweep.get(slot, 0.0) < SWEEP_EVERY_S:
            return
        self._last_sweep[slot] = now
        gone = self._held_periods(partition).pop_expired(store.is_expired_period)
        if not gone:
            return
        # A period left retention (about once a day): list the partition's keys once to find its own.
        held = faust_compat.partition_keys(self.agg_table, partition)
        # A plain mapping (tests) has no partitions: an expired period is expired in all of them.
        listed = list(self.agg_table.keys()) if held is None else held
        for k in HeldPeriods.keys_of([*listed, *aggs.pending_keys()], gone):
            del aggs[k]

    def _entity_keys(self, kind: str, partition: int) -> dict[str, None]:
        """The entity keys of one partition the sweep visits; all of the partition's at first."""
        keys = self._keys.get((kind, partition))
        if keys is None:
            held = faust_compat.partition_keys(self.entity_tables[kind], partition)
            keys = self._keys[(kind, partition)] = dict.fromkeys(held or ())
        return keys

    def _held_periods(self, partition: int) -> HeldPeriods:
        """The periods of one partition's aggregates; all of the partition's at first."""
        held = self._agg_periods.get(partition)
        if held is None:
            held = self._agg_periods[partition] = HeldPeriods(
                faust_compat.partition_keys(self.agg_table, partition) or ()
            )
        return held

    # ---------------------------------------------------------------- reads
    def local_aggregates(self) -> dict[str, AggState]:
        """This worker's aggregates, rolling and live ones slid to the current watermark."""
        return {k: self.store.slid(k, st) for k, st in list(self.agg_table.items())}

    def business(self) -> BusinessState:
        biz: BusinessState | None = self.business_table.get(BUSINESS_KEY)
        return biz or BusinessState()


def store_options(settings: Settings) -> dict[str, int] | None:
    """Table options for the store: with rocksdb://, the memtables of each partition's database.

    Faust opens one RocksDB per table and partition, each with its own memtables (64 MB, up to 3)
    by default: sized for one big database, not for dozens of small ones. The block cache and the
    cap of all memtables are the worker's, shared by every database (`rocksdb_memory`).
    """
    if not settings.uses_rocksdb:
        return None
    return {
        "write_buffer_size": int(settings.rocksdb_write_buffer_mb * 2**20),
        "max_write_buffer_number": 2,  # one being written, one being flushed to disk
    }


def rocksdb_memory(settings: Settings) -> RocksDBMemory | None:
    """The worker's one RocksDB memory budget (agents/rocksdb_memory.py); None with memory://."""
    if not settings.uses_rocksdb:
        return None
    return RocksDBMemory.create(settings.rocksdb_block_cache_mb, settings.rocksdb_memtables_mb)


def _dumps(value: Any) -> bytes:
    return jsonbytes.dumps(value)


class KpiApp(faust_compat.TransportApp):
    """A Faust app whose Kafka consumer delivers messages without a task each (agents/transport.py)."""

    transport_class = FastTransport


def make_app(settings: Settings) -> faust.App:
    """The Faust app with settings that suit us: raw bytes in, explicit topics, small rebalance waits."""
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    return KpiApp(
        settings.app_id,
        broker=settings.broker,
        # SASL/TLS for Faust's producer, consumer and topic creation (stream/kafka_clients.py).
        broker_credentials=kafka_clients.faust_credentials(settings),
        store=settings.store,
        topic_partitions=settings.partitions,
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=True,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        # Peers read this worker's partitions at this URL (agents/cluster_view.py); None: web_host:web_port.
        canonical_url=canonical_url(settings),  # what peers call (agents/web_auth.py)
        datadir=f"{settings.data_dir}/worker-{settings.app_id}",
        broker_rebalance_timeout=settings.rebalance_timeout_s,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=1.0,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        # Check mode: topics exist already (checked before start) and the principal may not create any.
        topic_allow_declare=settings.topics_mode == "create",
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
        **web_server_options(settings),  # TLS on the web port (agents/web_auth.py)
    )

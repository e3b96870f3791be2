"""Everything kpistream does with Faust's private API, in one place, checked against one version range.

Rule: no other module touches a Faust name that starts with an underscore, with one exception:
Faust's documented custom-codec hook, `Codec._dumps`/`_loads`, which agents/codecs.py implements.
Each function here states what it relies on; `WATCHED` holds the digest of the source of every
Faust (and mode, aiokafka) function we copied or whose private behaviour we rely on, and
tests/unit/agents/test_faust_compat.py fails when the installed source differs (read the new
source, adapt the function here, then update the digest); that test also derives the private
names this module touches from its source and fails when any other module touches one.
`check_faust_version` refuses to start outside `SUPPORTED`.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import inspect
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, cast

import faust
from faust.stores import rocksdb as faust_rocksdb
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode import Service

from agents.rocksdb_memory import RocksDBMemory
from stream.errors import KpiStreamError

SUPPORTED = ">=0.15.3,<0.16"
_MIN = (0, 15, 3)
_BELOW = (0, 16)

# "module:qualname" -> sha256 of inspect.getsource, as read from faust-streaming 0.15.3.
WATCHED: dict[str, str] = {
    # copied by `drain_messages` (one call changed)
    "faust.transport.consumer:Consumer._drain_messages": (
        "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417"
    ),
    # `drain_messages` delivers only after this generation's seek (wrapped by `seek_marked`), takes
    # a fetch as taken any time between the getmany call and its first yield, and relies on
    # recovery resuming the stream partitions before it seeks them
    "faust.transport.consumer:Consumer.perform_seek": (
        "0e8c130ff4b0afd82c0be9c5fd831316e10febc62c94032833911096e156d7c6"
    ),
    # `ShortPollConsumerThread` builds Faust's consumer and changes one argument of it, the one
    # aiokafka's `start` hands to its fetcher; `InlineDeliveryConsumer` builds that thread as this
    # function builds Faust's
    "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread._create_worker_consumer": (
        "c2701bfc3e6f6cad95c2be36d6a255a86e2c57d18d36cc1082b5fb5c482d99d7"
    ),
    "faust.transport.drivers.aiokafka:Consumer._new_consumer_thread": (
        "0870ec53dea75083995e3565c0f0a25a1c63ecceaeb238e92e2585e3623af5a9"
    ),
    # `_drop_unsought` seeks a partition never committed itself: this one leaves it alone
    "aiokafka.consumer.consumer:AIOKafkaConsumer.seek_to_committed": (
        "f6cd85c8b70a4ccf7e862de24f6c5d985038eed3e140990f000aa4b52eda8d72"
    ),
    "aiokafka.consumer.consumer:AIOKafkaConsumer.start": (
        "2f1ba70443327538800d348e61042cdedd5a5e6306f40ebe1a06dddba7494c45"
    ),
    "faust.transport.consumer:Consumer.getmany": (
        "4b168d84882a70d6e3e2f9804430a63b92f8fd117d3187cbb4aeb54305bda34e"
    ),
    "faust.tables.recovery:Recovery.on_recovery_completed": (
        "6ef567acf072e46da3fccbccc6d662371f634f622c3d510972d5df81f70ae3ac"
    ),
    # `can_deliver_inline` mirrors what these can wait on
    "faust.transport.conductor:ConductorCompiler.build": (
        "837cf521368c1ee4b22c235a2b137f665eca03d0e3e01b5ddedb65232ee73bf2"
    ),
    "faust.transport.conductor:Conductor._compile_message_handler": (
        "9fbc0538097aa4eca6113b99df8d17605ae72a6b5030482f041a183f4cc34df1"
    ),
    # agents/batching.py:run_bulk does per batch what this iterator does per event
    "faust.streams:Stream._py_aiter": "3a48ee257a65435b482d51edb74f2993a67867949b1ef89b49fea893769e0614",
    "faust.streams:Stream._set_current_event": (
        "b9a41294b605ac08c44529e087ad0b907a11c587b2e0fcbecf9ad667a4633e61"
    ),
    # `changelog_topic` builds the topic this builds, with our serializers
    "faust.tables.base:Collection._new_changelog_topic": (
        "77bea64b59f798094f8de7a939a2e159ae5cd55a0d1877728ef1e205fe7ef98c"
    ),
    # `record_key_partition` feeds the map these read and write
    "faust.stores.memory:Store.on_recovery_completed": (
        "a00bef343e139602606996e88809e62731a9113691ae678095266a52e0e0b013"
    ),
    "faust.stores.memory:Store._create_batch_iterator": (
        "b082c8bcc040382347025bd5b08d31700b2e6b1d2c0232f1de551f1b5495d1ed"
    ),
    # `partition_keys` lists one partition's keys of a RocksDB store with these (its `_dbs` holds
    # one database per partition)
    "faust.stores.rocksdb:Store._visible_keys": (
        "28b3c24a6884cbcd69ee040fa72fb9eb9808dc08cf6c3fdbb29715d33e9830d3"
    ),
    # `share_rocksdb_memory` replaces the store's `rocksdb_options` (built in `__init__` from the
    # table's options, used by `_open_for_partition` through `open`) with a subclass whose
    # `as_options` swaps the block cache and adds the write buffer manager
    "faust.stores.rocksdb:Store.__init__": "c7c0fa2989e8ab4a4349ff29df8258471624a160cb549e6735c367d9b2fefd19",
    "faust.stores.rocksdb:Store._open_for_partition": (
        "1dc4e0113d67379dd61c0a396fa92636577d5fc6be60d4312253fa566080377b"
    ),
    "faust.stores.rocksdb:RocksDBOptions.open": (
        "ff87e92d69e2f487e2657c1df266543f4733d4acad3dd18fa5c86f239d8e340d"
    ),
    "faust.stores.rocksdb:RocksDBOptions.as_options": (
        "d2a1bea17736d2eb2f8d2da592ef843f31bd9583b17b3fcbb2ebd84c15051660"
    ),
    "faust.stores.base:Store._decode_key": (
        "fcb649a35b6e5f45a4456220a4b63ee2d2ab90316a270b537a87843c589dc29e"
    ),
    # `schedule_worker_shutdown` calls it (mode is Faust's service library)
    "mode.worker:Worker._schedule_shutdown": (
        "1a6a5dfc88c2298b7ddc84be024a4344a54eaca8ba3a2d39e0447fa5b3905aa4"
    ),
    # `TopicTrackingProducer` overrides it, and works around what these do (aiokafka is Faust's
    # Kafka client): an all-topics metadata refresh at topic creation, metadata of the tracked
    # topics only, replacing what the client knew
    "faust.transport.drivers.aiokafka:Producer.send": (
        "0b5bd08f52e5e2a90ff6307dbfc3c97afb01cb2687835e8fe8486c5bcad02dc1"
    ),
    "faust.transport.drivers.aiokafka:Producer.create_topic": (
        "d2d406c4b9a44be79efc3f8eb0de517240fd93dce1e41fee2db281e6919e10b7"
    ),
    "aiokafka.client:AIOKafkaClient.add_topic": (
        "b054eda662913f089f7620eb15d2151c81ecae4b95bc63daa7be19e876833325"
    ),
    "aiokafka.client:AIOKafkaClient._wait_on_metadata": (
        "52b0a5ee78ef3aa0c21c82b69baa20eb6983d9e5871e9e66784198cb2f1bf256"
    ),
    "aiokafka.cluster:ClusterMetadata.update_metadata": (
        "6c2cce8f96dcc199c007c8292fb23df8371a695c46f7408d79ce0c3639df6fce"
    ),
    # Kafka security: the app's `broker_credentials` reach aiokafka through this one function for
    # the worker's consumer and every producer (whose client also creates Faust's topics);
    # `aiokafka_auth_of` calls it (stream/kafka_clients.py builds the credentials)
    "faust.transport.drivers.aiokafka:credentials_to_aiokafka_auth": (
        "364c9c9c68523c509239799c4ece511022cc10e32c06e53a204716861c9553f7"
    ),
    "faust.transport.drivers.aiokafka:Producer._settings_auth": (
        "6d47a0b8599c573e073562210b7d02f93a0e02c4dae30cac0cc8ebbe39e01df5"
    ),
    "faust.transport.drivers.aiokafka:Producer._new_producer": (
        "e72355c3430ed02f5202c83e2f5ef7daf484f33aa40e62f98fe3adec3e18aa17"
    ),
    # `committed_offset` reads the map this fills with the offsets it committed (next to process)
    "faust.transport.consumer:Consumer._commit_offsets": (
        "1a6979904118844111259d182ca1c6e92ccc16364ccbe55c58e59d6e254a7adb"
    ),
}


class UnsupportedFaust(KpiStreamError):
    """The installed faust-streaming is outside the range this module was written against."""

    def __init__(self, installed: str) -> None:
        super().__init__(
            f"faust-streaming {installed} is not supported: kpistream needs faust-streaming{SUPPORTED} "
            "(agents/faust_compat.py uses its private API)"
        )
        self.installed = installed


def _version_tuple(version: str) -> tuple[int, ...]:
    parts: list[int] = []
    for piece in version.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit()) if piece[:1].isdigit() else ""
        if not digits:
            break
        parts.append(int(digits))
        if not piece.isdigit():  # "0rc1": a pre-release of this number ends the comparable part
            break
    return tuple(parts)


def check_faust_version(installed: str | None = None) -> str:
    """Return the installed Faust version; raise `UnsupportedFaust` outside `SUPPORTED`."""
    if installed is None:
        import faust

        installed = str(faust.__version__)
    v = _version_tuple(installed)
    if not (v >= _MIN and v[: len(_BELOW)] < _BELOW):
        raise UnsupportedFaust(installed)
    return installed


def source_digest(name: str) -> str:
    """sha256 of the installed source of `module:qualname`."""
    module_name, qualname = name.split(":", 1)
    obj: Any = importlib.import_module(module_name)
    for attr in qualname.split("."):
        obj = getattr(obj, attr)
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()


def changed_sources() -> list[str]:
    """The watched Faust functions whose installed source differs from the one we read."""
    return [name for name, digest in WATCHED.items() if source_digest(name) != digest]


# ----------------------------------------------------------------------------- consumer


def can_deliver_inline(consumer: Any, tp: Any) -> bool:
    """True when the conductor's callback for `tp` cannot suspend (see agents/transport.py).

    It suspends on: suspended flow (a rebalance), flow control, the conductor's callback lock,
    a producer buffer over its limit, and a full channel queue.
    """
    app = consumer.app
    if consumer.suspend_flow.is_set() or not app.flow_control.is_active():
        return False
    conductor: Any = app.topics
    if conductor._tp_to_callback_lock.locked():
        return False
    buffer = app.producer.buffer
    if buffer.max_messages and buffer.size > buffer.max_messages:
        return False
    return all(not chan.queue.full() for chan in conductor._tp_index.get(tp, ()))


class SeekMark:
    """When the consumer's partitions were last sought to their committed offsets.

    `generation` is the consumer generation of the last completed seek; `count` goes up when a
    seek starts and when it ends, and `running` counts the seeks under way, so that a fetch taken
    before or during a seek can be told from one taken after it.
    """

    __slots__ = ("count", "generation", "running")

    def __init__(self) -> None:
        self.count = 0
        self.running = 0
        self.generation: int | None = None

    def sought(self, generation: int, fetched_at: int) -> bool:
        """A fetch taken at `fetched_at` (a `count`) read from the positions this generation's seek set."""
        return self.generation == generation and self.running == 0 and fetched_at == self.count


async def seek_marked(consumer: Any, seek: Callable[[], Awaitable[None]], mark: SeekMark) -> None:
    """Run Faust's `perform_seek` (`seek`) and record it in `mark`."""
    app = consumer.app
    generation = app.consumer_generation_id
    mark.count += 1
    mark.running += 1
    try:
        await seek()
    finally:
        mark.running -= 1
        mark.count += 1
    if app.consumer_generation_id == generation:
        mark.generation = generation


async def drain_messages(  # pragma: no cover - exercised end to end
    consumer: Any, fetcher: Any, can_inline: Callable[[Any], bool], mark: SeekMark
) -> None:
    """Faust 0.15.3's `Consumer._drain_messages`, except the delivery and two rules.

    A delivery that `can_inline(tp)` is awaited directly; any other takes Faust's
    `wait_first(callback(message), suspend_flow.wait())`.

    Rule: a message is delivered, and moves the partition's read offset, only in the consumer
    generation it was fetched in and while the flow is on. The loop awaits between taking a
    message and delivering it (a commit every `broker_commit_every` acks, gaps, yields), and the
    rebalance callbacks run meanwhile: a rebalance that completed during that await has sought
    the partition back to its committed offset and set the read offset to it. Faust delivered the
    old message anyway and set the read offset to *its* offset, so every message re-read between
    the committed offset and that one was dropped as already read, and the committed offset
    could never pass the hole (the worker looked ready and consumed only newer messages).

    Rule: a message of a topic with acks (an input topic, `kpi.deltas`) is delivered only from a
    fetch taken after this generation's seek to the committed offsets (`mark`). Faust resumes the
    flow during table recovery (for the changelogs) and resumes the stream partitions before it
    seeks them; in between, a fetch continues from where the previous generation stopped reading,
    which can be past messages never processed (the rest of a fetch dropped at the rebalance).
    Faust reads a fetch on its consumer thread while this loop runs on: a seek that starts or ends
    during a getmany makes its messages unsought (read from before the seek or from after it,
    which is unknown), so they are dropped and the partitions sought again.
    Delivered, such a message is processed before the ones below it: stage 2's per-source
    high-water mark then drops their deltas when they come, and a commit taken before the seek
    (the committed offset is unknown then, Faust checks nothing) passes them for good.
    """
    self = consumer
    callback = self.callback
    getmany = self.getmany
    consumer_should_stop = cast(Service, self)._stopped.is_set
    fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
    get_read_offset = self._read_offset.__getitem__
    set_read_offset = self._read_offset.__setitem__
    set_flag = self.diag.set_flag
    unset_flag = self.diag.unset_flag
    commit_every = self._commit_every
    acks_enabled_for = self.app.topics.acks_enabled_for
    yield_every = 100
    num_since_yield = 0
    sleep = asyncio.sleep
    app = self.app
    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(CONSUMER_FETCHING)
            # The mark before the fetch: Faust's getmany reads on the consumer thread while this
            # loop runs on, so a seek can start and end between that read and the first message.
            before, seeking = mark.count, mark.running > 0
            ait = getmany(timeout=1.0)
            await self.sleep(0)
            if not self.should_stop:
                fetched_at = -1
                during_seek = False
                async for tp, message in ait:
                    if fetched_at < 0:  # a seek during the fetch: its positions are unknown
                        fetched_at, during_seek = before, seeking or mark.count != before
                    num_since_yield += 1
                    if num_since_yield > yield_every:
                        await sleep(0)
                        num_since_yield = 0
                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    if r_offset is None or offset >= r_offset:
                        acking = acks_enabled_for(message.topic)
                        # before the gap: a gap of an unsought fetch would pass unread messages
                        if acking and not mark.sought(app.consumer_generation_id, fetched_at):
                            await _drop_unsought(self, tp, message, during_seek)
                            break
                        gap = offset - (r_offset or 0)
                        if gap > 1 and r_offset and acking:
                            await self._add_gap(tp, r_offset + 1, offset)
                        if commit_every is not None and self._n_acked >= commit_every:
                            self._n_acked = 0
                            await self.commit()
                        if not _current(self, app, message):
                            _log_stale(self, app, tp, message)
                            break  # the rest of this fetch is stale too: fetch again
                        if acking and not mark.sought(app.consumer_generation_id, fetched_at):
                            await _drop_unsought(self, tp, message, during_seek)
                            break
                        if can_inline(tp):
                            await callback(message)
                        else:
                            await self.wait_first(callback(message), self.suspend_flow.wait())
                        if not _current(self, app, message):
                            _log_stale(self, app, tp, message)
                            break
                        set_read_offset(tp, offset)
                unset_flag(CONSUMER_FETCHING)
    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            self.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            self.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        self.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        unset_flag(CONSUMER_FETCHING)


# How long a fetch waits on the broker for data when there is none (Faust: 1.5 s; aiokafka's and
# Kafka's own default: 0.5 s). The broker answers one request of a connection at a time, and the
# offset look-ups of a rebalance (the changelogs' high-water marks, the positions to read from)
# share the fetches' connection: each waited behind an empty fetch, up to 1.5 s, before recovery
# could start (docs/benchmarks.md, "Failover"). An idle worker sends a few more empty fetches.
FETCH_MAX_WAIT_MS = 100


class ShortPollConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread whose Kafka consumer waits at most `FETCH_MAX_WAIT_MS` for data."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by its `start`, which builds the fetcher
        return consumer


class InlineDeliveryConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer draining with `drain_messages` and `can_deliver_inline`, its Kafka
    consumer in a `ShortPollConsumerThread`."""

    seek_mark: SeekMark

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.seek_mark = SeekMark()
        super().__init__(*args, **kwargs)

    def _new_consumer_thread(self) -> Any:
        return ShortPollConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def _can_deliver_inline(self, tp: Any) -> bool:
        return can_deliver_inline(self, tp)

    async def perform_seek(self) -> None:
        """Faust's seek to the committed offsets, recorded for `drain_messages`."""
        await seek_marked(self, super().perform_seek, self.seek_mark)

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - exercised end to end
        await drain_messages(self, fetcher, self._can_deliver_inline, self.seek_mark)


def _current(consumer: Any, app: Any, message: Any) -> bool:
    """The message was fetched in the current consumer generation and the flow is on."""
    return bool(message.generation_id == app.consumer_generation_id and consumer.flow_active)


async def _drop_unsought(consumer: Any, tp: Any, message: Any, during_seek: bool) -> None:
    """Log a message of a fetch not taken after this generation's seek; seek again if need be.

    A fetch taken before a seek read from positions the seek then reset: dropping it loses
    nothing. One taken while a seek was under way (`fetched_at` odd) may have read from the
    sought positions already (`during_seek`), and dropping it would skip those: seek again.
    Rule: aiokafka's seek to the committed offsets leaves a partition with no committed offset
    (or 0) where the fetch left it, past the dropped messages (of any partition of the fetch), so
    every such partition of an acked topic is sought to its beginning (a fresh group's `earliest`;
    a repeat changes nothing, stage 1's event ids and stage 2's high-water marks deduplicate).
    """
    consumer.log.info(
        "Not delivering %s[%s]@%s: fetched before this generation's seek to the committed "
        "offsets: read again from there",
        tp.topic,
        tp.partition,
        message.offset,
    )
    if during_seek:
        await consumer.perform_seek()
    acking = consumer.app.topics.acks_enabled_for
    read_offset = consumer._read_offset
    for part in sorted(consumer.assignment()):
        if acking(part.topic) and not read_offset.get(part):
            await consumer.seek(part, 0)


def _log_stale(consumer: Any, app: Any, tp: Any, message: Any) -> None:
    consumer.log.info(
        "Not delivering %s[%s]@%s of consumer generation %s (now %s, flow %s): read again from "
        "the committed offset",
        tp.topic,
        tp.partition,
        message.offset,
        message.generation_id,
        app.consumer_generation_id,
        "on" if consumer.flow_active else "off",
    )


# ----------------------------------------------------------------------------- producer


class TopicTrackingProducer(faust_aiokafka.Producer):
    """Faust's aiokafka producer whose Kafka client keeps the leaders of every topic it sends to.

    aiokafka's client asks for the metadata of the topics it *tracks* (of all topics while it
    tracks none) and replaces what it knew with the answer; it tracks a topic only when a send
    finds the topic's partitions unknown. Faust's `create_topic` forces a refresh while nothing is
    tracked, so the topics known then are never tracked: when a later send adds another topic,
    the next refresh forgets their leaders, and a batch already queued for one of them waits,
    refreshing metadata in a loop, until its request timeout (Faust: 1,200 s). Every flush waits
    for that batch, so every commit does, so the consumer's loop does, and the worker stops
    processing (and cannot stop) with half its counts published. Rule: the client tracks every
    topic this producer sends to before its first message is queued.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tracking_client: Any = None
        self._tracked_topics: set[str] = set()

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        *,
        transactional_id: str | None = None,
    ) -> Any:
        client = self._ensure_producer().client
        if client is not self._tracking_client or topic not in self._tracked_topics:
            self._track(client, topic)
        return await super().send(
            topic, key, value, partition, timestamp, headers, transactional_id=transactional_id
        )

    def _track(self, client: Any, topic: str) -> None:
        if client is not self._tracking_client:  # a restarted producer has a new client
            self._tracking_client = client
            self._tracked_topics = set()
        client.add_topic(topic)
        self._tracked_topics.add(topic)


# ----------------------------------------------------------------------------- streams


def take_channel(stream: Any) -> deque[BaseException]:
    """Mark `stream` as iterated (as Faust's iterator does) and return its channel's error queue.

    For a reader of the channel queue that bypasses the stream iterator: errors the conductor
    queued for the channel (decode errors) must be raised by the reader as the iterator would.
    """
    stream._finalized = True
    return cast(deque[BaseException], stream.channel.queue._errors)


def set_current_event(stream: Any, event: Any) -> None:
    """Make `event` the current event of `stream` and of the task (None: no current event).

    Faust's tables write changelog records to the partition of the current event, and its
    RocksDB store reads and writes that partition's database.
    """
    stream._set_current_event(event)


# ----------------------------------------------------------------------------- tables


def changelog_topic(
    app: Any, table_name: str, partitions: int, key_serializer: Any, value_serializer: Any
) -> Any:
    """The changelog topic Faust would build for a table, with our serializers.

    For the public `changelog_topic=` argument of `app.Table`: Faust derives a table's
    serializers from model types, ours are codecs. Name and options as in Faust's
    `Collection._new_changelog_topic` (a compacted, internal topic read without acks).
    """
    return app.topic(
        f"{app.conf.id}-{table_name}-changelog",
        key_serializer=key_serializer,
        value_serializer=value_serializer,
        partitions=partitions,
        compacting=True,
        deleting=None,
        retention=None,
        acks=False,
        internal=True,
        maxsize=131_072,
        allow_empty=True,
    )


def key_partitions(table: Any) -> MutableMapping[Any, int] | None:
    """The memory store's key -> partition map of `table` (None for other stores and mappings).

    Faust's memory store fills it only from changelog recovery and, on every
    `on_recovery_completed`, drops the keys whose partition is no longer assigned here. Keys this
    worker wrote itself must be recorded in it too, or they outlive a revoked partition.
    """
    store = getattr(table, "data", None)
    mapping = getattr(store, "_key_partition", None)
    return cast("MutableMapping[Any, int] | None", mapping)


def partition_keys(table: Any, partition: int) -> list[Any] | None:
    """The keys `table` holds in `partition`: recovered from its changelog or written here.

    The sweeps need them: state recovered at start or rebalanced in arrives without a write, and a
    sweep that knew only the keys written since would keep it for good. The memory store knows
    each key's partition (`key_partitions`); RocksDB keeps one database per partition. None for a
    mapping that is not a Faust table (a test's dict): it has no partitions and recovers nothing.
    """
    owners = key_partitions(table)
    if owners is not None:
        return [k for k, p in owners.items() if p == partition]
    store = getattr(table, "data", None)
    dbs = getattr(store, "_dbs", None)
    if store is not None and dbs is not None:
        db = dbs.get(partition)
        return [] if db is None else [store._decode_key(k) for k in store._visible_keys(db)]
    if store is None:
        return None
    raise KpiStreamError(f"cannot list the keys of one partition of a {type(store).__name__} table store")


def record_key_partition(table: Any, key: Any, partition: int) -> None:
    """Record that `key` of `table` belongs to `partition` (memory store only)."""
    mapping = key_partitions(table)
    if mapping is not None:
        mapping[key] = partition


def forget_key_partition(table: Any, key: Any) -> None:
    """Forget the partition of a deleted key (memory store only)."""
    mapping = key_partitions(table)
    if mapping is not None:
        mapping.pop(key, None)


def share_rocksdb_memory(table: Any, memory: RocksDBMemory) -> None:
    """Open every RocksDB database of `table` with the worker's one block cache and memtable cap.

    Faust's RocksDB store opens each partition's database with `rocksdb_options.open`, which builds
    the database's options with `as_options` (a block cache of its own each time). The store's
    `rocksdb_options` is replaced before any database opens; the other options (memtable size,
    bloom filter, open files) stay Faust's. Refused for a store that is not RocksDB through
    rocksdict (python-rocksdb, which kpistream does not install).
    """
    store = table.data
    if not isinstance(store, faust_rocksdb.Store) or not store.use_rocksdict:
        raise KpiStreamError(f"table {table.name}: its store is not RocksDB through rocksdict")
    if store._dbs:
        raise KpiStreamError(f"table {table.name}: a RocksDB database is open already")
    store.rocksdb_options = SharedMemoryRocksDBOptions(
        memory, **(store.options or {}), use_rocksdict=True, ttl=store.rocksdb_options.ttl
    )


class SharedMemoryRocksDBOptions(faust_rocksdb.RocksDBOptions):
    """Faust's RocksDB options with the worker's shared block cache and write buffer manager."""

    def __init__(self, memory: RocksDBMemory, **options: Any) -> None:
        super().__init__(**options)
        self.memory = memory

    def as_options(self) -> Any:
        import rocksdict

        options = super().as_options()
        blocks = rocksdict.BlockBasedOptions()
        blocks.set_bloom_filter(self.bloom_filter_size, block_based=True)
        blocks.set_block_cache(self.memory.cache)
        # Index and filter blocks in the cache too: outside it they grow with the data on disk.
        blocks.set_cache_index_and_filter_blocks(True)
        blocks.set_pin_l0_filter_and_index_blocks_in_cache(True)
        blocks.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(blocks)
        options.set_write_buffer_manager(self.memory.write_buffers)
        return options


# ----------------------------------------------------------------------------- Kafka security


def aiokafka_auth_of(app: Any) -> dict[str, Any]:
    """The aiokafka security arguments Faust gives the app's consumer and producers.

    Faust's consumer and producer both pass `credentials_to_aiokafka_auth(conf.broker_credentials,
    conf.ssl_context)` to aiokafka (the producer after its defaults, so it wins over them).
    """
    conf = app.conf
    return dict(faust_aiokafka.credentials_to_aiokafka_auth(conf.broker_credentials, conf.ssl_context))


# ----------------------------------------------------------------------------- worker


def schedule_worker_shutdown(worker: Any, sig: Any) -> None:
    """Stop the worker as its own SIGTERM handler does (mode's `Worker._schedule_shutdown`)."""
    worker._schedule_shutdown(sig)


class TransportApp(faust.App):
    """A Faust app that builds its Kafka transport with `transport_class` (Faust's `_new_transport`).

    Faust has no public way to choose the transport class; this overrides the private factory for
    kafka:// and aiokafka:// URLs and leaves any other URL (memory://, confluent://) to Faust.
    """

    transport_class: Any = None

    def _new_transport(self) -> Any:
        url = self.conf.broker_consumer[0]
        if self.transport_class is not None and url.scheme in ("kafka", "aiokafka"):
            return self.transport_class(self.conf.broker_consumer, self)
        return super()._new_transport()


def committed_offset(consumer: Any, tp: Any) -> int | None:
    """The offset Faust last committed for `tp` (the next message to process); None before its first.

    Faust 0.15 keeps it in `Consumer._committed_offset` (a defaultdict: `.get` adds nothing) and has
    no public accessor; the broker's copy would cost a request per partition.
    """
    committed: Any = getattr(consumer, "_committed_offset", None)
    value = committed.get(tp) if committed is not None else None
    return None if value is None else int(value)

"""The publisher: from changed aggregate keys to batches of records, one queue and task per sink.

Stage 2 reports the keys it changed (`mark`). Every `flush_interval_s` the publisher builds one batch
of the records whose content changed (so a key is written at most once per interval however many
events touched it) and offers it to each sink's bounded queue. Each sink writes from its own task:
a slow or dead sink never blocks the stream or the other sinks. A sink that fails is retried with
exponential backoff, counted in `kpistream_sink_errors_total{sink}`, and its next successful write
is the complete current state, so it comes back to the exact values. An overflowing queue is
handled the same way: the batches are dropped and the complete state is written instead.

Rolling aggregates are read slid to the watermark (a copy, the table is never written here) and
re-published when the watermark moves even if no delta touched them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from fractions import Fraction
from typing import Any, Protocol

from schemas.events import format_ts
from stream.config import mask_secrets
from stream.core.aggregate import NOW, AggregateStore, AggState, split_key
from stream.core.config import KpiConfig
from stream.core.contributions import CENTER, OP, QUEUE
from stream.core.engine import live_state
from stream.core.outputs import ScoredOperator, operator_records, queue_record, scorecard_record
from stream.core.periods import ROLLING, is_expired, period_keys
from stream.core.scorecard import BusinessState
from stream.core.scoring import Strategy
from stream.metrics import Metrics
from stream.sinks.base import Batch, Record, Sink
from stream.strategies import StrategyBook

log = logging.getLogger(__name__)

BUSINESS_KEY = "business"
SHARES_EVERY_FLUSH_UP_TO = 500  # operators in a period; see docs/outputs.md
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class AggReader(Protocol):
    """Read access to the aggregates: keys, one state (rolling slid to the watermark), business facts."""

    def keys(self) -> Iterable[str]: ...

    def read(self, key: str) -> AggState | None: ...

    def business(self) -> BusinessState: ...

    def watermark(self) -> int: ...


def slid_copy(key: str, state: AggState, watermark: int, cfg: KpiConfig) -> AggState:
    """A rolling or live state slid to `watermark` on a copy (Faust tables are written only by agents)."""
    store = AggregateStore({}, cfg)
    store.observe(watermark)
    return store.slid(key, state)


class MappingReader:
    """An AggReader over a mapping of aggregates (a dict, or a Faust table) and a watermark source."""

    def __init__(
        self,
        table: Any,
        cfg: KpiConfig,
        watermark: Callable[[], int],
        business: Callable[[], BusinessState] = BusinessState,
    ) -> None:
        self.table = table
        self.cfg = cfg
        self._watermark = watermark
        self._business = business

    def keys(self) -> Iterable[str]:
        return list(self.table.keys())

    def read(self, key: str) -> AggState | None:
        st: AggState | None = self.table.get(key)
        if st is None:
            return None
        return slid_copy(key, st, self._watermark(), self.cfg)

    def business(self) -> BusinessState:
        return self._business()

    def watermark(self) -> int:
        return self._watermark()


def _content(rec: Record) -> bytes:
    """A digest of the record without its time stamp: what decides whether it changed.

    A digest (16 bytes), not the content itself, is remembered per published key: with 5,000
    operators x 40 days that is 200,000 records, and keeping their content cost ~200 MB.
    """
    text = repr(sorted((k, v) for k, v in rec.items() if k != "updated_at")).encode()
    return hashlib.blake2b(text, digest_size=16).digest()


class SinkRunner:
    """One sink's queue and task: writes batches, retries with backoff, resyncs after a failure."""

    def __init__(
        self,
        sink: Sink,
        build_full: Callable[[], Batch],
        metrics: Metrics,
        *,
        queue_size: int,
        backoff_initial_s: float,
        backoff_max_s: float,
        sleep: Sleep,
    ) -> None:
        self.sink = sink
        self.build_full = build_full
        self.metrics = metrics
        self.queue: asyncio.Queue[Batch] = asyncio.Queue(maxsize=queue_size)
        self.needs_full = False
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.sleep = sleep
        self.errors = 0
        self.writes = 0
        self.busy = False
        self.wakeup = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def offer(self, batch: Batch) -> None:
        """Queue a batch without waiting; when the queue is full, write the complete state instead."""
        if self.needs_full:
            self.wakeup.set()
            return
        try:
            self.queue.put_nowait(batch)
        except asyncio.QueueFull:
            log.warning("sink %s is behind: dropping its queue, writing the complete state", self.sink.name)
            self.needs_full = True
        self.wakeup.set()

    def _drain(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()

    async def _next(self) -> Batch:
        while True:
            if self.needs_full:
                self.needs_full = False
                self._drain()
                return self.build_full()
            if not self.queue.empty():
                return self.queue.get_nowait()
            self.wakeup.clear()
            await self.wakeup.wait()

    async def run(self) -> None:
        delay = self.backoff_initial_s
        while True:
            batch = await self._next()
            self.busy = True
            try:
                await self.sink.write(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.errors += 1
                self.metrics.sink_errors_total.labels(self.sink.name).inc()
                log.warning(
                    "sink %s failed (retry in %.1fs): %s", self.sink.name, delay, mask_secrets(str(exc))
                )
                self.needs_full = True
                self.busy = False
                await self.sleep(delay)
                delay = min(delay * 2, self.backoff_max_s)
                continue
            self.busy = False
            self.writes += 1
            if delay != self.backoff_initial_s:
                log.info("sink %s recovered: wrote the complete state", self.sink.name)
            delay = self.backoff_initial_s

    async def idle(self) -> None:
        """Wait until everything offered so far is written (tests, shutdown); not while failing."""
        while self.busy or self.needs_full or not self.queue.empty():
            await asyncio.sleep(0.005)


class Publisher:
    """Collects dirty keys and publishes coalesced batches of records to every sink."""

    def __init__(
        self,
        reader: AggReader,
        sinks: Sequence[Sink],
        cfg: KpiConfig,
        *,
        book: StrategyBook | None = None,
        fund: Fraction | None = None,
        metrics: Metrics | None = None,
        interval_s: float = 1.0,
        share_interval_s: float = 10.0,
        sweep_every_s: float = 30.0,
        clock: Clock = time.time,
        queue_size: int = 8,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.reader = reader
        self.cfg = cfg
        self.book = book or StrategyBook()
        self.default = self.book.default
        self.fund = fund
        self.metrics = metrics or Metrics.create()
        self.interval_s = interval_s
        self.share_interval_s = share_interval_s
        self._shares_at: dict[str, float] = {}  # period -> when all its operators were last published
        self.sweep_every_s = sweep_every_s
        self.clock = clock
        self.sleep = sleep
        self.dirty: set[str] = set()
        self._everything = True  # the first flush publishes all there is (state recovered at start)
        self._last_sweep = clock()
        self._last_watermark = -1
        self._live_watermark = -1
        self._everything_built = False
        self._published: dict[str, bytes] = {}
        # The index of aggregate keys (see `_index`) and the per-period operator score caches.
        self._known: set[str] = set()
        self._ops_by_period: defaultdict[str, set[str]] = defaultdict(set)
        self._rolling: set[str] = set()
        self._now: set[str] = set()
        self._periods: set[str] = set()
        self._score_caches: dict[str, dict[str, ScoredOperator]] = {}
        self._alerts: list[Record] = []
        self.active_alerts: Callable[[], list[Record]] = list
        self.runners = [
            SinkRunner(
                s,
                self.build_full,
                self.metrics,
                queue_size=queue_size,
                backoff_initial_s=backoff_initial_s,
                backoff_max_s=backoff_max_s,
                sleep=sleep,
            )
            for s in sinks
        ]
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------ inputs
    def mark(self, keys: Iterable[str]) -> None:
        """The `pipeline.on_change` callback: remember changed aggregate keys (cheap, never blocks)."""
        self.dirty.update(keys)

    def alert(self, record: Record) -> None:
        """The `pipeline.on_alert` callback: an alert transition to publish with the next batch."""
        self._alerts.append(record)

    def mark_everything(self) -> None:
        self._everything = True

    def strategy_for(self, operator_id: str) -> Strategy:
        return self.book.for_operator(operator_id, self.default)

    def set_default_strategy(self, name: str) -> bool:
        """Switch the default strategy (from the control topic); F and shares are republished at once."""
        if name not in self.book.strategies:
            log.warning("ignoring unknown strategy %r from the control topic", name)
            return False
        if name != self.default:
            log.info("default strategy is now %s", name)
            self.default = name
            self._everything = True
        return True

    # ------------------------------------------------------------ building
    def _current(self) -> tuple[str, str]:
        wm = self.reader.watermark()
        return period_keys(wm, self.cfg.tz) if wm > 0 else ("", "")

    def _index(self, key: str) -> None:
        """Remember an aggregate key by what the batches need of it (no scan of all keys per flush)."""
        if key in self._known or key == BUSINESS_KEY:
            return
        self._known.add(key)
        scope, sid, pk = split_key(key)
        if scope == OP:
            self._ops_by_period[pk].add(sys.intern(sid))
        if pk == ROLLING:
            self._rolling.add(key)
        elif pk == NOW:
            self._now.add(key)
        else:
            self._periods.add(pk)

    def _forget(self, key: str) -> None:
        if key not in self._known:
            return
        self._known.discard(key)
        scope, sid, pk = split_key(key)
        if scope == OP:
            self._ops_by_period[pk].discard(sid)
            if not self._ops_by_period[pk]:
                del self._ops_by_period[pk]
        self._rolling.discard(key)
        self._now.discard(key)

    def refresh_index(self) -> set[str]:
        """Rebuild the index from all keys (a scan); return the keys it did not know.

        Keys normally reach the index through `mark`; this catches state that came without deltas
        (recovered from a changelog, or rebalanced in) and drops keys that expired.
        """
        keys = set(self.reader.keys())
        new = keys - self._known
        self._known = set()
        self._ops_by_period = defaultdict(set)
        self._rolling = set()
        self._now = set()
        self._periods = set()
        for k in keys:
            self._index(k)
        return new

    def build(self, now_ms: int | None = None, *, full: bool = False) -> Batch:
        """One batch: the records of dirty keys whose content changed (all records when `full`)."""
        now = int(self.clock() * 1000) if now_ms is None else now_ms
        reader = self.reader
        wm = reader.watermark()
        self._everything_built = self._everything
        if full or self._everything:
            self.refresh_index()
            dirty = set(self._known) | {BUSINESS_KEY}
        else:
            dirty = self.dirty
            for k in dirty:
                self._index(k)
            if wm != self._last_watermark:
                dirty |= self._rolling
        if not full:
            self._everything = False
            self.dirty = set()
            self._last_watermark = wm
        day, month = self._current()
        batch = Batch(full=full, current_day=day, current_month=month)
        cfg = self.cfg
        periods = {
            pk
            for pk in self._periods
            if not is_expired(pk, wm, cfg.tz, cfg.retention_days, cfg.retention_months)
        }

        op_periods: set[str] = set()
        card_periods: set[str] = set()
        queue_keys: list[str] = []
        for key in dirty:
            if key == BUSINESS_KEY:
                biz_periods = reader.business().period_keys(self.cfg.tz)
                card_periods |= periods | biz_periods
                continue
            scope, _, pk = split_key(key)
            if scope == OP:
                op_periods.add(pk)
            elif scope in (QUEUE, CENTER):
                queue_keys.append(key)
                if scope == CENTER and pk != ROLLING:
                    card_periods.add(pk)

        # Scores are remembered for the periods that keep changing (current day, month, rolling);
        # an older period is scored afresh when it changes (a late event), which is rare.
        live_periods = {day, month, ROLLING}
        for pk in list(self._score_caches):
            if pk not in live_periods:
                del self._score_caches[pk]
                self._shares_at.pop(pk, None)
        for pk in sorted(op_periods):
            counts = {}
            for op in sorted(self._ops_by_period.get(pk, ())):
                st = reader.read(f"{OP}|{op}|{pk}")
                if st is None:
                    self._forget(f"{OP}|{op}|{pk}")
                else:
                    counts[op] = st.counts
            cache = self._score_caches.setdefault(pk, {}) if pk in live_periods else None
            # Every operator's share moves when anyone's F does; with thousands of operators that
            # would rewrite them all every flush. Above SHARES_EVERY_FLUSH_UP_TO operators, those
            # whose own counts changed are published now and the others (only their share moved)
            # every `share_interval_s`.
            t = now / 1000
            everyone = (
                full
                or self._everything_built
                or cache is None
                or len(counts) <= SHARES_EVERY_FLUSH_UP_TO
                or t - self._shares_at.get(pk, float("-inf")) >= self.share_interval_s
            )
            if everyone and not full:
                self._shares_at[pk] = t
            recs = operator_records(
                pk,
                counts,
                self.strategy_for,
                now,
                self.cfg.tz,
                self.book.fund_for(pk, self.fund),
                cache,
                changed_only=not everyone,
            )
            for op, rec in recs.items():
                self._emit(batch.operators, f"op|{op}|{pk}", rec, full)
        for key in sorted(queue_keys):
            st = reader.read(key)
            if st is None:
                continue
            scope, sid, pk = split_key(key)
            rec = queue_record(pk, None if scope == CENTER else sid, st.counts, now)
            self._emit(batch.queues, key, rec, full)
        live_queues = {split_key(k)[1] for k in self._now}
        if not (full or self._everything_built or wm != self._live_watermark):
            live_queues &= {split_key(k)[1] for k in dirty if k.endswith(f"|{NOW}")}
        if live_queues:
            now_states = {k: st for k in self._now if (st := reader.read(k)) is not None}
            rows = live_state(now_states, wm, self.cfg)
            for queue in sorted(live_queues & rows.keys()):
                live_rec: Record = {"queue": queue, **rows[queue], "updated_at": format_ts(now)}
                self._emit(batch.live, f"live|{queue}", live_rec, full)
        if not full:
            self._live_watermark = wm
            batch.alerts, self._alerts = self._alerts, []
        else:
            batch.active_alerts = self.active_alerts()
        if card_periods:
            biz = reader.business()
            for pk in sorted(card_periods):
                st = reader.read(f"{CENTER}||{pk}")
                rec = scorecard_record(pk, st.counts if st else {}, biz, self.cfg, now)
                self._emit(batch.scorecards, f"scorecard|{pk}", rec, full)
        return batch

    def _emit(self, out: list[Record], key: str, rec: Record, full: bool) -> None:
        if full:  # a resync: everything, and the change cache of the normal batches stays as it is
            out.append(rec)
            return
        content = _content(rec)
        if self._published.get(key) == content:
            return
        self._published[key] = content
        out.append(rec)

    def build_full(self) -> Batch:
        return self.build(full=True)

    # ------------------------------------------------------------ running
    def flush(self, now_ms: int | None = None) -> Batch:
        """Build the batch of this interval and offer it to every sink (never waits for a sink)."""
        if self.clock() - self._last_sweep >= self.sweep_every_s:
            self._last_sweep = self.clock()
            # State recovered or rebalanced in comes without deltas: publish the keys it brought.
            self.dirty |= self.refresh_index()
        batch = self.build(now_ms)
        if len(batch):
            for r in self.runners:
                r.offer(batch)
        return batch

    def start(self) -> None:
        """Start one task per sink (inside a running loop)."""
        if not self._tasks:
            self._tasks = [asyncio.ensure_future(r.run()) for r in self.runners]

    async def run(self) -> None:
        """Flush every interval until cancelled; then stop the sink tasks and close the sinks."""
        self.start()
        try:
            while True:
                await self.sleep(self.interval_s)
                try:
                    self.flush()
                except Exception:  # a bug in one flush must not stop publishing for good
                    log.exception("publisher flush failed")
        finally:
            await self.stop()

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks = []
        for r in self.runners:
            with contextlib.suppress(Exception):
                await r.sink.close()

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

The parts: `KeyIndex` (which keys exist), `ScoreCache` (scores of the live periods), `ChangeFilter`
(what was last published), `BatchBuilder` (records of a set of keys); this module holds the
per-flush state and the sink runners.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction

from stream.core.config import KpiConfig
from stream.core.contributions import CENTER, OP, QUEUE
from stream.core.keys import BUSINESS_KEY, CENTER_ID, agg_key, scorecard_key
from stream.core.scoring import Strategy
from stream.metrics import Metrics
from stream.publish.batch_builder import BatchBuilder, BuildScope
from stream.publish.change_filter import ChangeFilter
from stream.publish.key_index import KeyIndex
from stream.publish.reader import AggReader
from stream.publish.runner import SinkRunner, Sleep
from stream.publish.score_cache import ScoreCache
from stream.sinks.base import Batch, Record, Retraction, Sink
from stream.strategies import StrategyBook

log = logging.getLogger(__name__)

Clock = Callable[[], float]


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
        check_every_s: float = 5.0,
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
        self.metrics = metrics or Metrics.create()
        self.interval_s = interval_s
        self.sweep_every_s = sweep_every_s
        self.clock = clock
        self.sleep = sleep
        self.index = KeyIndex()
        self.scores = ScoreCache(share_interval_s)
        self.changes = ChangeFilter()
        self._fund = fund  # KPISTREAM_FUND_AMOUNT: the months the strategies file gives no fund
        self.builder = BatchBuilder(
            reader,
            cfg,
            self.index,
            self.scores,
            self.changes,
            self.strategy_for,
            lambda pk: self.book.fund_for(pk, self._fund),
        )
        self.dirty: set[str] = set()
        self._everything = True  # the first flush publishes all there is (state recovered at start)
        self._resync = False  # the next flush is complete and marked full (after a rebalance)
        self._rebalancing = False  # partitions revoked, not yet assigned and recovered: publish nothing
        self._last_sweep = clock()
        self._last_watermark = -1
        self._live_watermark = -1
        self._alerts: list[Record] = []
        self._retractions: list[Retraction] = []  # periods out of retention, for the next batch
        self.active_alerts: Callable[[], list[Record]] = list
        # The (scope, queue) of the alerts this worker evaluates; None: all (see Batch.alert_scopes).
        self.alert_scopes: Callable[[], frozenset[tuple[str, str]]] | None = None
        self.runners = [
            SinkRunner(
                s,
                self.build_full,
                self.metrics,
                queue_size=queue_size,
                backoff_initial_s=backoff_initial_s,
                backoff_max_s=backoff_max_s,
                sleep=sleep,
                check_every_s=check_every_s,
            )
            for s in sinks
        ]
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()  # set when the next flush should not wait out the interval

    @property
    def fund(self) -> Fraction | None:
        return self._fund

    # ------------------------------------------------------------ inputs
    def mark(self, keys: Iterable[str]) -> None:
        """The `pipeline.on_change` callback: remember changed aggregate keys (cheap, never blocks)."""
        self.dirty.update(keys)

    def alert(self, record: Record) -> None:
        """The `pipeline.on_alert` callback: an alert transition to publish with the next batch."""
        self._alerts.append(record)

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

    # ------------------------------------------------------------ rebalances
    def on_partitions_revoked(self) -> None:
        """Partitions are moving: drop every queued batch and publish nothing until `on_partitions_ready`.

        A batch built before the rebalance may hold partitions now owned by another worker; written
        late, it would overwrite that worker's newer records.
        """
        self._rebalancing = True
        dropped = sum(r.drop_queued() for r in self.runners)
        log.info("partitions revoked: publishing held, %d queued batches dropped", dropped)

    def on_partitions_ready(self) -> None:
        """The new assignment is recovered: forget what was published and publish everything, in full.

        The new owner of a partition must rewrite records it believes unchanged (another worker may
        have overwritten them since), so the digests, the key index and the score caches go, and the
        next flush is a complete batch marked `full`.
        """
        for r in self.runners:
            r.drop_queued()
        self.changes.clear()
        self.index.clear()
        self.scores.clear()
        self.dirty = set()
        self._everything = True
        self._resync = True
        self._rebalancing = False
        self._wake.set()  # the resync is due now: after a failover every record waits for it
        log.info("assignment recovered: the next flush writes everything this worker holds")

    def on_rebalance(self) -> None:
        """Both hooks at once, for a caller that only learns that a rebalance happened."""
        self.on_partitions_revoked()
        self.on_partitions_ready()

    # ------------------------------------------------------------ building
    def refresh_index(self) -> set[str]:
        """Rebuild the index from all keys (a scan); return the keys it did not know.

        Keys normally reach the index through `mark`; this catches state that came without deltas
        (recovered from a changelog, or rebalanced in) and drops keys that expired. If it found
        any, the counts kept of the live periods go too (the next build reads every operator
        again): state that came without deltas may have changed known keys as well. A rebuild that
        found nothing keeps them: every change of this worker's state came with its delta.
        """
        before = self.index.version
        new = self.index.rebuild(self.reader.keys())
        if self.index.version != before:
            self.scores.forget_counts()
        return new

    def build(self, now_ms: int | None = None, *, full: bool = False) -> Batch:
        """One batch: the records of dirty keys whose content changed (all records when `full`)."""
        now = int(self.clock() * 1000) if now_ms is None else now_ms
        wm = self.reader.watermark()
        retention_wm = self.reader.retention_watermark()
        everything = self._everything
        if full or everything:
            self.refresh_index()
            dirty = self.index.known | {BUSINESS_KEY}
        else:
            dirty = self.dirty
            for k in dirty:
                self.index.add(k)
            if wm != self._last_watermark:
                dirty |= self.index.rolling
        self._retract(retention_wm)
        live_all = full or everything or wm != self._live_watermark
        if not full:
            self._everything = False
            self.dirty = set()
            self._last_watermark = wm
            self._live_watermark = wm
        scope = BuildScope(
            frozenset(dirty), now, wm, retention_wm, full=full, everything=everything, live_all=live_all
        )
        batch = self.builder.build(scope)
        if full:
            self._set_active_alerts(batch)
            # A resync of one sink: the others get the retractions with the next flush.
            batch.retractions = list(self._retractions)
        else:
            batch.alerts, self._alerts = self._alerts, []
            batch.retractions, self._retractions = self._retractions, []
        return batch

    def _set_active_alerts(self, batch: Batch) -> None:
        batch.active_alerts = self.active_alerts()
        batch.alert_scopes = None if self.alert_scopes is None else self.alert_scopes()

    def _retract(self, retention_wm: int) -> None:
        """Periods that left retention since the last build: held for the next batch, forgotten here."""
        gone = self.index.expire(retention_wm, self.cfg)
        for r in gone:
            pk = r.period_key
            log.info(
                "period %s left retention: retracting %d operator and %d queue records",
                pk,
                len(r.operators),
                len(r.queues),
            )
            self.changes.forget(
                [agg_key(OP, op, pk) for op in r.operators]
                + [agg_key(CENTER, "", pk) if q == CENTER_ID else agg_key(QUEUE, q, pk) for q in r.queues]
                + [scorecard_key(pk)]
            )
        self._retractions.extend(gone)

    def build_full(self) -> Batch:
        """The complete state for a sink's resync; nothing while partitions move (the resync after
        the rebalance is complete for every sink)."""
        if self._rebalancing:
            return Batch()
        return self.build(full=True)

    # ------------------------------------------------------------ running
    def flush(self, now_ms: int | None = None) -> Batch:
        """Build the batch of this interval and offer it to every sink (never waits for a sink)."""
        if self._rebalancing:
            return Batch()
        if self.clock() - self._last_sweep >= self.sweep_every_s:
            self._last_sweep = self.clock()
            # State recovered or rebalanced in comes without deltas: publish the keys it brought.
            self.dirty |= self.refresh_index()
        resync, self._resync = self._resync, False
        batch = self.build(now_ms)
        if resync:  # complete (the change filter was cleared): sinks may drop what is not in it
            batch.full = True
            self._set_active_alerts(batch)
        if len(batch) or resync:
            for r in self.runners:
                r.offer(batch)
        return batch

    def start(self) -> None:
        """Start one task per sink (inside a running loop)."""
        if not self._tasks:
            self._tasks = [asyncio.ensure_future(r.run()) for r in self.runners]
            for r, t in zip(self.runners, self._tasks, strict=True):
                t.add_done_callback(functools.partial(_sink_task_ended, r.sink.name))

    async def run(self) -> None:
        """Flush every interval until cancelled; then stop the sink tasks and close the sinks."""
        self.start()
        try:
            while True:
                await self._pause()
                try:
                    self.flush()
                except Exception:  # a bug in one flush must not stop publishing for good
                    log.exception("publisher flush failed")
        finally:
            await self.stop()

    async def _pause(self) -> None:
        """Wait one interval, or less when `_wake` is set (the resync after a rebalance)."""
        if not self._wake.is_set():
            nap = asyncio.ensure_future(self.sleep(self.interval_s))
            woken = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({nap, woken}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in (nap, woken):
                    t.cancel()
            if nap.done() and not nap.cancelled():
                nap.result()  # an error of the sleep (a test's clock) is the loop's
        self._wake.clear()

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


def _sink_task_ended(name: str, task: asyncio.Task[None]) -> None:
    """A sink task only ends by cancellation; anything else is said loudly (its sink stopped)."""
    if task.cancelled():
        return
    exc = task.exception()
    log.error("sink %s stopped writing: its task ended (%r)", name, exc, exc_info=exc)

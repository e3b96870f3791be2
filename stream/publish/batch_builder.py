"""From a set of changed aggregate keys to one batch of complete records (stream/core/outputs.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from schemas.timestamps import format_ts
from stream.core.aggregate import NOW
from stream.core.config import KpiConfig
from stream.core.contributions import CENTER, OP, QUEUE
from stream.core.counts import Counts
from stream.core.keys import BUSINESS_KEY, AggKey, agg_key, has_period, live_row_key, scorecard_key
from stream.core.live import live_state
from stream.core.outputs import operator_records, queue_record, scorecard_record
from stream.core.periods import ROLLING, is_expired, period_keys
from stream.core.scorecard import BusinessState
from stream.core.scoring import Fund, Strategy
from stream.publish.change_filter import ChangeFilter
from stream.publish.key_index import KeyIndex
from stream.publish.reader import AggReader
from stream.publish.score_cache import ScoreCache
from stream.sinks.base import Batch, Record


@dataclass(frozen=True, slots=True)
class BuildScope:
    """What one batch covers: the keys to publish and how.

    `full`: a resync, every record, the change filter neither consulted nor updated. `everything`:
    every record whose content changed (all of them after the filter was cleared). `live_all`: every
    live queue (the watermark moved), else only those with a changed live key. `retention_watermark`:
    the vouched event time; no record of a period out of retention at it is built.
    """

    dirty: frozenset[str]
    now_ms: int
    watermark: int
    retention_watermark: int = 0
    full: bool = False
    everything: bool = False
    live_all: bool = False


@dataclass(slots=True)
class _Targets:
    """The dirty keys sorted by the records they feed."""

    op_dirty: dict[str, set[str]] = field(default_factory=dict)  # period -> operators changed
    card_periods: set[str] = field(default_factory=set)
    queue_keys: list[str] = field(default_factory=list)


class BatchBuilder:
    """Builds batches from the reader, with the key index, the score cache and the change filter."""

    def __init__(
        self,
        reader: AggReader,
        cfg: KpiConfig,
        index: KeyIndex,
        scores: ScoreCache,
        changes: ChangeFilter,
        strategy_for: Callable[[str], Strategy],
        fund_for: Callable[[str], Fund | None],
    ) -> None:
        self.reader = reader
        self.cfg = cfg
        self.index = index
        self.scores = scores
        self.changes = changes
        self.strategy_for = strategy_for
        self.fund_for = fund_for  # the fund of a period (months only; StrategyBook.fund_for)
        self._live_periods: set[str] = set()  # of the build under way: see ChangeFilter

    def build(self, scope: BuildScope) -> Batch:
        wm = scope.watermark
        day, month = period_keys(wm, self.cfg.tz) if wm > 0 else ("", "")
        complete = scope.full or (scope.everything and not len(self.changes))
        self._live_periods = {day, month, ROLLING, NOW}  # whose records the change filter remembers
        batch = Batch(
            full=scope.full,
            complete=complete,
            current_day=day,
            current_month=month,
            retention_watermark=scope.retention_watermark,
        )
        # Rule: while event time is unknown (a restarted worker before its first events vouch for
        # it) a rolling hour or live row cannot be slid to it: built from everything held, it would
        # show calls of hours ago. They are built once event time is known (the watermark moves).
        dirty = scope.dirty if wm > 0 else [k for k in scope.dirty if not has_period(k, ROLLING)]
        targets = self._targets(dirty, scope.retention_watermark)
        self._operators(batch, scope, targets, {day, month, ROLLING})
        self._queues(batch, scope, targets.queue_keys)
        self._live(batch, scope)
        self._scorecards(batch, scope, targets.card_periods)
        return batch

    def _targets(self, dirty: Iterable[str], retention_wm: int) -> _Targets:
        # Periods out of retention were retracted (KeyIndex.expire) and are never built again.
        cfg = self.cfg
        out = _Targets()
        for key in dirty:
            if key == BUSINESS_KEY:
                biz_periods = {
                    pk
                    for pk in self.reader.business().period_keys(cfg.tz)
                    if not is_expired(pk, retention_wm, cfg.tz, cfg.retention_days, cfg.retention_months)
                }
                out.card_periods |= self.index.retained_periods(retention_wm, cfg) | biz_periods
                continue
            scope, sid, pk = AggKey.decode(key)
            if pk in self.index.retracted:
                continue
            if scope == OP:
                out.op_dirty.setdefault(pk, set()).add(sid)
            elif scope in (QUEUE, CENTER):
                out.queue_keys.append(key)
                if scope == CENTER and pk != ROLLING:
                    out.card_periods.add(pk)
        return out

    def _operators(self, batch: Batch, scope: BuildScope, targets: _Targets, live: set[str]) -> None:
        t = scope.now_ms / 1000
        for pk in self.scores.quiet_refreshes(targets.op_dirty.keys(), t, live):
            targets.op_dirty[pk] = set()  # no operator changed: only the shares are refreshed
        self.scores.keep_only(live)
        for pk in sorted(targets.op_dirty):
            cache = self.scores.cache_for(pk, live)
            # Rule: a live period's counts of the last build are complete and current but for the
            # operators whose keys are dirty now (a rolling period's are all dirty when the
            # watermark moved), so only those are read again; a full or everything build reads all.
            last = None if scope.full or scope.everything else self.scores.counts_of(pk)
            counts: dict[str, Counts] = {} if last is None else last
            readers = self.index.operators(pk) if last is None else sorted(targets.op_dirty[pk])
            for op in readers:
                key = agg_key(OP, op, pk)
                st = self.reader.read(key)
                if st is None:
                    self.index.forget(key)
                    counts.pop(op, None)
                else:
                    counts[op] = st.counts
            if cache is not None:
                self.scores.keep_counts(pk, counts)
            everyone = self.scores.everyone(
                pk,
                len(counts),
                t,
                cached=cache is not None,
                forced=scope.full or scope.everything,
                quiet=not targets.op_dirty[pk],
            )
            recs = operator_records(
                pk,
                counts,
                self.strategy_for,
                scope.now_ms,
                self.cfg.tz,
                self.fund_for(pk),
                cache,
                changed_only=not everyone,
            )
            if everyone and not scope.full:
                self.scores.published_shares(pk, t)
            elif recs and not everyone:
                self.scores.left_behind(pk)
            for op, rec in recs.items():
                self._emit(batch.operators, agg_key(OP, op, pk), rec, scope.full, pk)

    def _queues(self, batch: Batch, scope: BuildScope, queue_keys: list[str]) -> None:
        for key in sorted(queue_keys):
            st = self.reader.read(key)
            if st is None:
                continue
            kind, sid, pk = AggKey.decode(key)
            rec = queue_record(pk, None if kind == CENTER else sid, st.counts, scope.now_ms)
            self._emit(batch.queues, key, rec, scope.full, pk)

    def _live(self, batch: Batch, scope: BuildScope) -> None:
        if scope.watermark <= 0:
            return  # see build: not before event time is known
        live_queues = {AggKey.decode(k)[1] for k in self.index.now}
        if not scope.live_all:
            live_queues &= {AggKey.decode(k)[1] for k in scope.dirty if has_period(k, NOW)}
        if not live_queues:
            return
        now_states = {k: st for k in self.index.now if (st := self.reader.read(k)) is not None}
        rows = live_state(now_states, scope.watermark, self.cfg)
        for queue in sorted(live_queues & rows.keys()):
            rec: Record = {"queue": queue, **rows[queue], "updated_at": format_ts(scope.now_ms)}
            self._emit(batch.live, live_row_key(queue), rec, scope.full, NOW)

    def _scorecards(self, batch: Batch, scope: BuildScope, card_periods: set[str]) -> None:
        if not card_periods:
            return
        biz = self.reader.business()
        no_facts = biz == BusinessState()
        for pk in sorted(card_periods):
            self.index.built_scorecard(pk)
            st = self.reader.read(agg_key(CENTER, "", pk))
            # Rule: a scorecard is built by the worker holding the centre's partition (its counts
            # and the business facts, keys.BUSINESS_ROUTE); any other would write one of zeros.
            if st is None and no_facts:
                continue
            rec = scorecard_record(pk, st.counts if st else {}, biz, self.cfg, scope.now_ms)
            self._emit(batch.scorecards, scorecard_key(pk), rec, scope.full, pk)

    def _emit(self, out: list[Record], key: str, rec: Record, full: bool, period_key: str) -> None:
        # A resync writes everything and leaves the change filter of the normal batches as it is.
        if full or self.changes.changed(key, rec, remember=period_key in self._live_periods):
            out.append(rec)

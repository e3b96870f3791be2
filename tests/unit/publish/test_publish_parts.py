"""The publisher's parts one by one: key index, change filter, score cache, batch builder."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stream.core.aggregate import AggregateStore, AggState
from stream.core.config import DAY_MS, KpiConfig
from stream.core.entity import Delta
from stream.publish import (
    BUSINESS_KEY,
    BatchBuilder,
    BuildScope,
    ChangeFilter,
    KeyIndex,
    MappingReader,
    ScoreCache,
    content_digest,
)
from stream.publish import score_cache as score_cache_module
from stream.strategies import StrategyBook

T0 = 1_768_467_600_000  # 2026-01-15T09:00:00Z
ANSWER = {"presented": 1, "answered": 1, "sl_answered": 1}


def test_key_index_sorts_keys_by_what_batches_need() -> None:
    idx = KeyIndex()
    for k in ["op|b|day:2026-01-15", "op|a|day:2026-01-15", "op|a|rolling", "live|q|now", BUSINESS_KEY]:
        idx.add(k)
    assert idx.operators("day:2026-01-15") == ["a", "b"]
    assert idx.rolling == {"op|a|rolling"} and idx.now == {"live|q|now"}
    assert idx.periods == {"day:2026-01-15"} and BUSINESS_KEY not in idx.known
    idx.forget("op|b|day:2026-01-15")
    assert idx.operators("day:2026-01-15") == ["a"]
    new = idx.rebuild(["op|a|rolling", "queue|s|month:2026-01"])
    assert new == {"queue|s|month:2026-01"}
    assert idx.known == {"op|a|rolling", "queue|s|month:2026-01"} and idx.periods == {"month:2026-01"}
    cfg = KpiConfig()
    assert idx.retained_periods(T0, cfg) == {"month:2026-01"}
    assert idx.retained_periods(T0 + 400 * 86_400_000, cfg) == set()  # the month left retention
    idx.clear()
    assert not idx.known and not idx.periods


KEYS = st.sampled_from(
    [
        f"{scope}|{sid}|{pk}"
        for scope, sid in (("op", "a"), ("op", "b"), ("op", "x|y"), ("queue", "s"), ("center", ""))
        for pk in ("rolling", "day:2026-01-14", "day:2026-01-15", "month:2026-01", "day:2025-11-01")
    ]
    + ["live|q|now", "live|r|now", BUSINESS_KEY]
)


def _view(idx: KeyIndex) -> tuple[object, ...]:
    return (
        idx.known,
        {pk: ops for pk, ops in idx.ops_by_period.items() if ops},
        dict(idx.by_period),
        idx.rolling,
        idx.now,
        idx.periods,
    )


@given(st.lists(st.sets(KEYS), min_size=1, max_size=5))
def test_a_rebuild_applies_the_difference_and_equals_an_index_built_afresh(
    scans: list[set[str]],
) -> None:
    kept = KeyIndex()
    kept.retracted.add("day:2025-11-01")  # a period out of retention is never indexed again
    for keys in scans:
        before = set(kept.known)
        new = kept.rebuild(keys)
        fresh = KeyIndex()
        fresh.retracted.add("day:2025-11-01")
        fresh.rebuild(keys)
        assert _view(kept) == _view(fresh)
        assert new == kept.known - before


def test_change_filter_ignores_the_time_stamp() -> None:
    f = ChangeFilter()
    assert f.changed("k", {"a": 1, "updated_at": "t1"})
    assert not f.changed("k", {"a": 1, "updated_at": "t2"})
    assert f.changed("k", {"a": 2, "updated_at": "t2"})
    assert f.changed("other", {"a": 2}) and len(f) == 2
    f.clear()
    assert len(f) == 0 and f.changed("k", {"a": 2, "updated_at": "t3"})


def test_the_digest_changes_with_the_content_and_only_with_it() -> None:
    rec = {"kpis": {"sl": 1, "lcr": None}, "counts": {"offered": 2, "answered": 1}, "f": 0.5}
    same = {"f": 0.5, "counts": {"answered": 1, "offered": 2}, "kpis": {"lcr": None, "sl": 1}}
    assert content_digest(rec) == content_digest({**same, "updated_at": "t"})
    for changed in (
        {**rec, "kpis": {"sl": 1.0, "lcr": None}},  # 1 and 1.0 are written differently
        {**rec, "kpis": {"sl": 1, "lcr": 0}},  # null and 0 too
        {**rec, "counts": {"offered": 2, "answered": 2}},
        {**rec, "f": 0.5000000001},
        {**rec, "bonus": "0.00"},
    ):
        assert content_digest(changed) != content_digest(rec), changed


def test_change_filter_remembers_only_what_it_is_told_to() -> None:
    f = ChangeFilter()
    assert f.changed("k", {"a": 1}) and len(f) == 1
    # A record not to be remembered is always "changed", and its old digest goes.
    assert f.changed("k", {"a": 1}, remember=False) and len(f) == 0
    assert f.changed("k", {"a": 1}, remember=False) and len(f) == 0


def test_records_of_a_period_that_is_not_live_are_published_whenever_built_and_not_remembered() -> None:
    """Only the live periods' digests are held: 200,000 of them at 5,000 operators x 40 days was 18 MB."""
    w = _World()
    yesterday = T0 - DAY_MS
    old = w.add("op", "a", yesterday, ANSWER) | w.add("queue", "s", yesterday, {"offered": 1})
    today = w.add("op", "a", T0, ANSWER) | w.add("queue", "s", T0, {"offered": 1})
    scope = BuildScope(frozenset(old | today), T0, w.store.watermark)
    first = w.builder.build(scope)
    periods = {r["period_key"] for r in first.operators}
    assert periods == {"day:2026-01-14", "day:2026-01-15", "month:2026-01", "rolling"}
    again = w.builder.build(scope)  # nothing changed: only yesterday's records come again
    assert {r["period_key"] for r in again.operators} == {"day:2026-01-14"}
    assert {r["period_key"] for r in again.queues} == {"day:2026-01-14"}
    assert not any(k.endswith("day:2026-01-14") for k in w.changes._published)


def test_score_cache_keeps_live_periods_and_spaces_share_only_updates() -> None:
    c = ScoreCache(share_interval_s=10.0)
    live = {"day:2026-01-15", "month:2026-01", "rolling"}
    assert c.cache_for("day:2026-01-14", live) is None  # an old period: scored afresh
    assert c.cache_for("day:2026-01-15", live) == {}
    many = score_cache_module.SHARES_EVERY_FLUSH_UP_TO * 3  # busy: every 3 share intervals
    assert c.refresh_interval(many) == 30.0 and c.refresh_interval(3) == 10.0
    assert c.everyone("day:2026-01-15", many, 100.0, cached=True, forced=False)  # never published
    c.published_shares("day:2026-01-15", 100.0)
    assert not c.everyone("day:2026-01-15", many, 105.0, cached=True, forced=False)
    assert not c.everyone("day:2026-01-15", many, 110.0, cached=True, forced=False)
    assert c.everyone("day:2026-01-15", many, 110.0, cached=True, forced=False, quiet=True)
    assert not c.everyone("day:2026-01-15", many, 109.0, cached=True, forced=False, quiet=True)
    assert c.everyone("day:2026-01-15", many, 130.0, cached=True, forced=False)
    assert c.everyone("day:2026-01-15", many, 105.0, cached=True, forced=True)
    assert c.everyone("day:2026-01-15", 3, 105.0, cached=True, forced=False)  # few operators: always
    c.left_behind("day:2026-01-15")
    c.left_behind("month:2026-01")
    c.published_shares("month:2026-01", 100.0)  # no longer behind
    assert c.quiet_refreshes({"day:2026-01-15"}, 110.0, live) == []  # busy: not quiet
    assert c.quiet_refreshes(set(), 109.0, live) == []  # not yet due
    assert c.quiet_refreshes(set(), 110.0, live) == ["day:2026-01-15"]
    assert c.quiet_refreshes(set(), 101.0, {"rolling"}) == ["day:2026-01-15"]  # turned: final shares
    c.keep_only({"rolling"})
    assert not c.caches and not c.shares_at and not c.behind


class _World:
    def __init__(self) -> None:
        self.cfg = KpiConfig()
        self.aggs: dict[str, AggState] = {}
        self.store = AggregateStore(self.aggs, self.cfg, rolling=True)
        self.index = KeyIndex()
        self.changes = ChangeFilter()
        book = StrategyBook()
        reader = MappingReader(self.aggs, self.cfg, lambda: self.store.watermark)
        self.builder = BatchBuilder(
            reader,
            self.cfg,
            self.index,
            ScoreCache(10.0),
            self.changes,
            lambda op: book.for_operator(op, book.default),
            lambda pk: None,
        )

    def add(self, scope: str, sid: str, ts: int, counts: dict[str, int]) -> set[str]:
        self.store.observe(ts)
        keys = set(self.store.apply(Delta(scope, sid, ts, counts, "t:0", ts, 0)))
        for k in keys:
            self.index.add(k)
        return keys


def test_batch_builder_full_leaves_the_change_filter_alone_and_everything_is_complete() -> None:
    w = _World()
    keys = w.add("op", "a", T0, ANSWER) | w.add("queue", "s", T0, {"offered": 1, "answered": 1})
    keys |= w.add("center", "", T0, {"offered": 1, "answered": 1})
    scope = BuildScope(
        frozenset(keys | {BUSINESS_KEY}), T0, w.store.watermark, everything=True, live_all=True
    )
    first = w.builder.build(scope)
    assert first.complete and not first.full
    assert len(first.operators) == 3 and len(first.queues) == 6 and first.scorecards
    assert not len(w.builder.build(scope))  # nothing changed since: the filter drops it all
    assert not w.builder.build(scope).complete  # the filter is not empty: not known complete
    full = w.builder.build(BuildScope(frozenset(keys), T0, w.store.watermark, full=True, live_all=True))
    assert full.full and full.complete and len(full.operators) == 3
    assert len(w.changes) == len(first)  # a resync neither reads nor writes the filter


def test_batch_builder_drops_operators_whose_aggregate_is_gone() -> None:
    w = _World()
    keys = w.add("op", "a", T0, ANSWER) | w.add("op", "b", T0, ANSWER)
    for k in [k for k in w.aggs if k.startswith("op|b|")]:
        del w.aggs[k]
    batch = w.builder.build(BuildScope(frozenset(keys), T0, w.store.watermark))
    assert {r["operator_id"] for r in batch.operators} == {"a"}
    assert w.index.operators("day:2026-01-15") == ["a"]


def test_only_the_worker_holding_the_centre_builds_scorecards() -> None:
    """Another worker (operators and queues only, no centre, no business facts) writes no scorecard:
    it would overwrite the owner's with zeros."""
    w = _World()
    keys = w.add("op", "a", T0, ANSWER) | w.add("queue", "s", T0, {"offered": 1, "answered": 1})
    scope = BuildScope(frozenset(keys | {BUSINESS_KEY}), T0, w.store.watermark, full=True, live_all=True)
    assert not w.builder.build(scope).scorecards
    keys |= w.add("center", "", T0, {"offered": 1, "answered": 1})
    scope = BuildScope(frozenset(keys | {BUSINESS_KEY}), T0, w.store.watermark, full=True, live_all=True)
    cards = w.builder.build(scope).scorecards
    assert {c["period_key"] for c in cards} == {"day:2026-01-15", "month:2026-01"}


def test_business_facts_take_the_centres_route() -> None:
    """One partition, so one worker, holds both halves of a scorecard."""
    from stream.core.deltas import DeltaBatch, encode_business
    from stream.core.entity import Delta as D

    batch = DeltaBatch("UTC", rolling=False)
    batch.add(D("center", "", T0, {"offered": 1}, "t:0", 1, 0))
    ((centre_route, _),) = list(batch.encoded(T0, T0))
    assert encode_business("t:0", 2, T0, T0, {"type": "order"})[0] == centre_route

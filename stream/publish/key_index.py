"""The publisher's index of aggregate keys by what a batch needs of them (no scan of all keys per flush)."""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterable

from stream.core.aggregate import NOW
from stream.core.config import KpiConfig
from stream.core.contributions import CENTER, OP, QUEUE
from stream.core.keys import BUSINESS_KEY, CENTER_ID, AggKey, period_of
from stream.core.periods import ROLLING, is_expired
from stream.sinks.base import Retraction


class KeyIndex:
    """Aggregate keys known to the publisher: operators per period, rolling keys, live keys, periods.

    Keys normally arrive through the publisher's `mark`; `rebuild` catches state that came without
    deltas (recovered from a changelog, rebalanced in) and drops keys that expired.

    A period that left retention is `expire`d once: its keys leave the index and it is remembered
    as retracted, so a key of it still in the table (the worker's sweep runs every few seconds) is
    never indexed, and so never published, again. Retention only moves forward (the vouched
    watermark never goes back), so a retracted period never comes back.
    """

    # Rule: the sets of one period (thousands of keys each) are dicts with None values. A set of
    # 5,000 strings takes 512 KB (CPython grows small sets fourfold), a dict 150 KB: for 5,000
    # operators x 40 days the index held 54 MB, most of it empty set slots (docs/benchmarks.md).
    # Rule: each key is held once, in the collection of its period; a set of all keys beside them
    # took 8-16 MB at that size for nothing but membership.
    def __init__(self) -> None:
        self.ops_by_period: defaultdict[str, dict[str, None]] = defaultdict(dict)
        self.by_period: defaultdict[str, dict[str, None]] = defaultdict(dict)  # day/month -> its keys
        self.rolling: set[str] = set()
        self.now: set[str] = set()
        self.periods: set[str] = set()
        self.cards: set[str] = set()  # periods whose scorecard was built (business-only ones too)
        self.retracted: set[str] = set()  # periods out of retention: never indexed again
        self.version = 0  # counts the keys added and forgotten: tells whether a rebuild changed anything

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str) or key == BUSINESS_KEY:
            return False
        return key in self._keys_of(period_of(key))

    def _keys_of(self, period_key: str) -> dict[str, None] | set[str]:
        if period_key == ROLLING:
            return self.rolling
        if period_key == NOW:
            return self.now
        return self.by_period.get(period_key, {})

    @property
    def known(self) -> set[str]:
        """Every key indexed (built on each call: for a full rebuild or a test, not per event)."""
        return {k for ks in self.by_period.values() for k in ks} | self.rolling | self.now

    def add(self, key: str) -> None:
        if key == BUSINESS_KEY:
            return
        scope, sid, pk = AggKey.decode(key)
        if pk in self.retracted or key in self._keys_of(pk):
            return
        self.version += 1
        if scope == OP:
            self.ops_by_period[pk][sys.intern(sid)] = None
        if pk == ROLLING:
            self.rolling.add(key)
        elif pk == NOW:
            self.now.add(key)
        else:
            self.periods.add(pk)
            self.by_period[pk][key] = None

    def forget(self, key: str) -> None:
        """Drop a key whose aggregate is gone (expired); its period stays until `rebuild`."""
        scope, sid, pk = AggKey.decode(key)
        if key not in self._keys_of(pk):
            return
        self.version += 1
        if scope == OP:
            self.ops_by_period[pk].pop(sid, None)
            if not self.ops_by_period[pk]:
                del self.ops_by_period[pk]
        self.rolling.discard(key)
        self.now.discard(key)
        if pk in self.by_period:
            self.by_period[pk].pop(key, None)

    def clear(self) -> None:
        """Forget every key (a rebalance); the scorecards built and the retracted periods stay."""
        self.version += 1
        self.ops_by_period = defaultdict(dict)
        self.by_period = defaultdict(dict)
        self.rolling = set()
        self.now = set()
        self.periods = set()

    def rebuild(self, keys: Iterable[str]) -> set[str]:
        """Index exactly `keys` (a scan of the table); return the indexed keys that were not known.

        Only the difference is applied: a worker holding 5,000 operators x 40 days re-indexed
        215,000 keys every 30 s to find none new (0.6 s on the event loop; docs/benchmarks.md).
        """
        keys = set(keys)
        known = self.known
        new = keys - known
        for k in known - keys:
            self.forget(k)
        del known
        for k in new:
            self.add(k)
        # A period whose keys are all gone leaves the index, as an index built afresh has it.
        for pk in [pk for pk, ks in self.by_period.items() if not ks]:
            del self.by_period[pk]
        self.periods = {pk for pk in self.periods if pk in self.by_period}
        return {k for k in new if k in self}  # keys of retracted periods are not indexed

    def operators(self, period_key: str) -> list[str]:
        """The operators with an aggregate in `period_key`, sorted."""
        return sorted(self.ops_by_period.get(period_key, ()))

    def retained_periods(self, watermark: int, cfg: KpiConfig) -> set[str]:
        """The day and month periods still inside retention at `watermark`."""
        return {
            pk
            for pk in self.periods
            if not is_expired(pk, watermark, cfg.tz, cfg.retention_days, cfg.retention_months)
        }

    def built_scorecard(self, period_key: str) -> None:
        """A scorecard of `period_key` was built: it is retracted with the period."""
        self.cards.add(period_key)

    def expire(self, watermark: int, cfg: KpiConfig) -> list[Retraction]:
        """Retract the periods out of retention at `watermark` (the vouched one): what to remove.

        Each is returned once, with the operators and queues indexed in it, and never indexed again.
        """
        out: list[Retraction] = []
        for pk in sorted(self.periods | self.cards):
            if not is_expired(pk, watermark, cfg.tz, cfg.retention_days, cfg.retention_months):
                continue
            keys = self.by_period.pop(pk, {})
            queues: set[str] = set()
            for k in keys:
                scope, sid, _ = AggKey.decode(k)
                if scope == QUEUE:
                    queues.add(sid)
                elif scope == CENTER:
                    queues.add(CENTER_ID)
            ops = self.ops_by_period.pop(pk, {})
            self.periods.discard(pk)
            self.cards.discard(pk)
            self.retracted.add(pk)
            out.append(Retraction(pk, tuple(sorted(ops)), tuple(sorted(queues))))
        return out

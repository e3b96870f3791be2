"""The publisher's index of aggregate keys by what a batch needs of them (no scan of all keys per flush)."""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterable

from stream.core.aggregate import NOW
from stream.core.config import KpiConfig
from stream.core.contributions import OP
from stream.core.keys import BUSINESS_KEY, AggKey
from stream.core.periods import ROLLING, is_expired


class KeyIndex:
    """Aggregate keys known to the publisher: operators per period, rolling keys, live keys, periods.

    Keys normally arrive through the publisher's `mark`; `rebuild` catches state that came without
    deltas (recovered from a changelog, rebalanced in) and drops keys that expired.
    """

    def __init__(self) -> None:
        self.known: set[str] = set()
        self.ops_by_period: defaultdict[str, set[str]] = defaultdict(set)
        self.rolling: set[str] = set()
        self.now: set[str] = set()
        self.periods: set[str] = set()

    def add(self, key: str) -> None:
        if key in self.known or key == BUSINESS_KEY:
            return
        self.known.add(key)
        scope, sid, pk = AggKey.decode(key)
        if scope == OP:
            self.ops_by_period[pk].add(sys.intern(sid))
        if pk == ROLLING:
            self.rolling.add(key)
        elif pk == NOW:
            self.now.add(key)
        else:
            self.periods.add(pk)

    def forget(self, key: str) -> None:
        """Drop a key whose aggregate is gone (expired); its period stays until `rebuild`."""
        if key not in self.known:
            return
        self.known.discard(key)
        scope, sid, pk = AggKey.decode(key)
        if scope == OP:
            self.ops_by_period[pk].discard(sid)
            if not self.ops_by_period[pk]:
                del self.ops_by_period[pk]
        self.rolling.discard(key)
        self.now.discard(key)

    def clear(self) -> None:
        self.known = set()
        self.ops_by_period = defaultdict(set)
        self.rolling = set()
        self.now = set()
        self.periods = set()

    def rebuild(self, keys: Iterable[str]) -> set[str]:
        """Index exactly `keys` (a scan of the table); return the keys that were not known."""
        keys = set(keys)
        new = keys - self.known
        self.clear()
        for k in keys:
            self.add(k)
        return new

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

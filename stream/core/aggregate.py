"""Stage 2: per-period aggregates keyed by scope, id and period key, with event-time retention.

A plain mapping (dict, or a Faust table) holds `AggState` under `scope|id|period_key`. Every delta is
applied to its day and month period (and, in the stream, to the rolling hour). Each state keeps, per
source partition, the position of the last delta it applied: a redelivered delta is dropped, so the
totals are exactly-once although the stream is at-least-once.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from sys import intern
from typing import Any

from stream.core import jsonbytes
from stream.core.config import DAY_MS, KpiConfig
from stream.core.contributions import LIVE, MAIL, NOW_SCOPES
from stream.core.counts import Counts, add_into
from stream.core.entity import Delta
from stream.core.eventtime import Watermark
from stream.core.keys import AggKey, agg_key, period_of, scope_of
from stream.core.periods import ROLLING, is_expired, period_keys

NOW = "now"  # the period key of live-state aggregates


@dataclass(slots=True)
class AggState:
    """Counts of one (scope, id, period); for the rolling period also the timed entries behind them."""

    counts: Counts = field(default_factory=dict)
    # Per source partition, the last position applied, flat: (source, offset, index, source, ...).
    # A tuple, not a dict: one per aggregate, and there are hundreds of thousands (docs/benchmarks.md).
    hwm: tuple[str | int, ...] = ()
    entries: dict[int, Counts] | None = None  # rolling only: event time -> counts at that time
    times: list[int] | None = None  # rolling only: sorted keys of entries

    def seen(self, source: str, offset: int, index: int) -> bool:
        """Record the position; True if it was applied before (a redelivery)."""
        h = self.hwm
        for i in range(0, len(h), 3):
            if h[i] == source:
                if (offset, index) <= (h[i + 1], h[i + 2]):
                    return True
                self.hwm = (*h[: i + 1], offset, index, *h[i + 3 :])
                return False
        self.hwm = (*h, intern(source), offset, index)
        return False

    def positions(self) -> dict[str, tuple[int, int]]:
        """The high-water marks as {source: (offset, index)}."""
        h = self.hwm
        return {str(h[i]): (int(h[i + 1]), int(h[i + 2])) for i in range(0, len(h), 3)}

    def add_timed(self, ts: int, counts: Counts) -> None:
        assert self.entries is not None and self.times is not None
        cur = self.entries.get(ts)
        if cur is None:
            self.entries[ts] = dict(counts)
            bisect.insort(self.times, ts)
        else:
            add_into(cur, counts)
            if not cur:  # a retraction emptied this instant
                del self.entries[ts]
                self.times.remove(ts)
        add_into(self.counts, counts)

    def trim(self, oldest_exclusive: int) -> bool:
        """Drop rolling entries at or before `oldest_exclusive`; True if anything changed."""
        assert self.entries is not None and self.times is not None
        cut = bisect.bisect_right(self.times, oldest_exclusive)
        if not cut:
            return False
        for ts in self.times[:cut]:
            add_into(self.counts, self.entries.pop(ts), -1)
        del self.times[:cut]
        return True

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"c": self.counts, "h": {k: list(v) for k, v in self.positions().items()}}
        if self.entries is not None:
            d["e"] = [[ts, self.entries[ts]] for ts in self.times or ()]
        return d

    def to_bytes(self) -> bytes:
        return jsonbytes.dumps(self.to_json())

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> AggState:
        hwm = tuple(x for k, v in d.get("h", {}).items() for x in (intern(str(k)), int(v[0]), int(v[1])))
        st = cls(counts=dict(d.get("c", {})), hwm=hwm)
        if "e" in d:
            st.entries = {int(ts): dict(c) for ts, c in d["e"]}
            st.times = sorted(st.entries)
        return st

    @classmethod
    def from_bytes(cls, raw: bytes) -> AggState:
        return cls.from_json(jsonbytes.loads(raw))

    @classmethod
    def rolling(cls) -> AggState:
        return cls(entries={}, times=[])


def split_key(key: str) -> tuple[str, str, str]:
    """'scope|id|period' -> (scope, id, period): `AggKey.decode`, kept while callers move to it."""
    return AggKey.decode(key)


class AggregateStore:
    """Applies deltas to period aggregates held in any mapping (a dict, or a Faust table)."""

    def __init__(
        self,
        table: MutableMapping[str, AggState],
        cfg: KpiConfig,
        *,
        rolling: bool = True,
        event_time: Watermark | None = None,
    ) -> None:
        self.table = table
        self.cfg = cfg
        self.rolling = rolling
        self.event_time = event_time if event_time is not None else Watermark()

    @property
    def watermark(self) -> int:
        """The newest event seen: where the rolling hour and the live view end (CONTRACT.md s.4)."""
        return self.event_time.newest

    @property
    def retention_watermark(self) -> int:
        """Event time vouched for by two events: what retention is measured from (CONTRACT.md s.1)."""
        return self.event_time.value

    def observe(self, watermark_ms: int) -> None:
        """Advance event time to at least `watermark_ms`; it never goes back."""
        self.event_time.advance(watermark_ms)

    def now_horizon(self, scope: str) -> int | None:
        """Entries of a live scope at or before this time are stale (None: they never are)."""
        if scope == LIVE:
            return self.watermark - self.cfg.live_max_wait_ms
        if scope == MAIL:
            return self.watermark - self.cfg.retention_days * DAY_MS
        return None

    def apply(self, delta: Delta) -> list[str]:
        """Apply one delta to each of its periods; return the keys whose counts changed."""
        if delta.scope in NOW_SCOPES:
            return self._apply_timed(delta, NOW, self.now_horizon(delta.scope))
        changed: list[str] = []
        for pk in period_keys(delta.ts, self.cfg.tz):
            changed.extend(self._apply_fixed(delta, pk))
        if self.rolling:
            changed.extend(self._apply_rolling(delta))
        return changed

    def apply_period(self, delta: Delta, period: str) -> list[str]:
        """Apply one delta to one of its periods only: operator deltas arrive routed by period."""
        if period == ROLLING:
            return self._apply_rolling(delta) if self.rolling else []
        return self._apply_fixed(delta, period)

    def _apply_fixed(self, delta: Delta, period: str) -> list[str]:
        cfg = self.cfg
        if is_expired(period, self.retention_watermark, cfg.tz, cfg.retention_days, cfg.retention_months):
            return []
        key = agg_key(delta.scope, delta.scope_id, period)
        st = self.table.get(key)
        if st is None:
            st = AggState()
        if st.seen(delta.source, delta.offset, delta.index):
            return []
        add_into(st.counts, delta.counts)
        self.table[key] = st
        return [key]

    def _apply_rolling(self, delta: Delta) -> list[str]:
        return self._apply_timed(delta, ROLLING, self.watermark - self.cfg.rolling_ms)

    def _apply_timed(self, delta: Delta, period: str, horizon: int | None) -> list[str]:
        """A delta into a timed aggregate (rolling hour, live state): entries at or before `horizon` go."""
        key = agg_key(delta.scope, delta.scope_id, period)
        st = self.table.get(key)
        if st is None:
            st = AggState.rolling()
        if st.seen(delta.source, delta.offset, delta.index):
            return []
        inside = horizon is None or delta.ts > horizon
        if inside:
            st.add_timed(delta.ts, delta.counts)
            if horizon is not None:
                st.trim(horizon)
        self.table[key] = st  # also when outside: the high-water mark moved
        return [key] if inside else []

    def slid(self, key: str, st: AggState) -> AggState:
        """A copy of a rolling or live aggregate as of the current watermark (the table is untouched)."""
        if st.entries is None:
            return st
        horizon = (
            self.watermark - self.cfg.rolling_ms
            if period_of(key) == ROLLING
            else self.now_horizon(scope_of(key))
        )
        copy = AggState(counts=dict(st.counts), entries=dict(st.entries), times=list(st.times or ()))
        if horizon is not None:
            copy.trim(horizon)
        return copy

    def is_expired_key(self, key: str) -> bool:
        """Whether the day or month aggregate under `key` fell out of retention (the caller deletes it)."""
        return self.is_expired_period(period_of(key))

    def is_expired_period(self, period_key: str) -> bool:
        """Whether the aggregates of a day or month period fell out of retention (never rolling or now)."""
        cfg = self.cfg
        return period_key not in (ROLLING, NOW) and is_expired(
            period_key, self.retention_watermark, cfg.tz, cfg.retention_days, cfg.retention_months
        )

    def expired_keys(self) -> list[str]:
        """Day and month aggregates that fell out of retention (the caller deletes them)."""
        return [k for k in list(self.table.keys()) if self.is_expired_key(k)]


def _aggregate_period(key: str) -> str | None:
    """The period of an aggregate key; None for any other key (the business key has no period)."""
    return period_of(key) if "|" in key else None


class HeldPeriods:
    """The periods one partition holds aggregates of, so a retention sweep tests each period once.

    The keys themselves are not kept here: the sweep lists the partition's keys only when one of its
    periods left retention (a day a day). Keeping 200,000 keys by period cost 38 MB of a worker
    holding 5,000 operators x 40 days, a second copy of the table's keys (docs/benchmarks.md).
    """

    def __init__(self, keys: Iterable[str] = ()) -> None:
        self.periods: set[str] = set()
        self.add(keys)

    def add(self, keys: Iterable[str]) -> None:
        periods = self.periods
        for key in keys:
            pk = _aggregate_period(key)
            if pk is not None:
                periods.add(pk)

    @staticmethod
    def keys_of(keys: Iterable[str], periods: set[str]) -> list[str]:
        """The aggregate keys among `keys` whose period is one of `periods`."""
        return [k for k in keys if _aggregate_period(k) in periods]

    def pop_expired(self, expired: Callable[[str], bool]) -> set[str]:
        """The periods for which `expired(period_key)` holds, forgotten here."""
        gone = {pk for pk in self.periods if expired(pk)}
        self.periods -= gone
        return gone

    def __len__(self) -> int:
        return len(self.periods)

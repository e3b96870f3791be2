"""Stage 2: per-period aggregates keyed by scope, id and period key, with event-time retention.

A plain mapping (dict, or a Faust table) holds `AggState` under `scope|id|period_key`. Every delta is
applied to its day and month period (and, in the stream, to the rolling hour). Each state keeps, per
source partition, the position of the last delta it applied: a redelivered delta is dropped, so the
totals are exactly-once although the stream is at-least-once.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from sys import intern
from typing import Any

from stream.core import jsonbytes
from stream.core.config import DAY_MS, KpiConfig
from stream.core.contributions import LIVE, MAIL, NOW_SCOPES
from stream.core.counts import Counts, add_into
from stream.core.entity import Delta
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
    """'scope|id|period' -> (scope, id, period); ids may themselves contain '|'."""
    scope, rest = key.split("|", 1)
    sid, period = rest.rsplit("|", 1)
    return scope, sid, period


class AggregateStore:
    """Applies deltas to period aggregates held in any mapping (a dict, or a Faust table)."""

    def __init__(self, table: MutableMapping[str, AggState], cfg: KpiConfig, *, rolling: bool = True) -> None:
        self.table = table
        self.cfg = cfg
        self.rolling = rolling
        self.watermark = 0

    def observe(self, watermark_ms: int) -> None:
        """Advance event time (the newest event seen); it never goes back."""
        if watermark_ms > self.watermark:
            self.watermark = watermark_ms

    def now_horizon(self, scope: str) -> int | None:
        """Entries of a live scope at or before this time are stale (None: they never are)."""
        if scope == LIVE:
            return self.watermark - self.cfg.live_max_wait_ms
        if scope == MAIL:
            return self.watermark - self.cfg.retention_days * DAY_MS
        return None

    def _apply_now(self, delta: Delta) -> list[str]:
        key = f"{delta.agg_key}|{NOW}"
        st = self.table.get(key)
        if st is None:
            st = AggState.rolling()
        if st.seen(delta.source, delta.offset, delta.index):
            return []
        st.add_timed(delta.ts, delta.counts)
        horizon = self.now_horizon(delta.scope)
        if horizon is not None:
            st.trim(horizon)
        self.table[key] = st
        return [key]

    def apply(self, delta: Delta) -> list[str]:
        """Apply one delta; return the keys whose counts changed."""
        if delta.scope in NOW_SCOPES:
            return self._apply_now(delta)
        cfg = self.cfg
        changed: list[str] = []
        for pk in period_keys(delta.ts, cfg.tz):
            if is_expired(pk, self.watermark, cfg.tz, cfg.retention_days, cfg.retention_months):
                continue
            key = f"{delta.agg_key}|{pk}"
            st = self.table.get(key)
            if st is None:
                st = AggState()
            if st.seen(delta.source, delta.offset, delta.index):
                continue
            add_into(st.counts, delta.counts)
            self.table[key] = st
            changed.append(key)
        if self.rolling:
            key = f"{delta.agg_key}|{ROLLING}"
            st = self.table.get(key)
            if st is None:
                st = AggState.rolling()
            if not st.seen(delta.source, delta.offset, delta.index):
                if delta.ts > self.watermark - cfg.rolling_ms:
                    st.add_timed(delta.ts, delta.counts)
                    st.trim(self.watermark - cfg.rolling_ms)
                    changed.append(key)
                self.table[key] = st
        return changed

    def advance_rolling(self, key: str) -> bool:
        """Slide one rolling aggregate to the current watermark; True if its counts changed."""
        st = self.table.get(key)
        if st is None or st.entries is None:
            return False
        if st.trim(self.watermark - self.cfg.rolling_ms):
            self.table[key] = st
            return True
        return False

    def slid(self, key: str, st: AggState) -> AggState:
        """A copy of a rolling or live aggregate as of the current watermark (the table is untouched)."""
        if st.entries is None:
            return st
        scope = key.split("|", 1)[0]
        horizon = (
            self.watermark - self.cfg.rolling_ms if key.endswith(f"|{ROLLING}") else self.now_horizon(scope)
        )
        copy = AggState(counts=dict(st.counts), entries=dict(st.entries), times=list(st.times or ()))
        if horizon is not None:
            copy.trim(horizon)
        return copy

    def rolling_keys(self) -> Iterator[str]:
        return (k for k in list(self.table.keys()) if k.endswith(f"|{ROLLING}"))

    def expired_keys(self) -> list[str]:
        """Day and month aggregates that fell out of retention (the caller deletes them)."""
        cfg = self.cfg
        out = []
        for k in list(self.table.keys()):
            pk = k.rsplit("|", 1)[1]
            if pk not in (ROLLING, NOW) and is_expired(
                pk, self.watermark, cfg.tz, cfg.retention_days, cfg.retention_months
            ):
                out.append(k)
        return out

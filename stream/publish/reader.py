"""What the publisher reads: aggregate keys, one state (rolling slid to the watermark), business facts."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from stream.core.aggregate import AggregateStore, AggState
from stream.core.config import KpiConfig
from stream.core.scorecard import BusinessState


class AggReader(Protocol):
    """Read access to the aggregates: keys, one state (rolling slid to the watermark), business facts.

    `watermark` is the newest event time (where the rolling hour ends); `retention_watermark` the
    vouched one (stream/core/eventtime.py), which decides which periods left retention.
    """

    def keys(self) -> Iterable[str]: ...

    def read(self, key: str) -> AggState | None: ...

    def business(self) -> BusinessState: ...

    def watermark(self) -> int: ...

    def retention_watermark(self) -> int: ...


def slid_copy(key: str, state: AggState, watermark: int, cfg: KpiConfig) -> AggState:
    """A rolling or live state slid to `watermark` on a copy (Faust tables are written only by agents).

    A day or month state (no entries) is returned as it is, with no store built for it: the
    publisher reads every operator of a month of thousands this way.
    """
    if state.entries is None:
        return state
    store = AggregateStore({}, cfg)
    store.observe(watermark)
    return store.slid(key, state)


class MappingReader:
    """An AggReader over a mapping of aggregates (a dict, or a Faust table) and watermark sources.

    Without a `retention_watermark` source nothing is ever out of retention (0: event time unknown).
    """

    def __init__(
        self,
        table: Any,
        cfg: KpiConfig,
        watermark: Callable[[], int],
        business: Callable[[], BusinessState] = BusinessState,
        *,
        retention_watermark: Callable[[], int] | None = None,
    ) -> None:
        self.table = table
        self.cfg = cfg
        self._watermark = watermark
        self._business = business
        self._retention_watermark = retention_watermark

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

    def retention_watermark(self) -> int:
        return self._retention_watermark() if self._retention_watermark is not None else 0

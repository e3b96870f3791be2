"""The `kpi.deltas` message: stage 1's count changes on their way to stage 2, as a type and a codec.

One message per route per batch (stream/core/keys.py: an aggregate `scope|id`, or `op@period` for
every operator of one period), its changes grouped by source partition in order:

    {"wm": .., "nw": .., "i": {source: [[offset, index, ts, counts], ...]}}            aggregate route
    {"wm": .., "nw": .., "i": {source: [[offset, index, ts, counts, operator], ...]}}  operator route
    {"wm": .., "nw": .., "s": source, "o": offset, "b": event}                         business fact

`wm` is stage 1's vouched watermark and `nw` the newest event it accepted (stream/core/eventtime.py).

Operators are routed by period, not by operator, so that the operators of a period are aggregated
by one partition and their fund shares are taken over all of them (CONTRACT.md section 3), however
many workers share the work.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from stream.core import jsonbytes
from stream.core.contributions import OP
from stream.core.entity import Delta
from stream.core.keys import (
    BUSINESS_ROUTE,
    TICK_ROUTE,
    entity_agg,
    operator_route,
    route_period,
    split_entity_agg,
)
from stream.core.periods import ROLLING, period_keys

Item = list[Any]  # [offset, index, ts, counts] or [offset, index, ts, counts, operator]


@dataclass(slots=True)
class DeltaBatch:
    """The changes of one batch, by route and source partition, ready to encode."""

    tz: str
    rolling: bool = True
    routes: defaultdict[str, defaultdict[str, list[Item]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )

    def add(self, delta: Delta) -> None:
        """Route one delta: an operator's to each of its periods, any other to its aggregate."""
        item: Item = [delta.offset, delta.index, delta.ts, delta.counts]
        if delta.scope != OP:
            self.routes[entity_agg(delta.scope, delta.scope_id)][delta.source].append(item)
            return
        op_item = [*item, delta.scope_id]
        for pk in period_keys(delta.ts, self.tz):
            self.routes[operator_route(pk)][delta.source].append(op_item)
        if self.rolling:
            self.routes[operator_route(ROLLING)][delta.source].append(op_item)

    def encoded(self, watermark: int, newest: int) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) of every message of the batch."""
        for route, by_source in self.routes.items():
            yield route.encode(), jsonbytes.dumps({"wm": watermark, "nw": newest, "i": by_source})


def encode_business(
    source: str, offset: int, watermark: int, newest: int, event: dict[str, Any]
) -> tuple[bytes, bytes]:
    """(key, value) of a business fact: all of them take the centre's route (keys.BUSINESS_ROUTE)."""
    value = {"s": source, "o": offset, "wm": watermark, "nw": newest, "b": event}
    return BUSINESS_ROUTE.encode(), jsonbytes.dumps(value)


def encode_tick(watermark: int, newest: int) -> tuple[bytes, bytes]:
    """(key, value) of a watermark tick: event time only, sent to every partition of `kpi.deltas`.

    Stage 2 evaluates the alerts of the rolling hours a partition holds when event time moved, and
    may write alert state only while one of that partition's messages is current (a Faust table's
    changelog goes to the current message's partition): a partition whose queues had no traffic
    would otherwise never see its rolling hour slide.
    """
    return TICK_ROUTE.encode(), jsonbytes.dumps({"wm": watermark, "nw": newest, "t": 1})


@dataclass(frozen=True, slots=True)
class DeltaMessage:
    """A decoded `kpi.deltas` message; `period` is set for an operator route (one period only)."""

    watermark: int
    newest: int
    deltas: tuple[Delta, ...] = ()
    period: str | None = None
    business: dict[str, Any] | None = None
    source: str = ""
    offset: int = -1


def decode(key: bytes | str, value: bytes) -> DeltaMessage:
    """Decode one message (raises KeyError/ValueError on a malformed one: it is our own format)."""
    route = key.decode() if isinstance(key, bytes | bytearray) else str(key)
    body = jsonbytes.loads(value)
    wm = int(body["wm"])
    nw = int(body.get("nw", wm))
    if "b" in body:
        return DeltaMessage(wm, nw, business=body["b"], source=str(body["s"]), offset=int(body["o"]))
    if "t" in body:
        return DeltaMessage(wm, nw)  # a tick: event time, no change
    period = route_period(route)
    if period is not None:
        return DeltaMessage(wm, nw, tuple(_operator_deltas(body["i"])), period=period)
    scope, sid = split_entity_agg(route)
    return DeltaMessage(wm, nw, tuple(_deltas(scope, sid, body["i"])))


def _deltas(scope: str, sid: str, by_source: dict[str, Iterable[Item]]) -> Iterator[Delta]:
    for source, items in by_source.items():
        for offset, index, ts, counts in items:
            yield Delta(scope, sid, int(ts), counts, source, int(offset), int(index))


def _operator_deltas(by_source: dict[str, Iterable[Item]]) -> Iterator[Delta]:
    for source, items in by_source.items():
        for offset, index, ts, counts, operator in items:
            yield Delta(OP, str(operator), int(ts), counts, source, int(offset), int(index))

"""What every output sink receives and the one interface it implements.

A `Batch` holds complete records (stream/core/outputs.py), never partial updates, so a sink can
write it as is; `full` says it is the complete current state (after a restart or a failure), which
lets a sink that keeps its own view (Prometheus labels) drop what is not in it. `retractions` name
the day and month periods that left retention: a sink removes every record it holds of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

Record = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Retraction:
    """A day or month period that left retention (CONTRACT.md s.1): every record of it goes.

    `operators` and `queues` (`_center` for the centre) are the records the publisher knew of the
    period, so that a sink that cannot list keys (a compacted topic) can remove each one; the
    period's centre, leaderboard and scorecard go in any case.
    """

    period_key: str
    operators: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()

    def __len__(self) -> int:
        return 1 + len(self.operators) + len(self.queues)


@dataclass(slots=True)
class Batch:
    """Records changed since the previous batch (or all of them when `full`)."""

    operators: list[Record] = field(default_factory=list)
    queues: list[Record] = field(default_factory=list)
    scorecards: list[Record] = field(default_factory=list)
    live: list[Record] = field(default_factory=list)  # kpi:live:queue:{queue} records
    alerts: list[Record] = field(default_factory=list)  # alert transitions, in order
    active_alerts: list[Record] | None = None  # with `full`: every firing alert (the rest are not)
    # With `active_alerts`: the (scope, queue) whose alerts this worker answers for (its partitions');
    # None = all of them (one worker). Another worker's firing alerts are none of its business.
    alert_scopes: frozenset[tuple[str, str]] | None = None
    retractions: list[Retraction] = field(default_factory=list)  # periods that left retention
    full: bool = False
    complete: bool = False  # holds every record this worker owns (a full batch, or the first one)
    current_day: str = ""
    current_month: str = ""
    retention_watermark: int = 0  # the vouched event time retention was measured from (0: unknown)

    def __len__(self) -> int:
        return (
            len(self.operators)
            + len(self.queues)
            + len(self.scorecards)
            + len(self.live)
            + len(self.alerts)
            + len(self.retractions)
            + (len(self.active_alerts) if self.active_alerts is not None else 0)
        )


@runtime_checkable
class Sink(Protocol):
    """An output: `write` raises on failure (the publisher retries), `close` releases connections."""

    name: str

    async def write(self, batch: Batch) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class LossCheckedSink(Sink, Protocol):
    """A sink that can tell that its store lost what was written (Redis restarted empty, a failover).

    `lost_data` raises like `write` when the store cannot be reached; the publisher then writes the
    complete state, as after a failed write.
    """

    async def lost_data(self) -> bool: ...


class MemorySink:
    """Keeps every batch in memory: for tests and dry runs."""

    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self.batches: list[Batch] = []
        self.closed = False

    async def write(self, batch: Batch) -> None:
        self.batches.append(batch)

    async def close(self) -> None:
        self.closed = True

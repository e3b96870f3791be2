"""Full passes of Python's cyclic garbage collector on a clock, not on the count of allocations.

CPython 3.11 runs a full pass (its oldest generation) after every 10 passes of the middle one,
once the objects promoted since the last full pass reach a quarter of those it kept. Each full pass
walks every tracked object. A worker that holds a large centre (5,000 operators x 40 days: about
2.5 million objects of state) paid for that all the time, for nothing: its state is freed by
reference counting, not by the collector. Measured (docs/benchmarks.md, "Flat cost"): 86 full
passes, 39 s of the 200 s the history took to load, and 1.8 s of the 12.7 s that the small centre's
50,000 events took afterwards, where a fresh worker spent 1.1 s in them.

Rule: the worker turns the automatic full pass off (the oldest generation's threshold is out of
reach) and runs one every `gc_full_interval_s` instead. The young passes, which find nearly all
cyclic garbage (futures, tracebacks, frames), run as before. Cyclic garbage that outlives them
waits at most one interval for the full pass.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

log = logging.getLogger(__name__)

#: The oldest generation's threshold that the count of middle passes never reaches (a C int).
NEVER = 2**31 - 1


class Collector(Protocol):
    """The part of the `gc` module used here (a fake in tests)."""

    def get_threshold(self) -> tuple[int, int, int]: ...

    def set_threshold(self, threshold0: int, threshold1: int = ..., threshold2: int = ..., /) -> None: ...

    def collect(self, generation: int = 2) -> int: ...


class FullCollections:
    """Turns off the automatic full pass (`install`) and runs one every `interval_s` (`run`).

    `interval_s` 0 leaves Python's own schedule alone.
    """

    def __init__(
        self,
        interval_s: float,
        collector: Collector = gc,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.interval_s = interval_s
        self.collector = collector
        self.clock = clock
        self.last_seconds: float | None = None

    def install(self) -> None:
        """Keep the young generations' thresholds, put the oldest one's out of reach."""
        if self.interval_s <= 0:
            return
        young, middle, _ = self.collector.get_threshold()
        self.collector.set_threshold(young, middle, NEVER)

    def collect(self) -> int:
        """One full pass now; the number of unreachable objects it found."""
        started = self.clock()
        found = self.collector.collect(2)
        self.last_seconds = self.clock() - started
        log.debug("full garbage collection: %d unreachable objects, %.3fs", found, self.last_seconds)
        return found

    async def run(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """A full pass every `interval_s` until cancelled (a task of the worker's loop)."""
        while self.interval_s > 0:
            await sleep(self.interval_s)
            self.collect()

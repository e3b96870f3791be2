"""How long the worker's event loop was blocked, beside the session timeout it must stay far below.

Faust runs the Kafka consumer, and so the group heartbeats, on a thread and loop of its own: a
stall of this loop does not stop the heartbeats by itself (Python switches threads every few ms).
But every delivery, commit and rebalance callback waits on this loop, and a stall as long as the
session timeout means the process is starved (an overloaded machine, a pause), which would stop
the heartbeats too. A task sleeps `interval_s` and measures how late it wakes up: the lateness
is a stall. `kpistream_event_loop_stall_max_seconds` is the longest since start,
`kpistream_event_loop_stall_seconds` their histogram; a stall over a third of the session timeout
is logged as a warning (docs/benchmarks.md, "Failover").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Histogram

log = logging.getLogger(__name__)

BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 6.0, 10.0)


class LoopStall:
    """The stall probe: `run()` as a task of the loop it measures."""

    def __init__(
        self,
        registry: CollectorRegistry,
        session_timeout_s: float,
        interval_s: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.interval_s = interval_s
        self.warn_s = session_timeout_s / 3
        self.clock = clock
        self.sleep = sleep
        self.longest = 0.0
        self.max_gauge = Gauge(
            "kpistream_event_loop_stall_max_seconds",
            "longest event-loop stall since start (keep it far below the session timeout)",
            registry=registry,
        )
        self.histogram = Histogram(
            "kpistream_event_loop_stall_seconds",
            "event-loop stalls: how late a 50 ms timer woke up",
            buckets=BUCKETS,
            registry=registry,
        )

    def observe(self, stall_s: float) -> None:
        """Record one measured lateness."""
        stall_s = max(stall_s, 0.0)
        self.histogram.observe(stall_s)
        if stall_s > self.longest:
            self.longest = stall_s
            self.max_gauge.set(stall_s)
        if stall_s > self.warn_s:
            log.warning(
                "event loop stalled %.2f s (over a third of the session timeout: heartbeats wait as long)",
                stall_s,
            )

    async def run(self) -> None:
        while True:
            before = self.clock()
            await self.sleep(self.interval_s)
            self.observe(self.clock() - before - self.interval_s)


def install_loop_stall(app: Any, registry: CollectorRegistry, session_timeout_s: float) -> LoopStall:
    """Run the probe as a task of the worker's app (its loop is the heartbeats' loop)."""
    probe = LoopStall(registry, session_timeout_s)

    async def kpistream_loop_stall() -> None:
        await probe.run()

    app.task(kpistream_loop_stall)
    return probe

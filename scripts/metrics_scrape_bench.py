"""How long a /metrics scrape takes at N operators, and how long it holds up the event loop.

    .venv/bin/python scripts/metrics_scrape_bench.py [--operators 5000] [--queues 20] [--scrapes 20]

Fills the worker's registry the way the Prometheus sink does (every operator with a score in the
rolling hour, today and this month; every queue's KPIs and volume in the three periods; the
scorecard; the process/python collectors), then renders the page `--scrapes` times two ways: on the
event loop (as /metrics did before) and with `Exposition` (in a thread). Meanwhile a coroutine ticks
every millisecond; its longest wait between ticks is how long the loop was held (the baseline:
the same ticker with no scrape at all, i.e. what the machine itself costs). Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import generate_latest

from stream.metrics import KPI_GAUGES, Exposition, Metrics


def populated(operators: int, queues: int) -> Metrics:
    m = Metrics.create()
    for n in range(operators):
        for kind in ("rolling", "day", "month"):
            m.operator_score.labels(f"op-{n:05d}", "strategy-1", kind).set(n / 1000)
    for q in [*(f"queue-{n:02d}" for n in range(queues)), "_center"]:
        scope = "center" if q == "_center" else "queue"
        for kind in ("rolling", "day", "month"):
            for gauge in m.kpi.values():
                gauge.labels(scope, q, kind).set(0.8)
            m.offered_calls.labels(scope, q, kind).set(100)
    for dim, fig in (("customer", "fcr"), ("finance", "cost_per_order"), ("learning", "headcount")):
        for kind in ("day", "month"):
            m.scorecard.labels(dim, fig, kind).set(1)
    return m


async def measure(render: Callable[[], Awaitable[bytes]], scrapes: int) -> dict[str, Any]:
    """Render `scrapes` times, one after the other, while a coroutine ticks every millisecond."""
    gaps: list[float] = []
    durations: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    size = 0
    for _ in range(scrapes):
        start = time.perf_counter()
        size = len(await render())
        durations.append(time.perf_counter() - start)
        await asyncio.sleep(0.01)
    done.set()
    await tick
    gaps.sort()
    return {
        "scrape_s_median": round(statistics.median(durations), 4),
        "scrape_s_max": round(max(durations), 4),
        "loop_held_s_max": round(gaps[-1], 4),
        "loop_held_s_p99": round(gaps[int(len(gaps) * 0.99)], 4),
        "bytes": size,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    m = populated(args.operators, args.queues)
    series = sum(len(f.samples) for f in m.registry.collect())

    async def on_loop() -> bytes:
        return generate_latest(m.registry)

    async def idle() -> bytes:
        await asyncio.sleep(0.5)
        return b""

    exposition = Exposition(m.registry)
    return {
        "no_scrape_baseline": await measure(idle, max(2, args.scrapes // 4)),
        "operators": args.operators,
        "queues": args.queues,
        "series": series,
        "kpi_gauges": len(KPI_GAUGES),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "on_the_loop": await measure(on_loop, args.scrapes),
        "in_a_thread": await measure(exposition.render, args.scrapes),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--operators", type=int, default=5000)
    p.add_argument("--queues", type=int, default=20)
    p.add_argument("--scrapes", type=int, default=20)
    print(json.dumps(asyncio.run(main_async(p.parse_args())), indent=2))


if __name__ == "__main__":
    main()

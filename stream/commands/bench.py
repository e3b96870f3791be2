"""`kpistream bench`: throughput, latency, report speed and memory, each against a same-run baseline."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from stream.bench.config import STEPS
from stream.commands.dev_only import require_dev_packages
from stream.errors import KpiStreamError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmark the worker and report against baselines measured in the same run",
        description="Start Apache Kafka (or use KPISTREAM_BROKER) and Redis, then measure: worker "
        "throughput (vs a raw aiokafka consumer and Quix Streams), produce-to-Redis latency at a "
        "steady rate, `report` speed (vs json.loads) and worker memory (vs an idle worker). "
        "See docs/benchmarks.md.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    p.add_argument("--events", type=int, help="events of the throughput run (default 100000)")
    p.add_argument("--quick", action="store_true", help="a small version of every step (a smoke test)")
    p.add_argument(
        "--only", metavar="STEP[,STEP]", help=f"run only these steps: {','.join(STEPS)} (default all)"
    )
    p.add_argument("--latency-rate", type=float, help="events/s of the latency run (default 2000)")
    p.add_argument("--latency-seconds", type=float, help="measured seconds of the latency run (default 30)")
    p.add_argument(
        "--memory-events-per-op-day",
        type=int,
        choices=(1, 2, 3),
        help="memory run: 1 = a disposition (default), 2 = an answered call, 3 = both, per operator and day",
    )
    p.add_argument(
        "--profile",
        metavar="DIR",
        help="also run the worker once more under py-spy (untimed); stacks and hot spots go to DIR",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="also write the JSON document here")
    p.add_argument(
        "--plot",
        metavar="PNG",
        help="also draw the memory step's events/s and RSS against operator-days held (matplotlib)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        require_dev_packages("bench", "stream.bench", "stream.devenv", "stream.devtools")
    except KpiStreamError as exc:
        print(f"kpistream bench: {exc}", file=sys.stderr)
        return 2
    from stream.bench.config import BenchConfig
    from stream.bench.runner import run as run_bench
    from stream.bench.stats import render_table

    for noisy in ("aiokafka", "kafka", "quixstreams"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    cfg = BenchConfig.quick_config() if args.quick else BenchConfig()
    if args.events:
        cfg.events = args.events
    if args.only:
        wanted = tuple(s.strip() for s in args.only.split(",") if s.strip())
        unknown = [s for s in wanted if s not in STEPS]
        if unknown:
            print(f"kpistream bench: unknown step(s) {', '.join(unknown)}", file=sys.stderr)
            return 2
        cfg.only = wanted
    if args.latency_rate:
        cfg.latency_rate = args.latency_rate
    if args.latency_seconds:
        cfg.latency_s = args.latency_seconds
    if args.memory_events_per_op_day:
        cfg.mem_per_op_day = args.memory_events_per_op_day
    if args.profile:
        cfg.profile_dir = Path(args.profile).resolve()
    result = run_bench(cfg)
    text = json.dumps(result, indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n")
    print(text if args.json else render_table(result))
    if args.plot:
        try:
            from stream.bench.plot import plot_growth

            print(f"kpistream bench: plot in {plot_growth(result, Path(args.plot))}", file=sys.stderr)
        except (KeyError, ValueError, ImportError, OSError) as exc:  # the figures are printed anyway
            print(f"kpistream bench: no plot ({exc!r}): did the memory step run?", file=sys.stderr)
    failed = [k for k, v in result["figures"].items() if isinstance(v, dict) and "error" in v]
    return 1 if failed else 0

"""Report speed: `kpistream report` over a JSON-lines file, in process and as the CLI, against json.loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stream.bench.config import BenchConfig
from stream.bench.progress import say
from stream.bench.workload import simulated_events, write_jsonl


def bench_report(cfg: BenchConfig, workdir: Path) -> dict[str, Any]:
    import argparse

    from stream.commands.report import run_report

    path = workdir / "report-events.jsonl"
    n = write_jsonl(simulated_events(cfg.report_events, seed=31), path)
    say(f"report: {n} events in {path.name}, best of {cfg.report_repeat}")

    def best(fn: Callable[[], Any]) -> float:
        times = []
        for _ in range(cfg.report_repeat):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times)

    def loads_all() -> None:
        loads = json.loads
        with path.open(encoding="utf-8") as f:
            for line in f:
                loads(line)

    args = argparse.Namespace(
        events=str(path), tz=None, strategies=None, max_bytes=None, config=None,
        strategy=None, weights=None, fund=None,
    )  # fmt: skip
    t_loads = best(loads_all)
    t_engine = best(lambda: run_report(args))
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "stream.cli", "report", "--events", str(path), "-o", os.devnull],
        cwd=workdir, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "KPISTREAM_STRATEGIES": ""},
    )  # fmt: skip
    t_cli = time.perf_counter() - t0
    out: dict[str, Any] = {
        "events": n,
        "json_loads": {"seconds": round(t_loads, 3), "events_per_s": round(n / t_loads, 1)},
        "engine": {"seconds": round(t_engine, 3), "events_per_s": round(n / t_engine, 1)},
        "cli": {
            "seconds": round(t_cli, 3),
            "events_per_s": round(n / t_cli, 1),
            "note": "one run of the CLI as a subprocess, interpreter start and output included",
        },
    }
    say(f"  report {out['engine']['events_per_s']} ev/s, json.loads {out['json_loads']['events_per_s']} ev/s")
    return out

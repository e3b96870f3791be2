"""Runs the benchmarks: services, then each selected step (config.STEPS, docs/benchmarks.md).

Every run gets its own topic prefix, consumer group / app id and a flushed Redis, so the runs of one
bench never see each other's data. See docs/benchmarks.md for what each figure means.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stream.bench import stats
from stream.bench.config import BenchConfig
from stream.bench.latency import bench_latency
from stream.bench.machine import machine_info, versions
from stream.bench.memory import bench_memory, bench_memory_rocksdb
from stream.bench.progress import BenchError, say
from stream.bench.report_speed import bench_report
from stream.bench.scale_out import bench_scale_out
from stream.bench.services import services
from stream.bench.state_growth import bench_state_growth
from stream.bench.throughput import bench_throughput
from stream.devtools.worker_process import WorkerFailed
from stream.errors import KpiStreamError


def run(cfg: BenchConfig) -> dict[str, Any]:
    machine = machine_info()
    run_id = time.strftime("%H%M%S")
    keep = os.environ.get("KPISTREAM_BENCH_KEEP")
    workdir = Path(tempfile.mkdtemp(prefix="kpistream-bench-"))
    figures: dict[str, Any] = {}
    kafka_version = redis_version = None
    try:
        need_services = any(
            x in cfg.only
            for x in ("throughput", "latency", "memory", "memory_rocksdb", "state_growth", "scale_out")
        )
        with contextlib.ExitStack() as stack:
            svc = stack.enter_context(services(workdir)) if need_services else None
            if svc is not None:
                kafka_version, redis_version = svc.kafka_version, svc.redis_version

            def with_services(fn: Callable[..., dict[str, Any]]) -> Callable[[], dict[str, Any]]:
                def step() -> dict[str, Any]:
                    assert svc is not None
                    return fn(cfg, svc, workdir, run_id)

                return step

            steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
                ("throughput", with_services(bench_throughput)),
                ("latency", with_services(bench_latency)),
                ("report", lambda: bench_report(cfg, workdir)),
                ("memory", with_services(bench_memory)),
                ("memory_rocksdb", with_services(bench_memory_rocksdb)),
                ("state_growth", with_services(bench_state_growth)),
                ("scale_out", with_services(bench_scale_out)),
            ]
            for name, step in steps:
                if name not in cfg.only:
                    continue
                t = time.monotonic()
                try:
                    figures[name] = step()
                except WorkerFailed as exc:
                    say(f"{name} failed: {exc}")
                    figures[name] = {"error": f"{exc}:\n{exc.log_tail}"[-2000:]}
                except (BenchError, KpiStreamError, OSError, subprocess.SubprocessError) as exc:
                    say(f"{name} failed: {exc}")
                    figures[name] = {"error": str(exc)[-2000:]}
                figures.setdefault(name, {})["wall_seconds"] = round(time.monotonic() - t, 1)
    finally:
        if keep:
            say(f"work files kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    machine["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return stats.build_result(machine, versions(kafka_version, redis_version), cfg.params(), figures)

"""The machine and the versions a bench result was measured with (recorded next to the figures)."""

from __future__ import annotations

import contextlib
import os
import platform
import time
from pathlib import Path
from typing import Any


def machine_info() -> dict[str, Any]:
    import psutil

    cpu_model = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    busy = psutil.cpu_percent(interval=1.0)
    own = {os.getpid()}
    others = []
    for p in psutil.process_iter(["pid", "name", "cpu_percent"]):
        with contextlib.suppress(psutil.Error):
            if p.info["pid"] not in own and (p.info["cpu_percent"] or 0) > 0:
                others.append(p.info["name"])
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpu_model": cpu_model,
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "cpu_busy_percent_before": busy,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def versions(kafka_version: str | None, redis_version: str | None) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, Any] = {"python": platform.python_version()}
    for dist in ("kpistream", "faust-streaming", "aiokafka", "quixstreams", "confluent-kafka", "redis"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    with contextlib.suppress(Exception):
        import confluent_kafka

        out["librdkafka"] = confluent_kafka.libversion()[0]
    out["kafka_broker"] = kafka_version
    out["redis_server"] = redis_version
    return out

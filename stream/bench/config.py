"""What a bench run measures and how big: the parameters of every step, recorded in the result."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

STEPS: tuple[str, ...] = (
    "throughput", "latency", "report", "memory", "memory_rocksdb", "state_growth", "scale_out"
)  # fmt: skip
SETTLE_S = 20.0  # Redis unchanged this long after stage 1 consumed all: the run is over


@dataclass
class BenchConfig:
    """Sizes, rates and timeouts of one run; `kpistream bench` overrides fields from its options."""

    events: int = 100_000
    quick: bool = False
    latency_rate: float = 2_000.0
    latency_s: float = 30.0
    latency_warmup_s: float = 3.0
    probe_every: int = 20  # one probe (2 messages) per this many messages of load
    report_events: int = 100_000
    report_repeat: int = 3
    mem_operators: int = 5_000
    mem_days: int = 40
    mem_per_op_day: int = 1
    mem_flush_interval_s: float = 10.0  # the publisher rewrites every operator of a changed period
    mem_timeout_s: float = 240.0
    # rocksdb:// is a memory figure, not a speed one: read only once every event is in
    mem_rocksdb_timeout_s: float = 480.0
    growth_events: int = 50_000  # the small centre's events, on a fresh and on a loaded worker
    growth_history_timeout_s: float = 1500.0
    partitions: int = 4
    profile_dir: Path | None = None
    only: tuple[str, ...] = STEPS
    timeout_s: float = 600.0

    @classmethod
    def quick_config(cls) -> BenchConfig:
        return cls(
            events=5_000,
            quick=True,
            latency_rate=500.0,
            latency_s=5.0,
            latency_warmup_s=1.0,
            report_events=5_000,
            report_repeat=1,
            mem_operators=200,
            mem_days=5,
            mem_timeout_s=60.0,
            mem_rocksdb_timeout_s=120.0,
            growth_events=5_000,
            growth_history_timeout_s=120.0,
            timeout_s=60.0,
        )

    def params(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "quick": self.quick,
            "latency_rate_per_s": self.latency_rate,
            "latency_duration_s": self.latency_s,
            "latency_warmup_s": self.latency_warmup_s,
            "probe_every_messages": self.probe_every,
            "report_events": self.report_events,
            "report_repeat": self.report_repeat,
            "memory_operators": self.mem_operators,
            "memory_days": self.mem_days,
            "memory_events_per_operator_day": self.mem_per_op_day,
            "memory_flush_interval_s": self.mem_flush_interval_s,
            "memory_timeout_s": self.mem_timeout_s,
            "memory_rocksdb_timeout_s": self.mem_rocksdb_timeout_s,
            "state_growth_events": self.growth_events,
            "partitions": self.partitions,
            "flush_interval_s": 1.0,
            "only": list(self.only),
        }

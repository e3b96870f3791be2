"""The pure parts of the benchmark: percentiles, rates, ratios, targets, the result document and its table."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

# Targets of the product (docs/benchmarks.md).
TARGET_WORKER_EVENTS_PER_S = 20_000.0
TARGET_LATENCY_P99_S = 2.0
TARGET_REPORT_EVENTS_PER_S = 100_000.0
TARGET_RSS_MB = 300.0

SCHEMA = "kpistream-bench/1"


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation between closest ranks; None when empty."""
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile {q} outside 0..100")
    if not values:
        return None
    s = sorted(values)
    if len(s) == 1:
        return float(s[0])
    pos = (len(s) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return float(s[lo] + (s[hi] - s[lo]) * (pos - lo))


def rate(count: int, seconds: float | None) -> float | None:
    """Events per second, None when the duration is unknown or not positive."""
    if seconds is None or seconds <= 0:
        return None
    return count / seconds


def ratio(value: float | None, baseline: float | None) -> float | None:
    """value / baseline, rounded to 4 places; None when either is missing or the baseline is 0."""
    if value is None or baseline is None or baseline == 0:
        return None
    return round(value / baseline, 4)


def latency_summary(latencies_s: Sequence[float], sent: int) -> dict[str, Any]:
    """p50/p90/p99/max of the probes that became visible, and how many never did."""
    return {
        "probes_sent": sent,
        "probes_seen": len(latencies_s),
        "probes_missing": sent - len(latencies_s),
        "p50_s": _round(percentile(latencies_s, 50)),
        "p90_s": _round(percentile(latencies_s, 90)),
        "p99_s": _round(percentile(latencies_s, 99)),
        "max_s": _round(max(latencies_s) if latencies_s else None),
    }


def _round(v: float | None, places: int = 4) -> float | None:
    return None if v is None else round(v, places)


def _get(d: Mapping[str, Any], path: str) -> Any:
    cur: Any = d
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def targets(figures: Mapping[str, Any]) -> dict[str, bool | None]:
    """Each target met (True/False), or None when its figure was not measured."""

    def at_least(v: Any, limit: float) -> bool | None:
        return None if v is None else bool(v >= limit)

    def below(v: Any, limit: float) -> bool | None:
        return None if v is None else bool(v < limit)

    worker = _get(figures, "throughput.worker.events_per_s")
    worker_calls = _get(figures, "throughput.worker_calls_only.events_per_s")
    # a run whose Redis totals never matched the Engine's is wrong, whatever its speed
    if _get(figures, "throughput.worker.complete") is False:
        worker = 0.0
    if _get(figures, "throughput.worker_calls_only.complete") is False:
        worker_calls = 0.0
    quix = _get(figures, "throughput.quix.events_per_s")
    ahead = None if worker_calls is None or quix is None else bool(worker_calls > quix)
    p99 = _get(figures, "latency.p99_s")
    missing = _get(figures, "latency.probes_missing")
    latency_ok = below(p99, TARGET_LATENCY_P99_S)
    if latency_ok and missing:
        latency_ok = False  # a probe that never showed up is worse than any p99
    return {
        "worker_events_per_s_at_least_20000": at_least(worker, TARGET_WORKER_EVENTS_PER_S),
        "worker_ahead_of_quix": ahead,
        "latency_p99_below_2s": latency_ok,
        "report_events_per_s_at_least_100000": at_least(
            _get(figures, "report.engine.events_per_s"), TARGET_REPORT_EVENTS_PER_S
        ),
        "state_growth_at_least_0_8": at_least(
            ratio(
                _get(figures, "state_growth.loaded.events_per_s"),
                _get(figures, "state_growth.fresh.events_per_s"),
            ),
            0.8,
        ),
        "worker_rss_below_300mb": False
        if _get(figures, "memory.complete") is False
        else below(_get(figures, "memory.loaded_rss_mb"), TARGET_RSS_MB),
        # with rocksdb:// the tables are on disk: less than half the memory store's target
        "worker_rss_rocksdb_below_150mb": False
        if _get(figures, "memory_rocksdb.complete") is False
        else below(_get(figures, "memory_rocksdb.loaded_rss_mb"), TARGET_RSS_MB / 2),
    }


def ratios(figures: Mapping[str, Any]) -> dict[str, float | None]:
    """Every figure against its same-run baseline."""
    return {
        "worker_vs_raw_consumer": ratio(
            _get(figures, "throughput.worker.events_per_s"),
            _get(figures, "throughput.raw_consumer.events_per_s"),
        ),
        "worker_calls_only_vs_quix": ratio(
            _get(figures, "throughput.worker_calls_only.events_per_s"),
            _get(figures, "throughput.quix.events_per_s"),
        ),
        "worker_all_streams_vs_quix_calls_only": ratio(
            _get(figures, "throughput.worker.events_per_s"), _get(figures, "throughput.quix.events_per_s")
        ),
        "quix_vs_raw_consumer": ratio(
            _get(figures, "throughput.quix.events_per_s"),
            _get(figures, "throughput.raw_consumer.events_per_s"),
        ),
        "report_vs_json_loads": ratio(
            _get(figures, "report.engine.events_per_s"), _get(figures, "report.json_loads.events_per_s")
        ),
        "report_cli_vs_json_loads": ratio(
            _get(figures, "report.cli.events_per_s"), _get(figures, "report.json_loads.events_per_s")
        ),
        "state_growth_loaded_vs_fresh": ratio(
            _get(figures, "state_growth.loaded.events_per_s"),
            _get(figures, "state_growth.fresh.events_per_s"),
        ),
        # target 6 is measured, not a threshold: None when a run's Redis totals were not exact
        "scale_out_2_vs_1": None
        if _get(figures, "scale_out.complete") is not True
        else ratio(
            _get(figures, "scale_out.two_workers.events_per_s"),
            _get(figures, "scale_out.one_worker.events_per_s"),
        ),
        "loaded_rss_vs_idle_rss": ratio(
            _get(figures, "memory.loaded_rss_mb"), _get(figures, "memory.idle_rss_mb")
        ),
        "rocksdb_loaded_rss_vs_memory_store": ratio(
            _get(figures, "memory_rocksdb.loaded_rss_mb"), _get(figures, "memory.loaded_rss_mb")
        ),
    }


def build_result(
    machine: Mapping[str, Any],
    versions: Mapping[str, Any],
    params: Mapping[str, Any],
    figures: Mapping[str, Any],
) -> dict[str, Any]:
    """The one JSON document `kpistream bench --json` prints."""
    return {
        "schema": SCHEMA,
        "machine": dict(machine),
        "versions": dict(versions),
        "params": dict(params),
        "figures": dict(figures),
        "ratios": ratios(figures),
        "targets": targets(figures),
    }


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        text = f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}" if abs(v) >= 1 else f"{v:.3f}"
        return f"{text}{unit}"
    return f"{v}{unit}"


def render_table(result: Mapping[str, Any]) -> str:
    """A readable summary of the result document."""
    f = result.get("figures", {})
    r = result.get("ratios", {})
    rows: list[tuple[str, str, str]] = []

    def add(label: str, path: str, unit: str = "", note: str = "") -> None:
        run = path.rsplit(".", 1)[0]
        if _get(f, f"{run}.complete") is False:
            note = (
                "INCOMPLETE: Redis totals differ from the Engine's"
                if run.startswith(("throughput", "scale_out"))
                else ("INCOMPLETE: time cap hit")
            )
        if _get(f, f"{run}.skipped"):
            note = str(_get(f, f"{run}.skipped"))
        rows.append((label, _fmt(_get(f, path), unit), note))

    add("worker, all streams", "throughput.worker.events_per_s", " ev/s")
    add("worker, telephony only", "throughput.worker_calls_only.events_per_s", " ev/s")
    add("raw aiokafka consumer + json.loads", "throughput.raw_consumer.events_per_s", " ev/s", "baseline")
    add("Quix Streams, telephony only", "throughput.quix.events_per_s", " ev/s", "baseline")
    add("latency p50 @ steady rate", "latency.p50_s", " s")
    add("latency p99 @ steady rate", "latency.p99_s", " s")
    add("latency probes missing", "latency.probes_missing")
    add("report (Engine, in process)", "report.engine.events_per_s", " ev/s")
    add("report (CLI subprocess)", "report.cli.events_per_s", " ev/s")
    add("json.loads over the same file", "report.json_loads.events_per_s", " ev/s", "baseline")
    add("worker RSS, idle", "memory.idle_rss_mb", " MB", "baseline")
    add("worker RSS, 5,000 ops x 40 days", "memory.loaded_rss_mb", " MB")
    add("worker RSS, the same with rocksdb://", "memory_rocksdb.loaded_rss_mb", " MB")
    add("small centre on a fresh worker", "state_growth.fresh.events_per_s", " ev/s", "baseline")
    add("small centre, 5,000 ops x 40 days held", "state_growth.loaded.events_per_s", " ev/s")
    cpus = _get(f, "scale_out.cpus")
    on = f"measured on {cpus} CPUs" if cpus else "measured"
    add("scale-out, 1 worker", "scale_out.one_worker.events_per_s", " ev/s", f"baseline, {on}")
    add("scale-out, 2 workers, one group", "scale_out.two_workers.events_per_s", " ev/s", on)
    width = max(len(a) for a, _, _ in rows)
    lines = [f"{'figure':<{width}}  {'value':>16}  note", "-" * (width + 26)]
    lines += [f"{a:<{width}}  {b:>16}  {c}" for a, b, c in rows]
    lines.append("")
    lines.append("ratios:")
    lines += [f"  {k:<40} {_fmt(v)}" for k, v in r.items()]
    lines.append("targets:")
    lines += [f"  {k:<40} {_fmt(v)}" for k, v in result.get("targets", {}).items()]
    m = result.get("machine", {})
    lines.append("")
    lines.append(
        f"machine: {m.get('cpu_model', '?')} x{m.get('cpus', '?')}, load {m.get('loadavg_start', '?')}"
    )
    lines.append("versions: " + ", ".join(f"{k} {v}" for k, v in result.get("versions", {}).items()))
    return "\n".join(lines)

"""The growth plot: a worker's events/s and RSS against the operator-days it holds (issue #15).

The memory step's workload opens a new operator-day (and a new FCR case) with every event, and it
samples the worker's consumed-event count and RSS every few seconds (stream/bench/memory.py). A flat
cost per event is a flat speed line; what the state costs is the RSS line's slope.

    .venv/bin/python -m stream.bench.plot bench.json -o docs/bench-growth.png
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stream.bench.stats import TARGET_RSS_MB

TREND_SPAN = 0.1  # the speed line's spans: a tenth of the workload's operator-days each


@dataclass(frozen=True, slots=True)
class GrowthPoint:
    """One sampling interval: the operator-days held at its end, the speed over it, the RSS at its end."""

    operator_days: float
    events_per_s: float
    rss_mb: float


def growth_points(memory: Mapping[str, Any], span_operator_days: float = 0.0) -> list[GrowthPoint]:
    """The speed while the state grew through successive spans, and the state and RSS at each end.

    A span runs from one point to the first sample at least `span_operator_days` further (0: every
    sampling interval); consumption comes in bursts (batches, flushes, the producer's backlog), so
    spans of state show the trend. Operator-days held are the events consumed scaled to the
    workload's operators x days (its events are one, two or three per operator-day, in time order).
    Intervals in which nothing was consumed (after the last event: publishing, settling) are no
    speed figure and are left out.
    """
    samples: Sequence[Sequence[float]] = memory.get("samples") or ()
    per_event = _operator_days_per_event(memory)
    if not per_event or not samples:
        return []
    out: list[GrowthPoint] = []
    t0, c0, _ = samples[0]
    for t1, c1, rss in samples[1:]:
        if t1 <= t0 or c1 <= c0 or (c1 - c0) * per_event < span_operator_days:
            continue
        out.append(GrowthPoint(round(c1 * per_event, 1), round((c1 - c0) / (t1 - t0), 1), float(rss)))
        t0, c0 = t1, c1
    return out


def rss_points(memory: Mapping[str, Any]) -> list[tuple[float, float]]:
    """(operator-days held, RSS MB) of every sample, also those after the last event was consumed
    (the final flushes: they stack at the right edge, and the peak is often among them)."""
    per_event = _operator_days_per_event(memory)
    return [(round(c * per_event, 1), float(rss)) for _, c, rss in memory.get("samples") or ()]


def _operator_days(memory: Mapping[str, Any]) -> float:
    return float(memory["operators"]) * float(memory["days"])


def _operator_days_per_event(memory: Mapping[str, Any]) -> float:
    """The workload's operator-days over its events (0 when it had none): consumed events -> state."""
    events = float(memory.get("events") or 0)
    return _operator_days(memory) / events if events else 0.0


def plot_growth(result: Mapping[str, Any], path: Path) -> Path:
    """Draw the memory step of a bench result document to a PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")  # no display: a file only
    import matplotlib.pyplot as plt

    memory = result["figures"]["memory"]
    points = growth_points(memory)
    if not points:
        raise ValueError("the bench result has no memory samples (run the memory step of this version)")
    trend = growth_points(memory, TREND_SPAN * _operator_days(memory))
    fig, (speed, rss) = plt.subplots(2, 1, sharex=True, figsize=(8, 6), constrained_layout=True)
    speed.plot(
        [p.operator_days for p in points], [p.events_per_s for p in points], ".", color="tab:blue",
        alpha=0.4, label="each sampling interval (~5 s)",
    )  # fmt: skip
    speed.plot(
        [p.operator_days for p in trend], [p.events_per_s for p in trend], "-o", color="tab:blue",
        label=f"over spans of {TREND_SPAN:.0%} of the operator-days",
    )  # fmt: skip
    speed.set_ylabel("events/s consumed")
    speed.set_ylim(bottom=0)
    speed.grid(alpha=0.3)
    speed.legend(loc="upper right")
    held = rss_points(memory)
    rss.plot(
        [x for x, _ in held], [y for _, y in held], marker=".", color="tab:red",
        label="worker RSS (after the last event: at the right edge)",
    )  # fmt: skip
    rss.axhline(float(memory["idle_rss_mb"]), color="grey", linestyle=":", label="idle worker")
    rss.axhline(TARGET_RSS_MB, color="black", linestyle="--", label=f"target {TARGET_RSS_MB:.0f} MB")
    rss.set_ylabel("RSS (MB)")
    rss.set_ylim(bottom=0)
    rss.set_xlabel("operator-days held (each event of this workload opens one, and an FCR case)")
    rss.grid(alpha=0.3)
    rss.legend(loc="upper left")
    machine = result.get("machine") or {}
    version = (result.get("versions") or {}).get("kpistream", "?")
    fig.suptitle(
        f"kpistream {version}: {memory['operators']:,} operators x {memory['days']} days, memory store\n"
        f"{machine.get('cpu_model', '?')}, {machine.get('cpus', '?')} CPUs, "
        f"{str(machine.get('started_at', ''))[:10]}",
        fontsize=10,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m stream.bench.plot", description=__doc__.splitlines()[0])
    p.add_argument("result", help="a `kpistream bench -o FILE` document with the memory step")
    p.add_argument("-o", "--output", required=True, metavar="PNG")
    args = p.parse_args(argv)
    try:
        plot_growth(json.loads(Path(args.result).read_text()), Path(args.output))
    except (OSError, ValueError, KeyError) as exc:
        print(f"plot: {exc}", file=sys.stderr)
        return 2
    print(args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

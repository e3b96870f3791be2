"""py-spy on a running worker, and a summary of its samples (self and inclusive time per function).

`kpistream bench --profile DIR` runs one more, untimed, worker pass under `py-spy record` (PyPI
`py-spy`); DIR gets the raw collapsed stacks (`worker.collapsed.txt`, loadable by speedscope or
flamegraph.pl) and `hotspots.json`.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

OURS = ("stream/", "agents/", "schemas/")
# Leaf frames where a thread waits rather than works (py-spy --idle keeps them).
IDLE_LEAVES = (
    "select (selectors.py",
    "EpollSelector.select",
    "Condition.wait",
    "wait (threading.py",
    "_worker (",
)
AREAS = (
    ("stream/", "kpistream"), ("agents/", "kpistream"), ("schemas/", "kpistream"),
    ("faust/", "faust"), ("mode/", "mode"), ("aiokafka/", "aiokafka"), ("kafka/", "aiokafka"),
    ("json/", "json"), ("asyncio/", "asyncio"), ("prometheus_client/", "prometheus_client"),
    ("redis/", "redis"), ("logging/", "logging"), ("aiohttp/", "aiohttp"), ("selectors.py", "asyncio"),
)  # fmt: skip


def attach_py_spy(pid: int, outdir: Path, rate: int = 200) -> Callable[[], dict[str, Any]]:
    """Start sampling `pid`; the returned function stops py-spy and returns the summary."""
    beside = Path(sys.executable).with_name("py-spy")  # the venv's, when the venv is not on PATH
    exe = str(beside) if beside.is_file() else shutil.which("py-spy")
    if exe is None:
        raise RuntimeError("py-spy is not installed: pip install py-spy")
    outdir.mkdir(parents=True, exist_ok=True)
    raw = outdir / "worker.collapsed.txt"
    proc = subprocess.Popen(
        [exe, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw", "--idle",
         "--nonblocking", "--output", str(raw)],
        stdout=subprocess.DEVNULL, stderr=(outdir / "py-spy.log").open("ab"),
    )  # fmt: skip

    def stop() -> dict[str, Any]:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(30)
        if proc.poll() is None:
            proc.kill()
        time.sleep(0.2)
        if not raw.is_file():
            return {"error": f"py-spy wrote nothing (see {outdir / 'py-spy.log'})"}
        summary = summarise(raw.read_text(errors="replace").splitlines())
        (outdir / "hotspots.json").write_text(json.dumps(summary, indent=2))
        return summary

    return stop


def _path(frame: str) -> str:
    """The file of a py-spy frame `func (path:line)`, shortened after site-packages or lib/python."""
    inner = frame.rsplit("(", 1)[-1].rstrip(")")
    path = inner.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/lib/python3.11/", "/work/main/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def _frame_name(frame: str) -> str:
    """`func (path/to/file.py:123)` -> `func (path/to/file.py)`."""
    return f"{frame.rsplit('(', 1)[0].rstrip()} ({_path(frame)})"


def _thread(frames: list[str]) -> str:
    return "main" if frames and frames[0].startswith("_run_module_as_main") else "other threads"


def _parse(lines: Iterable[str]) -> list[tuple[list[str], int]]:
    out = []
    for line in lines:
        line = line.strip()
        if not line or " " not in line:
            continue
        stack, _, count = line.rpartition(" ")
        try:
            n = int(count)
        except ValueError:
            continue
        out.append((stack.split(";"), n))
    return out


def summarise(lines: Iterable[str], top: int = 25) -> dict[str, Any]:
    """Busy share per thread; per function self (leaf) and inclusive (anywhere in the stack) time,
    as a percentage of the busy (non-idle) samples of the main thread, where the event loop runs."""
    stacks = _parse(lines)
    total = sum(n for _, n in stacks)
    per_thread: Counter[str] = Counter()
    busy_thread: Counter[str] = Counter()
    busy: list[tuple[list[str], int]] = []
    for frames, n in stacks:
        th = _thread(frames)
        per_thread[th] += n
        if frames and not frames[-1].startswith(IDLE_LEAVES):
            busy_thread[th] += n
            if th == "main":
                busy.append((frames, n))
    nbusy = sum(n for _, n in busy) or 1
    self_c: Counter[str] = Counter()
    incl_c: Counter[str] = Counter()
    area_c: Counter[str] = Counter()
    for frames, n in busy:
        names = [_frame_name(f) for f in frames]
        self_c[names[-1]] += n
        for name in set(names):
            incl_c[name] += n
        area_c[_area(frames[-1])] += n

    def pct(c: Counter[str]) -> list[dict[str, Any]]:
        return [{"function": k, "percent_of_busy": round(100 * v / nbusy, 1)} for k, v in c.most_common(top)]

    ours = Counter({k: v for k, v in incl_c.items() if k.rsplit("(", 1)[-1].startswith(OURS)})
    return {
        "samples": total,
        "busy_percent_by_thread": {
            th: round(100 * busy_thread[th] / n, 1) for th, n in per_thread.most_common() if n
        },
        "main_thread_busy_samples": sum(n for _, n in busy),
        "by_area_of_leaf": {k: round(100 * v / nbusy, 1) for k, v in area_c.most_common()},
        "self": pct(self_c),
        "inclusive": pct(incl_c),
        "inclusive_ours": pct(ours),
    }


def _area(leaf: str) -> str:
    """Which code a leaf frame is in: kpistream, faust, mode, aiokafka, json, asyncio, ... or other."""
    path = _path(leaf)
    for prefix, area in AREAS:
        if path.startswith(prefix) or f"/{prefix}" in path:
            return area
    return "other"

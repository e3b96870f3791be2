"""Where a loaded worker's memory goes: tracemalloc snapshots of a real worker, by owner.

`python -m stream.bench.memory_profile` runs the memory step's workload (operators x days, one
disposition per operator and day) through a worker twice on a private Kafka and Redis: once plain,
for its RSS, and once under tracemalloc, for what Python allocated and where. It prints, and writes
as JSON with `-o`, the traced growth from idle to loaded by owner (the innermost frame of
kpistream's own code that asked for the memory, else the library whose code did), so "the rest"
of the RSS is a measurement: RSS growth minus traced growth is what Python's allocator holds but
no live object uses (fragmentation, freed arenas not returned), plus non-Python allocations.

The tracing is switched on inside the worker by a `sitecustomize` module put first on its
PYTHONPATH (no product code knows of it); a thread there writes a snapshot when asked by a file.
Tracing costs CPU (several times slower) and memory of its own, so the traced run's RSS is not a
figure; the plain run's is.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import sysconfig
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

from stream.bench.config import SETTLE_S
from stream.bench.expected import expected_redis, redis_check
from stream.bench.progress import say
from stream.bench.services import Services, flush_redis, services
from stream.bench.worker import BenchWorker
from stream.bench.workload import memory_events, produce_sync, to_message

# Runs in the worker's interpreter at start-up (as `sitecustomize`): tracing from the first import.
HOOK = """
import os, pickle, threading, time, tracemalloc


def _serve(directory, suffix, answer, thread_name):
    # Answers each `<label><suffix>` file the bench leaves in `directory`, then removes it.
    def loop():
        while True:
            time.sleep(0.5)
            for name in os.listdir(directory):
                if name.endswith(suffix):
                    answer(name[: -len(suffix)])
                    os.remove(os.path.join(directory, name))

    threading.Thread(target=loop, name=thread_name, daemon=True).start()


def _write_whole(path, mode, write):
    # The bench waits for `path` to exist: it appears only once written.
    with open(path + ".tmp", mode) as f:
        write(f)
    os.replace(path + ".tmp", path)


_dir = os.environ.get("KPISTREAM_BENCH_TRACEMALLOC_DIR")
if _dir:
    tracemalloc.start(int(os.environ.get("KPISTREAM_BENCH_TRACEMALLOC_FRAMES", "25")))

    def _snapshot(label):
        peak = tracemalloc.get_traced_memory()[1]  # before the snapshot's own copies
        snap = tracemalloc.take_snapshot()
        with open(os.path.join(_dir, label + ".peak"), "w") as f:
            f.write(str(peak))
        path = os.path.join(_dir, label + ".snapshot")
        _write_whole(path, "wb", lambda f: pickle.dump(snap, f, pickle.HIGHEST_PROTOCOL))
        tracemalloc.reset_peak()

    _serve(_dir, ".request", _snapshot, "tracemalloc-dump")

_census_dir = os.environ.get("KPISTREAM_BENCH_CENSUS_DIR")
if _census_dir:
    import ctypes, gc, json, re, sys, tempfile
    from collections import Counter

    class _MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost")]

    def _census():
        # Python's small-object allocator, as sys._debugmallocstats prints it (on fd 2).
        with tempfile.TemporaryFile() as f:
            saved = os.dup(2)
            os.dup2(f.fileno(), 2)
            try:
                sys._debugmallocstats()
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            f.seek(0)
            text = f.read().decode()
        def field(name):
            m = re.search(r"# " + name + r" += +([0-9,]+)", text)
            return int(m.group(1).replace(",", "")) if m else None
        out = {
            "pymalloc_arenas": field("arenas allocated current"),
            "pymalloc_used_bytes": field("bytes in allocated blocks"),
            "pymalloc_free_bytes": field("bytes in available blocks"),
        }
        try:
            libc = ctypes.CDLL("libc.so.6")
            libc.mallinfo2.restype = _MallInfo2
            mi = libc.mallinfo2()
            out["malloc"] = {n: getattr(mi, n) for n, _ in _MallInfo2._fields_}
        except (OSError, AttributeError):
            out["malloc"] = None
        objs = gc.get_objects()
        out["gc_objects"] = len(objs)
        out["gc_types"] = Counter(type(o).__name__ for o in objs).most_common(25)
        if os.environ.get("KPISTREAM_BENCH_CENSUS_STRUCTURES"):
            try:
                out["structures"] = _structures(objs)
            except Exception as exc:  # a census must answer, whatever it met
                out["structures"] = {"error": repr(exc)}
        del objs
        return out

    def _structures(objs):
        # Bytes reachable from each part of the worker's state (sys.getsizeof over gc.get_referents),
        # each object charged to the first part that reaches it: the tables' stores first (their
        # keys and values), then the pipeline's and the publisher's own structures, then metrics.
        import types
        from mode import Service
        stop = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
                types.CodeType, types.FrameType, Service)
        roots = {n: [o for o in objs if type(o).__name__ == n] for n in ("Pipeline", "Publisher")}
        seen = set(id(o) for v in roots.values() for o in v)

        def deep(obj):
            total, stack = 0, [obj]
            while stack:
                o = stack.pop()
                if id(o) in seen or isinstance(o, stop):
                    continue
                seen.add(id(o))
                total += sys.getsizeof(o)
                stack.extend(gc.get_referents(o))
            return total

        parts = {}
        for o in objs:
            if type(o).__name__ != "Table" or not isinstance(o, Service):
                continue
            data = getattr(o, "data", None)
            if data is not None:
                parts[f"table {o.name}: values"] = deep(getattr(data, "data", data))
                kp = getattr(data, "_key_partition", None)
                if kp is not None:
                    parts[f"table {o.name}: faust key->partition"] = deep(kp)
        for cls, found in roots.items():
            for r in found:
                attrs = getattr(r, "__dict__", {})
                for name, value in attrs.items():
                    parts[f"{cls}.{name}"] = deep(value)
        try:
            import prometheus_client
            parts["prometheus registry"] = deep(prometheus_client.REGISTRY._names_to_collectors)
        except Exception:
            pass
        return {k: v for k, v in sorted(parts.items(), key=lambda kv: -kv[1]) if v >= 100_000}

    def _answer_census(label):
        path = os.path.join(_census_dir, label + ".census.json")
        _write_whole(path, "w", lambda f: json.dump(_census(), f))

    _serve(_census_dir, ".census-request", _answer_census, "memory-census")
"""

# Where a path belongs: kpistream's packages by their path, libraries by their top-level name.
PROJECT_PARTS = ("/stream/", "/agents/", "/schemas/")
STDLIB = sysconfig.get_paths()["stdlib"] + "/"


def project_path(path: str) -> str | None:
    """`stream/...`, `agents/...` or `schemas/...` for a file of kpistream's source, else None."""
    if "/site-packages/" in path:  # an installed package with a `stream/` directory is not ours
        return None
    for part in PROJECT_PARTS:
        i = path.rfind(part)
        if i >= 0:
            return path[i + 1 :]
    return None


def owner_of(tb: tracemalloc.Traceback) -> tuple[str, str]:
    """(kpistream's innermost `file:line` that allocated, or "-") and the library of the innermost frame."""
    lib = library_of(tb[-1].filename if len(tb) else "?")
    for frame in reversed(tb):
        own = project_path(frame.filename)
        if own is not None:
            return f"{own}:{frame.lineno}", lib
    return "-", lib


def library_of(path: str) -> str:
    if project_path(path) is not None:
        return "kpistream"
    if "/site-packages/" in path:
        return path.split("/site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if path.startswith("<"):
        return path
    if path.startswith(STDLIB):
        return "python stdlib"
    return "other"


def growth_by_owner(idle: tracemalloc.Snapshot, loaded: tracemalloc.Snapshot, top: int) -> dict[str, Any]:
    """Traced bytes of the loaded snapshot minus the idle one, by kpistream line and by library."""

    def totals(snap: tracemalloc.Snapshot) -> tuple[Counter[str], Counter[str], int]:
        by_line: Counter[str] = Counter()
        by_lib: Counter[str] = Counter()
        for stat in snap.statistics("traceback"):
            line, lib = owner_of(stat.traceback)
            by_line[line] += stat.size
            by_lib[lib] += stat.size
        return by_line, by_lib, sum(by_lib.values())

    line0, lib0, total0 = totals(idle)
    line1, lib1, total1 = totals(loaded)
    by_line = Counter({k: line1[k] - line0.get(k, 0) for k in line1})
    by_lib = Counter({k: lib1[k] - lib0.get(k, 0) for k in lib1})
    mb = 2**20
    return {
        "traced_idle_mb": round(total0 / mb, 1),
        "traced_loaded_mb": round(total1 / mb, 1),
        "traced_growth_mb": round((total1 - total0) / mb, 1),
        "growth_by_library_mb": {k: round(v / mb, 2) for k, v in by_lib.most_common() if abs(v) >= mb / 100},
        "growth_by_kpistream_line_mb": {k: round(v / mb, 2) for k, v in by_line.most_common(top)},
    }


def load_and_wait(
    w: BenchWorker, svc: Services, messages: list[Any], expected: dict[str, dict[str, int]], timeout_s: float
) -> dict[str, Any]:
    """Produce the events, wait until the centre's hashes are exact and stage 1 counted them all,
    then until the worker's CPU is quiet (the publisher's complete writes and sweeps are done).

    `/metrics` is read only once Redis is exact: the page grows with every operator and period,
    and under tracemalloc rendering it every few seconds starved the worker. At the time limit the
    run is reported incomplete (with what was consumed) rather than lost."""
    import redis

    rc = redis.Redis.from_url(svc.redis_url)
    t0 = time.time()
    produce_sync(svc.kafka, w.env["KPISTREAM_TOPIC_PREFIX"], messages)
    deadline, consumed, complete = time.monotonic() + timeout_s, None, True
    while True:
        w.check_alive()
        missing, _ = redis_check(rc, expected, 1)
        if not missing:
            consumed = w.events_total() or consumed
            if consumed is not None and consumed >= len(messages):
                break
        if time.monotonic() > deadline:
            consumed = w.events_total() or consumed
            say(f"INCOMPLETE: not done in {timeout_s:.0f} s: {consumed} consumed, {missing}")
            complete = False
            break
        time.sleep(1.0)
    took = time.time() - t0
    w.wait_quiet(int(SETTLE_S) * 3 if complete else 0)
    rc.close()
    return {"seconds": round(took, 1), "events_consumed": consumed, "complete": complete}


def ask(w: BenchWorker, request: Path, answer: Path, timeout_s: float) -> Path:
    """Leave `request` for the worker's hook thread and wait for its `answer` file."""
    request.touch()
    deadline = time.monotonic() + timeout_s
    while not answer.exists():
        w.check_alive()
        if time.monotonic() > deadline:
            raise SystemExit(f"no {answer.name} in {timeout_s:.0f} s")
        time.sleep(0.5)
    return answer


def snapshot(w: BenchWorker, trace_dir: Path, label: str, timeout_s: float = 600.0) -> tracemalloc.Snapshot:
    """Ask the worker's dump thread for a snapshot and read it."""
    path = ask(w, trace_dir / f"{label}.request", trace_dir / f"{label}.snapshot", timeout_s)
    with path.open("rb") as f:
        snap: tracemalloc.Snapshot = pickle.load(f)
    return snap


def run(
    operators: int,
    days: int,
    frames: int,
    top: int,
    timeout_s: float,
    env: dict[str, str],
    trace: bool,
    restart: bool = False,
) -> dict[str, Any]:
    events = memory_events(operators, days, 1)
    messages = [to_message(e) for e in events]
    expected = expected_redis(events, scopes=("center",))
    out: dict[str, Any] = {
        "operators": operators,
        "days": days,
        "events": len(events),
        "frames": frames,
        "env": env,
    }
    with tempfile.TemporaryDirectory(prefix="kpistream-memprof-") as tmp, services(Path(tmp)) as svc:
        work = Path(tmp)
        hook_dir = work / "hook"
        hook_dir.mkdir()
        (hook_dir / "sitecustomize.py").write_text(HOOK)
        for traced in (False, True) if trace else (False,):
            name = "traced" if traced else "plain"
            flush_redis(svc.redis_url)
            run_env = {"KPISTREAM_FLUSH_INTERVAL_S": "10", **env}
            trace_dir = work / f"trace-{name}"
            census_dir = work / f"census-{name}"
            if not traced:  # a census of the allocators: cheap, and only meaningful untraced
                census_dir.mkdir()
                run_env.update(PYTHONPATH=str(hook_dir), KPISTREAM_BENCH_CENSUS_DIR=str(census_dir))
            if traced:
                trace_dir.mkdir()
                run_env.update(
                    PYTHONPATH=str(hook_dir),
                    KPISTREAM_BENCH_TRACEMALLOC_DIR=str(trace_dir),
                    KPISTREAM_BENCH_TRACEMALLOC_FRAMES=str(frames),
                )
            w = BenchWorker(svc, f"mp{name}-", work, 4, **run_env).spawn()
            try:
                w.wait_ready(300)
                time.sleep(3.0)
                idle_rss = w.rss_mb()
                idle = snapshot(w, trace_dir, "idle") if traced else None
                idle_census = None if traced else census(w, census_dir, "idle")  # untraced only
                say(f"{name}: idle RSS {idle_rss:.1f} MB; producing {len(messages)} events")
                loading = load_and_wait(w, svc, messages, expected, timeout_s)
                loaded_rss = w.rss_mb()
                say(f"{name}: loaded RSS {loaded_rss:.1f} MB after {loading['seconds']:.0f} s")
                run_out: dict[str, Any] = {
                    "idle_rss_mb": round(idle_rss, 1),
                    "loaded_rss_mb": round(loaded_rss, 1),
                    **loading,
                }
                if idle_census is not None:
                    run_out["census"] = {"idle": idle_census, "loaded": census(w, census_dir, "loaded")}
                    run_out["census"]["rss_parts_mb"] = rss_parts_mb(run_out["census"]["loaded"])
                if restart and not traced:
                    w.stop()
                    w = BenchWorker(svc, f"mp{name}-", work, 4, **run_env).spawn()
                    run_out["restarted"] = restart_and_wait(w, svc, expected, timeout_s)
                if idle is not None:
                    run_out.update(growth_by_owner(idle, snapshot(w, trace_dir, "loaded"), top))
                    # the most Python held at once between the two snapshots (reset at the idle one)
                    peak = int((trace_dir / "loaded.peak").read_text())
                    run_out["traced_peak_mb"] = round(peak / 2**20, 1)
                out[name] = run_out
            finally:
                w.stop()
    plain = out["plain"]
    rss_growth = plain["loaded_rss_mb"] - plain["idle_rss_mb"]
    out["plain_rss_growth_mb"] = round(rss_growth, 1)
    if not trace:
        return out
    traced_run = out["traced"]
    # Only a like-for-like pair (both runs held every event) says what the traced growth leaves out.
    both = plain["complete"] and traced_run["complete"]
    out["untraced_rest_mb"] = round(rss_growth - traced_run["traced_growth_mb"], 1) if both else None
    return out


def restart_and_wait(
    w: BenchWorker, svc: Services, expected: dict[str, dict[str, int]], timeout_s: float
) -> dict[str, Any]:
    """A restart of the loaded worker, with Redis emptied: its RSS while it recovers its tables and
    writes everything it holds (its first, complete, write), sampled every half second until the
    centre's hashes are exact again and its CPU is quiet."""
    import redis

    flush_redis(svc.redis_url)
    rc = redis.Redis.from_url(svc.redis_url)
    t0 = time.monotonic()
    peak, complete = 0.0, True
    while True:
        w.check_alive()
        peak = max(peak, w.rss_mb())
        missing, _ = redis_check(rc, expected, 1)
        if not missing:
            break
        if time.monotonic() - t0 > timeout_s:
            say(f"INCOMPLETE: the restarted worker did not rewrite Redis in {timeout_s:.0f} s: {missing}")
            complete = False
            break
        time.sleep(0.5)
    took = time.monotonic() - t0
    seen = [peak]
    w.wait_quiet(int(SETTLE_S) * 3 if complete else 0, lambda: seen.append(w.rss_mb()))
    rc.close()
    out = {
        "seconds_to_exact": round(took, 1),
        "peak_rss_mb": round(max(seen), 1),
        "loaded_rss_mb": round(w.rss_mb(), 1),
        "complete": complete,
    }
    say(f"restarted: exact after {took:.0f} s, RSS peak {out['peak_rss_mb']}, then {out['loaded_rss_mb']} MB")
    return out


def census(w: BenchWorker, census_dir: Path, label: str, timeout_s: float = 300.0) -> dict[str, Any]:
    """Ask the worker's census thread for its allocators' figures and its objects by type."""
    path = ask(w, census_dir / f"{label}.census-request", census_dir / f"{label}.census.json", timeout_s)
    result: dict[str, Any] = json.loads(path.read_text())
    return result


def rss_parts_mb(c: dict[str, Any]) -> dict[str, float | None]:
    """A census in MB: what Python's objects use, what its allocators hold free, what malloc holds.

    pymalloc serves objects up to 512 bytes from 1 MiB arenas (mmap); larger ones, and C
    extensions, use malloc (`uordblks` in use, `fordblks` free inside its heap, `hblkhd` in mmaps).
    """
    mb = 2**20
    m = c.get("malloc") or {}
    return {
        "pymalloc_arenas": float(c["pymalloc_arenas"]) if c.get("pymalloc_arenas") else None,
        "pymalloc_used": round(c["pymalloc_used_bytes"] / mb, 1) if c.get("pymalloc_used_bytes") else None,
        "pymalloc_free": round(c["pymalloc_free_bytes"] / mb, 1) if c.get("pymalloc_free_bytes") else None,
        "malloc_used": round(m["uordblks"] / mb, 1) if m else None,
        "malloc_free": round(m["fordblks"] / mb, 1) if m else None,
        "malloc_mmap": round(m["hblkhd"] / mb, 1) if m else None,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m stream.bench.memory_profile", description=__doc__)
    p.add_argument("--operators", type=int, default=1_000)
    p.add_argument("--days", type=int, default=40)
    p.add_argument("--frames", type=int, default=25, help="traceback depth kept by tracemalloc")
    p.add_argument("--top", type=int, default=30, help="kpistream lines listed")
    p.add_argument("--timeout", type=float, default=1_800.0, help="seconds for each run's events")
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="worker env, e.g. MALLOC_ARENA_MAX=2",
    )
    p.add_argument(
        "--no-trace", action="store_true", help="the plain run only (its RSS, e.g. to compare --env)"
    )
    p.add_argument(
        "--restart",
        action="store_true",
        help="then restart the plain worker on an emptied Redis: RSS while it recovers and rewrites all",
    )
    p.add_argument("-o", "--output", type=Path, help="also write the result here (JSON)")
    args = p.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    result = run(
        args.operators, args.days, args.frames, args.top, args.timeout, env, not args.no_trace, args.restart
    )
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

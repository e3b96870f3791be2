"""Flat cost as state grows: the small centre's workload on a fresh worker and on one holding a big
centre's history (5,000 operators x 40 days by default), timed the same way in the same run.

Both workers are running, ready and idle (the loaded one after consuming and publishing the
history) when the small centre's events are produced; each figure is those events over the time
from the first produce until Redis holds every hash they change, exactly as the Engine computes it
(the loaded worker's month and centre hashes include the history). The fresh worker is the baseline.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from stream.bench.config import SETTLE_S, BenchConfig
from stream.bench.expected import expected_redis, redis_check
from stream.bench.progress import BenchError, say
from stream.bench.services import Services, flush_redis
from stream.bench.worker import PUBLISHED_QUIET_S, BenchWorker, running_worker
from stream.bench.workload import memory_events, produce_sync, renamed, simulated_events, to_messages

SMALL_CENTRE_DAY = datetime(2026, 1, 15, tzinfo=UTC)  # the throughput workload's first day


def bench_state_growth(cfg: BenchConfig, svc: Services, workdir: Path, run_id: str) -> dict[str, Any]:
    events = simulated_events(cfg.growth_events)
    history = memory_events(
        cfg.mem_operators,
        cfg.mem_days,
        cfg.mem_per_op_day,
        start=SMALL_CENTRE_DAY - timedelta(days=cfg.mem_days),  # the days just before
    )
    say(f"state_growth: {len(events)} events, fresh and after {len(history)} history events")
    # A fresh worker before and after the loaded one: the first run of a bench meets a cold broker
    # (its first run was up to 1.5x slower), so the baseline is the faster of the two.
    # With --profile, py-spy samples the first fresh and the loaded worker over their timed windows
    # (both alike, so the two profiles compare; the figures of a profiled bench carry its cost).
    # Each side is the best of two windows: the first fresh run of a bench meets a cold broker (up
    # to 1.5x slower), and a window of ~15 s holds a periodic task of the worker (the 30 s index
    # refresh, a share refresh of the history's month) or not, so one window each was luck. The
    # loaded worker's second window is the same workload under other ids (new calls, chats, cases
    # of the same operators and times), on the same worker.
    fresh_runs = [_timed_run(cfg, svc, workdir, f"b{run_id}-grow0-", [], [events], profile="fresh")[0]]
    say(f"  fresh: {fresh_runs[0]['events_per_s']} ev/s")
    loaded_runs = _timed_run(
        cfg, svc, workdir, f"b{run_id}-grow1-", history, [events, renamed(events, "-2")], profile="loaded"
    )
    say(f"  loaded: {[r['events_per_s'] for r in loaded_runs]} ev/s")
    fresh_runs += _timed_run(cfg, svc, workdir, f"b{run_id}-grow2-", [], [events])
    say(f"  fresh again: {fresh_runs[1]['events_per_s']} ev/s")
    fresh = max(fresh_runs, key=lambda r: r.get("events_per_s") or 0.0)
    loaded = max(loaded_runs, key=lambda r: r.get("events_per_s") or 0.0)
    ratio = None
    if (
        fresh.get("events_per_s")
        and loaded.get("events_per_s")
        and all(r.get("complete") for r in loaded_runs)
    ):
        ratio = round(loaded["events_per_s"] / fresh["events_per_s"], 3)
    return {
        "operators": cfg.mem_operators,
        "days": cfg.mem_days,
        "fresh": fresh,
        "fresh_runs": fresh_runs,
        "loaded": loaded,
        "loaded_runs": loaded_runs,
        "loaded_vs_fresh": ratio,
        "method": "best of two windows each: loaded / fresh",
    }


def _timed_run(
    cfg: BenchConfig,
    svc: Services,
    workdir: Path,
    prefix: str,
    history: list[dict[str, Any]],
    workloads: list[list[dict[str, Any]]],
    profile: str | None = None,
) -> list[dict[str, Any]]:
    """One worker (with `history` loaded first), each workload produced and timed in turn on it."""
    import redis

    flush_redis(svc.redis_url)
    rc = redis.Redis.from_url(svc.redis_url)
    results: list[dict[str, Any]] = []
    try:
        with running_worker(svc, prefix, workdir, cfg.partitions) as w:
            w.wait_ready()
            extra: dict[str, Any] = {}
            if history:
                t = time.monotonic()
                _load_history(cfg, svc, rc, w, prefix, history)
                extra = {
                    "history_seconds": round(time.monotonic() - t, 1),
                    "rss_mb_with_history": round(w.rss_mb(), 1),
                }
            done = list(history)
            for n, events in enumerate(workloads):
                if n:
                    w.wait_quiet(90, quiet_s=PUBLISHED_QUIET_S)  # the last window's writes are over
                out = _window(cfg, svc, rc, w, prefix, done, events, profile if n == 0 else None)
                results.append({**extra, **out})
                done += events
    finally:
        rc.close()
    return results


def _window(
    cfg: BenchConfig,
    svc: Services,
    rc: Any,
    w: BenchWorker,
    prefix: str,
    before_events: list[dict[str, Any]],
    events: list[dict[str, Any]],
    profile: str | None,
) -> dict[str, Any]:
    """Produce `events` and time them until Redis holds every hash they change (as the Engine says)."""
    from stream.bench.profile import attach_py_spy

    before = expected_redis(before_events) if before_events else {}
    after = expected_redis(before_events + events)
    expected = {k: v for k, v in after.items() if before.get(k) != v}  # what these events change
    out: dict[str, Any] = {"history_events": len(before_events), "events": len(events)}
    messages = to_messages(events)
    stop_profile = None
    if profile is not None and cfg.profile_dir is not None:
        stop_profile = attach_py_spy(w.pid, cfg.profile_dir / f"state_growth-{profile}")
        out["profiled"] = True
    t0 = time.time()
    produce_sync(svc.bootstrap, prefix, messages)
    out["produce_seconds"] = round(time.time() - t0, 2)
    deadline = time.monotonic() + cfg.timeout_s
    digest, changed_at = None, time.time()
    while True:
        w.check_alive()
        now = time.time()
        missing, d = redis_check(rc, expected, 10)
        if not missing:
            out.update(complete=True, seconds=round(now - t0, 3))
            break
        if d != digest:
            digest, changed_at = d, now
        elif now - changed_at > SETTLE_S + 10:
            out.update(complete=False, redis_differences=missing, seconds=round(changed_at - t0, 3))
            say(f"  INCOMPLETE: Redis totals differ from the Engine's: {missing[:3]}")
            break
        if time.monotonic() > deadline:
            raise BenchError(f"state_growth: not complete in {cfg.timeout_s:.0f}s; Redis lacks {missing}")
        time.sleep(0.05)
    out["events_per_s"] = round(len(events) / out["seconds"], 1) if out.get("complete") else None
    if stop_profile is not None:
        out["profile"] = stop_profile()
    out["worker_rss_mb_after"] = round(w.rss_mb(), 1)
    return out


def _load_history(
    cfg: BenchConfig, svc: Services, rc: Any, w: BenchWorker, prefix: str, history: list[dict[str, Any]]
) -> None:
    """Produce the history and wait until it is consumed, published (centre days exact) and quiet."""

    produce_sync(svc.bootstrap, prefix, to_messages(history))
    expected = expected_redis(history, scopes=("center",))
    deadline = time.monotonic() + cfg.growth_history_timeout_s
    next_metrics, consumed = 0.0, None
    while True:
        w.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(
                f"state_growth: history not consumed in {cfg.growth_history_timeout_s:.0f}s ({consumed})"
            )
        if time.time() >= next_metrics:  # the page grows with every operator: not too often
            consumed = w.events_total() or consumed
            next_metrics = time.time() + 5.0
        missing, _ = redis_check(rc, expected, 1)
        if consumed is not None and consumed >= len(history) and not missing:
            break
        time.sleep(1.0)
    # Publishing the history ends with the share refresh of its big periods, share_interval_s after
    # their last one once the stream is quiet (docs/outputs.md): wait for it, or the timed window
    # would pay for the history's last writes.
    w.wait_quiet(90, quiet_s=PUBLISHED_QUIET_S)

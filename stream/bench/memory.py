"""Memory: the worker's resident size idle and after many operators x days of state, published in full.

While the worker consumes, the step samples its event count and RSS every few seconds: the memory
workload opens a new operator-day with every event, so the samples are its speed and its memory
against the state it holds (`stream/bench/plot.py` draws them).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from stream.bench.config import SETTLE_S, BenchConfig
from stream.bench.expected import expected_redis, redis_check
from stream.bench.progress import say
from stream.bench.services import Services, flush_redis
from stream.bench.worker import PUBLISHED_QUIET_S, running_worker
from stream.bench.workload import memory_events, produce_sync, to_message


def bench_memory(cfg: BenchConfig, svc: Services, workdir: Path, run_id: str) -> dict[str, Any]:
    """The worker with the default store (memory://): its tables are Python objects."""
    return _memory_step(cfg, svc, workdir, f"b{run_id}-mem-", "memory://", cfg.mem_timeout_s)


def bench_memory_rocksdb(cfg: BenchConfig, svc: Services, workdir: Path, run_id: str) -> dict[str, Any]:
    """The same workload with rocksdb://: the tables on disk, RocksDB's memory within its budget."""
    return _memory_step(cfg, svc, workdir, f"b{run_id}-memrocks-", "rocksdb://", cfg.mem_rocksdb_timeout_s)


def _memory_step(
    cfg: BenchConfig, svc: Services, workdir: Path, prefix: str, store: str, timeout_s: float
) -> dict[str, Any]:
    import redis

    events = memory_events(cfg.mem_operators, cfg.mem_days, cfg.mem_per_op_day)
    say(f"memory ({store}): {len(events)} events, {cfg.mem_operators} operators x {cfg.mem_days} days")
    messages = [to_message(e) for e in events]
    expected = expected_redis(events, scopes=("center",))
    flush_redis(svc.redis_url)
    rc = redis.Redis.from_url(svc.redis_url)
    flush_env = {"KPISTREAM_FLUSH_INTERVAL_S": str(cfg.mem_flush_interval_s), "KPISTREAM_STORE": store}
    complete = True
    consumed: float | None = None
    with running_worker(svc, prefix, workdir, cfg.partitions, **flush_env) as w:
        w.wait_ready()
        time.sleep(3.0)
        idle = w.rss_mb()
        allocator = w.allocator()
        say(f"  idle worker RSS {idle:.1f} MB; producing")
        t0 = time.time()
        produce_sync(svc.kafka, prefix, messages)
        peak = idle
        deadline = time.monotonic() + timeout_s
        digest, changed_at, next_metrics = None, time.time(), 0.0
        samples: list[list[float]] = [[0.0, 0.0, round(idle, 1)]]  # [s since t0, events consumed, RSS MB]
        while True:
            w.check_alive()
            rss = w.rss_mb()
            peak = max(peak, rss)
            now = time.time()
            if now >= next_metrics:  # the page grows with every operator and period: not too often
                consumed = w.events_total() or consumed
                next_metrics = now + 5.0
                if consumed is not None:
                    samples.append([round(now - t0, 2), consumed, round(rss, 1)])
            missing, d = redis_check(rc, expected, 3)
            done = consumed is not None and consumed >= len(messages)
            if done and not missing:
                break
            if d != digest:
                digest, changed_at = d, now
            elif done and now - changed_at > SETTLE_S + 2 * cfg.mem_flush_interval_s:
                complete = False
                say(f"  INCOMPLETE: Redis totals differ from the Engine's: {missing}")
                break
            if time.monotonic() > deadline:
                complete = False
                say(f"  INCOMPLETE: {consumed} of {len(messages)} consumed in {timeout_s:.0f}s")
                break
            time.sleep(1.0)
        consumed_s = time.time() - t0
        rss_seen = [peak]
        # The loaded RSS is taken once the worker published everything, its last share refresh too.
        w.wait_quiet(45 if complete else 0, lambda: rss_seen.append(w.rss_mb()), quiet_s=PUBLISHED_QUIET_S)
        peak = max(rss_seen)
        loaded = w.rss_mb()
    rc.close()
    out = {
        "store": store,
        "operators": cfg.mem_operators,
        "days": cfg.mem_days,
        "events": len(messages),
        "idle_rss_mb": round(idle, 1),
        "loaded_rss_mb": round(loaded, 1),
        "peak_rss_mb": round(peak, 1),
        "consume_and_publish_seconds": round(consumed_s, 1),
        "events_consumed": consumed,
        "complete": complete,
        "flush_interval_s": cfg.mem_flush_interval_s,
        "allocator": allocator,  # the worker's (stream/allocator.py)
        "samples": samples,
    }
    say(f"  loaded RSS {loaded:.1f} MB (peak {peak:.1f} MB), idle {idle:.1f} MB; allocator {allocator}")
    return out

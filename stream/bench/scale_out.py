"""Scale-out: the throughput workload consumed by one worker and by two workers of one group.

Each run gets fresh topics (the default partition count, 4) and a fresh consumer group (one app id;
each worker its own web port, data dir and log). The workers are started on empty topics and the
run waits until every worker is ready (`/readyz`: partitions assigned, not rebalancing) and the
group's coordinator reports it Stable with that many members. Only then are the events produced
(the throughput step's events; producing them is not what is measured, but it runs while the
workers consume, in both runs alike). The start is the last poll at which the workers' summed
`callcenter_events_total` was still 0; the end is the first poll at which Redis holds the Engine's
counts for every day and month hash (the throughput step's completion check). Waiting for the
stable group keeps the rebalance of a second member joining out of the figure: it measures
steady-state consumption, which is what a deployment of two workers does all day.

A single worker runs before and after the pair (a cold broker made the first run of a bench up to
1.5x slower, docs/benchmarks.md "Flat cost as state grows"); the baseline is the faster of the two.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from stream.bench.config import SETTLE_S, BenchConfig
from stream.bench.expected import expected_redis, redis_check
from stream.bench.progress import BenchError, say
from stream.bench.services import Services, flush_redis
from stream.bench.throughput import topic_specs_for
from stream.bench.worker import BenchWorker
from stream.bench.workload import Message, fingerprint, produce_sync, simulated_events, to_messages
from stream.topic_admin import create_topics_sync

GROUP_STABLE_TIMEOUT_S = 120.0


def total_consumed(counts: Sequence[float | None]) -> float | None:
    """The group's consumed events: the sum of every worker's count; None if any worker did not answer
    (a worker that did not answer may have consumed some: the sum is then unknown, not smaller)."""
    if any(c is None for c in counts):
        return None
    return float(sum(c for c in counts if c is not None))


def summary(
    one_runs: Sequence[Mapping[str, Any]], two: Mapping[str, Any], cpus: int | None
) -> dict[str, Any]:
    """The step's figure: the faster complete single-worker run as the baseline, the pair against it.

    A run whose Redis totals are not the Engine's is not a measurement: `complete` is False and the
    ratio is None (the figure fails, whatever its speed)."""
    complete_one = [r for r in one_runs if r.get("complete") and r.get("events_per_s")]
    one = max(complete_one, key=lambda r: r["events_per_s"]) if complete_one else (one_runs or [{}])[0]
    complete = bool(complete_one) and bool(two.get("complete")) and all(r.get("complete") for r in one_runs)
    speedup = None
    if complete and one.get("events_per_s") and two.get("events_per_s"):
        speedup = round(two["events_per_s"] / one["events_per_s"], 3)
    return {
        "cpus": cpus,
        "one_worker": dict(one),
        "one_worker_runs": [dict(r) for r in one_runs],
        "two_workers": dict(two),
        "complete": complete,
        "speedup_2_vs_1": speedup,
    }


def bench_scale_out(cfg: BenchConfig, svc: Services, workdir: Path, run_id: str) -> dict[str, Any]:
    say(f"scale_out: generating {cfg.events} simulated events (the throughput workload)")
    events = simulated_events(cfg.events)
    messages = to_messages(events)
    expected = expected_redis(events)
    say(f"scale_out: {len(messages)} events, {cfg.partitions} partitions, {os.cpu_count()} CPUs")
    one_runs = [_timed_run(cfg, svc, workdir, f"b{run_id}-scale1a-", 1, messages, expected)]
    say(f"  1 worker: {one_runs[0].get('events_per_s')} ev/s")
    two = _timed_run(cfg, svc, workdir, f"b{run_id}-scale2-", 2, messages, expected)
    say(f"  2 workers: {two.get('events_per_s')} ev/s")
    one_runs.append(_timed_run(cfg, svc, workdir, f"b{run_id}-scale1b-", 1, messages, expected))
    say(f"  1 worker again: {one_runs[1].get('events_per_s')} ev/s")
    out = summary(one_runs, two, os.cpu_count())
    out.update(
        workload_sha256=fingerprint(messages),
        events=len(messages),
        partitions=cfg.partitions,
        redis_hashes_checked=len(expected),
    )
    say(f"  speed-up of a second worker: {out['speedup_2_vs_1']} (complete: {out['complete']})")
    return out


async def _group(svc: Services, group: str) -> tuple[str, int]:
    from stream import kafka_clients

    admin = kafka_clients.admin(svc.kafka, request_timeout_ms=5000)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
        g = response.to_object()["groups"][0]
        return str(g["state"]), len(g["members"])
    finally:
        await admin.close()


def group_state(svc: Services, group: str) -> tuple[str, int]:
    """(state, members) of a consumer group as its coordinator sees it; an error is polled again."""
    try:
        return asyncio.run(_group(svc, group))
    except Exception as exc:  # the coordinator may be busy or moving: the caller polls again
        return f"error {type(exc).__name__}", -1


def _wait_group(svc: Services, workers: Sequence[BenchWorker], group: str) -> float:
    """Every worker ready and the group Stable with all of them, twice in a row 1 s apart; seconds taken."""
    t = time.monotonic()
    deadline = t + GROUP_STABLE_TIMEOUT_S
    for w in workers:
        w.wait_ready(timeout=GROUP_STABLE_TIMEOUT_S)
    seen = 0
    state: tuple[str, int] = ("", 0)
    while seen < 2:
        if time.monotonic() > deadline:
            raise BenchError(f"scale_out: group {group} not stable with {len(workers)} members: {state}")
        for w in workers:
            w.check_alive()
        state = group_state(svc, group)
        ok = state == ("Stable", len(workers)) and all(w.ready() for w in workers)
        seen = seen + 1 if ok else 0
        time.sleep(1.0)
    return time.monotonic() - t


def _timed_run(
    cfg: BenchConfig,
    svc: Services,
    workdir: Path,
    prefix: str,
    n_workers: int,
    messages: list[Message],
    expected: Mapping[str, Mapping[str, int]],
) -> dict[str, Any]:
    import redis

    create_topics_sync(svc.kafka, topic_specs_for(prefix, cfg.partitions))
    flush_redis(svc.redis_url)
    rc = redis.Redis.from_url(svc.redis_url)
    n = len(messages)
    out: dict[str, Any] = {"workers": n_workers, "events": n}
    produced: dict[str, Any] = {}

    def produce() -> None:
        t = time.time()
        try:
            produce_sync(svc.kafka, prefix, messages)
        except Exception as exc:  # reported by the main thread
            produced["error"] = exc
        produced["seconds"] = time.time() - t

    try:
        with contextlib.ExitStack() as stack:
            workers = []
            for i in range(n_workers):
                w = BenchWorker(svc, prefix, workdir, cfg.partitions, member=f"-w{i}").spawn()
                stack.callback(w.stop)
                workers.append(w)
            group = f"bench-{prefix.rstrip('-')}"
            out["group_ready_seconds"] = round(_wait_group(svc, workers, group), 1)
            producer = threading.Thread(target=produce, name="scale-out-produce", daemon=True)
            deadline = time.monotonic() + cfg.timeout_s
            last_zero = time.time()
            producer.start()
            # 1. the start: the last poll at which no worker had counted an event
            while True:
                for w in workers:
                    w.check_alive()
                if "error" in produced:
                    raise BenchError(f"scale_out: producing failed: {produced['error']}")
                if time.monotonic() > deadline:
                    raise BenchError(f"scale_out: the workers consumed nothing in {cfg.timeout_s:.0f}s")
                now = time.time()
                total = total_consumed([w.events_total() for w in workers])
                if not total:
                    last_zero = now
                    time.sleep(0.02)
                    continue
                start = last_zero
                break
            # 2. the end: every expected hash in Redis; stuck wrong totals end the run as incomplete
            next_metrics, consumed = 0.0, None
            digest, changed_at = None, time.time()
            while True:
                for w in workers:
                    w.check_alive()
                now = time.time()
                if consumed is None and now >= next_metrics:
                    total = total_consumed([w.events_total() for w in workers])
                    if total is not None and total >= n:
                        consumed = now
                    next_metrics = now + 1.0
                missing, d = redis_check(rc, expected, 10)
                if not missing:
                    out.update(complete=True, seconds=round(now - start, 3))
                    break
                if d != digest:
                    digest, changed_at = d, now
                elif consumed is not None and now - changed_at > SETTLE_S:
                    out.update(
                        complete=False, redis_differences=missing, seconds=round(changed_at - start, 3)
                    )
                    say(f"  INCOMPLETE: Redis totals differ from the Engine's: {missing[:3]}")
                    break
                if time.monotonic() > deadline:
                    raise BenchError(
                        f"scale_out: not complete in {cfg.timeout_s:.0f}s; Redis lacks:\n{missing}"
                    )
                time.sleep(0.05)
            producer.join(timeout=60)
            out["events_per_s"] = round(n / out["seconds"], 1) if out["seconds"] > 0 else None
            out["consumed_seconds"] = None if consumed is None else round(consumed - start, 3)
            out["produce_seconds"] = round(produced.get("seconds", 0.0), 2)
            out["per_worker_events"] = [w.events_total() for w in workers]
            out["worker_rss_mb_after"] = [round(w.rss_mb(), 1) for w in workers]
    finally:
        rc.close()
    return out

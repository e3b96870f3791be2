"""Throughput: the worker on pre-filled topics against a raw aiokafka consumer and Quix Streams.

Each run is timed from its first consumed event until Redis holds every expected aggregate.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stream.bench.config import SETTLE_S, BenchConfig
from stream.bench.expected import expected_redis, redis_check
from stream.bench.progress import BenchError, say
from stream.bench.services import Services, flush_redis
from stream.bench.worker import BenchWorker, running_worker
from stream.bench.workload import Message, fingerprint, produce_sync, simulated_events, to_messages
from stream.config import Settings
from stream.devtools.worker_process import WorkerFailed
from stream.topic_admin import create_topics_sync

REPO = Path(__file__).resolve().parents[2]


@dataclass
class RunTiming:
    events: int
    start: float | None = None
    consumed: float | None = None
    done: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        span = None if self.start is None or self.done is None else self.done - self.start
        consumed = None if self.start is None or self.consumed is None else self.consumed - self.start
        return {
            "events": self.events,
            "seconds": None if span is None else round(span, 3),
            "events_per_s": None if span is None else round(self.events / span, 1),
            "stage1_consumed_seconds": None if consumed is None else round(consumed, 3),
            **self.extra,
        }


def measure_worker(
    svc: Services,
    prefix: str,
    workdir: Path,
    partitions: int,
    n_events: int,
    expected: Mapping[str, Mapping[str, int]],
    timeout: float,
    on_start: Callable[[BenchWorker], Any] | None = None,
) -> RunTiming:
    """Start a worker on already-filled topics; time from its first consumed event until Redis holds
    every expected aggregate (consumed by stage 1, aggregated by stage 2, published by the publisher)."""
    import redis

    flush_redis(svc.redis_url)
    timing = RunTiming(n_events)
    rc = redis.Redis.from_url(svc.redis_url)
    with running_worker(svc, prefix, workdir, partitions) as w:
        hook = on_start(w) if on_start else None
        deadline = time.monotonic() + timeout
        last_zero = time.time()
        # 1. the start: the first poll that sees stage 1 counting (the last poll at 0 is taken)
        while True:
            w.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"worker consumed nothing in {timeout:.0f}s:\n{w.log_tail()}")
            now = time.time()
            n = w.events_total()
            if n is None or n == 0:
                last_zero = now
                time.sleep(0.02)
                continue
            timing.start = last_zero
            break
        # 2. the end: every expected hash in Redis (polled every 50 ms); stage 1's count on the side.
        #    A worker that consumed everything but whose Redis totals stay wrong for SETTLE_S ends
        #    the run too, as incomplete, with the differences (a correctness bug, not a slow run).
        next_metrics = 0.0
        digest, changed_at = None, time.time()
        while True:
            w.check_alive()
            now = time.time()
            if timing.consumed is None and now >= next_metrics:
                n = w.events_total()
                if n is not None and n >= n_events:
                    timing.consumed = now
                next_metrics = now + 1.0
            missing, d = redis_check(rc, expected, 10)
            if not missing:
                timing.done = now
                timing.extra["complete"] = True
                break
            if d != digest:
                digest, changed_at = d, now
            elif timing.consumed is not None and now - changed_at > SETTLE_S:
                timing.done = changed_at
                timing.extra.update(complete=False, redis_differences=missing)
                say(f"  INCOMPLETE: Redis totals differ from the Engine's: {missing[:3]}")
                break
            if time.monotonic() > deadline:
                raise BenchError(f"worker did not complete in {timeout:.0f}s; Redis lacks:\n{missing}")
            time.sleep(0.05)
        timing.extra["worker_rss_mb_after"] = round(w.rss_mb(), 1)
        stall = w.loop_stall_max_s()
        timing.extra["worker_loop_stall_max_s"] = None if stall is None else round(stall, 3)
        if hook is not None:
            timing.extra["profile"] = hook()
    rc.close()
    return timing


async def raw_consume(
    bootstrap: Settings | str, topics: list[str], n_events: int, timeout: float
) -> RunTiming:
    """The physical limit: aiokafka consumer (its defaults), json.loads of every value, nothing else."""
    from stream import kafka_clients

    consumer = kafka_clients.consumer(
        bootstrap,
        *topics,
        group_id=f"bench-raw-{os.getpid()}-{time.time_ns()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    timing = RunTiming(n_events)
    seen = 0
    deadline = time.monotonic() + timeout
    loads = json.loads
    try:
        while seen < n_events:
            if time.monotonic() > deadline:
                raise BenchError(f"raw consumer saw {seen}/{n_events} in {timeout:.0f}s")
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            if batches and timing.start is None:
                timing.start = time.time()
            for msgs in batches.values():
                for m in msgs:
                    loads(m.value)
                seen += len(msgs)
        timing.done = time.time()
    finally:
        await consumer.stop()
    return timing


def quix_run(svc: Services, topic: str, n_events: int, workdir: Path, timeout: float) -> RunTiming:
    """The Quix Streams peer (stream/bench/quix_app.py) as a subprocess over the telephony topic."""
    state = workdir / f"quix-state-{time.time_ns()}"
    cmd = [
        sys.executable, "-m", "stream.bench.quix_app",
        "--broker", svc.bootstrap, "--topic", topic, "--group", f"bench-quix-{time.time_ns()}",
        "--state-dir", str(state), "--expect", str(n_events), "--timeout", str(timeout),
    ]  # fmt: skip
    log_path = workdir / "quix.log"
    with log_path.open("ab") as err:
        proc = subprocess.run(
            cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=err, timeout=timeout + 60, check=False
        )
    lines = [ln for ln in proc.stdout.decode().splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise BenchError(f"quix baseline failed (exit {proc.returncode}):\n{tail}")
    out = json.loads(lines[-1])
    timing = RunTiming(n_events, start=out["first"], done=out["last"])
    timing.extra.update(deltas=out["deltas"], aggregates_applied=out["applied"])
    if out.get("stopped") and out.get("first"):
        # the same run, its end taken after the final checkpoint (state in RocksDB, offsets committed)
        with_checkpoint = n_events / (out["stopped"] - out["first"])
        timing.extra["events_per_s_incl_final_checkpoint"] = round(with_checkpoint, 1)
    shutil.rmtree(state, ignore_errors=True)
    return timing


def topic_specs_for(prefix: str, partitions: int) -> dict[str, Any]:
    from stream.config import Settings
    from stream.topics import topic_specs

    return dict(topic_specs(Settings(topic_prefix=prefix, partitions=partitions)))


def bench_throughput(cfg: BenchConfig, svc: Services, workdir: Path, run_id: str) -> dict[str, Any]:
    say(f"throughput: generating {cfg.events} simulated events")
    events = simulated_events(cfg.events)
    messages = to_messages(events)
    calls = [m for m in messages if m.stream == "telephony"]
    calls_events = [e for e, m in zip(events, messages, strict=True) if m.stream == "telephony"]
    all_prefix, calls_prefix = f"b{run_id}-all-", f"b{run_id}-calls-"
    for prefix in (all_prefix, calls_prefix):
        create_topics_sync(svc.kafka, topic_specs_for(prefix, cfg.partitions))
    say(f"throughput: producing {len(messages)} events (+{len(calls)} telephony-only), not timed")
    produce_sync(svc.kafka, all_prefix, messages)
    produce_sync(svc.kafka, calls_prefix, calls)
    expected_all = expected_redis(events)
    expected_calls = expected_redis(calls_events)
    out: dict[str, Any] = {
        "workload_sha256": fingerprint(messages),
        "events_all_streams": len(messages),
        "events_telephony": len(calls),
        "redis_hashes_checked": len(expected_all),
    }
    from stream.topics import INPUT_TOPICS

    say("throughput: raw aiokafka consumer (baseline)")
    raw = asyncio.run(
        raw_consume(
            svc.kafka, [f"{all_prefix}{t}" for t in INPUT_TOPICS.values()], len(messages), cfg.timeout_s
        )
    )
    out["raw_consumer"] = raw.to_json()
    say(f"  raw: {out['raw_consumer']['events_per_s']} ev/s")
    say("throughput: kpistream worker, all streams")
    w = measure_worker(svc, all_prefix, workdir, cfg.partitions, len(messages), expected_all, cfg.timeout_s)
    out["worker"] = w.to_json()
    say(f"  worker: {out['worker']['events_per_s']} ev/s")
    say("throughput: Quix Streams, telephony only (baseline)")
    import importlib.util

    if importlib.util.find_spec("quixstreams") is None:
        out["quix"] = {"skipped": "quixstreams is not installed: pip install quixstreams==3.28.1"}
        say("  quix skipped: quixstreams is not installed")
    elif svc.kafka_settings is not None and svc.kafka_settings.kafka_security_protocol != "PLAINTEXT":
        out["quix"] = {"skipped": "the Quix baseline runs on a PLAINTEXT broker only"}
        say("  quix skipped: the broker is secured")
    else:
        try:
            q = quix_run(svc, f"{calls_prefix}events.telephony", len(calls), workdir, cfg.timeout_s)
            out["quix"] = q.to_json()
            say(f"  quix: {out['quix']['events_per_s']} ev/s")
        except (BenchError, subprocess.TimeoutExpired, OSError) as exc:
            out["quix"] = {"error": str(exc)[-500:]}
            say(f"  quix failed: {exc}")
    say("throughput: kpistream worker, telephony only")
    wc = measure_worker(svc, calls_prefix, workdir, cfg.partitions, len(calls), expected_calls, cfg.timeout_s)
    out["worker_calls_only"] = wc.to_json()
    say(f"  worker (telephony only): {out['worker_calls_only']['events_per_s']} ev/s")
    if cfg.profile_dir is not None:
        say("profile: a further worker run under py-spy (not timed)")
        try:
            out["profiled_run"] = profile_worker(cfg, svc, workdir, run_id, messages, expected_all)
        except (BenchError, WorkerFailed, RuntimeError, OSError) as exc:
            out["profiled_run"] = {"error": str(exc)[-1000:]}
            say(f"  profile failed: {exc}")
    return out


def profile_worker(
    cfg: BenchConfig,
    svc: Services,
    workdir: Path,
    run_id: str,
    messages: list[Message],
    expected: Mapping[str, Mapping[str, int]],
) -> dict[str, Any]:
    from stream.bench.profile import attach_py_spy

    assert cfg.profile_dir is not None
    outdir = cfg.profile_dir
    prefix = f"b{run_id}-prof-"
    create_topics_sync(svc.kafka, topic_specs_for(prefix, cfg.partitions))
    produce_sync(svc.kafka, prefix, messages)
    timing = measure_worker(
        svc,
        prefix,
        workdir,
        cfg.partitions,
        len(messages),
        expected,
        cfg.timeout_s,
        on_start=lambda worker: attach_py_spy(worker.pid, outdir),
    )
    return timing.to_json()

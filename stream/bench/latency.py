"""Latency: produce-to-Redis time of probe calls inside a steady load, seen on the `kpi:updates` channel."""

from __future__ import annotations

import asyncio
import gc
import json
import time
from pathlib import Path
from typing import Any

from stream.bench import stats
from stream.bench.config import BenchConfig
from stream.bench.progress import say
from stream.bench.services import Services, flush_redis
from stream.bench.worker import running_worker
from stream.bench.workload import PROBE_QUEUE, Message, probe_pair, simulated_events, to_messages
from stream.commands.report import gc_paused
from stream.sinks.redis_keys import UPDATES_CHANNEL, QueueKey

PROBE_DAY = "2026-01-15"  # the probes' event day (the latency load's simulated day)


async def _latency_load(
    cfg: BenchConfig, svc: Services, prefix: str, load: list[Message]
) -> tuple[list[float], int]:
    import redis.asyncio as aioredis

    from stream import kafka_clients
    from stream.topics import INPUT_TOPICS

    producer = kafka_clients.producer(svc.kafka, acks="all", linger_ms=5)
    await producer.start()
    r = aioredis.from_url(svc.redis_url)
    pubsub: Any = r.pubsub()
    await pubsub.subscribe(UPDATES_CHANNEL)
    probe_key = QueueKey(PROBE_QUEUE, f"day:{PROBE_DAY}").encode()
    sent_at: dict[int, float] = {}
    seen_at: dict[int, float] = {}
    state = {"offered": 0}
    measured_from = 0
    stop_listening = asyncio.Event()

    async def listen() -> None:
        while not stop_listening.is_set():
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05)
            if msg is None or PROBE_QUEUE.encode() not in msg["data"]:
                continue
            now = time.time()
            body = json.loads(msg["data"])
            if body.get("key") != probe_key:
                continue
            offered = int(body["record"]["counts"].get("offered", 0))
            for k in range(state["offered"] + 1, offered + 1):
                seen_at[k] = now
            state["offered"] = max(state["offered"], offered)

    listener = asyncio.create_task(listen())
    probe_ts = 1_768_435_200_000  # 2026-01-15T00:00:00Z, PROBE_DAY
    topic_calls = f"{prefix}{INPUT_TOPICS['telephony']}"
    try:
        total_s = cfg.latency_warmup_s + cfg.latency_s
        t0 = time.time()
        i = 0  # load messages sent
        probes = 0
        while True:
            now = time.time()
            elapsed = now - t0
            if elapsed >= total_s:
                break
            due = int(elapsed * cfg.latency_rate) - i
            for _ in range(max(0, due)):
                if i % cfg.probe_every == 0:
                    probes += 1
                    if measured_from == 0 and elapsed >= cfg.latency_warmup_s:
                        measured_from = probes
                    offered, lost = probe_pair(probes, probe_ts + probes)
                    key = offered["call_id"].encode()
                    await producer.send(topic_calls, json.dumps(offered).encode(), key=key, partition=0)
                    sent_at[probes] = time.time()
                    await producer.send(topic_calls, json.dumps(lost).encode(), key=key, partition=0)
                    i += 2
                    continue
                m = load[i % len(load)]
                await producer.send(f"{prefix}{INPUT_TOPICS[m.stream]}", m.value, key=m.key)
                i += 1
            await asyncio.sleep(0.004)
        await producer.flush()
        deadline = time.time() + 20.0
        while state["offered"] < probes and time.time() < deadline:
            await asyncio.sleep(0.1)
    finally:
        stop_listening.set()
        await listener
        await pubsub.unsubscribe()
        await pubsub.aclose()
        await r.aclose()
        await producer.stop()
    measured = [k for k in sent_at if k >= measured_from] if measured_from else []
    lats = [seen_at[k] - sent_at[k] for k in measured if k in seen_at]
    return lats, len(measured)


def wait_until_quiet(max_busy_pct: float = 25.0, timeout_s: float = 30.0) -> float:
    """Wait (at most `timeout_s`) until the machine's CPU is below `max_busy_pct` over a second.

    The steps before leave work behind (workers shutting down, the broker writing and compacting
    hundreds of thousands of records); a latency figure should not measure that. Returns the busy
    percentage of the last second waited.
    """
    import psutil

    deadline = time.monotonic() + timeout_s
    busy = psutil.cpu_percent(interval=1.0)
    while busy > max_busy_pct and time.monotonic() < deadline:
        busy = psutil.cpu_percent(interval=1.0)
    return round(float(busy), 1)


def bench_latency(cfg: BenchConfig, svc: Services, workdir: Path, run_id: str) -> dict[str, Any]:
    n = int(cfg.latency_rate * (cfg.latency_s + cfg.latency_warmup_s)) + 10
    say(f"latency: {cfg.latency_rate:.0f} ev/s, {cfg.latency_s:.0f}s + {cfg.latency_warmup_s:.0f}s warm-up")
    load = to_messages(simulated_events(n, seed=23))
    prefix = f"b{run_id}-lat-"
    flush_redis(svc.redis_url)
    with running_worker(svc, prefix, workdir, cfg.partitions) as w:
        w.wait_ready()
        busy = wait_until_quiet()
        # This process still holds the earlier steps' workloads (hundreds of MB of objects): a full
        # collection of its garbage collector would pause the load and the probe subscriber, and
        # the pause would be counted as the worker's latency.
        gc.collect()
        with gc_paused():
            lats, sent = asyncio.run(_latency_load(cfg, svc, prefix, load))
        rss = w.rss_mb()
        stall = w.loop_stall_max_s()
    out = stats.latency_summary(lats, sent)
    out.update(
        worker_loop_stall_max_s=None if stall is None else round(stall, 3),
        rate_per_s=cfg.latency_rate,
        duration_s=cfg.latency_s,
        worker_rss_mb_after=round(rss, 1),
        machine_busy_pct_at_start=busy,
    )
    say(f"  latency p50 {out['p50_s']} s, p99 {out['p99_s']} s, missing {out['probes_missing']}")
    return out

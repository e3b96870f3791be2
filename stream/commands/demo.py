"""`kpistream demo`: broker, Redis, a worker and the simulator together, on loopback; Ctrl-C stops all.

The broker and Redis come from `kpistream dev` (Apache Kafka where Java 17 is present, else the
embedded Tansu); KPISTREAM_BROKER / KPISTREAM_REDIS_URL pointing elsewhere are used instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stream.devenv.process import free_port
from stream.devenv.services import new_broker, new_redis, pick_broker_kind
from stream.errors import KpiStreamError
from stream.simulator import SimConfig, generate


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole pipeline locally, fed by the traffic simulator",
        description="Start a local broker and Redis, a worker and the simulator; print the URLs; "
        "Ctrl-C stops everything that was started.",
    )
    p.add_argument("--data-dir", default=".kpistream/demo", help="where the demo keeps its services' data")
    p.add_argument(
        "--broker", choices=("auto", "kafka", "tansu"), default="auto", help="embedded broker kind"
    )
    p.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second (default 60)")
    p.add_argument("--hours", type=float, default=10.0, help="simulated hours of traffic (default 10)")
    p.add_argument("--seed", type=int, default=7, help="simulator seed")
    p.add_argument("--operators", type=int, default=20, help="simulated operators")
    p.add_argument("--calls-per-hour", type=float, default=400.0, help="simulated call arrivals per hour")
    p.add_argument(
        "--duration", type=float, default=0.0, help="stop after this many seconds (0 = until Ctrl-C)"
    )
    p.add_argument("--web-port", type=int, default=0, help="worker web port (default: a free one)")
    p.set_defaults(func=run)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


async def _feed(
    bootstrap: str, prefix: str, events: list[dict[str, Any]], speed: float, stop: asyncio.Event
) -> int:
    """Send the events paced by their event time divided by `speed`."""
    from aiokafka import AIOKafkaProducer

    from schemas.events import parse_event
    from stream.core.events import STREAM_OF_TYPE
    from stream.topics import INPUT_TOPICS

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    await producer.start()
    sent = 0
    try:
        t0_event = parse_event(json.dumps(events[0])).ts
        t0_real = time.monotonic()
        for e in events:
            if stop.is_set():
                break
            raw = json.dumps(e, separators=(",", ":")).encode()
            ev = parse_event(raw)
            due = t0_real + (ev.ts - t0_event) / 1000 / speed
            delay = due - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                if stop.is_set():
                    break
            stream = STREAM_OF_TYPE[ev.type]
            key = None if stream == "business" else ev.entity_key.encode()
            await producer.send(prefix + INPUT_TOPICS[stream], value=raw, key=key)
            sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def _center(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/periods", timeout=3) as r:
            body = json.loads(r.read())
    except (OSError, ValueError):
        return "worker not answering yet"
    rolling = body["periods"].get("rolling", {}).get("center", {})
    k, c = rolling.get("kpis", {}), rolling.get("counts", {})

    def pct(v: Any) -> str:
        return "n/a" if v is None else f"{100 * v:.1f}%"

    return (
        f"rolling hour: offered {c.get('offered', 0)}  SL {pct(k.get('sl'))}  LCR {pct(k.get('lcr'))}  "
        f"CAR {pct(k.get('car'))}  FCR {pct(k.get('fcr'))}"
    )


def run(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    started: list[Any] = []
    worker: subprocess.Popen[bytes] | None = None
    stop = asyncio.Event()
    try:
        broker_url = os.environ.get("KPISTREAM_BROKER")
        if not broker_url:
            kind = pick_broker_kind(args.broker)
            _say(f"starting {'Apache Kafka' if kind == 'kafka' else 'Tansu (memory only)'} ...")
            broker = new_broker(kind, data_dir / kind)
            broker.start(timeout=180)
            started.append(broker)
            broker_url = broker.url
        redis_url = os.environ.get("KPISTREAM_REDIS_URL")
        if not redis_url:
            _say("starting Redis ...")
            redis = new_redis(data_dir / "redis")
            redis.start(timeout=30)
            started.append(redis)
            redis_url = redis.url
        port = args.web_port or free_port()
        run_id = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        env = dict(os.environ)
        env.update(
            KPISTREAM_BROKER=broker_url,
            KPISTREAM_REDIS_URL=redis_url,
            KPISTREAM_WEB_PORT=str(port),
            KPISTREAM_DATA_DIR=str(data_dir / "worker"),
            KPISTREAM_APP_ID=f"kpistream-demo-{run_id}",
            KPISTREAM_TOPIC_PREFIX=f"demo-{run_id}.",
            KPISTREAM_REBALANCE_TIMEOUT_S="2",
        )
        log = (data_dir / "worker.log").open("ab")
        _say("starting the worker ...")
        worker = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                raise KpiStreamError(f"the worker exited; see {data_dir / 'worker.log'}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    if json.loads(r.read()).get("ready"):
                        break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            raise KpiStreamError(f"the worker did not become ready; see {data_dir / 'worker.log'}")
        base = f"http://127.0.0.1:{port}"
        print(f"wallboard:  {base}/wallboard", flush=True)
        print(f"KPIs (JSON): {base}/api/v1/periods", flush=True)
        print(f"metrics:    {base}/metrics", flush=True)
        print(f"Redis:      {redis_url}", flush=True)
        today = datetime.now(UTC).strftime("%Y-%m-%d")
        events = generate(
            SimConfig(
                seed=args.seed,
                start=f"{today}T08:00:00+00:00",
                hours=args.hours,
                operators=args.operators,
                calls_per_hour=args.calls_per_hour,
            )
        )
        _say(f"simulating {args.hours:g} hours ({len(events)} events) at {args.speed:g}x; Ctrl-C stops")
        return asyncio.run(
            _drive(broker_url.split("://", 1)[1], env["KPISTREAM_TOPIC_PREFIX"], events, args, port, stop)
        )
    except KeyboardInterrupt:
        return 130
    except KpiStreamError as exc:
        _say(f"kpistream demo: {exc}")
        return 2
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
        for service in reversed(started):
            service.stop()
        _say("stopped everything the demo started")


async def _drive(
    bootstrap: str,
    prefix: str,
    events: list[dict[str, Any]],
    args: argparse.Namespace,
    port: int,
    stop: asyncio.Event,
) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    feeder = asyncio.create_task(_feed(bootstrap, prefix, events, args.speed, stop))
    started = time.monotonic()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=5)
        _say(_center(port))
        if args.duration and time.monotonic() - started >= args.duration:
            stop.set()
    sent = await feeder
    _say(f"sent {sent} events")
    return 0

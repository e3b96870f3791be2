"""How fast Faust can hand messages to an agent, with and without our delivery and iteration.

    .venv/bin/python -m stream.bench.faust_path [--messages N]

Fills one 4-partition topic on a real Apache Kafka (started here, or `KPISTREAM_BROKER`) with N
small JSON messages, then runs a bare Faust agent that only `json.loads` each message, three ways,
each in its own process and consumer group:

- `faust`: Faust's consumer and `async for event in stream.events()` (Faust as shipped);
- `fast-consumer`: `agents.transport.FastTransport` and Faust's stream iteration;
- `kpistream`: `FastTransport` and `agents.batching.run_bulk` (what the worker's agents use).

Messages per second from the first message to the last, and each as a ratio to `faust` in the
same run (docs/benchmarks.md, docs/architecture.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MODES = ("faust", "fast-consumer", "kpistream")
TOPIC = "bench-faust-path"


def run_agent(mode: str, broker: str, messages: int) -> None:
    """The bare agent (runs in a subprocess); prints `RATE <messages/s>` and exits when done."""
    from agents.batching import run_bulk
    from agents.faust_compat import TransportApp
    from agents.transport import FastTransport

    class App(TransportApp):
        transport_class = None if mode == "faust" else FastTransport

    app = App(
        f"bench-faust-path-{mode}-{time.time_ns()}",
        broker=broker,
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        broker_rebalance_timeout=2,
        web_enabled=False,
        topic_disable_leader=True,
    )
    topic = app.topic(TOPIC, key_type=bytes, value_type=bytes, partitions=4)
    seen = 0
    started = 0.0

    async def handle(events: list[Any]) -> None:
        nonlocal seen, started
        if not started:
            started = time.perf_counter()
        for ev in events:
            json.loads(ev.value)
        seen += len(events)
        if seen >= messages:
            print(f"RATE {seen / (time.perf_counter() - started):.1f}", flush=True)
            os._exit(0)

    @app.agent(topic)
    async def agent(stream: Any) -> Any:
        if mode == "kpistream":
            async for _ in run_bulk(stream, handle, 2000):
                yield None
        else:
            async for ev in stream.events():
                await handle([ev])
                yield None

    sys.argv = [sys.argv[0], "worker", "-l", "warn"]
    app.main()


async def fill(bootstrap: str, messages: int) -> None:
    from aiokafka.admin import NewTopic

    from stream import kafka_clients

    admin = kafka_clients.admin(bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, 4, 1)])
    finally:
        await admin.close()
    producer = kafka_clients.producer(bootstrap, linger_ms=5)
    await producer.start()
    try:
        for i in range(messages):
            value = {
                "event_id": f"e{i}",
                "type": "call.offered",
                "ts": "2026-01-15T09:00:00Z",
                "call_id": f"c{i}",
            }
            await producer.send(TOPIC, key=str(i % 997).encode(), value=json.dumps(value).encode())
        await producer.flush()
    finally:
        await producer.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m stream.bench.faust_path", description=__doc__)
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--agent", choices=MODES, help=argparse.SUPPRESS)
    p.add_argument("--broker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.agent:
        run_agent(args.agent, args.broker, args.messages)
        return 0
    from stream.devenv.kafka import KafkaBroker

    broker_url = os.environ.get("KPISTREAM_BROKER")
    kafka = None
    if not broker_url:
        kafka = KafkaBroker(Path(tempfile.mkdtemp(prefix="kpistream-faust-path-")))
        kafka.start(120)
        broker_url = kafka.url
    try:
        asyncio.run(fill(broker_url.removeprefix("kafka://"), args.messages))
        rates: dict[str, float] = {}
        for mode in MODES:
            cmd = [sys.executable, "-m", "stream.bench.faust_path", "--agent", mode, "--broker", broker_url]
            out = subprocess.run(
                [*cmd, "--messages", str(args.messages)], capture_output=True, text=True, timeout=600
            )
            lines = [ln for ln in out.stdout.splitlines() + out.stderr.splitlines() if "RATE" in ln]
            rates[mode] = float(lines[-1].split("RATE", 1)[1].split()[0]) if lines else float("nan")
            print(f"{mode:14s} {rates[mode]:>10,.0f} msg/s  x{rates[mode] / rates['faust']:.2f}", flush=True)
        print(json.dumps({"messages": args.messages, "messages_per_s": rates}))
    finally:
        if kafka is not None:
            kafka.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

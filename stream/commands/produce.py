"""`kpistream produce`: publish a JSON-lines file of events to their input topics, keyed per the contract."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from schemas.parse import parse_event
from stream import kafka_clients
from stream.commands.worker import add_settings_args, settings_from_args
from stream.config import Settings
from stream.core.events import Event
from stream.errors import InvalidEvent, KpiStreamError
from stream.topics import INPUT_TOPICS, topic_specs


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "produce",
        help="publish a JSON-lines file of events to the input topics",
        description="Validate each line, send it unchanged to its input topic with the contract's key; "
        "report the lines it rejected.",
    )
    p.add_argument("--events", required=True, metavar="FILE.jsonl", help="events, one JSON object per line")
    p.add_argument(
        "--rate", type=float, default=0.0, help="at most this many events per second (0 = no limit)"
    )
    p.add_argument("--no-create-topics", action="store_true", help="do not create missing topics first")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    add_settings_args(p)
    p.set_defaults(func=run)


def route(topic_prefix: str, event: Event) -> tuple[str, bytes | None]:
    """The input topic and message key of a validated event (CONTRACT.md section 1)."""
    key = event.entity_key.encode() if event.stream != "business" else None
    return topic_prefix + INPUT_TOPICS[event.stream], key


async def produce_file(
    settings: Settings, path: Path, *, rate: float = 0.0, progress: bool = True
) -> tuple[int, list[tuple[int, str, str]]]:
    """Send every valid line; return (sent, rejected lines as (line, reason, detail))."""
    rejected: list[tuple[int, str, str]] = []
    sent = 0
    producer = kafka_clients.producer(settings, acks="all", linger_ms=5)
    await producer.start()
    started = time.monotonic()
    try:
        with path.open("rb") as f:
            for n, line in enumerate(f, 1):
                raw = line.rstrip(b"\r\n")
                if not raw.strip():
                    continue
                try:
                    event = parse_event(raw, max_bytes=settings.max_message_bytes)
                except InvalidEvent as exc:
                    rejected.append((n, exc.reason, exc.detail))
                    continue
                topic, key = route(settings.topic_prefix, event)
                await producer.send(topic, value=raw, key=key)
                sent += 1
                if rate > 0:
                    ahead = sent / rate - (time.monotonic() - started)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
                if progress and sent % 1000 == 0:
                    print(f"\rsent {sent} events", end="", file=sys.stderr, flush=True)
        await producer.flush()
    finally:
        await producer.stop()
    if progress and sent >= 1000:
        print(file=sys.stderr)
    return sent, rejected


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
        kafka_clients.check_connection_sync(settings)
        if not args.no_create_topics:
            from stream.topic_admin import create_topics

            asyncio.run(create_topics(settings, topic_specs(settings)))
        sent, rejected = asyncio.run(
            produce_file(settings, Path(args.events), rate=args.rate, progress=not args.quiet)
        )
    except (KpiStreamError, OSError) as exc:
        print(f"kpistream produce: {exc}", file=sys.stderr)
        return 2
    for n, reason, detail in rejected[:50]:
        print(f"line {n}: {reason}: {detail}", file=sys.stderr)
    print(f"sent {sent} events, rejected {len(rejected)} lines", file=sys.stderr)
    return 1 if rejected else 0

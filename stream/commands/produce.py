"""`kpistream produce`: publish a JSON-lines file of events (or standard input) to their input
topics, keyed per the contract. `open_producer` and `send_line` are also how `kpistream import
queue-log --follow --produce` sends, so both produce alike."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from schemas.parse import parse_event
from stream.commands.worker import add_settings_args, settings_from_args
from stream.config import Settings
from stream.core.events import Event
from stream.errors import InvalidEvent, KpiStreamError
from stream.topics import INPUT_TOPICS, topic_specs

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

PROGRESS_EVERY = 1000  # events between two progress lines


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "produce",
        help="publish a JSON-lines file of events (or stdin) to the input topics",
        description="Validate each line, send it unchanged to its input topic with the contract's key; "
        "report the lines it rejected. '-' reads standard input: "
        "kpistream import queue-log queue_log | kpistream produce -",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("source", nargs="?", metavar="FILE.jsonl", help="events, one per line ('-' = stdin)")
    src.add_argument("--events", metavar="FILE.jsonl", help="the same, as an option")
    p.add_argument(
        "--rate", type=float, default=0.0, help="at most this many events per second (0 = no limit)"
    )
    p.add_argument("--no-create-topics", action="store_true", help="do not create missing topics first")
    p.add_argument(
        "--quiet", action="store_true", help="no progress line (never shown unless stderr is a terminal)"
    )
    add_settings_args(p)
    p.set_defaults(func=run)


def route(topic_prefix: str, event: Event) -> tuple[str, bytes | None]:
    """The input topic and message key of a validated event (CONTRACT.md section 1)."""
    key = event.entity_key.encode() if event.stream != "business" else None
    return topic_prefix + INPUT_TOPICS[event.stream], key


def open_producer(settings: Settings) -> AIOKafkaProducer:
    """The producer every kpistream command sends input events with (not started yet): every
    in-sync replica acknowledges a message before it counts as sent."""
    from aiokafka import AIOKafkaProducer

    return AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", linger_ms=5)


async def send_line(producer: AIOKafkaProducer, settings: Settings, raw: bytes) -> asyncio.Future[Any]:
    """Validate one JSON event and queue it, unchanged, for its topic with its key; the future of
    its delivery. InvalidEvent (nothing sent) if it is not a contract event."""
    event = parse_event(raw, max_bytes=settings.max_message_bytes)
    topic, key = route(settings.topic_prefix, event)
    delivery: asyncio.Future[Any] = await producer.send(topic, value=raw, key=key)
    return delivery


@contextlib.contextmanager
def _open_source(source: Path | BinaryIO) -> Iterator[BinaryIO]:
    if isinstance(source, Path):
        with source.open("rb") as f:
            yield f
    else:
        yield source


async def produce_file(
    settings: Settings, source: Path | BinaryIO, *, rate: float = 0.0, progress: bool = True
) -> tuple[int, list[tuple[int, str, str]]]:
    """Send every valid line of a file (or a binary stream such as stdin); return (sent, rejected
    lines as (line, reason, detail))."""
    rejected: list[tuple[int, str, str]] = []
    sent = 0
    producer = open_producer(settings)
    await producer.start()
    started = time.monotonic()
    try:
        with _open_source(source) as f:
            for n, line in enumerate(f, 1):
                raw = line.rstrip(b"\r\n")
                if not raw.strip():
                    continue
                try:
                    await send_line(producer, settings, raw)
                except InvalidEvent as exc:
                    rejected.append((n, exc.reason, exc.detail))
                    continue
                sent += 1
                if rate > 0:
                    ahead = sent / rate - (time.monotonic() - started)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
                if progress and sent % PROGRESS_EVERY == 0:
                    print(f"\rsent {sent} events", end="", file=sys.stderr, flush=True)
        await producer.flush()
    finally:
        await producer.stop()
    if progress and sent >= PROGRESS_EVERY:
        print(file=sys.stderr)
    return sent, rejected


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
        if not args.no_create_topics:
            from stream.topic_admin import create_topics

            asyncio.run(create_topics(settings.bootstrap_servers, topic_specs(settings)))
        name = args.events if args.events is not None else args.source
        # stdin is read as bytes, as a file is: the events go out exactly as they came in.
        source: Path | BinaryIO = sys.stdin.buffer if name == "-" else Path(name)
        # Progress is for a person watching: never into a log file or a pipe.
        progress = not args.quiet and sys.stderr.isatty()
        sent, rejected = asyncio.run(produce_file(settings, source, rate=args.rate, progress=progress))
    except (KpiStreamError, OSError) as exc:
        print(f"kpistream produce: {exc}", file=sys.stderr)
        return 2
    for n, reason, detail in rejected[:50]:
        print(f"line {n}: {reason}: {detail}", file=sys.stderr)
    print(f"sent {sent} events, rejected {len(rejected)} lines", file=sys.stderr)
    return 1 if rejected else 0

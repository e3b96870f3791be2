"""`kpistream simulate`: the traffic simulator as a command, to a JSON-lines file or to the input topics.

Events are written or sent in event-time order, paced by `--speed` (simulated seconds per real
second; 0 = as fast as possible); a progress line goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import IO, Any
from zoneinfo import ZoneInfo

from schemas.parse import parse_event
from stream.commands.produce import route
from stream.commands.worker import add_settings_args, settings_from_args
from stream.errors import KpiStreamError
from stream.simulator import SimConfig, generate

DEFAULT = SimConfig()
Progress = Callable[[int, int], None]  # (events sent, event time of the last one in ms)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "simulate",
        help="generate realistic contact-centre traffic (JSON lines or the input topics)",
        description="Simulate a contact centre (Poisson arrivals with a daily profile, operators on "
        "shifts with skills, queues, abandons, losses, chats, e-mails, repeat contacts) and write its "
        "events as JSON lines or send them to the input topics. Same seed, same events.",
    )
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument(
        "--start",
        help="first instant: YYYY-MM-DD or an ISO date-time; a date starts at 00:00, no offset means "
        "the --tz zone (default: today 08:00 in the configured zone)",
    )
    span = p.add_mutually_exclusive_group()
    span.add_argument("--hours", type=float, help="simulated hours (default 12)")
    span.add_argument("--days", type=float, help="simulated days")
    p.add_argument("--operators", type=int, default=DEFAULT.operators, help="operators on the roster")
    p.add_argument(
        "--calls-per-hour",
        type=float,
        default=DEFAULT.calls_per_hour,
        help="call arrivals at the peak hour",
    )
    p.add_argument("--chats-per-hour", type=float, default=DEFAULT.chats_per_hour, help="chats at the peak")
    p.add_argument(
        "--emails-per-hour", type=float, default=DEFAULT.emails_per_hour, help="e-mails at the peak"
    )
    p.add_argument(
        "--queues", default=",".join(DEFAULT.queues), help="comma-separated queue names (busiest first)"
    )
    p.add_argument(
        "--profile", choices=("day", "flat"), default="day", help="daily profile or flat 24 h load"
    )
    p.add_argument(
        "--understaffed-at",
        type=float,
        default=DEFAULT.understaffed_at,
        metavar="HOUR",
        help="local hour of an understaffed hour each day (a share of the operators called away; "
        "default none)",
    )
    p.add_argument(
        "--business-every",
        type=float,
        default=DEFAULT.business_every_h,
        metavar="HOURS",
        help="post orders and cost this often while open (default 0: once at the day's close)",
    )
    p.add_argument(
        "--speed", type=float, default=0.0, help="simulated seconds per real second (0 = as fast as possible)"
    )
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--out", metavar="FILE.jsonl", help="write JSON lines to this file ('-' = stdout)")
    out.add_argument(
        "--produce", action="store_true", help="send to the input topics (settings as for produce)"
    )
    p.add_argument(
        "--no-create-topics", action="store_true", help="with --produce: do not create topics first"
    )
    p.add_argument("--quiet", action="store_true", help="no progress line")
    add_settings_args(p)
    p.set_defaults(func=run)


def start_of(start: str | None, tz: str, today: date | None = None) -> str:
    """The simulation's start as an ISO date-time with offset: a date is its local midnight."""
    zone = ZoneInfo(tz)
    if not start:
        d = today or datetime.now(zone).date()
        return datetime(d.year, d.month, d.day, 8, tzinfo=zone).isoformat()
    try:
        dt = datetime.fromisoformat(start)
    except ValueError as exc:
        raise KpiStreamError(f"--start {start!r}: expected YYYY-MM-DD or an ISO date-time") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=zone)
    return dt.isoformat()


def check_day_extras(understaffed_at: float, business_every: float) -> None:
    """--understaffed-at is an hour of the day (or negative: none); --business-every is not negative."""
    if understaffed_at >= 24 or business_every < 0:
        raise KpiStreamError("need --understaffed-at below 24 (negative: none) and --business-every >= 0")


def config_from_args(args: argparse.Namespace, tz: str) -> SimConfig:
    hours = 24 * args.days if args.days is not None else (args.hours if args.hours is not None else 12.0)
    queues = tuple(q.strip() for q in args.queues.split(",") if q.strip())
    if hours <= 0 or args.operators < 0 or not queues:
        raise KpiStreamError("need --hours/--days > 0, --operators >= 0 and at least one queue")
    check_day_extras(args.understaffed_at, args.business_every)
    return SimConfig(
        seed=args.seed,
        start=start_of(args.start, tz),
        hours=hours,
        operators=args.operators,
        calls_per_hour=args.calls_per_hour,
        chats_per_hour=args.chats_per_hour,
        emails_per_hour=args.emails_per_hour,
        queues=queues,
        profile=args.profile,
        tz=tz,
        understaffed_at=args.understaffed_at,
        business_every_h=args.business_every,
    )


def event_ms(event: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(str(event["ts"]).replace("Z", "+00:00")).timestamp() * 1000)


class Pacer:
    """Holds events back until their event time, divided by `speed`, has passed in real time."""

    def __init__(self, speed: float, first_ms: int) -> None:
        self.speed = speed
        self.first_ms = first_ms
        self.t0 = time.monotonic()

    def delay(self, ts_ms: int) -> float:
        if self.speed <= 0:
            return 0.0
        return self.t0 + (ts_ms - self.first_ms) / 1000 / self.speed - time.monotonic()


async def send_paced(
    bootstrap: str,
    topic_prefix: str,
    events: Sequence[dict[str, Any]],
    speed: float,
    stop: asyncio.Event | None = None,
    progress: Progress | None = None,
) -> int:
    """Send events to the input topics with the contract's keys, paced by event time; returns the count."""
    from aiokafka import AIOKafkaProducer

    stop = stop or asyncio.Event()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await producer.start()
    sent = 0
    try:
        if not events:
            return 0
        pacer = Pacer(speed, event_ms(events[0]))
        for e in events:
            if stop.is_set():
                break
            raw = json.dumps(e, separators=(",", ":")).encode()
            ev = parse_event(raw)
            wait = pacer.delay(ev.ts)
            if wait > 0:
                await producer.flush()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait)
                if stop.is_set():
                    break
            topic, key = route(topic_prefix, ev)
            await producer.send(topic, value=raw, key=key)
            sent += 1
            if progress is not None:
                progress(sent, ev.ts)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


class ProgressLine:
    """`\\r`-rewritten stderr line: events so far and the simulated clock, at most twice a second."""

    def __init__(self, total: int, enabled: bool = True) -> None:
        self.total = total
        self.enabled = enabled
        self.last = 0.0
        self.shown = False

    def __call__(self, sent: int, ts_ms: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < 0.5 and sent < self.total):
            return
        self.last = now
        clock = datetime.fromtimestamp(ts_ms / 1000).astimezone().strftime("%Y-%m-%d %H:%M:%S")
        print(f"\r{sent}/{self.total} events, simulated time {clock}", end="", file=sys.stderr, flush=True)
        self.shown = True

    def done(self) -> None:
        if self.shown:
            print(file=sys.stderr, flush=True)


def write_paced(events: Sequence[dict[str, Any]], out: IO[str], speed: float, progress: Progress) -> int:
    pacer = Pacer(speed, event_ms(events[0])) if events else None
    n = 0
    for e in events:
        if pacer is not None and speed > 0:
            wait = pacer.delay(event_ms(e))
            if wait > 0:
                out.flush()
                time.sleep(wait)
        out.write(json.dumps(e, separators=(",", ":")))
        out.write("\n")
        n += 1
        if speed > 0 or n % 1000 == 0 or n == len(events):
            progress(n, event_ms(e))
    out.flush()
    return n


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
        cfg = config_from_args(args, settings.tz)
        events = generate(cfg)
        if not args.quiet:
            print(
                f"simulated {cfg.hours:g} h from {cfg.start}: {len(events)} events "
                f"({cfg.operators} operators, {cfg.calls_per_hour:g} calls/h at the peak)",
                file=sys.stderr,
            )
        progress = ProgressLine(len(events), enabled=not args.quiet)
        if args.produce:
            if not args.no_create_topics:
                from stream.topic_admin import create_topics
                from stream.topics import topic_specs

                asyncio.run(create_topics(settings.bootstrap_servers, topic_specs(settings)))
            sent = asyncio.run(
                send_paced(
                    settings.bootstrap_servers, settings.topic_prefix, events, args.speed, None, progress
                )
            )
        elif args.out == "-":
            sent = write_paced(events, sys.stdout, args.speed, progress)
        else:
            with open(args.out, "w", encoding="utf-8") as f:
                sent = write_paced(events, f, args.speed, progress)
        progress.done()
    except KeyboardInterrupt:
        return 130
    except (KpiStreamError, OSError) as exc:
        print(f"kpistream simulate: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(f"{'sent' if args.produce else 'wrote'} {sent} events", file=sys.stderr)
    return 0

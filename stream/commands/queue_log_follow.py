"""`kpistream import queue-log --follow FILE --produce`: a live Asterisk queue_log into Kafka.

The loop: read the complete lines written since the position (stream/importers/tail.py), turn
them into contract events with the importer's own reader (its per-call state carried from line
to line), send them as `kpistream produce` does, wait until Kafka acknowledged every one of them,
and only then store the position with the reader's state (stream/importers/follow_state.py). A
stop at any point, SIGKILL included, loses no line and repeats at most the lines since the last
save, with the same event ids. SIGTERM or Ctrl-C: the current batch is finished and saved first.
The position is also stored, at once, whenever the follower starts a file (at start-up, after a
rotation or a truncation) and before any of its lines is read: the lines read since the last
save are then always those of the stored file, which a restart finds again (docs/importers.md).

Metrics for Prometheus on ``--metrics-port`` (docs/importers.md): lines read, bad lines by
reason, events produced by type, bytes behind, the time of the last line read, rotations and
truncations. A bad line is logged with its line number and counted, never fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client import Counter as PromCounter

from stream.commands.produce import open_producer, send_line
from stream.config import Settings
from stream.importers import ImportResult, load_zone
from stream.importers.follow_state import FollowState, load_state, save_state
from stream.importers.queue_log import LineReader
from stream.importers.tail import Follower

__all__ = ["FollowMetrics", "FollowOptions", "FollowSummary", "follow_and_produce"]

log = logging.getLogger(__name__)

# A call with no line for this long (queue_log time) is forgotten, so the state stays small; a
# finished one sooner (what may still come for it, a re-entry after a transfer, comes at once).
CALL_MEMORY_MS: Final = 24 * 3600 * 1000
FINISHED_CALL_MEMORY_MS: Final = 3600 * 1000


@dataclass(frozen=True, slots=True)
class FollowOptions:
    """How to follow: the log, the state file, the zone of date-time lines, polling and saving."""

    log_path: Path
    state_path: Path
    tz: str = "UTC"
    start_at_end: bool = False  # with no state yet: only lines written from now on
    poll_s: float = 0.25  # pause when there is nothing new
    save_every_s: float = 1.0  # at most one state write per this: what a restart may read again


@dataclass(frozen=True, slots=True)
class FollowMetrics:
    """The follower's Prometheus metrics, on their own registry."""

    registry: CollectorRegistry
    lines_read: PromCounter
    bad_lines: PromCounter
    events_produced: PromCounter
    lag_bytes: Gauge
    last_line_ts: Gauge
    rotations: PromCounter
    truncations: PromCounter

    @classmethod
    def create(cls) -> FollowMetrics:
        r = CollectorRegistry()
        p = "kpistream_queue_log_"
        return cls(
            registry=r,
            lines_read=PromCounter(p + "lines_read", "queue_log lines read", registry=r),
            bad_lines=PromCounter(
                p + "bad_lines", "queue_log lines that could not be used", ["reason"], registry=r
            ),
            events_produced=PromCounter(
                p + "events_produced", "contract events acknowledged by Kafka", ["type"], registry=r
            ),
            lag_bytes=Gauge(p + "lag_bytes", "bytes written to the log and not read yet", registry=r),
            last_line_ts=Gauge(
                p + "last_line_timestamp_seconds", "log time of the newest line read (epoch)", registry=r
            ),
            rotations=PromCounter(p + "rotations", "times the log was rotated (renamed)", registry=r),
            truncations=PromCounter(
                p + "truncations", "times the log was truncated or rewritten", registry=r
            ),
        )


@dataclass(slots=True)
class FollowSummary:
    """What a run did, for the summary line at its end."""

    lines: int = 0
    events: Counter[str] = field(default_factory=Counter)
    bad: Counter[str] = field(default_factory=Counter)


def _event_bytes(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


async def follow_and_produce(
    settings: Settings, opts: FollowOptions, stop: asyncio.Event, metrics: FollowMetrics | None = None
) -> FollowSummary:
    """Follow the log and produce its events until `stop` is set (module docstring). Raises
    ValueError for an unusable state file or zone, and Kafka errors when a send fails (the
    position is then not advanced)."""
    m = metrics or FollowMetrics.create()
    zone = load_zone(opts.tz)
    result = ImportResult()
    state = load_state(opts.state_path)
    if state is None:
        reader = LineReader(result, zone)
        follower = Follower(opts.log_path, start_at_end=opts.start_at_end)
    else:
        if Path(state.path).resolve() != opts.log_path.resolve():
            raise ValueError(f"{opts.state_path} is the state of {state.path}, not of {opts.log_path}")
        reader = LineReader.restore(state.reader, result, zone)
        follower = Follower(opts.log_path, state.position)
        log.info("%s: resuming at line %d", opts.log_path, state.position.line_no)
    summary = FollowSummary()
    saved = follower.position
    if state is None or saved != state.position:
        # The file this run starts in (or none yet), before any of its lines is used.
        save_state(opts.state_path, FollowState(str(opts.log_path), saved, reader.state()))
    last_save = time.monotonic()
    counted_rotations = counted_truncations = 0
    producer = open_producer(settings)
    await producer.start()
    try:
        while True:
            generation = follower.generation
            lines = follower.read()
            # The follower moved to another file (or started a truncated one over): its lines
            # come with the next read, after the position naming it is stored below.
            new_file = follower.generation != generation
            reader.clock_limit_ms = int(time.time() * 1000) + settings.kpi.max_clock_skew_ms
            deliveries: list[asyncio.Future[Any]] = []
            types: Counter[str] = Counter()
            for line_no, text in lines:
                for event in reader.feed(line_no, text):
                    deliveries.append(await send_line(producer, settings, _event_bytes(event)))
                    types[event["type"]] += 1
                for s in result.skipped:
                    log.warning("%s line %d: %s: %s", opts.log_path, s.line, s.reason, s.detail)
                    m.bad_lines.labels(s.reason).inc()
                    summary.bad[s.reason] += 1
                result.skipped.clear()
            # Acknowledged by Kafka before the position moves past their lines (never lost).
            await asyncio.gather(*deliveries)
            for etype, n in types.items():
                m.events_produced.labels(etype).inc(n)
            summary.events.update(types)
            summary.lines += len(lines)
            m.lines_read.inc(len(lines))
            if reader.newest_ms:
                m.last_line_ts.set(reader.newest_ms / 1000)
            m.rotations.inc(follower.rotations - counted_rotations)
            m.truncations.inc(follower.truncations - counted_truncations)
            counted_rotations, counted_truncations = follower.rotations, follower.truncations
            m.lag_bytes.set(follower.lag_bytes())
            reader.forget_calls_before(
                reader.newest_ms - CALL_MEMORY_MS, reader.newest_ms - FINISHED_CALL_MEMORY_MS
            )
            now = time.monotonic()
            position = follower.position
            if position != saved and (new_file or now - last_save >= opts.save_every_s or stop.is_set()):
                save_state(opts.state_path, FollowState(str(opts.log_path), position, reader.state()))
                saved, last_save = position, now
            if stop.is_set():
                break
            if not lines and not new_file:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), opts.poll_s)
    finally:
        await producer.stop()
        follower.close()
    return summary


def run(settings: Settings, opts: FollowOptions, metrics_port: int | None, metrics_host: str) -> int:
    """The command: follow until SIGTERM/SIGINT; 0 then, 2 when it cannot go on."""
    metrics = FollowMetrics.create()
    if metrics_port is not None:
        from prometheus_client import start_http_server

        try:
            start_http_server(metrics_port, metrics_host, registry=metrics.registry)
        except OSError as exc:
            print(
                f"kpistream import queue-log --follow: --metrics-port {metrics_port}: {exc}", file=sys.stderr
            )
            return 2
        log.info("metrics on http://%s:%d/metrics", metrics_host, metrics_port)

    async def main() -> FollowSummary:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await follow_and_produce(settings, opts, stop, metrics)

    try:
        summary = asyncio.run(main())
    except (OSError, ValueError) as exc:
        print(f"kpistream import queue-log --follow: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a Kafka error: the position was not advanced past unsent lines
        print(f"kpistream import queue-log --follow: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    bad = sum(summary.bad.values())
    print(
        f"kpistream import queue-log --follow: {summary.lines} lines read, "
        f"{summary.events.total()} events produced, {bad} bad lines"
        + (f" ({', '.join(f'{r} {n}' for r, n in summary.bad.most_common())})" if bad else ""),
        file=sys.stderr,
    )
    return 0

"""`kpistream worker`: one Faust worker of the pipeline."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading
from typing import Any

from stream.allocator import use_configured_allocator
from stream.config import Settings, load_settings
from stream.errors import KpiStreamError
from stream.logformat import configure_logging, worker_logging_config

log = logging.getLogger(__name__)

# After SIGTERM (or SIGINT) the worker has this long to stop cleanly (commit, flush, leave the
# group); past it, it exits at once with EXIT_STOP_TIMEOUT. A broker that is gone makes the
# clean stop wait on network timeouts, and a supervisor must be able to count on a bound.
STOP_LIMIT_S = 15.0
EXIT_STOP_TIMEOUT = 3


def add_settings_args(p: argparse.ArgumentParser) -> None:
    """Flags that override env and the TOML file (CONTRACT.md section 8)."""
    p.add_argument("--config", metavar="FILE.toml", help="settings file (also KPISTREAM_CONFIG)")
    p.add_argument("--broker", help="kafka://HOST:PORT (KPISTREAM_BROKER)")
    p.add_argument("--redis-url", help="redis://HOST:PORT/DB (KPISTREAM_REDIS_URL)")
    p.add_argument("--tz", help="time zone of day and month periods (KPISTREAM_TZ)")
    p.add_argument("--strategies", metavar="FILE", help="strategies file (KPISTREAM_STRATEGIES)")
    p.add_argument("--partitions", type=int, help="partitions of the keyed topics and tables")
    p.add_argument("--web-port", type=int, help="port of /healthz, /metrics, /wallboard")
    p.add_argument("--data-dir", help="where the worker keeps local state")


def settings_from_args(args: argparse.Namespace) -> Settings:
    keys = ("broker", "redis_url", "tz", "strategies", "partitions", "web_port", "data_dir")
    overrides: dict[str, Any] = {
        k: getattr(args, k, None) for k in keys if getattr(args, k, None) is not None
    }
    return load_settings(toml_path=getattr(args, "config", None), overrides=overrides)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "worker",
        help="run a Faust worker of the pipeline",
        description="Run one worker: create missing topics (or check them: KPISTREAM_TOPICS_MODE=check), "
        "consume the input topics, publish KPIs.",
    )
    add_settings_args(p)
    p.set_defaults(func=run)


def create_all_topics(settings: Settings) -> None:
    from stream.topic_admin import create_topics
    from stream.topics import topic_plan

    asyncio.run(create_topics(settings, topic_plan(settings)))


def prepare_topics(settings: Settings) -> None:
    """Create the missing topics of the plan, or (`topics_mode = "check"`) only check them all.

    A check that finds a topic missing or wrong raises TopicsMismatch naming every difference,
    before Faust starts: the worker must not run on topics it would miscount with.
    """
    if settings.topics_mode != "check":
        create_all_topics(settings)
        return
    from stream.topic_check import require_topics

    diff = require_topics(settings)
    for warning in diff.warnings:
        log.warning("topic check: %s", warning)
    log.info("topic check: every topic of the plan exists with its partitions and cleanup policy")


def build_worker_app(settings: Settings) -> Any:
    from agents.consumer_lag import install_consumer_lag
    from agents.loop_stall import install_loop_stall
    from agents.pipeline import Pipeline
    from agents.publishing import install_publisher
    from agents.web import install_pages
    from stream.gc_schedule import FullCollections
    from stream.memory_trim import MemoryTrimmer, glibc_trim
    from stream.strategies import load_book

    book = load_book(settings.strategies)
    pipeline = Pipeline(settings)
    publisher = install_publisher(pipeline, book)
    install_pages(pipeline, book, publisher)
    install_consumer_lag(pipeline)
    install_loop_stall(pipeline.app, pipeline.metrics.registry, settings.session_timeout_s)
    trimmer = MemoryTrimmer(glibc_trim(), settings.memory_trim_interval_s)

    async def kpistream_memory_trim() -> None:
        await trimmer.run()

    pipeline.app.task(kpistream_memory_trim)
    collections = FullCollections(settings.gc_full_interval_s)

    async def kpistream_gc_full() -> None:
        collections.install()  # when the worker runs, not when its app is built (tests build it)
        await collections.run()

    pipeline.app.task(kpistream_gc_full)
    return pipeline


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
        if getattr(args, "started_as_program", False):
            # Before Faust is imported or anything connects: this may execute the program again.
            use_configured_allocator(settings.allocator)
    except KpiStreamError as exc:
        log.error("%s", exc)
        return 2

    import faust

    from agents.faust_compat import check_faust_version
    from stream import kafka_clients

    try:
        check_faust_version()  # our use of Faust's internals is version-bound
        level = logging.getLogger().level or logging.INFO
        configure_logging(settings.log_format, level)  # a settings file may name the format
        log.info("starting worker with %s", settings.redacted())
        kafka_clients.check_connection_sync(settings)
        prepare_topics(settings)
        pipeline = build_worker_app(settings)
    except KpiStreamError as exc:
        log.error("%s", exc)
        return 2
    worker = bounded_stop_worker(faust.Worker)(
        pipeline.app,
        loglevel=level,
        logging_config=worker_logging_config(settings.log_format, level),
        quiet=settings.log_format == "json",  # no start-up banner between the JSON lines
    )
    worker.execute_from_commandline()
    return 0


class StopWatchdog:
    """Ends the process `limit_s` after `arm()` unless it ended before (a daemon thread)."""

    def __init__(self, limit_s: float, exit_code: int = EXIT_STOP_TIMEOUT) -> None:
        self.limit_s = limit_s
        self.exit_code = exit_code
        self.timer: threading.Timer | None = None

    def arm(self) -> None:
        if self.timer is None:
            self.timer = threading.Timer(self.limit_s, self.expire)
            self.timer.daemon = True
            self.timer.start()

    def expire(self) -> None:
        # One line on stderr, written directly: logging's locks may be held by the stuck loop.
        sys.stderr.write(
            f"[kpistream] worker did not stop within {self.limit_s:g} s of the stop signal: "
            f"exiting with code {self.exit_code}\n"
        )
        sys.stderr.flush()
        os._exit(self.exit_code)


def bounded_stop_worker(base: type[Any], limit_s: float = STOP_LIMIT_S) -> type[Any]:
    """`base` (a mode/Faust Worker) whose stop signals also arm a `StopWatchdog`."""
    from agents.faust_compat import schedule_worker_shutdown

    class BoundedStopWorker(base):  # type: ignore[misc]
        watchdog = StopWatchdog(limit_s)

        def install_signal_handlers(self) -> None:
            super().install_signal_handlers()
            if sys.platform != "win32":
                for sig in (signal.SIGTERM, signal.SIGINT):
                    self.loop.add_signal_handler(sig, self.on_stop_signal, sig)

        def on_stop_signal(self, sig: signal.Signals) -> None:
            self.watchdog.arm()
            schedule_worker_shutdown(self, sig)

    return BoundedStopWorker

"""`kpistream demo`: broker, Redis, a worker and the simulator together, on loopback; Ctrl-C stops all.

The broker and Redis come from `kpistream dev` (Apache Kafka where Java 17 is present, else the
embedded Tansu); KPISTREAM_BROKER / KPISTREAM_REDIS_URL pointing elsewhere are used instead. The
simulator plays a working day from today's 08:00 in the configured zone (KPISTREAM_TZ), paced by
`--speed`; every few seconds a line shows what was sent and the centre's rolling hour.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from stream.commands.dev_only import require_dev_packages
from stream.commands.simulate import check_day_extras, send_paced, start_of
from stream.config import load_settings
from stream.errors import KpiStreamError
from stream.simulator import SimConfig, generate

if TYPE_CHECKING:
    from stream.devtools.worker_process import WorkerProcess

DEFAULT = SimConfig()
# The demo's day shows what the floor would see (issue #14 item 6): an understaffed hour at the
# morning peak fires the LCR and CAR alerts, which resolve about an hour after it ends; the ERP
# posts every hour, so the balanced scorecard's finance figure is not empty for long.
DEMO_UNDERSTAFFED_AT = 10.0
DEMO_BUSINESS_EVERY_H = 1.0
REPORT_EVERY_S = 5.0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole pipeline locally, fed by the traffic simulator",
        description="Start a local broker and Redis, a worker and the simulator (a working day from "
        "today's 08:00); print the URLs and, every few seconds, the centre's rolling KPIs. Ctrl-C or "
        "--duration stops everything that was started.",
    )
    p.add_argument("--data-dir", default=".kpistream/demo", help="where the demo keeps its services' data")
    p.add_argument(
        "--broker", choices=("auto", "kafka", "tansu"), default="auto", help="embedded broker kind"
    )
    p.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second (default 60)")
    p.add_argument("--hours", type=float, default=12.0, help="simulated hours from 08:00 (default 12)")
    p.add_argument("--seed", type=int, default=7, help="simulator seed")
    p.add_argument("--operators", type=int, default=DEFAULT.operators, help="operators on the roster")
    p.add_argument(
        "--calls-per-hour", type=float, default=DEFAULT.calls_per_hour, help="call arrivals at the peak hour"
    )
    p.add_argument(
        "--understaffed-at",
        type=float,
        default=DEMO_UNDERSTAFFED_AT,
        metavar="HOUR",
        help="local hour of the understaffed hour, when LCR and CAR alerts fire (default 10, the "
        "morning peak; -1 = none)",
    )
    p.add_argument(
        "--business-every",
        type=float,
        default=DEMO_BUSINESS_EVERY_H,
        metavar="HOURS",
        help="the ERP posts orders and cost this often, so the scorecard's finance figure fills "
        "during the day (default 1; 0 = once at the close)",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=0.0,
        help="stop after this many seconds of traffic (0 = until Ctrl-C)",
    )
    p.add_argument("--web-port", type=int, default=0, help="worker web port (default: a free one)")
    p.set_defaults(func=run)


def demo_config(args: argparse.Namespace, start: str, tz: str) -> SimConfig:
    """The simulated day of the demo, from its flags (tests/unit/commands/test_demo_day.py)."""
    check_day_extras(args.understaffed_at, args.business_every)
    return SimConfig(
        seed=args.seed,
        start=start,
        hours=args.hours,
        operators=args.operators,
        calls_per_hour=args.calls_per_hour,
        tz=tz,
        understaffed_at=args.understaffed_at,
        business_every_h=args.business_every,
    )


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _pct(v: Any) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _center(port: int) -> str:
    """The centre's rolling hour as the worker computes it."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/periods", timeout=3) as r:
            body = json.loads(r.read())
    except (OSError, ValueError):
        return "worker not answering"
    rolling = body.get("periods", {}).get("rolling", {}).get("center", {})
    k, c = rolling.get("kpis", {}), rolling.get("counts", {})
    return (
        f"rolling hour: offered {c.get('offered', 0)}  SL {_pct(k.get('sl'))}  LCR {_pct(k.get('lcr'))}  "
        f"CAR {_pct(k.get('car'))}  FCR {_pct(k.get('fcr'))}"
    )


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    started: list[Any] = []
    worker: WorkerProcess | None = None
    signal.signal(signal.SIGTERM, _raise_interrupt)  # a kill from outside cleans up like Ctrl-C
    try:
        require_dev_packages("demo", "stream.devenv", "stream.devtools")
        from stream.devenv.process import free_port
        from stream.devenv.services import new_broker, new_redis, pick_broker_kind
        from stream.devtools.worker_process import WorkerProcess

        settings = load_settings(toml_path=os.environ.get("KPISTREAM_CONFIG") or None)
        data_dir.mkdir(parents=True, exist_ok=True)
        broker_url = os.environ.get("KPISTREAM_BROKER")
        if not broker_url:
            kind = pick_broker_kind(args.broker)
            _say(f"starting {'Apache Kafka' if kind == 'kafka' else 'Tansu (memory only)'} ...")
            broker = new_broker(kind, data_dir / kind)
            started.append(broker)
            broker.start(timeout=180)
            broker_url = broker.url
        redis_url = os.environ.get("KPISTREAM_REDIS_URL")
        if not redis_url:
            _say("starting Redis ...")
            redis = new_redis(data_dir / "redis")
            started.append(redis)
            redis.start(timeout=30)
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
            KPISTREAM_SESSION_TIMEOUT_S="6",
            # The simulated day runs from today's 08:00 at --speed, ahead of the wall clock: the demo's
            # worker allows two days of clock skew, or its events would be `future` dead letters.
            KPISTREAM_MAX_CLOCK_SKEW_MS=str(2 * 86_400_000),
        )
        _say("starting the worker ...")
        # In its own session: stopped by us, after the feeder, not by the terminal's Ctrl-C.
        worker = WorkerProcess(env, data_dir / "worker.log").spawn()
        worker.wait_ready(timeout=180, poll_s=0.5)
        base = worker.base_url
        print(f"wallboard:   {base}/wallboard", flush=True)
        print(f"KPIs (JSON): {base}/api/v1/periods", flush=True)
        print(f"metrics:     {base}/metrics", flush=True)
        print(f"Redis:       {redis_url}", flush=True)
        cfg = demo_config(args, start_of(None, settings.tz), settings.tz)
        events = generate(cfg)
        _say(
            f"simulating {args.hours:g} h from {cfg.start} ({len(events)} events, {cfg.operators} operators, "
            f"{cfg.calls_per_hour:g} calls/h at the peak) at {args.speed:g}x; Ctrl-C stops"
        )
        bootstrap = broker_url.split("://", 1)[1]
        return asyncio.run(_drive(bootstrap, env["KPISTREAM_TOPIC_PREFIX"], events, args, port, settings.tz))
    except KeyboardInterrupt:
        return 130
    except KpiStreamError as exc:
        _say(f"kpistream demo: {exc}")
        return 2
    finally:
        # Cleanup must finish: a second Ctrl-C or SIGTERM does not cut it short (every stop is bounded).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if worker is not None:
            worker.stop()
        for service in reversed(started):
            service.stop()
        _say("stopped everything the demo started")


async def _drive(
    bootstrap: str, prefix: str, events: list[dict[str, Any]], args: argparse.Namespace, port: int, tz: str
) -> int:
    """Feed the events, report every few seconds, stop on a signal, at --duration or never by itself."""
    from zoneinfo import ZoneInfo

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    state = {"sent": 0, "ts": 0}

    def progress(sent: int, ts_ms: int) -> None:
        state["sent"], state["ts"] = sent, ts_ms

    feeder = asyncio.create_task(send_paced(bootstrap, prefix, events, args.speed, stop, progress))
    started = time.monotonic()
    announced = False
    zone = ZoneInfo(tz)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=REPORT_EVERY_S)
        if feeder.done() and feeder.exception() is not None:
            stop.set()
            break
        clock = (
            datetime.fromtimestamp(state["ts"] / 1000, tz=zone).strftime("%H:%M") if state["ts"] else "--:--"
        )
        _say(f"{state['sent']}/{len(events)} events sent, simulated {clock}  |  {_center(port)}")
        if feeder.done() and not announced:
            announced = True
            _say("the simulated day is over; the wallboard stays up until Ctrl-C")
        if args.duration and time.monotonic() - started >= args.duration:
            stop.set()
    try:
        sent = await feeder
    except Exception as exc:  # the broker went away: report it, then clean up as usual
        _say(f"sending stopped: {type(exc).__name__}: {exc}")
        return 1
    _say(f"sent {sent} events")
    return 0

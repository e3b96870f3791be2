"""Screenshot of a populated wallboard for docs/wallboard.png (no make needed).

    .venv/bin/python scripts/wallboard_screenshot.py [--out docs/wallboard.png] [--width 1920 --height 1080]

Starts a local broker (Apache Kafka, else Tansu) and Redis in a temporary directory, a real
`kpistream worker`, sends two hours of a deterministic four-queue centre (one queue healthy, one on
the edge, one in trouble with an abandon alert) plus staff and business facts, opens /wallboard in
headless Chromium and saves the screen. Everything it started is stopped again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from aiokafka import AIOKafkaProducer  # noqa: E402

from stream.core.events import STREAM_OF_TYPE  # noqa: E402
from stream.devenv.process import free_port  # noqa: E402
from stream.devtools.worker_process import WorkerFailed, WorkerProcess, env_without_kpistream  # noqa: E402
from stream.topics import INPUT_TOPICS  # noqa: E402

START = 1_768_464_000  # 2026-01-15T08:00:00Z, seconds
END = START + 2 * 3600
OPERATORS = {
    "sales": ["ana.silva", "ben.okafor", "chloe.martin", "dev.patel"],
    "support": ["emma.berg", "farid.haddad", "grace.lee", "hugo.weber", "ines.costa"],
    "billing": ["jonas.keller", "kai.nakamura", "lena.novak"],
    "retention": ["maya.cohen", "nils.larsen", "olga.petrova"],
}
# queue: calls per hour, mean answer delay (s), abandon probability, lost probability
PROFILES = {
    "sales": (70, 7.0, 0.015, 0.004),
    "support": (95, 14.0, 0.035, 0.04),
    "billing": (55, 26.0, 0.09, 0.04),
    "retention": (30, 9.0, 0.02, 0.0),
}
KEY_FIELD = {"telephony": "call_id", "chat": "chat_id", "email": "email_id", "agent": "operator_id"}


def centre_events(seed: int = 11) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(a year of staff history, two hours of a working centre), deterministic."""
    rnd = random.Random(seed)
    n = 0

    def ev(ts: float, etype: str, **fields: Any) -> dict[str, Any]:
        nonlocal n
        n += 1
        return {"event_id": f"shot-{n}", "type": etype, "ts": round(ts, 3), **fields}

    year_ago = START - 370 * 86400
    history = [ev(year_ago, "staff.headcount", count=40)]
    for month in (2, 4, 7, 9, 11):
        t = year_ago + month * 30 * 86400
        history += [
            ev(t, "staff.left", operator_id=f"gone-{month}"),
            ev(t + 86400, "staff.hired", operator_id=f"new-{month}"),
        ]

    out: list[dict[str, Any]] = []
    fcr_skill = {op: 0.55 + 0.4 * rnd.random() for ops in OPERATORS.values() for op in ops}
    for queue, ops in OPERATORS.items():
        for op in ops:
            out.append(ev(START, "agent.state", operator_id=op, state="available", queues=[queue]))
    out.append(ev(START, "business.orders", date="2026-01-15", count=348, amount=21873.5))
    out.append(ev(START, "business.cost", date="2026-01-15", amount=11350.0))
    out.append(ev(START + 3000, "staff.left", operator_id="olga.k"))
    out.append(ev(START + 3600, "staff.hired", operator_id="pia.schmidt"))

    for queue, (per_hour, mean_wait, p_abandon, p_lost) in PROFILES.items():
        ops = OPERATORS[queue]
        t = float(START)
        i = 0
        while True:
            t += rnd.expovariate(per_hour / 3600)
            if t >= END - 60:
                break
            i += 1
            cid = f"{queue}-{i}"
            customer = f"cust-{rnd.randint(1, 4000)}"
            out.append(ev(t, "call.offered", call_id=cid, queue=queue, customer_id=customer))
            u = rnd.random()
            if u < p_lost:
                out.append(ev(t + rnd.uniform(30, 120), "call.lost", call_id=cid, reason="timeout"))
                continue
            if u < p_lost + p_abandon:
                out.append(ev(t + rnd.uniform(5, 90), "call.abandoned", call_id=cid))
                continue
            wait = rnd.expovariate(1 / mean_wait)
            op = rnd.choice(ops)
            if rnd.random() < 0.08:  # rang at a colleague first, who missed it
                other = rnd.choice(ops)
                out.append(ev(t + wait * 0.3, "call.ringing", call_id=cid, operator_id=other))
                out.append(ev(t + wait * 0.6, "call.missed", call_id=cid, operator_id=other))
            out.append(ev(t + wait * 0.7, "call.ringing", call_id=cid, operator_id=op))
            out.append(ev(t + wait, "call.answered", call_id=cid, operator_id=op))
            end = t + wait + rnd.uniform(60, 420)
            if end < END:
                out.append(ev(end, "call.ended", call_id=cid, operator_id=op))
                out.append(
                    ev(
                        end + 1,
                        "contact.disposition",
                        contact_id=cid,
                        channel="call",
                        operator_id=op,
                        resolved=rnd.random() < fcr_skill[op],
                        customer_id=customer,
                    )
                )
        # Chats and e-mails: FAC and RT for every operator.
        for j in range(int(per_hour / 4)):
            t0 = START + rnd.uniform(0, 7000)
            chid, op = f"{queue}-chat-{j}", rnd.choice(ops)
            out.append(ev(t0, "chat.started", chat_id=chid, queue=queue))
            out.append(ev(t0 + 1, "chat.assigned", chat_id=chid, operator_id=op))
            out.append(ev(t0 + 2, "chat.message", chat_id=chid, message_id=f"{chid}-1", sender="customer"))
            reply = t0 + 2 + rnd.expovariate(1 / (8 + 10 * (queue == "billing")))
            out.append(
                ev(
                    reply,
                    "chat.message",
                    chat_id=chid,
                    message_id=f"{chid}-2",
                    sender="operator",
                    operator_id=op,
                )
            )
            eid = f"{queue}-mail-{j}"
            out.append(ev(t0, "email.received", email_id=eid, queue=queue))
            if rnd.random() < 0.85 and t0 + 300 < END:
                out.append(
                    ev(t0 + rnd.uniform(60, 300), "email.replied", email_id=eid, operator_id=rnd.choice(ops))
                )

    # The floor now: calls still waiting, chats waiting, agents by state.
    for queue, waits in {
        "sales": [9],
        "support": [41, 17, 6],
        "billing": [96, 70, 38, 12, 4],
        "retention": [],
    }.items():
        for k, w in enumerate(waits):
            out.append(ev(END - w, "call.offered", call_id=f"{queue}-now-{k}", queue=queue))
        if queue != "retention":
            chid = f"{queue}-chat-now"
            out.append(ev(END - 20, "chat.started", chat_id=chid, queue=queue))
            out.append(ev(END - 19, "chat.message", chat_id=chid, message_id=f"{chid}-1", sender="customer"))
    states = ["busy", "busy", "available", "wrap_up", "busy", "paused"]
    for queue, ops in OPERATORS.items():
        for k, op in enumerate(ops):
            out.append(
                ev(
                    END - 30 + k,
                    "agent.state",
                    operator_id=op,
                    state=states[(k + len(queue)) % len(states)],
                    queues=[queue],
                )
            )
    out.sort(key=lambda e: e["ts"])
    return history, out


async def send(broker: str, prefix: str, events: list[dict[str, Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=broker.split("://", 1)[1], acks="all", linger_ms=5)
    await producer.start()
    try:
        for e in events:
            stream = STREAM_OF_TYPE[e["type"]]
            key = e.get(KEY_FIELD.get(stream, ""), e.get("case_id", e.get("customer_id")))
            await producer.send(
                prefix + INPUT_TOPICS[stream],
                value=json.dumps(e).encode(),
                key=None if key is None else str(key).encode(),
            )
        await producer.flush()
    finally:
        await producer.stop()


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}")


@contextlib.contextmanager
def services(tmp: Path) -> Iterator[tuple[str, str]]:
    """A broker URL and a Redis URL, stopped on exit."""
    from stream.devenv.kafka import KafkaBroker, kafka_available
    from stream.devenv.redis import RedisServer
    from stream.devenv.tansu import TansuBroker

    broker: Any = KafkaBroker(tmp / "kafka") if kafka_available() else TansuBroker(tmp / "tansu")
    redis_server = RedisServer(tmp / "redis")
    try:
        broker.start(timeout=180)
        redis_server.start(timeout=30)
        yield broker.url, f"redis://127.0.0.1:{redis_server.port}/0"
    finally:
        redis_server.stop()
        broker.stop()


def shoot(url: str, out: Path, width: int, height: int, profile: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    options.binary_location = shutil.which("chromium") or ""
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        driver.get(f"{url}/wallboard?tab=rolling")
        wait_until(
            lambda: driver.execute_script(
                "return document.querySelectorAll('.queue').length >= 4 && "
                "document.querySelectorAll('.board li[data-operator]').length > 0 && "
                "!!document.querySelector('#scorecard td[data-figure]')"
            ),
            60,
            "the page to fill",
        )
        time.sleep(2)  # let the last coalesced updates land
        out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(out))
    finally:
        driver.quit()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(REPO / "docs" / "wallboard.png"))
    p.add_argument("--width", type=int, default=1920)
    p.add_argument("--height", type=int, default=1080)
    p.add_argument("--keep", action="store_true", help="keep everything running until Enter (to look at it)")
    args = p.parse_args(argv)
    history, centre = centre_events()
    with (
        tempfile.TemporaryDirectory(prefix="wallboard-shot-") as tmp_dir,
        services(Path(tmp_dir)) as (broker, redis_url),
    ):
        tmp = Path(tmp_dir)
        port = free_port()
        env = env_without_kpistream()
        env.update(
            KPISTREAM_BROKER=broker,
            KPISTREAM_REDIS_URL=redis_url,
            KPISTREAM_WEB_PORT=str(port),
            KPISTREAM_DATA_DIR=str(tmp / "worker"),
            KPISTREAM_APP_ID="wallboard-shot",
            KPISTREAM_TOPIC_PREFIX="shot-",
            KPISTREAM_FLUSH_INTERVAL_S="0.5",
            KPISTREAM_REBALANCE_TIMEOUT_S="2",
            KPISTREAM_SESSION_TIMEOUT_S="6",
            PYTHONUNBUFFERED="1",
        )
        worker = WorkerProcess(env, tmp / "worker.log", cwd=REPO).spawn()
        base = worker.base_url
        try:
            try:
                worker.wait_ready(120, poll_s=0.5)
            except WorkerFailed as exc:
                raise SystemExit(f"{exc}\n{exc.log_tail}") from None
            asyncio.run(send(broker, "shot-", history))
            import redis

            r = redis.Redis.from_url(redis_url, decode_responses=True)
            wait_until(lambda: r.exists("kpi:scorecard:month:2025-12"), 60, "the staff history")
            asyncio.run(send(broker, "shot-", centre))
            wait_until(
                lambda: (
                    r.exists("kpi:live:queue:billing") and r.hget("kpi:live:queue:billing", "waiting") == "5"
                ),
                120,
                "the centre's events",
            )
            time.sleep(3)
            shoot(base, Path(args.out), args.width, args.height, tmp / "chromium")
            print(f"wrote {args.out}")
            if args.keep:
                input(f"wallboard at {base}/wallboard; Enter stops everything ")
        finally:
            worker.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Alerts for real: abandon bursts fire exactly one CAR alert on kpi.alerts and in Redis, and resolve once."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import redis
from tests_support import read_topic, send_events

T0 = 1_768_467_600  # 2026-01-15T09:00:00Z, seconds


def call(i: int, queue: str, outcome: str) -> list[dict[str, Any]]:
    cid = f"{queue}-{i}"
    t = T0 + i * 5
    end: dict[str, Any] = {"event_id": f"{cid}-2", "call_id": cid, "ts": t + 3}
    if outcome == "abandoned":
        end["type"] = "call.abandoned"
    else:
        end.update(type="call.answered", operator_id="op-1")
    return [{"event_id": f"{cid}-1", "type": "call.offered", "ts": t, "call_id": cid, "queue": queue}, end]


def car_alerts(messages: list[dict[str, Any]], queue: str) -> list[str]:
    return [
        m["status"] for m in messages if m["kpi"] == "car" and m["scope"] == "queue" and m["queue"] == queue
    ]


def wait_for(check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    value = check()
    while not value and time.monotonic() < deadline:
        time.sleep(0.5)
        value = check()
    return value


def test_car_burst_fires_once_and_resolves_once(
    kafka_broker: Any, redis_server: Any, worker_env: Any, start_worker: Any
) -> None:
    redis_url = f"redis://127.0.0.1:{redis_server.port}/7"
    env = worker_env(kafka_broker.url, redis_url, KPISTREAM_FLUSH_INTERVAL_S="0.5")
    worker = start_worker(env)
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    r.flushdb()

    # 19 calls, 10 abandoned (53 %), and a quiet queue with 5 of 5 abandoned: below the minimum volume.
    phase1 = [e for i in range(19) for e in call(i, "hot", "abandoned" if i < 10 else "answered")]
    phase1 += [e for i in range(5) for e in call(i, "quiet", "abandoned")]
    asyncio.run(send_events(env, phase1))
    assert wait_for(lambda: r.hget("kpi:queue:hot:rolling", "offered") == "19"), worker.log_tail()
    time.sleep(2)
    early = asyncio.run(read_topic(env, "kpi.alerts", want=2, timeout=30))
    # The centre sees all 24 calls (15 abandoned) and rightly fires; no queue has 20 calls yet.
    assert [m for m in early if m["scope"] == "queue"] == []
    assert {(m["kpi"], m["status"]) for m in early} == {("car", "firing"), ("lcr", "firing")}

    # The 20th call, abandoned: 11 / 20 = 55 % > 5 % with 20 offered: one CAR alert for "hot".
    asyncio.run(send_events(env, call(19, "hot", "abandoned")))
    messages = asyncio.run(read_topic(env, "kpi.alerts", want=4, timeout=30))
    assert car_alerts(messages, "hot") == ["firing"]
    assert car_alerts(messages, "quiet") == []
    firing = next(m for m in messages if m["kpi"] == "car" and m["queue"] == "hot")
    assert firing["value"] == 0.55 and firing["threshold"] == 0.05
    active = wait_for(lambda: r.hget("kpi:alerts:active", firing["alert_id"]))
    assert json.loads(active)["status"] == "firing"
    firing_gauge = 'callcenter_alert_active{kpi="car",queue="hot",scope="queue"} 1.0'
    assert wait_for(lambda: firing_gauge in worker.get_text("/metrics"), 30)

    # 200 answered calls: 11 / 220 = 5 %, back at the threshold: resolved exactly once.
    asyncio.run(send_events(env, [e for i in range(20, 220) for e in call(i, "hot", "answered")]))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        messages = asyncio.run(read_topic(env, "kpi.alerts", want=100, timeout=2))
        if car_alerts(messages, "hot") == ["firing", "resolved"]:
            break
    assert car_alerts(messages, "hot") == ["firing", "resolved"]
    assert wait_for(lambda: not r.hexists("kpi:alerts:active", firing["alert_id"]))
    resolved_gauge = 'callcenter_alert_active{kpi="car",queue="hot",scope="queue"} 0.0'
    assert wait_for(lambda: resolved_gauge in worker.get_text("/metrics"), 30)

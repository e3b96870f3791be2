"""`kpistream topics create|check` and a worker in check mode, on the session's Apache Kafka broker.

Each difference (a wrong cleanup policy, a missing topic, a wrong partition count) is made alone on
topics that matched the plan, and must be named by `topics check` and by a worker in check mode,
which must then exit before Faust starts. A worker in check mode runs on topics made by `create`.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiokafka.admin import NewPartitions
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from tests_support import kpistream, send_events, wait_for_center_counts

from stream.config import load_settings
from stream.kafka_clients import admin as admin_client
from stream.topic_admin import run_sync
from stream.topic_check import check_topics
from stream.topics import topic_plan


def plan_names(env: dict[str, str]) -> list[str]:
    return list(topic_plan(load_settings(env=env)))


async def _admin(bootstrap: str, action: str, topic: str) -> None:
    admin = admin_client(bootstrap)
    await admin.start()
    try:
        if action == "delete":
            await admin.delete_topics([topic])
        elif action == "partitions":
            await admin.create_partitions({topic: NewPartitions(total_count=6)})
        else:  # cleanup.policy=<action>
            policy = action.split("=", 1)[1]
            await admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic, {"cleanup.policy": policy})]
            )
    finally:
        await admin.close()


def change(env: dict[str, str], action: str, topic: str) -> None:
    asyncio.run(_admin(env["KPISTREAM_BROKER"].split("://", 1)[1], action, topic))


def settle(env: dict[str, str], problems: list[str], timeout: float = 30.0) -> None:
    """Wait until the broker that answers shows a change made on the controller (KRaft applies it later)."""
    settings = load_settings(env=env)
    deadline = time.monotonic() + timeout
    while (found := run_sync(check_topics(settings)).problems) != problems and time.monotonic() < deadline:
        time.sleep(0.3)
    assert found == problems


def assert_refused(env: dict[str, str], named: str) -> None:
    """`topics check` and a worker in check mode both fail with one message naming `named`."""
    settle(env, [named])
    check = kpistream("topics", "check", env=env)
    assert check.returncode == 1, check.stdout + check.stderr
    differs = [line for line in check.stdout.splitlines() if line.startswith("differs:")]
    assert differs == [f"differs: {named}"], check.stdout
    worker = kpistream("worker", env={**env, "KPISTREAM_TOPICS_MODE": "check"})
    assert worker.returncode == 2, worker.stderr[-3000:]  # 2: refused in `run`, before Faust's worker
    errors = [line for line in worker.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "do not match `kpistream topics plan`" in errors[0], worker.stderr[-3000:]
    assert named in errors[0]


def test_create_then_check_and_each_difference_is_named(kafka_broker: Any, worker_env: Any) -> None:
    env = worker_env(kafka_broker.url)
    prefix, app_id = env["KPISTREAM_TOPIC_PREFIX"], env["KPISTREAM_APP_ID"]
    names = plan_names(env)

    first = kpistream("topics", "check", env=env)
    assert first.returncode == 1 and f"differs: missing: {', '.join(names)}" in first.stdout

    created = kpistream("topics", "create", env=env)
    assert created.returncode == 0, created.stderr
    assert [f"created {name}" for name in names] == created.stdout.splitlines()[: len(names)]
    again = kpistream("topics", "create", env=env)  # idempotent: nothing created, nothing changed
    assert again.returncode == 0, again.stderr
    assert [f"exists  {name} (left as it is)" for name in names] == again.stdout.splitlines()[: len(names)]
    ok = kpistream("topics", "check", env=env)
    assert ok.returncode == 0 and ok.stdout.startswith(f"ok: all {len(names)} topics"), ok.stdout + ok.stderr

    changelog = f"{app_id}-seen-ids-changelog"
    change(env, "cleanup.policy=delete", changelog)
    assert_refused(env, f"{changelog} has cleanup.policy=delete, needs compact")
    change(env, "cleanup.policy=compact", changelog)
    settle(env, [])

    chat = f"{prefix}events.chat"
    change(env, "delete", chat)
    assert_refused(env, f"missing: {chat}")
    recreated = kpistream("topics", "create", env=env)
    assert f"created {chat}" in recreated.stdout.splitlines() and recreated.returncode == 0, recreated.stdout
    settle(env, [])

    deltas = f"{prefix}kpi.deltas"
    change(env, "partitions", deltas)
    assert_refused(env, f"{deltas} has 6 partitions, needs 4")


def test_a_worker_in_check_mode_runs_on_topics_made_by_create(
    kafka_broker: Any, worker_env: Any, start_worker: Any
) -> None:
    env = {**worker_env(kafka_broker.url), "KPISTREAM_TOPICS_MODE": "check"}
    created = kpistream("topics", "create", env=env)
    assert created.returncode == 0, created.stdout + created.stderr
    plan = kpistream("topics", "plan", "--json", env=env)
    assert [t["name"] for t in json.loads(plan.stdout)["topics"]] == plan_names(env)

    worker = start_worker(env)
    assert "topic check: every topic of the plan exists" in worker.log_tail(200_000)
    t0 = "2026-01-15T09:00:00Z"
    events = [
        {"event_id": "e1", "type": "call.offered", "ts": t0, "call_id": "c1", "queue": "q"},
        {
            "event_id": "e2",
            "type": "call.answered",
            "ts": "2026-01-15T09:00:05Z",
            "call_id": "c1",
            "operator_id": "o",
        },
    ]
    asyncio.run(send_events(env, events))
    expected = {"offered": 1, "answered": 1, "sl_answered": 1}
    center = wait_for_center_counts(worker, "day:2026-01-15", expected)
    assert all(center.get(k) == v for k, v in expected.items()), center
    assert "Topic creation disabled" not in worker.log_tail(200_000)
    after = kpistream("topics", "check", env=env)  # the worker created nothing and changed nothing
    assert after.returncode == 0, after.stdout

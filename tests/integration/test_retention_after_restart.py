"""State a worker recovers at start leaves retention like state it wrote itself.

The sweeps once visited only the keys written since the worker started: a day read back from the
changelog at start was never deleted, and every restart pinned the days it held for good (CHANGELOG,
"state recovered at start was never expired"). Here a real worker takes a day, stops cleanly,
restarts (the day comes back from the changelog, not from the input), and then sees event time
move past the day's retention: the day's aggregates must be deleted from the table, which shows
as tombstones in the table's changelog, and what the worker holds must equal `report` over the
same events.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from tests_support import kpistream, wait_for_center_counts, wait_for_periods

OLD_DAY = "2026-10-01"  # retention_days is 40: out of it once event time reaches 2026-11-10
NEW_DAY = "2026-11-20"


def bootstrap(env: dict[str, str]) -> str:
    return env["KPISTREAM_BROKER"].split("://", 1)[1]


def answered_call(call_id: str, day: str) -> list[tuple[bytes, bytes]]:
    offered = {"event_id": f"{call_id}-o", "type": "call.offered", "ts": f"{day}T09:00:00Z"}
    answered = {"event_id": f"{call_id}-a", "type": "call.answered", "ts": f"{day}T09:00:05Z"}
    offered.update(call_id=call_id, queue="q1")
    answered.update(call_id=call_id, operator_id="op1")
    return [(call_id.encode(), json.dumps(e).encode()) for e in (offered, answered)]


async def send(env: dict[str, str], items: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(env), acks="all")
    await producer.start()
    try:
        for key, value in items:
            await producer.send_and_wait(env["KPISTREAM_TOPIC_PREFIX"] + "events.telephony", value, key=key)
    finally:
        await producer.stop()


async def changelog(env: dict[str, str], table: str) -> list[tuple[str, bytes | None]]:
    """Every (key, value) of a table's changelog so far, in order (value None: a deletion)."""
    consumer = AIOKafkaConsumer(
        f"{env['KPISTREAM_APP_ID']}-{table}-changelog",
        bootstrap_servers=bootstrap(env),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    out: list[tuple[str, bytes | None]] = []
    try:
        idle = 0
        while idle < 3:  # until three polls in a row bring nothing
            batch = await consumer.getmany(timeout_ms=500)
            idle = 0 if batch else idle + 1
            for records in batch.values():
                out.extend((r.key.decode(), r.value) for r in records if r.key is not None)
    finally:
        await consumer.stop()
    return out


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_a_day_recovered_at_restart_is_deleted_when_it_leaves_retention(
    kafka_broker: Any, worker_env: Any, start_worker: Any, store: str, tmp_path: Path
) -> None:
    # One partition: the new day's events reach the partitions holding the old day's state.
    # (memory:// recovers from the changelog; rocksdb:// reopens its files, the keys listed per partition)
    env = worker_env(kafka_broker.url, KPISTREAM_PARTITIONS="1", KPISTREAM_STORE=store)
    worker = start_worker(env)
    asyncio.run(send(env, answered_call("old-call", OLD_DAY)))
    counts = wait_for_center_counts(worker, f"day:{OLD_DAY}", {"offered": 1, "answered": 1})
    assert counts.get("answered") == 1, counts
    worker.stop()  # a clean stop: the old day is in the changelog and its input is committed
    written = {k for k, v in asyncio.run(changelog(env, "aggregates")) if v is not None and OLD_DAY in k}
    assert written, "the old day's aggregates were not in the changelog before the restart"

    restarted = start_worker(env)
    deleted: set[str] = set()
    deadline = time.monotonic() + 90
    n = 0
    while time.monotonic() < deadline and deleted != written:
        n += 1  # a sweep runs at most every 10 s: keep event time coming until it has run
        asyncio.run(send(env, answered_call(f"new-call-{n}", NEW_DAY)))
        time.sleep(3.0)
        records = asyncio.run(changelog(env, "aggregates"))
        deleted = {k for k, v in records if v is None and k in written}
    assert deleted == written, f"never deleted: {sorted(written - deleted)}"
    # The restarted worker still counts the new day (nothing else was deleted).
    counts = wait_for_center_counts(restarted, f"day:{NEW_DAY}", {"offered": n, "answered": n})
    assert counts.get("offered") == n, counts
    # And what it holds is what `report` makes of the same events, in the order they were sent.
    sent = [answered_call("old-call", OLD_DAY)] + [
        answered_call(f"new-call-{i}", NEW_DAY) for i in range(1, n + 1)
    ]
    events = tmp_path / "sent.jsonl"
    events.write_text("".join(value.decode() + "\n" for call in sent for _, value in call))
    r = kpistream("report", "--events", str(events), env=env)
    assert r.returncode == 0, r.stderr
    expected = dict(json.loads(r.stdout)["periods"])
    assert f"day:{OLD_DAY}" not in expected  # report too has dropped the day out of retention
    assert wait_for_periods(restarted, expected) == expected

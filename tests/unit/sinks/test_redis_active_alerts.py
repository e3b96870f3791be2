"""`kpi:alerts:active` with several workers: a complete write replaces only its own alerts' fields.

Each worker evaluates the alerts of the queues its partitions hold. A complete write (a resync
after a rebalance, Redis that lost its data, a sink that failed) once deleted the whole hash and
wrote this worker's firing alerts back: the other workers' firing alerts were gone from the
wallboard and `/api/v1/alerts` until they fired again.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from stream.core.config import KpiConfig
from stream.sinks.base import Batch
from stream.sinks.redis import RedisSink

ACTIVE = "kpi:alerts:active"


def alert(kpi: str, scope: str, queue: str) -> dict[str, Any]:
    return {
        "alert_id": f"{kpi}:{scope}:{queue}:1",
        "status": "firing",
        "kpi": kpi,
        "scope": scope,
        "queue": queue,
    }


def complete(active: list[dict[str, Any]], scopes: set[tuple[str, str]] | None) -> Batch:
    return Batch(
        full=True,
        complete=True,
        active_alerts=active,
        alert_scopes=None if scopes is None else frozenset(scopes),
    )


async def test_a_complete_write_replaces_only_the_alerts_of_its_own_queues(
    redis_db: tuple[str, redis.Redis],
) -> None:
    url, r = redis_db
    cfg = KpiConfig()
    a = RedisSink(url, cfg, run_id="a")  # holds sales and the centre
    b = RedisSink(url, cfg, run_id="b")  # holds support
    mine_a = {("queue", "sales"), ("center", "_center")}
    sales, center, support = (
        alert("lcr", "queue", "sales"),
        alert("car", "center", "_center"),
        alert("lcr", "queue", "support"),
    )
    try:
        await a.write(complete([sales, center], mine_a))
        await b.write(complete([support], {("queue", "support")}))
        await a.write(complete([sales, center], mine_a))  # a's resync: b's alert stays
        assert set(r.hkeys(ACTIVE)) == {sales["alert_id"], center["alert_id"], support["alert_id"]}

        await a.write(complete([center], mine_a))  # sales resolved while a's write was not delivered
        assert set(r.hkeys(ACTIVE)) == {center["alert_id"], support["alert_id"]}
        assert json.loads(r.hget(ACTIVE, support["alert_id"]) or "{}") == support

        r.hset(ACTIVE, "junk", "not json")  # not ours: a complete write removes it
        await b.write(complete([], {("queue", "support")}))
        assert set(r.hkeys(ACTIVE)) == {center["alert_id"]}

        await a.write(complete([sales], None))  # one worker (no scopes): the whole hash is its
        assert set(r.hkeys(ACTIVE)) == {sales["alert_id"]}
    finally:
        await a.close()
        await b.close()

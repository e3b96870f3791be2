"""Redis sink: the live wallboard's hashes, leaderboards and the `kpi:updates` channel.

One pipeline (one round trip) per batch. Day and month keys expire a little after their period
leaves retention; rolling keys are overwritten for ever and never expire.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import redis.asyncio as aioredis

from stream.config import mask_secrets
from stream.core.config import DAY_MS, KpiConfig
from stream.core.outputs import operator_hash, queue_hash, scorecard_hash
from stream.core.periods import DAY_PREFIX, MONTH_PREFIX
from stream.errors import SinkError
from stream.sinks.base import Batch, Record

UPDATES_CHANNEL = "kpi:updates"
CENTER_QUEUE = "_center"


def operator_key(rec: Record) -> str:
    return f"kpi:op:{rec['operator_id']}:{rec['period_key']}"


def queue_key(rec: Record) -> str:
    if rec["scope"] == "center":
        return f"kpi:center:{rec['period_key']}"
    return f"kpi:queue:{rec['queue']}:{rec['period_key']}"


def leaderboard_key(period_key: str) -> str:
    return f"kpi:leaderboard:{period_key}"


def scorecard_key(period_key: str) -> str:
    return f"kpi:scorecard:{period_key}"


def ttl_seconds(period_key: str, cfg: KpiConfig) -> int | None:
    """How long a key of this period lives after its last write: retention plus one unit; None for rolling."""
    if period_key.startswith(DAY_PREFIX):
        return (cfg.retention_days + 1) * DAY_MS // 1000
    if period_key.startswith(MONTH_PREFIX):
        return (cfg.retention_months + 1) * 31 * DAY_MS // 1000
    return None


def _message(key: str, kind: str, rec: Record) -> str:
    return json.dumps({"key": key, "kind": kind, "record": rec}, separators=(",", ":"))


ACTIVE_ALERTS = "kpi:alerts:active"


class RedisSink:
    """Writes each batch with one pipeline; raises SinkError when Redis cannot be reached."""

    name = "redis"

    def __init__(self, url: str, cfg: KpiConfig, *, timeout_s: float = 5.0) -> None:
        self.url = url
        self.cfg = cfg
        self.timeout_s = timeout_s
        self._client: Any = None

    def _redis(self) -> Any:
        if self._client is None:
            self._client = aioredis.from_url(
                self.url, socket_timeout=self.timeout_s, socket_connect_timeout=self.timeout_s
            )
        return self._client

    async def write(self, batch: Batch) -> None:
        if not len(batch):
            return
        try:
            async with self._redis().pipeline(transaction=False) as pipe:
                self._queue_commands(pipe, batch)
                await pipe.execute()
        except Exception as exc:  # redis raises many types (connection, timeout, OS errors)
            await self._reset()
            raise SinkError(self.name, mask_secrets(f"{type(exc).__name__}: {exc}")) from exc

    def _expire(self, pipe: Any, key: str, period_key: str) -> None:
        ttl = ttl_seconds(period_key, self.cfg)
        if ttl is not None:
            pipe.expire(key, ttl)

    def _queue_commands(self, pipe: Any, batch: Batch) -> None:
        for rec in batch.operators:
            pk = rec["period_key"]
            key = operator_key(rec)
            pipe.hset(key, mapping=operator_hash(rec))
            self._expire(pipe, key, pk)
            board = leaderboard_key(pk)
            if any(rec["counts"].values()):
                pipe.zadd(board, {rec["operator_id"]: rec["f"]})
            else:
                pipe.zrem(board, rec["operator_id"])  # no activity in the window: off the board
            self._expire(pipe, board, pk)
            pipe.publish(UPDATES_CHANNEL, _message(key, "operator", rec))
        for rec in batch.queues:
            key = queue_key(rec)
            pipe.hset(key, mapping=queue_hash(rec))
            self._expire(pipe, key, rec["period_key"])
            pipe.publish(UPDATES_CHANNEL, _message(key, rec["scope"], rec))
        for rec in batch.scorecards:
            key = scorecard_key(rec["period_key"])
            pipe.hset(key, mapping=scorecard_hash(rec))
            self._expire(pipe, key, rec["period_key"])
            pipe.publish(UPDATES_CHANNEL, _message(key, "scorecard", rec))

        for rec in batch.live:
            key = f"kpi:live:queue:{rec['queue']}"
            pipe.hset(key, mapping={k: "" if v is None else str(v) for k, v in rec.items() if k != "queue"})
            pipe.publish(UPDATES_CHANNEL, _message(key, "live", rec))
        if batch.active_alerts is not None:
            pipe.delete(ACTIVE_ALERTS)
            for rec in batch.active_alerts:
                pipe.hset(ACTIVE_ALERTS, rec["alert_id"], json.dumps(rec, separators=(",", ":")))
        for rec in batch.alerts:
            if rec["status"] == "firing":
                pipe.hset(ACTIVE_ALERTS, rec["alert_id"], json.dumps(rec, separators=(",", ":")))
            else:
                pipe.hdel(ACTIVE_ALERTS, rec["alert_id"])
            pipe.publish(UPDATES_CHANNEL, _message(ACTIVE_ALERTS, "alert", rec))

    async def _reset(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()

    async def close(self) -> None:
        await self._reset()

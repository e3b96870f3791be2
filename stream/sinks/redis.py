"""Redis sink: the live wallboard's hashes, leaderboards and the `kpi:updates` channel.

A batch goes in pipelines of `RECORDS_PER_PIPELINE` records (one round trip each), in order, each
encoded just before it is sent. Day and month keys expire a little after their period leaves
retention; rolling keys are overwritten for ever and never expire. Key names come from
stream/sinks/redis_keys.py.

Redis may lose what was written without any write failing (restarted empty, FLUSHALL, a failover to
a replica that had not caught up). Every complete write therefore sets this worker run's marker key
first; `lost_data` (polled by the publisher's sink runner every few seconds) reports a missing
marker or a changed Redis server `run_id`, and the runner then writes the complete state again.

A period that left retention (measured from the vouched event time, CONTRACT.md s.1) is deleted:
its operator, queue and centre hashes, its leaderboard and its scorecard, with one `retracted`
message on `kpi:updates`. A complete write (and the first write once event time is known) also
deletes every such key of an out-of-retention period it finds by SCAN (written by an earlier run,
another worker, or while this worker's retraction was lost).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stream.config import mask_secrets
from stream.core import jsonbytes
from stream.core.config import DAY_MS, KpiConfig
from stream.core.outputs import operator_hash, queue_hash, scorecard_hash
from stream.core.periods import DAY_PREFIX, MONTH_PREFIX, is_expired
from stream.errors import SinkError
from stream.sinks.base import Batch, Record, Retraction
from stream.sinks.redis_conn import RedisTarget
from stream.sinks.redis_keys import (
    DEFAULT_KEYSPACE,
    PREFIX,
    CenterKey,
    Keyspace,
    LeaderboardKey,
    LiveQueueKey,
    OperatorKey,
    QueueKey,
    ScorecardKey,
    WriterKey,
    queue_or_center_key,
)

#: The writer marker outlives a few missed checks; a worker that stops refreshing it lets it expire.
MARKER_TTL_S = 600
#: Keys per DEL command when a period is deleted (thousands of operators in one period).
DELETE_CHUNK = 500
#: The keys of one period (what retention deletes); live queues, alerts and markers have none.
PERIOD_KINDS = (OperatorKey, QueueKey, CenterKey, LeaderboardKey, ScorecardKey)


def operator_key(rec: Record, ks: Keyspace = DEFAULT_KEYSPACE) -> str:
    return ks.key(OperatorKey(rec["operator_id"], rec["period_key"]))


def queue_key(rec: Record, ks: Keyspace = DEFAULT_KEYSPACE) -> str:
    return ks.key(queue_or_center_key(None if rec["scope"] == "center" else rec["queue"], rec["period_key"]))


def ttl_seconds(period_key: str, cfg: KpiConfig) -> int | None:
    """How long a key of this period lives after its last write: retention plus one unit; None for rolling."""
    if period_key.startswith(DAY_PREFIX):
        return (cfg.retention_days + 1) * DAY_MS // 1000
    if period_key.startswith(MONTH_PREFIX):
        return (cfg.retention_months + 1) * 31 * DAY_MS // 1000
    return None


def retracted_keys(r: Retraction, ks: Keyspace = DEFAULT_KEYSPACE) -> list[str]:
    """Every key of a period that left retention: its records', its leaderboard and scorecard."""
    pk = r.period_key
    keys = [ks.key(OperatorKey(op, pk)) for op in r.operators]
    keys += [ks.key(queue_or_center_key(q, pk)) for q in r.queues]
    keys += [ks.key(CenterKey(pk)), ks.key(LeaderboardKey(pk)), ks.key(ScorecardKey(pk))]
    return list(dict.fromkeys(keys))


#: Records per pipeline. A batch is written in pipelines of this many records, in order, each
#: encoded just before it is sent: a flush of 69,000 operator records encoded at once held about
#: 6 KB of commands per record (over 400 MB) and stalled the event loop for 10 s (CHANGELOG).
RECORDS_PER_PIPELINE = 1000

Unit = tuple[Callable[["RedisSink", Any, Any], None], Any]


def _units(batch: Batch, alerts_gone: list[str] | None = None) -> list[Unit]:
    """The batch's writes in order, one per record (the active alerts are one): what is chunked.

    `alerts_gone`: the active-alerts fields a complete write removes (None: the whole hash)."""
    s = RedisSink
    units: list[Unit] = [(s._operator, r) for r in batch.operators]
    units += [(s._queue, r) for r in batch.queues]
    units += [(s._scorecard, r) for r in batch.scorecards]
    units += [(s._live, r) for r in batch.live]
    if batch.active_alerts is not None:
        units.append((s._active_alerts, (batch.active_alerts, alerts_gone)))
    units += [(s._alert, r) for r in batch.alerts]
    return units


def _message(key: str, kind: str, rec: Record) -> bytes:
    # One per record written: orjson, as the change filter's digests (UTF-8, the same JSON).
    return jsonbytes.dumps({"key": key, "kind": kind, "record": rec})


@dataclass(slots=True)
class WriteWitness:
    """What this worker knows Redis holds: a complete write with the marker, on which server run.

    Redis lost data when the marker is gone (flushed, restarted without persistence) or the server's
    `run_id` changed since the complete write (a restart that may have lost the last writes, or a
    failover to a replica that may lag). Before the first complete write nothing is known: lost.
    """

    server_run_id: str | None = None

    def wrote_complete(self, server_run_id: str) -> None:
        self.server_run_id = server_run_id

    def lost(self, marker_present: bool, server_run_id: str) -> bool:
        return not marker_present or self.server_run_id != server_run_id

    def forget(self) -> None:
        self.server_run_id = None


class RedisSink:
    """Writes a batch in pipelines of `RECORDS_PER_PIPELINE` records; SinkError when Redis is unreachable."""

    name = "redis"

    def __init__(
        self,
        url: str,
        cfg: KpiConfig,
        *,
        timeout_s: float = 5.0,
        run_id: str | None = None,
        ssl_cafile: str = "",
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
        self.url = url
        self.cfg = cfg
        self.timeout_s = timeout_s
        self.target = RedisTarget(url, ssl_cafile, keyspace)
        self.ks = keyspace
        self.marker = keyspace.key(WriterKey(run_id or uuid.uuid4().hex))
        self.witness = WriteWitness()
        self._swept = False  # a write looked for stale periods since event time was known
        self._client: Any = None

    def _redis(self) -> Any:
        if self._client is None:
            self._client = self.target.client(
                socket_timeout=self.timeout_s, socket_connect_timeout=self.timeout_s
            )
        return self._client

    async def write(self, batch: Batch) -> None:
        # A complete write, and the first write that knows event time (a restarted worker's first
        # complete write comes before its first events), look for stale periods.
        sweep = batch.complete or (not self._swept and batch.retention_watermark > 0)
        if not len(batch) and not sweep:
            return
        try:
            client = self._redis()
            stale = await self._stale_keys(client, batch) if sweep else {}
            gone = await self._stale_alerts(client, batch) if batch.active_alerts is not None else None
            units = _units(batch, gone)
            for start in range(0, max(len(units), 1), RECORDS_PER_PIPELINE):  # at least one pipeline
                async with client.pipeline(transaction=False) as pipe:
                    if start == 0:
                        self._header(pipe, batch, stale)
                    for add, item in units[start : start + RECORDS_PER_PIPELINE]:
                        add(self, pipe, item)
                    results = await pipe.execute()
                if start == 0 and batch.complete:
                    self.witness.wrote_complete(str(results[0].get("run_id", "")))
            if sweep:
                self._swept = batch.retention_watermark > 0
        except Exception as exc:  # redis raises many types (connection, timeout, OS errors)
            await self._reset()
            raise SinkError(self.name, mask_secrets(f"{type(exc).__name__}: {exc}")) from exc

    def _header(self, pipe: Any, batch: Batch, stale: dict[str, list[str]]) -> None:
        """The first pipeline's commands before its records: the marker, then the deletions."""
        if batch.complete:
            # The server's run id and the marker first: a restart or flush during the write then
            # either fails it or removes the marker, so it is seen at the next check.
            pipe.info("server")
            pipe.set(self.marker, str(len(batch)), ex=MARKER_TTL_S)
        for pk, keys in sorted(stale.items()):
            self._delete_period(pipe, pk, keys)
        for r in batch.retractions:
            self._delete_period(pipe, r.period_key, retracted_keys(r, self.ks))

    async def lost_data(self) -> bool:
        """True when Redis may no longer hold what this worker wrote (the marker is refreshed here)."""
        try:
            client = self._redis()
            async with client.pipeline(transaction=False) as pipe:
                pipe.expire(self.marker, MARKER_TTL_S)
                pipe.info("server")
                present, info = await pipe.execute()
        except Exception as exc:
            await self._reset()
            raise SinkError(self.name, mask_secrets(f"{type(exc).__name__}: {exc}")) from exc
        return self.witness.lost(bool(present), str(info.get("run_id", "")))

    async def _stale_keys(self, client: Any, batch: Batch) -> dict[str, list[str]]:
        """Keys of periods out of retention at the batch's vouched watermark, by period (a SCAN).

        Only day and month keys end with a digit (`rolling` does not), so the match skips the
        rolling and most live keys on the server.
        """
        cfg = self.cfg
        wm = batch.retention_watermark
        out: dict[str, list[str]] = {}
        if wm <= 0:
            return out
        async for raw in client.scan_iter(match=self.ks.scan(f"{PREFIX}*[0-9]"), count=1000):
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            decoded = self.ks.decode(key)
            if not isinstance(decoded, PERIOD_KINDS):
                continue
            pk = decoded.period_key
            if is_expired(pk, wm, cfg.tz, cfg.retention_days, cfg.retention_months):
                out.setdefault(pk, []).append(key)
        return out

    def _delete_period(self, pipe: Any, period_key: str, keys: list[str]) -> None:
        for start in range(0, len(keys), DELETE_CHUNK):
            pipe.delete(*keys[start : start + DELETE_CHUNK])
        msg = {"kind": "retracted", "period_key": period_key, "keys": sorted(keys)}
        pipe.publish(self.ks.updates_channel, json.dumps(msg, separators=(",", ":")))

    def _expire(self, pipe: Any, key: str, period_key: str) -> None:
        ttl = ttl_seconds(period_key, self.cfg)
        if ttl is not None:
            pipe.expire(key, ttl)

    def _operator(self, pipe: Any, rec: Record) -> None:
        ks = self.ks
        pk = rec["period_key"]
        key = operator_key(rec, ks)
        pipe.hset(key, mapping=operator_hash(rec))
        self._expire(pipe, key, pk)
        board = ks.key(LeaderboardKey(pk))
        if any(rec["counts"].values()):
            pipe.zadd(board, {rec["operator_id"]: rec["f"]})
        else:
            pipe.zrem(board, rec["operator_id"])  # no activity in the window: off the board
        self._expire(pipe, board, pk)
        pipe.publish(ks.updates_channel, _message(key, "operator", rec))

    def _queue(self, pipe: Any, rec: Record) -> None:
        key = queue_key(rec, self.ks)
        pipe.hset(key, mapping=queue_hash(rec))
        self._expire(pipe, key, rec["period_key"])
        pipe.publish(self.ks.updates_channel, _message(key, rec["scope"], rec))

    def _scorecard(self, pipe: Any, rec: Record) -> None:
        key = self.ks.key(ScorecardKey(rec["period_key"]))
        pipe.hset(key, mapping=scorecard_hash(rec))
        self._expire(pipe, key, rec["period_key"])
        pipe.publish(self.ks.updates_channel, _message(key, "scorecard", rec))

    def _live(self, pipe: Any, rec: Record) -> None:
        key = self.ks.key(LiveQueueKey(rec["queue"]))
        pipe.hset(key, mapping={k: "" if v is None else str(v) for k, v in rec.items() if k != "queue"})
        pipe.publish(self.ks.updates_channel, _message(key, "live", rec))

    def _active_alerts(self, pipe: Any, item: tuple[list[Record], list[str] | None]) -> None:
        """Every firing alert, replacing the hash (one unit: the delete and its writes together);
        with `alert_scopes`, replacing only the fields of those scopes (`_stale_alerts`)."""
        records, gone = item
        active = self.ks.active_alerts
        if gone is None:
            pipe.delete(active)
        elif gone:
            pipe.hdel(active, *gone)
        for rec in records:
            pipe.hset(active, rec["alert_id"], json.dumps(rec, separators=(",", ":")))

    async def _stale_alerts(self, client: Any, batch: Batch) -> list[str] | None:
        """The fields of the active-alerts hash a complete write removes: None = the whole hash.

        Rule: with several workers each answers for its partitions' alerts (Batch.alert_scopes);
        a worker replacing the whole hash wiped the others' firing alerts until they fired again.
        """
        if batch.alert_scopes is None:
            return None
        firing = {r["alert_id"] for r in batch.active_alerts or ()}
        gone = []
        for field, raw in (await client.hgetall(self.ks.active_alerts)).items():
            name = field.decode() if isinstance(field, bytes) else str(field)
            try:
                rec = json.loads(raw)
                scope = (str(rec["scope"]), str(rec["queue"]))
            except (ValueError, KeyError, TypeError):
                gone.append(name)  # not a record this product wrote
                continue
            if scope in batch.alert_scopes and name not in firing:
                gone.append(name)
        return gone

    def _alert(self, pipe: Any, rec: Record) -> None:
        active = self.ks.active_alerts
        if rec["status"] == "firing":
            pipe.hset(active, rec["alert_id"], json.dumps(rec, separators=(",", ":")))
        else:
            pipe.hdel(active, rec["alert_id"])
        pipe.publish(self.ks.updates_channel, _message(active, "alert", rec))

    async def _reset(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()

    async def close(self) -> None:
        await self._reset()

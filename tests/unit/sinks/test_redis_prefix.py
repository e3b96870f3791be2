"""`redis_key_prefix`: one Redis, several centres. Every key and channel kpistream uses gets the
prefix, a sink or reader of one prefix never touches another's keys, and no prefix is today's layout.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import redis

from agents.wallboard import WallboardReader
from stream.config import load_settings
from stream.core.aggregate import AggregateStore, AggState
from stream.core.config import KpiConfig
from stream.core.entity import Delta
from stream.core.eventtime import Watermark
from stream.errors import ConfigError
from stream.publish import MappingReader, Publisher
from stream.sinks.base import Batch, Retraction
from stream.sinks.redis import RedisSink, retracted_keys
from stream.sinks.redis_keys import DEFAULT_KEYSPACE, Keyspace, OperatorKey, WriterKey

OLD_DAY = "day:1970-01-02"
T0 = 1_768_467_600_000  # 2026-01-15T09:00:00Z


ANSWER = {"offered": 1, "presented": 1, "answered": 1, "sl_answered": 1}


def _batch() -> Batch:
    """A complete write of real records (one operator, queue and centre), a live queue and an alert."""
    cfg = KpiConfig()
    aggs: dict[str, AggState] = {}
    time = Watermark()
    store = AggregateStore(aggs, cfg, rolling=True, event_time=time)
    reader = MappingReader(
        aggs, cfg, lambda: store.watermark, retention_watermark=lambda: store.retention_watermark
    )
    pub = Publisher(reader, [], cfg, clock=lambda: T0 / 1000, queue_size=16)
    for n, ts in enumerate((T0, T0 + 1000)):
        time.observe(ts, f"e{n}")
        for scope, sid in (("op", "op-1"), ("queue", "sales"), ("center", "")):
            pub.mark(store.apply(Delta(scope, sid, ts, ANSWER, "t:0", n, 0)))
    batch = pub.flush()
    alert = {
        "alert_id": "sl:queue:sales",
        "status": "firing",
        "kpi": "sl",
        "scope": "queue",
        "queue": "sales",
    }
    return replace(batch, live=[{"queue": "sales", "waiting": 2}], alerts=[alert], complete=True)


def test_no_prefix_is_todays_layout() -> None:
    assert DEFAULT_KEYSPACE.key(OperatorKey("op-1", "rolling")) == "kpi:op:op-1:rolling"
    assert DEFAULT_KEYSPACE.updates_channel == "kpi:updates"
    assert DEFAULT_KEYSPACE.active_alerts == "kpi:alerts:active"
    assert DEFAULT_KEYSPACE.scan(OperatorKey.SCAN) == "kpi:op:*"
    assert load_settings(env={}).redis_key_prefix == ""


def test_a_prefix_goes_before_every_key_and_channel() -> None:
    ks = Keyspace("centre-a:")
    assert ks.key(OperatorKey("a:b", "day:2026-01-15")) == "centre-a:kpi:op:a:b:day:2026-01-15"
    assert ks.key(WriterKey("run")) == "centre-a:kpi:writer:run"
    assert ks.updates_channel == "centre-a:kpi:updates"
    assert ks.active_alerts == "centre-a:kpi:alerts:active"
    assert ks.decode("centre-a:kpi:op:a:b:rolling") == OperatorKey("a:b", "rolling")
    assert ks.decode("kpi:op:a:rolling") is None  # another deployment's (unprefixed) key
    assert ks.decode("centre-b:kpi:op:a:rolling") is None
    assert retracted_keys(Retraction(OLD_DAY, ("x",), ()), ks)[0] == f"centre-a:kpi:op:x:{OLD_DAY}"


@pytest.mark.parametrize("prefix", ["a b:", "centre*", "c?:", "[x]:", "a\\b"])
def test_a_prefix_with_glob_characters_or_spaces_is_refused(prefix: str) -> None:
    with pytest.raises(ConfigError, match="redis_key_prefix"):
        load_settings(env={"KPISTREAM_REDIS_KEY_PREFIX": prefix})
    with pytest.raises(ValueError, match="prefix"):
        Keyspace(prefix)


def test_a_ca_file_needs_tls() -> None:
    with pytest.raises(ConfigError, match="redis_ssl_cafile"):
        load_settings(env={"KPISTREAM_REDIS_SSL_CAFILE": "/ca.pem"})
    s = load_settings(
        env={"KPISTREAM_REDIS_URL": "rediss://u:p@h:6380/0", "KPISTREAM_REDIS_SSL_CAFILE": "/ca.pem"}
    )
    assert s.redis_ssl_cafile == "/ca.pem"
    assert "p@" not in repr(s)


async def test_two_prefixes_in_one_redis_do_not_touch_each_other(redis_db: tuple[str, redis.Redis]) -> None:
    url, r = redis_db
    cfg = KpiConfig()
    a = RedisSink(url, cfg, keyspace=Keyspace("centre-a:"), run_id="a")
    b = RedisSink(url, cfg, keyspace=Keyspace("centre-b:"), run_id="b")
    pubsub = r.pubsub()
    pubsub.subscribe("centre-a:kpi:updates", "kpi:updates")
    for _ in range(2):
        pubsub.get_message(timeout=1)
    await a.write(_batch())
    await b.write(_batch())
    # A stale period of centre B, and one with no prefix: centre A's sweep leaves both alone.
    r.hset(f"centre-b:kpi:op:x:{OLD_DAY}", "sl", "1")
    r.hset(f"kpi:op:x:{OLD_DAY}", "sl", "1")
    await a.write(_batch())
    assert not await a.lost_data()
    r.delete("centre-a:kpi:writer:a")  # centre A's marker gone: only A has lost data
    assert await a.lost_data() and not await b.lost_data()
    await a.close()
    await b.close()

    keys = set(r.keys("*"))

    def data_of(prefix: str) -> set[str]:
        """The keys under `prefix` without it, leaving out the markers (one per run) and the stale key."""
        bare = {k[len(prefix) :] for k in keys if k.startswith(prefix)}
        return {k for k in bare if not k.startswith("kpi:writer:")} - {f"kpi:op:x:{OLD_DAY}"}

    a_keys = data_of("centre-a:")
    assert a_keys == data_of("centre-b:")
    assert "centre-b:kpi:writer:b" in keys and f"centre-b:kpi:op:x:{OLD_DAY}" in keys
    assert keys - {k for k in keys if k.startswith(("centre-a:", "centre-b:"))} == {f"kpi:op:x:{OLD_DAY}"}
    assert {
        "kpi:op:op-1:day:2026-01-15",
        "kpi:leaderboard:rolling",
        "kpi:center:day:2026-01-15",
        "kpi:live:queue:sales",
        "kpi:alerts:active",
    } <= a_keys
    messages = list(iter(lambda: pubsub.get_message(timeout=0.5), None))
    pubsub.close()
    assert {m["channel"] for m in messages} == {"centre-a:kpi:updates"}
    assert json.loads(messages[0]["data"])["key"].startswith("centre-a:kpi:")

    reader = WallboardReader(url, cfg, keyspace=Keyspace("centre-a:"))
    try:
        board = await reader.leaderboard("day", 10)
        alerts = await reader.alerts()
        live = await reader.live()
    finally:
        await reader.close()
    assert board["period_key"] == "day:2026-01-15" and [o["operator_id"] for o in board["operators"]] == [
        "op-1"
    ]
    assert [a["alert_id"] for a in alerts["alerts"]] == ["sl:queue:sales"]
    assert [q["queue"] for q in live["queues"]] == ["sales"]
    unprefixed = WallboardReader(url, cfg)
    try:
        assert (await unprefixed.live())["queues"] == []
    finally:
        await unprefixed.close()

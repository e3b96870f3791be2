"""Commands packed with hiredis are byte for byte what redis-py's own asyncio packing sends."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import DataError

from stream.sinks.redis_conn import HiredisPacking, RedisTarget, hiredis_packing

COMMANDS: list[tuple[Any, ...]] = [
    ("HSET", "kpi:op:op-1:month:2026-01", "sl", "0.9", "presented", "12", "fund_share", ""),
    ("ZADD", "kpi:leaderboard:day:2026-01-15", 5.83, "op-1"),
    ("ZADD", "b", 1e-7, "a", -0.0, "c", float("inf"), "d", 1e20, "e"),
    ("EXPIRE", "kpi:op:op-1:day:2026-01-15", 3_542_400),
    ("SET", "k", 123456789012345678901234567890),
    ("PUBLISH", "kpi:updates", '{"record":{"operator_id":"Zoë 李"}}'),
    ("SET", b"k", b"\x00\xff\r\n", bytearray(b"x"), memoryview(b"yz")),
    ("CONFIG GET", "maxmemory"),
    (b"CONFIG SET", "save", ""),
    ("INFO", "server"),
]


@pytest.mark.parametrize("args", COMMANDS)
def test_hiredis_packs_exactly_as_redis_py(args: tuple[Any, ...]) -> None:
    ours = hiredis_packing(Connection)()
    assert isinstance(ours, HiredisPacking)
    assert b"".join(ours.pack_command(*args)) == b"".join(Connection().pack_command(*args))


@pytest.mark.parametrize("bad", [None, True, object()])
def test_what_redis_py_refuses_is_refused(bad: object) -> None:
    with pytest.raises(DataError):
        Connection().pack_command("SET", "k", bad)
    with pytest.raises(DataError):
        hiredis_packing(Connection)().pack_command("SET", "k", bad)


def test_every_connection_kind_of_the_url_packs_with_hiredis() -> None:
    for url, kind in (
        ("redis://localhost:6379/0", Connection),
        ("rediss://localhost:6379/0", SSLConnection),
        ("unix:///tmp/redis.sock", UnixDomainSocketConnection),
    ):
        cls = RedisTarget(url).client().connection_pool.connection_class
        assert issubclass(cls, HiredisPacking) and issubclass(cls, kind)
    assert hiredis_packing(hiredis_packing(Connection)) is hiredis_packing(Connection)

"""How kpistream reaches Redis: one place that turns the settings into a client.

The URL carries the ACL user and password (`redis://user:pass@host:port/0`) and TLS (`rediss://`);
`redis_ssl_cafile` names the CA that signed the server's certificate (a private CA, as ops run it).
The server's host name is checked against its certificate. Passwords never reach a log line:
errors go through `mask_secrets`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.connection import HiredisRespSerializer

from stream.config import Settings
from stream.sinks.redis_keys import DEFAULT_KEYSPACE, Keyspace


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """One Redis and kpistream's keyspace in it."""

    url: str
    ssl_cafile: str = ""
    keyspace: Keyspace = DEFAULT_KEYSPACE

    @classmethod
    def of(cls, settings: Settings) -> RedisTarget:
        return cls(settings.redis_url, settings.redis_ssl_cafile, Keyspace(settings.redis_key_prefix))

    def _tls(self) -> dict[str, Any]:
        if self.url.startswith("rediss://") and self.ssl_cafile:
            return {"ssl_ca_certs": self.ssl_cafile}
        return {}

    def client(self, **options: Any) -> aioredis.Redis:
        """An asyncio client (`options`: timeouts, decode_responses, ...), packing with hiredis."""
        client = aioredis.from_url(self.url, **self._tls(), **options)
        pool = client.connection_pool
        pool.connection_class = hiredis_packing(pool.connection_class)
        return client

    def sync_client(self, **options: Any) -> redis.Redis:
        """A blocking client (commands and tests)."""
        return redis.Redis.from_url(self.url, **self._tls(), **options)


class HiredisPacking:
    """`pack_command` in C (hiredis) for redis-py's asyncio connections, byte for byte the same.

    redis-py's sync client packs with hiredis when it is installed (`HiredisRespSerializer`); its
    asyncio connection always packs in Python, about 29 us for one operator hash (30 fields), so a
    flush of 5,000 operator records spent 0.15 s packing (docs/benchmarks.md, third session).
    hiredis takes a ninth of that. The serializer refuses None and booleans as redis-py's encoder does.
    """

    def pack_command(self, *args: Any) -> list[bytes]:
        packed: list[bytes] = _SERIALIZER.pack(*args)
        return packed


_SERIALIZER = HiredisRespSerializer()
_PACKING: dict[type[Any], type[Any]] = {}


def hiredis_packing(connection_class: type[Any]) -> type[Any]:
    """`connection_class` packing with hiredis (one class per connection class)."""
    if issubclass(connection_class, HiredisPacking):
        return connection_class
    if connection_class not in _PACKING:
        name = f"Hiredis{connection_class.__name__}"
        _PACKING[connection_class] = type(name, (HiredisPacking, connection_class), {})
    return _PACKING[connection_class]

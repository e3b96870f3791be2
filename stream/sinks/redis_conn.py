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
        """An asyncio client (`options`: timeouts, decode_responses, ...)."""
        return aioredis.from_url(self.url, **self._tls(), **options)

    def sync_client(self, **options: Any) -> redis.Redis:
        """A blocking client (commands and tests)."""
        return redis.Redis.from_url(self.url, **self._tls(), **options)

"""Health probes of the worker's connections: the Kafka broker and Redis, checked off the request path.

`/readyz` must not say ready while the broker is gone (the consumer's client retries forever and
logs connection errors; the group state it reports does not change until a rebalance). A
background task asks the broker for its cluster metadata and pings Redis every `interval_s`,
each with a timeout; `/readyz` reads the last results and never waits on the network.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from stream.config import Settings, mask_secrets
from stream.sinks.redis_conn import RedisTarget

log = logging.getLogger(__name__)

Clock = Callable[[], float]


@dataclass(frozen=True)
class ProbeResult:
    """The last outcome of one probe: `ok_at` is the clock time of its last success (None: never)."""

    ok: bool
    detail: str
    ok_at: float | None


class Probe:
    """One named check: `attempt()` raises on failure; the result counts as ok for `fresh_s`."""

    def __init__(
        self,
        name: str,
        attempt: Callable[[], Awaitable[None]],
        *,
        timeout_s: float,
        fresh_s: float,
        clock: Clock = time.monotonic,
    ) -> None:
        self.name = name
        self.attempt = attempt
        self.timeout_s = timeout_s
        self.fresh_s = fresh_s
        self.clock = clock
        self.result = ProbeResult(False, "not checked yet", None)

    async def run_once(self) -> ProbeResult:
        try:
            await asyncio.wait_for(self.attempt(), self.timeout_s)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            self.result = ProbeResult(False, f"no answer in {self.timeout_s:g} s", self.result.ok_at)
        except Exception as exc:  # any failure of the remote end is a failed check, never a crash
            self.result = ProbeResult(False, mask_secrets(f"{type(exc).__name__}: {exc}"), self.result.ok_at)
        else:
            self.result = ProbeResult(True, "ok", self.clock())
        return self.result

    def report(self) -> dict[str, Any]:
        """The check as `/readyz` shows it: ok if the last success is at most `fresh_s` old."""
        r = self.result
        age = None if r.ok_at is None else self.clock() - r.ok_at
        ok = age is not None and age <= self.fresh_s
        body: dict[str, Any] = {"ok": ok, "detail": r.detail}
        if age is not None:
            body["last_ok_s_ago"] = round(age, 1)
        return body


class BrokerClient:
    """An admin client of the configured bootstrap servers; rebuilt after a failure."""

    def __init__(self, settings: Settings, request_timeout_s: float) -> None:
        self.settings = settings
        self.request_timeout_ms = int(request_timeout_s * 1000)
        self.client: Any = None

    async def describe(self) -> None:
        from aiokafka.admin import AIOKafkaAdminClient

        if self.client is None:
            client = AIOKafkaAdminClient(
                bootstrap_servers=self.settings.bootstrap_servers,
                request_timeout_ms=self.request_timeout_ms,
            )
            try:
                await client.start()
            except BaseException:
                await _close_quietly(client)
                raise
            self.client = client
        try:
            await self.client.describe_cluster()
        except BaseException:
            client, self.client = self.client, None
            await _close_quietly(client)
            raise

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            await _close_quietly(client)


async def _close_quietly(client: Any) -> None:
    try:
        await asyncio.wait_for(client.close(), 2.0)
    except Exception as exc:  # closing a broken client: nothing left to do
        log.debug("closing probe client: %r", exc)


async def ping_redis(target: RedisTarget, timeout_s: float) -> None:
    """PING Redis on a fresh connection (the sink's own pool may hold a dead one)."""
    client = target.client(socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        await client.ping()
    finally:
        await client.aclose()


class Health:
    """The broker and Redis probes of one worker, run every `interval_s` while the app runs."""

    def __init__(
        self,
        settings: Settings,
        *,
        interval_s: float = 2.0,
        timeout_s: float = 3.0,
        fresh_s: float = 10.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.interval_s = interval_s
        self.broker_client = BrokerClient(settings, timeout_s)
        self.broker = Probe(
            "broker", self.broker_client.describe, timeout_s=timeout_s, fresh_s=fresh_s, clock=clock
        )
        redis_target = RedisTarget.of(settings)
        self.redis = Probe(
            "redis",
            lambda: ping_redis(redis_target, timeout_s),
            timeout_s=timeout_s,
            fresh_s=fresh_s,
            clock=clock,
        )

    async def run(self) -> None:
        """Probe forever (cancelled with the app)."""
        try:
            while True:
                await asyncio.gather(self.broker.run_once(), self.redis.run_once())
                await asyncio.sleep(self.interval_s)
        finally:
            await self.broker_client.close()

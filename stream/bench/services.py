"""Start-up of the services a bench needs: Apache Kafka (or KPISTREAM_BROKER) and a private Redis."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stream.bench.progress import say
from stream.config import Settings, load_settings
from stream.topic_admin import bootstrap_of

# Passed on to the bench's workers with an external broker (docs/security.md, "Kafka").
KAFKA_SECURITY_ENV = "KPISTREAM_KAFKA_"


@dataclass
class Services:
    bootstrap: str
    broker_url: str
    redis_url: str
    kafka_version: str | None
    redis_version: str | None
    # The settings of an external broker (KPISTREAM_BROKER and its Kafka security), else None.
    kafka_settings: Settings | None = None

    @property
    def kafka(self) -> Settings | str:
        """What the bench's Kafka clients connect to (stream/kafka_clients.py)."""
        return self.kafka_settings or self.bootstrap

    def worker_env(self) -> dict[str, str]:
        """KPISTREAM_* of the broker for a bench worker: the URL and, if external, its security."""
        env = {"KPISTREAM_BROKER": self.broker_url}
        if self.kafka_settings is not None:
            env.update({k: v for k, v in os.environ.items() if k.startswith(KAFKA_SECURITY_ENV)})
        return env


@contextlib.contextmanager
def services(workdir: Path) -> Iterator[Services]:
    """Apache Kafka (KafkaBroker, or KPISTREAM_BROKER when set) and a private Redis, stopped at the end."""
    from stream.devenv.kafka import KAFKA_VERSION, KafkaBroker
    from stream.devenv.redis import RedisServer

    with contextlib.ExitStack() as stack:
        env_broker = os.environ.get("KPISTREAM_BROKER")
        kafka_settings = None
        if env_broker:
            broker_url, kafka_version = env_broker, "external (KPISTREAM_BROKER)"
            kafka_settings = load_settings()
            say(f"using the broker of KPISTREAM_BROKER: {env_broker}")
        else:
            say("starting Apache Kafka ...")
            broker = KafkaBroker(workdir / "kafka", heap="1g")
            broker.start(timeout=240)
            stack.callback(broker.stop)
            broker_url, kafka_version = broker.url, KAFKA_VERSION
        redis = RedisServer(workdir / "redis")
        redis.start(timeout=30)
        stack.callback(redis.stop)
        with redis.client() as c:
            c.config_set("appendonly", "no")  # a benchmark store: no fsync in the measured path
            c.config_set("save", "")
            info: Any = c.info("server")
        say(f"services up: {broker_url}, {redis.url}")
        redis_version = info.get("redis_version")
        yield Services(
            bootstrap_of(broker_url), broker_url, redis.url, kafka_version, redis_version, kafka_settings
        )


def flush_redis(url: str) -> None:
    import redis

    with redis.Redis.from_url(url) as c:
        c.flushall()

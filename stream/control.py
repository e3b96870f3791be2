"""The control topic `kpi.control` (compacted): the active default strategy, switched while running.

`kpistream strategy set NAME` writes `{"default": NAME}` under key `strategy`. Every worker follows
the topic from the beginning with its own group-less consumer (a consumer group would hand the one
partition to a single worker), so every worker switches within a poll interval.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from stream import kafka_clients
from stream.config import Settings, mask_secrets
from stream.errors import ServiceError
from stream.topics import CONTROL

log = logging.getLogger(__name__)

STRATEGY_KEY = b"strategy"


def parse_control(key: bytes | None, value: bytes | None) -> str | None:
    """The strategy name in a control message, or None if it is not a (valid) strategy message."""
    if key != STRATEGY_KEY or not value:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return None
    name = data.get("default") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name else None


async def write_default_strategy(settings: Settings, name: str) -> None:
    """Publish the new default strategy on the control topic (acks from all replicas)."""
    producer = kafka_clients.producer(settings, acks="all")
    try:
        await producer.start()
        value = json.dumps({"default": name}).encode()
        await producer.send_and_wait(settings.topic(CONTROL), value, key=STRATEGY_KEY)
    except Exception as exc:
        raise ServiceError(mask_secrets(f"cannot write to {settings.topic(CONTROL)}: {exc}")) from exc
    finally:
        await producer.stop()


def _consumer(settings: Settings, **kw: Any) -> Any:
    return kafka_clients.consumer(
        settings,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **kw,
    )


async def read_default_strategy(settings: Settings, timeout_s: float = 5.0) -> str | None:
    """The last default strategy written to the control topic, None if there is none."""
    from aiokafka import TopicPartition

    consumer = _consumer(settings, request_timeout_ms=int(timeout_s * 1000))
    tp = TopicPartition(settings.topic(CONTROL), 0)
    found: str | None = None
    try:
        await asyncio.wait_for(consumer.start(), timeout_s)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        await consumer.seek_to_beginning(tp)
        async with asyncio.timeout(timeout_s):
            while await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=500)
                for msg in batch.get(tp, []):
                    found = parse_control(msg.key, msg.value) or found
    except (TimeoutError, Exception) as exc:
        raise ServiceError(mask_secrets(f"cannot read {settings.topic(CONTROL)}: {exc}")) from exc
    finally:
        await consumer.stop()
    return found


async def follow_control(
    settings: Settings, on_strategy: Callable[[str], object], retry_s: float = 2.0
) -> None:
    """Call `on_strategy(name)` for every strategy message, from the beginning, until cancelled."""
    from aiokafka import TopicPartition

    tp = TopicPartition(settings.topic(CONTROL), 0)
    while True:
        consumer = _consumer(settings)
        try:
            await consumer.start()
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            while True:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for msg in batch.get(tp, []):
                    name = parse_control(msg.key, msg.value)
                    if name is not None:
                        on_strategy(name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("control topic: %s (retrying in %.0fs)", mask_secrets(str(exc)), retry_s)
            await asyncio.sleep(retry_s)
        finally:
            await consumer.stop()

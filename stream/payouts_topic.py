"""Reading and writing the `kpi.payouts` ledger (records: stream/core/payouts.py; docs/outputs.md).

The topic has one partition, so a reader sees the records in the order they were written and the
close record after its payouts. Both sides are group-less and short-lived: a close is rare.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from stream.config import Settings, mask_secrets
from stream.errors import ServiceError
from stream.topics import PAYOUTS

Record = tuple[str, dict[str, Any]]


def _decode(key: bytes | None, value: bytes | None) -> tuple[str, dict[str, Any] | None] | None:
    """A topic record as (key, value); None for a record that is not a payouts record."""
    if key is None:
        return None
    if value is None:
        return key.decode(errors="replace"), None  # a tombstone
    try:
        data = json.loads(value)
    except ValueError:
        return None
    return (key.decode(errors="replace"), data) if isinstance(data, dict) else None


async def read_payouts(
    settings: Settings, timeout_s: float = 10.0
) -> list[tuple[str, dict[str, Any] | None]]:
    """Every record of the topic from the beginning to its end now, in offset order."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    topic = settings.topic(PAYOUTS)
    tp = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=int(timeout_s * 1000),
    )
    out: list[tuple[str, dict[str, Any] | None]] = []
    try:
        async with asyncio.timeout(timeout_s):
            await consumer.start()
            consumer.assign([tp])
            end = (await consumer.end_offsets([tp]))[tp]
            await consumer.seek_to_beginning(tp)
            while await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=500)
                for msg in batch.get(tp, []):
                    if (rec := _decode(msg.key, msg.value)) is not None:
                        out.append(rec)
    except Exception as exc:
        raise ServiceError(mask_secrets(f"cannot read {topic}: {type(exc).__name__}: {exc}")) from exc
    finally:
        await consumer.stop()
    return out


async def write_payouts(settings: Settings, records: Sequence[Record], timeout_s: float = 30.0) -> None:
    """Write the records in order, each acknowledged by every in-sync replica before the next.

    One at a time on purpose: the close record must never be on the topic before its payouts.
    """
    from aiokafka import AIOKafkaProducer

    topic = settings.topic(PAYOUTS)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    try:
        async with asyncio.timeout(timeout_s):
            await producer.start()
            for key, value in records:
                await producer.send_and_wait(
                    topic, json.dumps(value, separators=(",", ":")).encode(), key=key.encode()
                )
    except Exception as exc:
        raise ServiceError(mask_secrets(f"cannot write to {topic}: {type(exc).__name__}: {exc}")) from exc
    finally:
        await producer.stop()

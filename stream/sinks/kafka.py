"""Kafka sink: records to the compacted output topics, keyed as CONTRACT.md section 5 says.

Operator scores and queue KPIs are keyed by entity and period (stream/sinks/kafka_keys.py), so the
compacted topics keep the latest record of every operator-period and queue-period; the scorecard is
keyed by its period key. A period that left retention is removed with a tombstone (a null value)
under each of its keys, so compaction drops it and a consumer that reads from the beginning
rebuilds exactly the retained periods.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Callable, Iterator
from typing import Any

from stream import kafka_clients
from stream.config import Settings, mask_secrets
from stream.core.keys import CENTER_ID
from stream.errors import SinkError
from stream.sinks.base import Batch, Record, Retraction
from stream.sinks.kafka_keys import ScoreKey, operator_score_key, queue_kpis_key
from stream.topics import OPERATOR_SCORES, QUEUE_KPIS, SCORECARD

#: Messages encoded and handed to the producer at a time. A chunk's deliveries are awaited after
#: the next chunk was handed over (at most two chunks in flight), so a flush of tens of thousands
#: of records never holds all their encoded values at once (CHANGELOG).
RECORDS_PER_CHUNK = 1000

Send = tuple[str, bytes | None, bytes]  # topic, value (None: a tombstone), key


def _value(rec: Record) -> bytes:
    return json.dumps(rec, separators=(",", ":")).encode()


def _score_producer(settings: Settings) -> Any:
    # Idempotent: a batch retried after a leader moved (a broker lost) is written once and in
    # order, so an older record of a key never lands after a newer one.
    return kafka_clients.producer(
        settings, acks="all", enable_idempotence=True, linger_ms=20, request_timeout_ms=15000
    )


class KafkaSink:
    """An aiokafka producer started on first use; a failed batch raises SinkError (and is resent whole).

    Rule: one producer at a time. A producer that failed is stopped, and its stop (which delivers
    or fails every batch it still holds) completes before the next producer starts, even when the
    write that closed it was cancelled. Otherwise a batch of the old producer, retried in the
    background, could land after the resync of the new one: an older record of a key last in a
    compacted topic, for good.
    """

    name = "kafka"

    def __init__(self, settings: Settings, new_producer: Callable[[Settings], Any] = _score_producer) -> None:
        self.settings = settings
        self.scores_topic = settings.topic(OPERATOR_SCORES)
        self.queues_topic = settings.topic(QUEUE_KPIS)
        self.scorecard_topic = settings.topic(SCORECARD)
        self._make_producer = new_producer
        self._producer: Any = None
        self._stopping: asyncio.Task[None] | None = None  # the previous producer's stop

    async def _start(self) -> Any:
        if self._stopping is not None:
            await asyncio.shield(self._stopping)  # cancelled here: still stopping, waited for next time
            self._stopping = None
        if self._producer is None:
            producer = self._make_producer(self.settings)
            try:
                await producer.start()
            except Exception:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def write(self, batch: Batch) -> None:
        if not len(batch):
            return
        try:
            producer = await self._start()
            sends = self._sends(batch)
            in_flight: list[Any] = []  # the delivery futures of the previous chunk
            while chunk := list(itertools.islice(sends, RECORDS_PER_CHUNK)):
                sent = [await producer.send(t, v, key=k) for t, v, k in chunk]
                for fut in in_flight:
                    await fut
                in_flight = sent
            for fut in in_flight:
                await fut
        except Exception as exc:
            await self.close()
            raise SinkError(self.name, mask_secrets(f"{type(exc).__name__}: {exc}")) from exc

    def _sends(self, batch: Batch) -> Iterator[Send]:
        """Every message of the batch in order, each value encoded only when it is reached."""
        yield from self._tombstones(batch.retractions)
        for r in batch.operators:
            yield self.scores_topic, _value(r), operator_score_key(r)
        for r in batch.queues:
            yield self.queues_topic, _value(r), queue_kpis_key(r)
        for r in batch.scorecards:
            yield self.scorecard_topic, _value(r), str(r["period_key"]).encode()

    def _tombstones(self, retractions: list[Retraction]) -> list[Send]:
        """A null value under every key of the retracted periods (their centre's and scorecard's too)."""
        out: list[Send] = []
        for r in retractions:
            pk = r.period_key
            out += [(self.scores_topic, None, ScoreKey(op, pk).encode()) for op in r.operators]
            queues = dict.fromkeys([*r.queues, CENTER_ID])
            out += [(self.queues_topic, None, ScoreKey(q, pk).encode()) for q in queues]
            out.append((self.scorecard_topic, None, pk.encode()))
        return out

    async def close(self) -> None:
        """Stop the producer; a cancelled close leaves the stop running, and `_start` waits for it."""
        producer, self._producer = self._producer, None
        if producer is not None:
            self._stopping = asyncio.ensure_future(_stop_quietly(producer))
        if self._stopping is not None:
            await asyncio.shield(self._stopping)


async def _stop_quietly(producer: Any) -> None:
    with contextlib.suppress(Exception):
        await producer.stop()

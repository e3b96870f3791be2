"""Kafka sink: records to the compacted output topics, keyed as CONTRACT.md section 5 says.

Operator scores and queue KPIs are keyed by entity and period (stream/sinks/kafka_keys.py), so the
compacted topics keep the latest record of every operator-period and queue-period; the scorecard is
keyed by its period key. A period that left retention is removed with a tombstone (a null value)
under each of its keys, so compaction drops it and a consumer that reads from the beginning
rebuilds exactly the retained periods.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from stream.config import Settings, mask_secrets
from stream.core.keys import CENTER_ID
from stream.errors import SinkError
from stream.sinks.base import Batch, Record, Retraction
from stream.sinks.kafka_keys import ScoreKey, operator_score_key, queue_kpis_key
from stream.topics import OPERATOR_SCORES, QUEUE_KPIS, SCORECARD


def _value(rec: Record) -> bytes:
    return json.dumps(rec, separators=(",", ":")).encode()


class KafkaSink:
    """An aiokafka producer started on first use; a failed batch raises SinkError (and is resent whole)."""

    name = "kafka"

    def __init__(self, settings: Settings) -> None:
        self.bootstrap = settings.bootstrap_servers
        self.scores_topic = settings.topic(OPERATOR_SCORES)
        self.queues_topic = settings.topic(QUEUE_KPIS)
        self.scorecard_topic = settings.topic(SCORECARD)
        self._producer: Any = None

    async def _start(self) -> Any:
        if self._producer is None:
            from aiokafka import AIOKafkaProducer

            # Idempotent: a batch retried after a leader moved (a broker lost) is written once and
            # in order, so an older record of a key never lands after a newer one.
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                acks="all",
                enable_idempotence=True,
                linger_ms=20,
                request_timeout_ms=15000,
            )
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
            sends = self._tombstones(batch.retractions)
            sends += [(self.scores_topic, _value(r), operator_score_key(r)) for r in batch.operators]
            sends += [(self.queues_topic, _value(r), queue_kpis_key(r)) for r in batch.queues]
            sends += [
                (self.scorecard_topic, _value(r), str(r["period_key"]).encode()) for r in batch.scorecards
            ]
            futures = [await producer.send(t, v, key=k) for t, v, k in sends]
            for fut in futures:
                await fut
        except Exception as exc:
            await self.close()
            raise SinkError(self.name, mask_secrets(f"{type(exc).__name__}: {exc}")) from exc

    def _tombstones(self, retractions: list[Retraction]) -> list[tuple[str, bytes | None, bytes]]:
        """A null value under every key of the retracted periods (their centre's and scorecard's too)."""
        out: list[tuple[str, bytes | None, bytes]] = []
        for r in retractions:
            pk = r.period_key
            out += [(self.scores_topic, None, ScoreKey(op, pk).encode()) for op in r.operators]
            queues = dict.fromkeys([*r.queues, CENTER_ID])
            out += [(self.queues_topic, None, ScoreKey(q, pk).encode()) for q in queues]
            out.append((self.scorecard_topic, None, pk.encode()))
        return out

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

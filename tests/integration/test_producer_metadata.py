"""The worker's producer keeps the leaders of the topics it sends to (a commit flushes it).

aiokafka's client asks for the metadata of the topics it tracks only and replaces what it knew;
Faust's `create_topic` refreshes all topics without tracking them. A batch queued for such a
topic lost its partition leader when a send to another, new, topic made the client track that
one: the batch waited for its request timeout (Faust: 1,200 s), and every flush, so every commit,
so the consumer's loop, waited with it (agents/faust_compat.py: `TopicTrackingProducer`).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from agents.pipeline import KpiApp
from stream.topic_admin import create_topics
from stream.topics import TopicSpec

# Faust's default is 1,200 s: a stuck batch fails after this instead (so would this test).
REQUEST_TIMEOUT_S = 20.0


async def send_to_a_known_then_a_new_topic(bootstrap: str) -> Any:
    run = uuid.uuid4().hex[:8]
    known, new = f"producer-md-{run}-known", f"producer-md-{run}-new"
    app = KpiApp(
        f"producer-md-{run}",
        broker=f"kafka://{bootstrap}",
        producer_linger=0.5,
        producer_request_timeout=REQUEST_TIMEOUT_S,
    )
    producer = app.producer
    await producer.start()
    try:
        # Faust's topic creation refreshes the metadata of all topics: `known` has a leader now.
        await producer.create_topic(known, partitions=1, replication=1)
        # Created by someone else since: this producer learns of it at its first send.
        await create_topics(bootstrap, {new: TopicSpec(1, {})})
        queued = await producer.send(known, None, b"queued, lingering", None, None, None)
        await producer.send(new, None, b"to a topic the client did not track", None, None, None)
        await producer.flush()
        return await queued  # without the rule: NotLeaderForPartitionError after the request timeout
    finally:
        await producer.stop()


def test_a_queued_batch_is_delivered_when_a_send_adds_a_topic(kafka_broker: Any) -> None:
    metadata = asyncio.run(send_to_a_known_then_a_new_topic(kafka_broker.bootstrap))
    assert metadata.topic.endswith("-known") and metadata.offset == 0

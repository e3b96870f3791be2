"""Consumer lag per input partition, for `kpistream_consumer_lag{topic,partition}` (docs/metrics.md).

Every `interval_s` the worker asks the broker for the end offsets of the input partitions it owns
(one ListOffsets request) and subtracts what it has processed: Faust's committed offset (commits
follow processing within `broker_commit_interval`), else the consumer's position before the first
commit. A partition given away loses its series, so the sum over workers is the topic's lag.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import Gauge

from agents import faust_compat

log = logging.getLogger(__name__)

Partition = tuple[str, int]


def partition_lag(
    ends: Mapping[Partition, int | None], done: Mapping[Partition, int | None]
) -> dict[Partition, int]:
    """End offset minus processed offset per partition; a partition missing either is left out.

    Never negative: an end offset read before a commit that already passed it is no lag.
    """
    out: dict[Partition, int] = {}
    for tp, end in ends.items():
        processed = done.get(tp)
        if end is not None and processed is not None:
            out[tp] = max(0, int(end) - int(processed))
    return out


class LagGauge:
    """Keeps `kpistream_consumer_lag` equal to the newest lag of exactly the partitions owned now."""

    def __init__(self, gauge: Gauge) -> None:
        self.gauge = gauge
        self.shown: set[Partition] = set()

    def show(self, lag: Mapping[Partition, int]) -> None:
        for topic, partition in self.shown - set(lag):
            self.gauge.remove(topic, str(partition))
        for (topic, partition), n in lag.items():
            self.gauge.labels(topic, str(partition)).set(n)
        self.shown = set(lag)


class ConsumerLag:
    """Samples the lag of the input topics of one Faust app (an app task, cancelled with the app)."""

    def __init__(self, app: Any, topics: Iterable[str], gauge: Gauge, *, interval_s: float = 5.0) -> None:
        self.app = app
        self.topics = frozenset(topics)
        self.view = LagGauge(gauge)
        self.interval_s = interval_s

    async def sample(self) -> dict[Partition, int]:
        consumer = self.app.consumer
        tps = sorted(tp for tp in consumer.assignment() if tp.topic in self.topics)
        lag: dict[Partition, int] = {}
        if tps:
            ends = await consumer.highwaters(*tps)
            done: dict[Partition, int | None] = {}
            for tp in tps:
                committed = faust_compat.committed_offset(consumer, tp)
                done[(tp.topic, tp.partition)] = (
                    committed if committed is not None else await consumer.position(tp)
                )
            lag = partition_lag({(tp.topic, tp.partition): ends.get(tp) for tp in tps}, done)
        self.view.show(lag)
        return lag

    async def run(self) -> None:
        """Sample forever; a failed sample (broker away, a rebalance) keeps the last values."""
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.sample()
            except Exception as exc:  # the broker's and Faust's errors alike: try again next time
                log.debug("consumer lag not sampled: %r", exc)


def install_consumer_lag(pipeline: Any, interval_s: float = 5.0) -> ConsumerLag:
    """Sample the lag of the pipeline's input topics while its app runs."""
    topics = [t.get_topic_name() for t in pipeline.input_topics.values()]
    lag = ConsumerLag(pipeline.app, topics, pipeline.metrics.consumer_lag, interval_s=interval_s)

    async def kpistream_consumer_lag() -> None:
        await lag.run()

    pipeline.app.task(kpistream_consumer_lag)
    return lag

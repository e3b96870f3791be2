"""Wires the publisher into the Faust app: sinks from settings, the on_change hook, the timer task
and the control-topic follower. No KPI logic here (see stream/publish/)."""

from __future__ import annotations

import logging
from fractions import Fraction
from typing import Any

from agents.pipeline import Pipeline
from stream.config import mask_secrets
from stream.control import follow_control
from stream.core.scoring import MINOR_DIGITS, Fund
from stream.errors import ConfigError
from stream.publish import MappingReader, Publisher
from stream.sinks.base import Sink
from stream.sinks.kafka import KafkaSink
from stream.sinks.prometheus import PrometheusSink
from stream.sinks.redis import RedisSink
from stream.sinks.redis_keys import Keyspace
from stream.strategies import StrategyBook

log = logging.getLogger(__name__)


def fund_of(text: str, minor_digits: int = MINOR_DIGITS) -> Fraction | None:
    """KPISTREAM_FUND_AMOUNT: the fund of every month the strategies file names none; None if unset.

    Checked here, at start-up: a negative fund or one finer than the minor unit stops the worker
    with a clear error instead of failing every flush (`StrategyBook.fund_for` uses it).
    """
    if not text:
        return None
    try:
        return Fraction(Fund.parse(text, minor_digits).amount)
    except ValueError as exc:
        raise ConfigError("fund_amount", str(exc)) from exc


def install_publisher(pipeline: Pipeline, book: StrategyBook, sinks: list[Sink] | None = None) -> Publisher:
    """Create the publisher of this worker and start it (and the control follower) with the app."""
    settings = pipeline.settings
    if sinks is None:
        sinks = [
            RedisSink(
                settings.redis_url,
                settings.kpi,
                ssl_cafile=settings.redis_ssl_cafile,
                keyspace=Keyspace(settings.redis_key_prefix),
            ),
            KafkaSink(settings),
            PrometheusSink(pipeline.metrics),
        ]
    store = pipeline.store
    reader = MappingReader(
        pipeline.agg_table,
        pipeline.cfg,
        lambda: store.watermark,
        pipeline.business,
        retention_watermark=lambda: store.retention_watermark,
    )
    publisher = Publisher(
        reader,
        sinks,
        pipeline.cfg,
        book=book,
        fund=fund_of(settings.fund_amount, book.minor_digits),
        metrics=pipeline.metrics,
        interval_s=settings.flush_interval_s,
        share_interval_s=settings.share_interval_s,
    )
    pipeline.on_change.append(publisher.mark)
    pipeline.on_alert.append(publisher.alert)
    publisher.active_alerts = pipeline.active_alerts
    publisher.alert_scopes = pipeline.alert_scopes
    app = pipeline.app

    async def kpistream_publisher() -> None:
        log.info("publishing to %s", ", ".join(mask_secrets(s.name) for s in sinks))
        await publisher.run()

    async def kpistream_control() -> None:
        await follow_control(settings, publisher.set_default_strategy)

    connect_rebalance_hooks(app, pipeline.agg_table, publisher)
    app.task(kpistream_publisher)
    app.task(kpistream_control)
    return publisher


def connect_rebalance_hooks(app: Any, table: Any, publisher: Publisher) -> None:
    """Faust's public rebalance hooks to the publisher's.

    `app.on_partitions_revoked` is sent when a rebalance starts taking partitions away (and at
    start, before the first assignment). The aggregate table's `on_recover` callbacks run once the
    new assignment is recovered and the table has dropped the keys of partitions it no longer
    holds, before the streams resume: `app.on_rebalance_complete` comes before that drop, so a
    resync there could still publish partitions now owned by another worker.
    """

    async def revoked(_sender: Any, _revoked: Any = None, **_kwargs: Any) -> None:
        publisher.on_partitions_revoked()

    async def recovered() -> None:
        publisher.on_partitions_ready()

    app.on_partitions_revoked.connect(revoked)
    table.on_recover(recovered)

"""The worker's HTTP endpoints: health, readiness, Prometheus metrics and the period API."""

from __future__ import annotations

from typing import Any

from faust import web
from faust.sensors.prometheus import setup_prometheus_sensors
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from agents.pipeline import Pipeline
from agents.wallboard import install_wallboard
from stream.core.engine import group_by_period, period_report
from stream.strategies import StrategyBook


def install_pages(pipeline: Pipeline, book: StrategyBook) -> None:
    app = pipeline.app

    @app.page("/healthz")
    async def healthz(self: web.View, request: web.Request) -> web.Response:
        """Liveness: the process answers."""
        return self.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(self: web.View, request: web.Request) -> web.Response:
        """Readiness: partitions assigned and table recovery finished."""
        recovery: Any = getattr(app.tables, "recovery", None)
        recovered = recovery is None or recovery.completed.is_set()
        ready = bool(app.consumer.assignment()) and not app.rebalancing and recovered
        return self.json({"ready": ready}, status=200 if ready else 503)

    # Faust's own sensors (messages, events, tables, commits) on our registry: one /metrics page.
    if pipeline.settings.faust_sensors:
        setup_prometheus_sensors(
            app, pattern="/metrics", registry=pipeline.metrics.registry, name_prefix="faust"
        )
    else:

        @app.page("/metrics")
        async def metrics(self: web.View, request: web.Request) -> web.Response:
            body = generate_latest(pipeline.metrics.registry)
            return self.bytes(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/api/v1/periods")
    async def periods(self: web.View, request: web.Request) -> web.Response:
        """This worker's period aggregates in the JSON of `kpistream report` (plus `rolling`)."""
        strategy = book.get(book.default)
        data = group_by_period(pipeline.local_aggregates())
        biz = pipeline.business()
        for pk in biz.period_keys(pipeline.cfg.tz):
            data.setdefault(pk, type(next(iter(data.values())))() if data else _empty())
        body: dict[str, Any] = {
            "strategy": {"name": strategy.name, "weights": strategy.weights_json()},
            "watermark": pipeline.store.watermark,
            "periods": {pk: period_report(pk, data[pk], strategy, pipeline.cfg, biz) for pk in sorted(data)},
        }
        return self.json(body)

    install_wallboard(app, pipeline.settings.redis_url, pipeline.cfg)  # /wallboard and the Redis API


def _empty() -> Any:
    from stream.core.engine import PeriodData

    return PeriodData()

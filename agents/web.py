"""The worker's HTTP endpoints: health, readiness, Prometheus metrics and the period API."""

from __future__ import annotations

from typing import Any

from faust import web
from faust.sensors.prometheus import setup_prometheus_sensors
from prometheus_client import CONTENT_TYPE_LATEST

from agents.cluster_view import LOCAL_PATH, ClusterUnavailable, ClusterView
from agents.health import Health
from agents.ingest import install_ingest
from agents.payouts_api import install_payouts
from agents.pipeline import Pipeline
from agents.wallboard import install_wallboard
from agents.web_auth import install_web_auth
from stream.metrics import Exposition
from stream.publish import Publisher
from stream.sinks.redis_keys import Keyspace
from stream.strategies import StrategyBook


def install_pages(pipeline: Pipeline, book: StrategyBook, publisher: Publisher) -> None:
    app = pipeline.app
    # Before any route: one middleware decides every request by method and path (agents/web_auth.py).
    install_web_auth(app, pipeline.settings)

    @app.page("/healthz")
    async def healthz(self: web.View, request: web.Request) -> web.Response:
        """Liveness: the process answers."""
        return self.json({"status": "ok"})

    health = Health(pipeline.settings)

    async def kpistream_health() -> None:
        await health.run()

    app.task(kpistream_health)

    @app.page("/readyz")
    async def readyz(self: web.View, request: web.Request) -> web.Response:
        """Readiness, check by check: ready when every required check is ok."""
        body = readiness(app, health)
        return self.json(body, status=200 if body["ready"] else 503)

    # Faust's own sensors (messages, events, tables, commits) on our registry: one /metrics page.
    if pipeline.settings.faust_sensors:
        setup_prometheus_sensors(
            app, pattern="/metrics", registry=pipeline.metrics.registry, name_prefix="faust"
        )
    else:
        exposition = Exposition(pipeline.metrics.registry)

        @app.page("/metrics")
        async def metrics(self: web.View, request: web.Request) -> web.Response:
            # Rendered in a thread: 5,000 operators' series took ~0.2 s of the loop per scrape.
            body = await exposition.render()
            return self.bytes(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])

    cluster = ClusterView(
        pipeline,
        # The default in force (switched by `kpistream strategy set`) and each operator's team
        # strategy: the publisher's, so the API gives the F that Redis and the topics carry.
        strategy=lambda: book.get(publisher.default),
        strategy_of=publisher.strategy_for,
        fund_of=lambda pk: book.fund_for(pk, pipeline.settings.fund_amount or None),
    )

    @app.page("/api/v1/periods")
    async def periods(self: web.View, request: web.Request) -> web.Response:
        """The whole cluster's periods as `kpistream report` gives them, plus `rolling` (cluster_view.py)."""
        try:
            body = await cluster.periods()
        except ClusterUnavailable as exc:
            return self.json(exc.to_json(), status=503)
        return self.json(body)

    @app.page(LOCAL_PATH)
    async def local_aggregates(self: web.View, request: web.Request) -> web.Response:
        """Internal: this worker's own partitions, for its peers' /api/v1/periods."""
        try:
            view = cluster.local()
        except ClusterUnavailable as exc:
            return self.json(exc.to_json(), status=503)
        return self.bytes(view.to_bytes(), content_type="application/json")

    settings = pipeline.settings
    install_wallboard(  # /wallboard and the Redis API
        app,
        settings.redis_url,
        pipeline.cfg,
        ssl_cafile=settings.redis_ssl_cafile,
        keyspace=Keyspace(settings.redis_key_prefix),
    )
    install_payouts(app, pipeline, book, cluster)  # POST /api/v1/payouts/close (month close)
    install_ingest(app, settings)  # POST /api/v1/events (HTTP ingest)


def readiness(app: Any, health: Health) -> dict[str, Any]:
    """The `/readyz` body: `checks` by name; `ready` when all but the optional ones are ok.

    Redis is reported but not required: without it the worker keeps counting, and the
    publisher rewrites everything once a write to Redis succeeds again.
    """
    recovery: Any = getattr(app.tables, "recovery", None)
    assigned = bool(app.consumer.assignment())
    checks: dict[str, dict[str, Any]] = {
        "partitions": {
            "ok": assigned and not app.rebalancing,
            "detail": "rebalancing" if app.rebalancing else ("assigned" if assigned else "none assigned"),
        },
        "recovery": {"ok": recovery is None or recovery.completed.is_set()},
        "broker": health.broker.report(),
        "redis": {**health.redis.report(), "required": False},
    }
    ready = all(c["ok"] for c in checks.values() if c.get("required", True))
    return {"ready": ready, "checks": checks}


def _empty() -> Any:
    from stream.core.report import PeriodData

    return PeriodData()

"""The wallboard: `/wallboard` (a TV page), the JSON API under `/api/v1/` and live server-sent events.

Everything here reads Redis, the published truth, never this worker's tables: the page shows exactly
what every other Redis reader sees, whichever worker serves it, and it keeps working while the
worker rebalances. The pure part (hash parsing, colour bands, response building) is separate from
the Redis and HTTP part so that it can be unit-tested without services.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
from aiohttp import web as aioweb
from faust import web
from redis.exceptions import RedisError

from stream.config import mask_secrets
from stream.core.alerts import rule_for
from stream.core.config import KpiConfig
from stream.core.counts import QUEUE_COUNT_FIELDS
from stream.core.keys import CENTER_ID
from stream.core.kpis import OPERATOR_KPIS, QUEUE_KPIS
from stream.core.live import LIVE_FIELDS
from stream.core.periods import ROLLING
from stream.core.timefmt import format_ts
from stream.sinks.redis_conn import RedisTarget
from stream.sinks.redis_keys import (
    DEFAULT_KEYSPACE,
    CenterKey,
    Keyspace,
    LeaderboardKey,
    LiveQueueKey,
    OperatorKey,
    QueueKey,
    ScorecardKey,
    period_key_of,
    queue_or_center_key,
)

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
PERIODS: tuple[str, ...] = ("rolling", "day", "month")
LIVE_INT_FIELDS: tuple[str, ...] = LIVE_FIELDS  # every field of live_state is an integer
#: Wallboard-only target of the scorecard's customer dimension (the contract sets none): the common
#: contact-centre benchmark is 70-75 % first contact resolution.
FCR_GREEN = 0.70
FCR_RED = 0.60
#: Amber starts this far below the SL target (80 % target: amber 70 % to 80 %, red below 70 %).
SL_AMBER_WIDTH = 0.10
#: LCR and CAR turn amber at this fraction of their alert threshold (10 %: amber above 8 %).
RATE_AMBER_AT = 0.8

Record = dict[str, Any]


class BadRequest(ValueError):
    """A query parameter out of its range: answered with 400 and the reason."""


# ----------------------------------------------------------------------------- colour bands


@dataclass(frozen=True, slots=True)
class Band:
    """Green / amber / red limits of one KPI. At a limit counts as the better side.

    higher is better (SL): green at or above `green`, red below `red`, amber between;
    lower is better (LCR): green at or below `green`, red above `red`, amber between.
    """

    green: float
    red: float
    higher_is_better: bool

    def status(self, value: float | None) -> str | None:
        """'green', 'amber', 'red', or None for an undefined KPI (nothing to judge)."""
        if value is None:
            return None
        if self.higher_is_better:
            return "green" if value >= self.green else "red" if value < self.red else "amber"
        return "green" if value <= self.green else "red" if value > self.red else "amber"

    def to_json(self) -> dict[str, Any]:
        return {
            "green": self.green,
            "red": self.red,
            "direction": "higher_is_better" if self.higher_is_better else "lower_is_better",
        }


def queue_bands(queue: str | None, cfg: KpiConfig) -> dict[str, Band]:
    """The bands of SL, LCR, CAR and answer rate for a queue (None: the centre).

    SL from the configured target; LCR and CAR from the alert thresholds (per-queue overrides
    included), so red on the board is exactly where an alert can fire; answer rate is 1 - LCR,
    so its bands mirror LCR's.
    """
    lcr = float(rule_for("lcr", queue, cfg).threshold)
    car = float(rule_for("car", queue, cfg).threshold)
    sl = cfg.sl_target
    return {
        "sl": Band(sl, max(0.0, round(sl - SL_AMBER_WIDTH, 9)), True),
        "lcr": Band(lcr * RATE_AMBER_AT, lcr, False),
        "car": Band(car * RATE_AMBER_AT, car, False),
        "answer_rate": Band(1 - lcr * RATE_AMBER_AT, 1 - lcr, True),
    }


def wait_band(cfg: KpiConfig) -> Band:
    """Longest wait in seconds: amber once a waiting call is past the SL threshold (it already missed
    service level), red past three times the threshold."""
    t = cfg.sl_threshold_ms / 1000
    return Band(t, 3 * t, False)


def scorecard_status(card: Mapping[str, Any] | None, cfg: KpiConfig) -> dict[str, str | None]:
    """Healthy (green) / watch (amber) / unhealthy (red) of the scorecard figures the wallboard shows.

    Attrition uses the contract's limits (the record's own `*_healthy`); FCR the benchmark above;
    answer rate the centre's bands; cost per order has no target (None).
    """
    card = card or {}
    center = queue_bands(None, cfg)

    def healthy(flag: Any) -> str | None:
        return None if flag is None else "green" if flag else "red"

    growth = card.get("growth") or {}
    return {
        "customer.fcr": Band(FCR_GREEN, FCR_RED, True).status((card.get("customer") or {}).get("fcr")),
        "finance.cost_per_order": None,
        "operations.answer_rate": center["answer_rate"].status(
            (card.get("operations") or {}).get("answer_rate")
        ),
        "growth.attrition_month": healthy(growth.get("attrition_month_healthy")),
        "growth.attrition_12m": healthy(growth.get("attrition_12m_healthy")),
    }


# ----------------------------------------------------------------------------- hashes to records


def number(text: str | None) -> int | float | None:
    """A Redis decimal string back to a number: '' (undefined) is None, integers stay integers."""
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)


def period_of(period_key: str) -> str:
    return period_key.split(":", 1)[0]


def queue_record_from_hash(queue: str | None, period_key: str, h: Mapping[str, str]) -> Record:
    """A `kpi:queue:*` or `kpi:center:*` hash as the `kpi.queue-kpis` record it was written from."""
    return {
        "scope": "center" if queue is None else "queue",
        "queue": CENTER_ID if queue is None else queue,
        "period": h.get("period") or period_of(period_key),
        "period_key": period_key,
        "kpis": {k: number(h.get(k)) for k in QUEUE_KPIS},
        "counts": {k: int(h.get(k) or 0) for k in QUEUE_COUNT_FIELDS},
        "updated_at": h.get("updated_at", ""),
    }


def operator_entry(rank: int, operator_id: str, score: float, h: Mapping[str, str]) -> Record:
    """One leaderboard row: rank and F from the sorted set, the rest from the operator's hash."""
    entry: Record = {
        "rank": rank,
        "operator_id": operator_id,
        "f": score,
        "fund_share": number(h.get("fund_share")),
        "strategy": h.get("strategy") or None,
        "kpis": {k: number(h.get(k)) for k in OPERATOR_KPIS},
        "presented": int(h.get("presented") or 0),
        "updated_at": h.get("updated_at") or None,
    }
    if h.get("bonus") is not None:
        entry["bonus"] = number(h.get("bonus"))
    return entry


def rank_rows(rows: Iterable[tuple[str, float]]) -> list[tuple[int, str, float]]:
    """Highest F first, ties by operator id; equal F share a rank (1, 2, 2, 4)."""
    ordered = sorted(rows, key=lambda r: (-r[1], r[0]))
    out: list[tuple[int, str, float]] = []
    for i, (op, f) in enumerate(ordered):
        rank = out[-1][0] if out and out[-1][2] == f else i + 1
        out.append((rank, op, f))
    return out


def scorecard_from_hash(period_key: str, h: Mapping[str, str]) -> Record:
    """A `kpi:scorecard:*` hash (`dimension.figure` fields) as the `kpi.scorecard` record."""
    rec: Record = {
        "period": h.get("period") or period_of(period_key),
        "period_key": period_key,
        "period_start": h.get("period_start", ""),
    }
    for field, text in sorted(h.items()):
        if "." not in field:
            continue
        dim, name = field.split(".", 1)
        if name.endswith("_healthy"):
            value: Any = None if text == "" else text == "1"
        else:
            value = number(text)
        rec.setdefault(dim, {})[name] = value
    rec["updated_at"] = h.get("updated_at", "")
    return rec


def live_row(queue: str, h: Mapping[str, str]) -> Record:
    """A `kpi:live:queue:{queue}` hash with its counts as integers (missing fields are 0)."""
    row: Record = {"queue": queue}
    for k in LIVE_INT_FIELDS:
        row[k] = int(h.get(k) or 0)
    row["updated_at"] = h.get("updated_at") or None
    return row


def latest_keys(keys: Iterable[str]) -> dict[str, str | None]:
    """The current day and month: the newest `day:`/`month:` period keys present (event time).

    Day and month keys only exist once an event of that period was published, and expire after
    retention, so the newest is the period of the newest events: a replay shows its own day.
    """
    days: list[str] = []
    months: list[str] = []
    for key in keys:
        pk = period_key_of(key)
        if pk is not None:
            (days if pk.startswith("day:") else months).append(pk)
    day = max(days, default=None)
    month = max(months, default=None)
    if day is not None and (month is None or month < f"month:{day[4:11]}"):
        month = f"month:{day[4:11]}"
    return {"rolling": ROLLING, "day": day, "month": month}


def period_param(value: str | None, allowed: tuple[str, ...], default: str) -> str:
    """A `period` query parameter checked against the allowed kinds."""
    period = value or default
    if period not in allowed:
        raise BadRequest(f"period must be one of {', '.join(allowed)}, got {period!r}")
    return period


def limit_param(value: str | None, default: int = 50, maximum: int = 1000) -> int:
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except ValueError:
        raise BadRequest(f"limit must be an integer, got {value!r}") from None
    if not 1 <= n <= maximum:
        raise BadRequest(f"limit must be between 1 and {maximum}")
    return n


# ----------------------------------------------------------------------------- reading Redis


async def _scan(r: Any, pattern: str, ks: Keyspace = DEFAULT_KEYSPACE) -> list[str]:
    """The keys of `ks` matching a layout pattern, without the keyspace's prefix."""
    found = [k async for k in r.scan_iter(match=ks.scan(pattern), count=500)]
    return [bare for k in found if (bare := ks.strip(k)) is not None]


class WallboardReader:
    """The API's reads of Redis. One shared client (created in the serving loop, on first use)."""

    def __init__(
        self,
        redis_url: str,
        cfg: KpiConfig,
        *,
        timeout_s: float = 2.0,
        ssl_cafile: str = "",
        keyspace: Keyspace = DEFAULT_KEYSPACE,
    ) -> None:
        self.redis_url = redis_url
        self.target = RedisTarget(redis_url, ssl_cafile, keyspace)
        self.ks = keyspace
        self.cfg = cfg
        self.timeout_s = timeout_s
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            self._client = self.target.client(
                decode_responses=True,
                socket_timeout=self.timeout_s,
                socket_connect_timeout=self.timeout_s,
                health_check_interval=10,
            )
        return self._client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()

    async def current_periods(self) -> dict[str, str | None]:
        r = self.client()
        keys = await _scan(r, CenterKey.SCAN, self.ks)
        keys += await _scan(r, LeaderboardKey.SCAN, self.ks)
        keys += await _scan(r, ScorecardKey.SCAN, self.ks)
        return latest_keys(keys)

    async def queues(self) -> Record:
        """Per queue and for the centre: the rolling, current day and month records and their colours."""
        r = self.client()
        periods = await self.current_periods()
        wanted = {pk: kind for kind, pk in periods.items() if pk}
        targets: list[tuple[str | None, str]] = []
        for key in await _scan(r, QueueKey.SCAN, self.ks):
            qk = QueueKey.decode(key)
            if qk is not None and qk.period_key in wanted:
                targets.append((qk.queue, qk.period_key))
        targets += [(None, pk) for pk in wanted]
        async with r.pipeline(transaction=False) as pipe:
            for queue, pk in targets:
                pipe.hgetall(self.ks.key(queue_or_center_key(queue, pk)))
            hashes = await pipe.execute()
        names = {q for q, _ in targets if q is not None}
        live_keys = await _scan(r, LiveQueueKey.SCAN, self.ks)
        names |= {lk.queue for k in live_keys if (lk := LiveQueueKey.decode(k))}
        rows: dict[str | None, Record] = {
            q: self._queue_row(q) for q in [None, *sorted(n for n in names if n != CENTER_ID)]
        }
        for (queue, pk), h in zip(targets, hashes, strict=True):
            if h and queue in rows:
                row = rows[queue]
                kind = wanted[pk]
                rec = queue_record_from_hash(queue, pk, h)
                row["periods"][kind] = rec
                bands = queue_bands(queue, self.cfg)
                row["status"][kind] = {k: bands[k].status(rec["kpis"][k]) for k in bands}
        center = rows.pop(None)
        return {
            "period_keys": periods,
            "center": center,
            "queues": list(rows.values()),
            "thresholds": {
                "sl_threshold_s": self.cfg.sl_threshold_ms / 1000,
                "email_threshold_s": self.cfg.email_threshold_ms / 1000,
                "alert_min_offered": self.cfg.alert_min_offered,
            },
            "generated_at": format_ts(int(time.time() * 1000)),
        }

    def _queue_row(self, queue: str | None) -> Record:
        return {
            "scope": "center" if queue is None else "queue",
            "queue": CENTER_ID if queue is None else queue,
            "bands": {
                **{k: b.to_json() for k, b in queue_bands(queue, self.cfg).items()},
                "longest_wait_s": wait_band(self.cfg).to_json(),
            },
            "periods": dict.fromkeys(PERIODS),
            "status": dict.fromkeys(PERIODS),
        }

    async def leaderboard(self, period: str, limit: int) -> Record:
        """The operators of a period ranked by F, with fund share and strategy from their hashes."""
        r = self.client()
        pk = (await self.current_periods())[period] if period != ROLLING else ROLLING
        body: Record = {"period": period, "period_key": pk, "count": 0, "operators": []}
        if pk is None:
            return body
        raw = await r.zrange(self.ks.key(LeaderboardKey(pk)), 0, -1, withscores=True)
        ranked = rank_rows((str(op), float(score)) for op, score in raw)
        body["count"] = len(ranked)
        top = ranked[:limit]
        async with r.pipeline(transaction=False) as pipe:
            for _, op, _ in top:
                pipe.hgetall(self.ks.key(OperatorKey(op, pk)))
            hashes = await pipe.execute()
        body["operators"] = [
            operator_entry(rank, op, f, h) for (rank, op, f), h in zip(top, hashes, strict=True)
        ]
        return body

    async def live(self) -> Record:
        r = self.client()
        found = await _scan(r, LiveQueueKey.SCAN, self.ks)
        keys = sorted(lk for k in found if (lk := LiveQueueKey.decode(k)))
        async with r.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hgetall(self.ks.key(key))
            hashes = await pipe.execute()
        return {"queues": [live_row(k.queue, h) for k, h in zip(keys, hashes, strict=True)]}

    async def alerts(self) -> Record:
        raw = await self.client().hgetall(self.ks.active_alerts)
        alerts = []
        for text in raw.values():
            with contextlib.suppress(ValueError):
                alerts.append(json.loads(text))
        alerts.sort(key=lambda a: (str(a.get("since", "")), str(a.get("alert_id", ""))))
        return {"alerts": alerts}

    async def scorecard(self, period: str) -> Record:
        pk = (await self.current_periods())[period]
        card = None
        if pk is not None:
            h = await self.client().hgetall(self.ks.key(ScorecardKey(pk)))
            card = scorecard_from_hash(pk, h) if h else None
        return {
            "period": period,
            "period_key": pk,
            "scorecard": card,
            "status": scorecard_status(card, self.cfg),
        }


# ----------------------------------------------------------------------------- server-sent events


def sse_event(data: str, event: str | None = None) -> bytes:
    """One server-sent event; every line of `data` gets its own `data:` field."""
    head = f"event: {event}\n" if event else ""
    body = "".join(f"data: {line}\n" for line in (data.splitlines() or [""]))
    return (head + body + "\n").encode()


class EventStream:
    """Relays every message of `kpi:updates` to one browser, with keep-alives and Redis status.

    A Redis outage becomes an `event: stale` (with the time the data went stale) and the relay
    resubscribes every `retry_s`; `event: fresh` follows once it is back, so the page can say
    "data stale since ..." and re-read everything afterwards instead of breaking.
    """

    keepalive_s = 15.0
    retry_s = 2.0
    poll_s = 1.0

    def __init__(self, reader: WallboardReader, closing: asyncio.Event) -> None:
        self.reader = reader
        self.closing = closing

    async def run(self, request: aioweb.Request) -> aioweb.StreamResponse:
        resp = aioweb.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await resp.prepare(request)
        last_write = time.monotonic()
        stale_since: str | None = None

        async def send(chunk: bytes) -> None:
            nonlocal last_write
            await resp.write(chunk)
            last_write = time.monotonic()

        def gone() -> bool:
            transport = request.transport
            return self.closing.is_set() or transport is None or transport.is_closing()

        # A ConnectionError (built-in) is the browser gone: the stream ends. Redis failures are
        # redis-py's own RedisError: the stream stays and reports them.
        with contextlib.suppress(ConnectionError):
            await send(f"retry: {int(self.retry_s * 1000)}\n: kpistream\n\n".encode())
            while not gone():
                try:
                    async with self.reader.client().pubsub() as ps:
                        await ps.subscribe(self.reader.ks.updates_channel)
                        stale_since = None
                        await send(sse_event(json.dumps({"redis": "up"}), "fresh"))
                        while not gone():
                            msg = await ps.get_message(ignore_subscribe_messages=True, timeout=self.poll_s)
                            if msg is not None and msg.get("type") == "message":
                                data = msg["data"]
                                await send(sse_event(data if isinstance(data, str) else data.decode()))
                            elif time.monotonic() - last_write >= self.keepalive_s:
                                await send(b": keep-alive\n\n")
                except RedisError as exc:
                    if stale_since is None:
                        stale_since = format_ts(int(time.time() * 1000))
                        log.warning("wallboard events: Redis unavailable: %s", mask_secrets(str(exc)))
                    stale = {"since": stale_since, "error": "redis_unavailable"}
                    await send(sse_event(json.dumps(stale), "stale"))
                    await self._wait(self.retry_s)
        return resp

    async def _wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closing.wait(), seconds)


# ----------------------------------------------------------------------------- HTTP wiring


STATIC_TYPES = {".html": "text/html", ".css": "text/css", ".js": "application/javascript"}


def static_response(name: str) -> aioweb.Response:
    """One of the page's own files (no external assets: the page works offline)."""
    path = STATIC_DIR / name
    return aioweb.Response(
        body=path.read_bytes(),
        content_type=STATIC_TYPES[path.suffix],
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )


def install_wallboard(
    app: faust.App,
    redis_url: str,
    cfg: KpiConfig,
    *,
    ssl_cafile: str = "",
    keyspace: Keyspace = DEFAULT_KEYSPACE,
) -> WallboardReader:
    """Register /wallboard, its static files and the /api/v1 Redis-backed endpoints on a Faust app."""
    from agents.openapi import openapi_document

    reader = WallboardReader(redis_url, cfg, ssl_cafile=ssl_cafile, keyspace=keyspace)
    closing = asyncio.Event()

    async def on_shutdown(_app: aioweb.Application) -> None:
        closing.set()  # ends the open event streams at once, so the worker stops without waiting
        await reader.close()

    web_app = getattr(app.web, "web_app", None)
    if web_app is not None:
        web_app.on_shutdown.append(on_shutdown)

    async def answer(view: web.View, what: Any) -> web.Response:
        try:
            return view.json(await what)
        except BadRequest as exc:
            return view.json({"error": "bad_request", "detail": str(exc)}, status=400)
        except (RedisError, OSError) as exc:
            log.warning("wallboard API: Redis unavailable: %s", mask_secrets(str(exc)))
            return view.json({"error": "redis_unavailable", "detail": "Redis cannot be reached"}, status=503)

    @app.page("/wallboard")
    async def wallboard(self: web.View, request: web.Request) -> Any:
        """The TV page."""
        return static_response("wallboard.html")

    @app.page("/wallboard/wallboard.css")
    async def wallboard_css(self: web.View, request: web.Request) -> Any:
        return static_response("wallboard.css")

    @app.page("/wallboard/wallboard.js")
    async def wallboard_js(self: web.View, request: web.Request) -> Any:
        return static_response("wallboard.js")

    @app.page("/api/v1/queues")
    async def api_queues(self: web.View, request: web.Request) -> web.Response:
        """Current KPIs of every queue and the centre for the rolling hour, today and this month."""
        return await answer(self, reader.queues())

    @app.page("/api/v1/leaderboard")
    async def api_leaderboard(self: web.View, request: web.Request) -> web.Response:
        """Operators ranked by F for a period, with fund share and strategy."""
        q: Any = request.query

        async def run() -> Record:
            period = period_param(q.get("period"), PERIODS, ROLLING)
            return await reader.leaderboard(period, limit_param(q.get("limit")))

        return await answer(self, run())

    @app.page("/api/v1/live")
    async def api_live(self: web.View, request: web.Request) -> web.Response:
        """Every queue's floor now: calls and chats waiting, longest wait, agents by state."""
        return await answer(self, reader.live())

    @app.page("/api/v1/alerts")
    async def api_alerts(self: web.View, request: web.Request) -> web.Response:
        """The firing alerts."""
        return await answer(self, reader.alerts())

    @app.page("/api/v1/scorecard")
    async def api_scorecard(self: web.View, request: web.Request) -> web.Response:
        """The balanced scorecard of today or this month, with the wallboard's colours."""
        q: Any = request.query

        async def run() -> Record:
            return await reader.scorecard(period_param(q.get("period"), ("day", "month"), "day"))

        return await answer(self, run())

    @app.page("/api/v1/openapi.json")
    async def api_openapi(self: web.View, request: web.Request) -> web.Response:
        """The OpenAPI 3.1 description of this API."""
        return self.json(openapi_document())

    @app.page("/api/v1/events")
    async def api_events(self: web.View, request: web.Request) -> Any:
        """Server-sent events: every `kpi:updates` message, keep-alives, Redis stale/fresh status."""
        return await EventStream(reader, closing).run(request)  # type: ignore[arg-type]

    return reader

"""The wallboard API without services: the OpenAPI document, colour bands, Redis hashes back to records,
ranking, current periods, and the server-sent event relay (with a fake Redis pub/sub)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis.exceptions import ConnectionError as RedisConnectionError

from agents.openapi import openapi_document, response_schema
from agents.wallboard import (
    STATIC_DIR,
    BadRequest,
    Band,
    EventStream,
    WallboardReader,
    latest_keys,
    limit_param,
    live_row,
    period_param,
    queue_bands,
    queue_record_from_hash,
    rank_rows,
    scorecard_from_hash,
    scorecard_status,
    sse_event,
    wait_band,
)
from schemas.outputs import queue_kpis_schema, scorecard_schema
from stream.core.config import KpiConfig
from stream.core.outputs import queue_hash, queue_record, scorecard_hash, scorecard_record
from stream.core.scorecard import BusinessState

CFG = KpiConfig()
NOW = 1_768_467_600_000


# ------------------------------------------------------------------------------ OpenAPI


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_openapi_document_is_valid_openapi_31() -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(openapi_document())


def test_openapi_document_structure() -> None:
    doc = openapi_document()
    assert doc["openapi"] == "3.1.0"
    schemas = doc["components"]["schemas"]
    for ref in _refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    for path in (
        "/api/v1/queues",
        "/api/v1/leaderboard",
        "/api/v1/live",
        "/api/v1/alerts",
        "/api/v1/scorecard",
        "/api/v1/periods",
        "/api/v1/events",
        "/api/v1/openapi.json",
        "/wallboard",
    ):
        op = doc["paths"][path]["get"]
        assert "200" in op["responses"] and op["operationId"] and op["summary"]
    ids = [op["operationId"] for p in doc["paths"].values() for op in p.values()]
    assert len(ids) == len(set(ids))
    # Every schema in it is a valid JSON Schema 2020-12.
    for name, schema in schemas.items():
        assert (
            name
            and jsonschema.Draft202012Validator.check_schema({**schema, "components": doc["components"]})
            is None
        )


def test_every_wallboard_page_is_documented() -> None:
    source = (Path(__file__).parents[3] / "agents" / "wallboard.py").read_text()
    pages = set(re.findall(r'@app\.page\("(/api/v1/[^"]+)"\)', source))
    assert pages and pages <= set(openapi_document()["paths"])


def test_openapi_document_is_a_copy() -> None:
    openapi_document()["paths"].clear()
    assert openapi_document()["paths"]


# ------------------------------------------------------------------------------ colour bands


@pytest.mark.parametrize(
    ("value", "status"),
    [(0.95, "green"), (0.80, "green"), (0.7999, "amber"), (0.70, "amber"), (0.6999, "red"), (None, None)],
)
def test_sl_band(value: float | None, status: str | None) -> None:
    assert queue_bands("sales", CFG)["sl"].status(value) == status


@pytest.mark.parametrize(
    ("kpi", "value", "status"),
    [
        ("lcr", 0.08, "green"),
        ("lcr", 0.09, "amber"),
        ("lcr", 0.10, "amber"),  # at the alert threshold: not yet an alert
        ("lcr", 0.1001, "red"),
        ("car", 0.04, "green"),
        ("car", 0.045, "amber"),
        ("car", 0.05, "amber"),
        ("car", 0.051, "red"),
        ("answer_rate", 0.92, "green"),
        ("answer_rate", 0.91, "amber"),
        ("answer_rate", 0.90, "amber"),
        ("answer_rate", 0.89, "red"),
    ],
)
def test_rate_bands(kpi: str, value: float, status: str) -> None:
    assert queue_bands(None, CFG)[kpi].status(value) == status


def test_bands_follow_configured_targets_and_queue_overrides() -> None:
    cfg = KpiConfig(sl_target=0.9, queue_thresholds={"vip": {"car": 0.02}})
    assert queue_bands("vip", cfg)["sl"] == Band(0.9, 0.8, True)
    assert queue_bands("vip", cfg)["car"].red == pytest.approx(0.02)
    assert queue_bands("other", cfg)["car"].red == pytest.approx(0.05)
    assert wait_band(CFG).status(20) == "green"
    assert wait_band(CFG).status(21) == "amber"
    assert wait_band(CFG).status(61) == "red"


def test_scorecard_status() -> None:
    card = {
        "customer": {"fcr": 0.65},
        "operations": {"answer_rate": 0.95},
        "growth": {"attrition_month_healthy": False, "attrition_12m_healthy": True},
    }
    assert scorecard_status(card, CFG) == {
        "customer.fcr": "amber",
        "finance.cost_per_order": None,
        "operations.answer_rate": "green",
        "growth.attrition_month": "red",
        "growth.attrition_12m": "green",
    }
    assert set(scorecard_status(None, CFG).values()) == {None}


# ------------------------------------------------------------------------------ hashes back to records


def test_queue_hash_round_trip() -> None:
    counts = {
        "offered": 7,
        "answered": 5,
        "sl_answered": 3,
        "abandoned": 1,
        "lost": 1,
        "responses": 3,
        "fast": 1,
    }
    for queue in ("sales", None):
        rec = queue_record("day:2026-01-15", queue, counts, NOW)
        back = queue_record_from_hash(queue, "day:2026-01-15", queue_hash(rec))
        assert back == rec
        jsonschema.validate(back, queue_kpis_schema())


def test_scorecard_hash_round_trip() -> None:
    from schemas.parse import parse_event

    biz = BusinessState()
    for raw in (
        {"event_id": "h", "type": "staff.headcount", "ts": "2026-01-01T00:00:00Z", "count": 40},
        {"event_id": "l", "type": "staff.left", "ts": "2026-01-10T00:00:00Z", "operator_id": "x"},
        {
            "event_id": "o",
            "type": "business.orders",
            "ts": "2026-01-15T00:00:00Z",
            "date": "2026-01-15",
            "count": 300,
            "amount": 1500.5,
        },
        {
            "event_id": "c",
            "type": "business.cost",
            "ts": "2026-01-15T00:00:00Z",
            "date": "2026-01-15",
            "amount": 900,
        },
    ):
        biz.apply(parse_event(json.dumps(raw)))
    center = {"offered": 10, "answered": 9, "fcr_contacts": 4, "fcr_resolved": 3}
    for pk in ("day:2026-01-15", "month:2026-01"):
        rec = scorecard_record(pk, center, biz, CFG, NOW)
        back = scorecard_from_hash(pk, scorecard_hash(rec))
        assert back == rec
        jsonschema.validate(back, scorecard_schema())


def test_live_row_and_ranking() -> None:
    row = live_row("sales", {"waiting": "3", "longest_wait_s": "41", "updated_at": "x"})
    assert row["waiting"] == 3 and row["agents_busy"] == 0 and row["updated_at"] == "x"
    assert rank_rows([("b", 2.0), ("a", 2.0), ("c", 5.0), ("d", -1.0)]) == [
        (1, "c", 5.0),
        (2, "a", 2.0),
        (2, "b", 2.0),
        (4, "d", -1.0),
    ]


def test_latest_keys_are_the_newest_periods() -> None:
    keys = [
        "kpi:center:rolling",
        "kpi:center:day:2026-01-14",
        "kpi:center:day:2026-01-15",
        "kpi:leaderboard:month:2025-12",
        "kpi:scorecard:month:2026-01",
    ]
    assert latest_keys(keys) == {"rolling": "rolling", "day": "day:2026-01-15", "month": "month:2026-01"}
    assert latest_keys([]) == {"rolling": "rolling", "day": None, "month": None}


def test_query_parameters() -> None:
    assert period_param(None, ("rolling", "day"), "rolling") == "rolling"
    with pytest.raises(BadRequest):
        period_param("week", ("rolling", "day"), "rolling")
    assert limit_param("5") == 5
    for bad in ("0", "x", "100000"):
        with pytest.raises(BadRequest):
            limit_param(bad)


def test_static_files_are_self_contained() -> None:
    """No external assets: the page works offline on a TV without internet."""
    for name in ("wallboard.html", "wallboard.css", "wallboard.js"):
        text = (STATIC_DIR / name).read_text()
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), name
        assert "@import" not in text and "url(http" not in text
    assert "window.__loaded = 1" in (STATIC_DIR / "wallboard.js").read_text()


# ------------------------------------------------------------------------------ server-sent events


def test_sse_event_format() -> None:
    assert sse_event('{"a":1}') == b'data: {"a":1}\n\n'
    assert sse_event("x\ny", "stale") == b"event: stale\ndata: x\ndata: y\n\n"


class FakePubSub:
    def __init__(self, owner: FakeRedis) -> None:
        self.owner = owner

    async def __aenter__(self) -> FakePubSub:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def subscribe(self, channel: str) -> None:
        if self.owner.down:
            raise RedisConnectionError("Connection refused")
        self.owner.subscribed.append(channel)

    async def get_message(self, ignore_subscribe_messages: bool, timeout: float) -> dict[str, Any] | None:
        if self.owner.down:
            raise RedisConnectionError("Connection closed by server")
        try:
            data = await asyncio.wait_for(self.owner.messages.get(), timeout)
        except TimeoutError:
            return None
        return {"type": "message", "channel": "kpi:updates", "data": data}


class FakeRedis:
    def __init__(self) -> None:
        self.down = False
        self.subscribed: list[str] = []
        self.messages: asyncio.Queue[str] = asyncio.Queue()

    def pubsub(self) -> FakePubSub:
        return FakePubSub(self)


class FakeReader(WallboardReader):
    def __init__(self, fake: FakeRedis) -> None:
        super().__init__("redis://127.0.0.1:1/0", CFG)
        self.fake = fake

    def client(self) -> Any:
        return self.fake


@pytest.fixture()
async def sse() -> AsyncIterator[tuple[TestClient[Any, Any], FakeRedis]]:
    fake = FakeRedis()
    closing = asyncio.Event()

    class Fast(EventStream):
        keepalive_s = 0.3
        retry_s = 0.1
        poll_s = 0.05

    async def handler(request: web.Request) -> web.StreamResponse:
        return await Fast(FakeReader(fake), closing).run(request)

    app = web.Application()
    app.router.add_get("/api/v1/events", handler)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client, fake
    finally:
        closing.set()
        await client.close()


async def _read_until(resp: Any, needle: str, timeout: float = 5.0) -> str:
    seen = ""
    async with asyncio.timeout(timeout):
        while needle not in seen:
            seen += (await resp.content.readline()).decode()
    return seen


async def test_events_relay_keepalive_and_stale(sse: tuple[TestClient[Any, Any], FakeRedis]) -> None:
    client, fake = sse
    resp = await client.get("/api/v1/events")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
    assert "event: fresh" in await _read_until(resp, "event: fresh")
    assert fake.subscribed == ["kpi:updates"]
    msg = json.dumps({"key": "kpi:queue:sales:rolling", "kind": "queue", "record": {}})
    await fake.messages.put(msg)
    assert f"data: {msg}\n" in await _read_until(resp, "kpi:queue:sales:rolling")
    assert ": keep-alive" in await _read_until(resp, ": keep-alive")
    # Redis goes away: the stream stays open and says since when the data is stale ...
    fake.down = True
    stale = await _read_until(resp, "event: stale")
    stale += (await resp.content.readline()).decode()
    data = json.loads(stale.split("event: stale\n", 1)[1].split("data: ", 1)[1].split("\n", 1)[0])
    assert data["error"] == "redis_unavailable" and re.match(r"^\d{4}-\d\d-\d\dT", data["since"])
    # ... and fresh again once Redis is back.
    fake.down = False
    assert "event: fresh" in await _read_until(resp, "event: fresh")
    resp.close()


async def test_reader_raises_redis_errors_when_redis_is_down() -> None:
    """The API answers 503 on RedisError: a reader on a closed port raises exactly that."""
    from redis.exceptions import RedisError

    reader = WallboardReader("redis://127.0.0.1:1/0", CFG, timeout_s=0.5)
    try:
        with pytest.raises((RedisError, OSError)):
            await reader.queues()
    finally:
        await reader.close()


def test_response_schema_helper_resolves_refs() -> None:
    body = {"alerts": []}
    jsonschema.validate(body, response_schema("/api/v1/alerts"), cls=jsonschema.Draft202012Validator)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"alerts": [{}]}, response_schema("/api/v1/alerts"))

"""The cluster view: workers' local views of their own partitions merge into the report's result."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiokafka.partitioner import murmur2

from agents.cluster_view import (
    LOCAL_PATH,
    ClusterUnavailable,
    LocalView,
    PartitionOf,
    cluster_periods,
    fetch_view,
    gather_views,
    local_view,
    merge_views,
    own_partitions,
    peers_of,
    route_of,
)
from schemas.events import parse_event
from stream.core.aggregate import AggState
from stream.core.config import KpiConfig
from stream.core.engine import Engine
from stream.core.keys import BUSINESS_KEY
from stream.core.periods import ROLLING
from stream.core.report import group_by_period, period_report
from stream.core.scoring import DEFAULT, Fund
from stream.devenv.process import free_port
from stream.simulator import SimConfig, generate
from stream.strategies import StrategyBook

PARTITIONS = 4


def LATER() -> float:
    """A wall clock after every simulated event (none is `future`)."""
    return 2_000_000_000.0


@pytest.fixture(scope="module")
def engine() -> Engine:
    """A simulated centre over a month boundary, with business facts, as one process computes it."""
    cfg = KpiConfig()
    raw = generate(
        SimConfig(seed=3, start="2026-01-31T22:30:00+00:00", hours=3, profile="flat", duplicate_prob=0.02)
    )
    eng = Engine(cfg, rolling=True, clock=LATER)
    eng.process_all(parse_event(json.dumps(e)) for e in raw)
    return eng


BOOK = StrategyBook(default_fund=Fund.parse("10000.00"))


def views_of(eng: Engine, owners: list[tuple[int, ...]], partition_of: PartitionOf) -> list[LocalView]:
    """Each worker's view, through its JSON (as a peer sends it); each holds *every* key, as a stale
    owner would: the view keeps only what it owns."""
    out = []
    for i, parts in enumerate(owners):
        view = local_view(
            f"http://w{i}:6066",
            parts,
            eng.aggs.items(),
            eng.business,
            partition_of,
            eng.watermark.newest,
            eng.watermark.value,
        )
        out.append(LocalView.from_json(json.loads(view.to_bytes())))
    return out


@pytest.mark.parametrize("owners", [[(0, 1, 2, 3)], [(0, 2), (1, 3)], [(0,), (1, 2), (3,)]])
def test_merged_views_equal_the_report(engine: Engine, owners: list[tuple[int, ...]]) -> None:
    cfg = engine.cfg
    views = views_of(engine, owners, PartitionOf(PARTITIONS))
    state = merge_views(views, PARTITIONS, cfg)
    body = cluster_periods(state, DEFAULT, cfg, BOOK.fund_for)
    report = engine.report(DEFAULT, BOOK.fund_for)
    for pk, period in report["periods"].items():  # as `kpistream report` adds it
        if (f := BOOK.fund_for(pk)) is not None:
            period["fund"] = str(f)
    got = {pk: p for pk, p in body["periods"].items() if pk != ROLLING}
    assert set(got) == {"day:2026-01-31", "day:2026-02-01", "month:2026-01", "month:2026-02"}
    assert got == report["periods"]
    assert body["strategy"] == report["strategy"]
    assert any("bonus" in row for row in got["month:2026-01"]["operators"].values())
    assert got["month:2026-01"]["scorecard"]["growth"]["headcount_end"] is not None
    # The rolling hour: every worker's entries slid to the cluster's newest event.
    rolling = group_by_period({k: engine.store.slid(k, st) for k, st in engine.aggs.items()})[ROLLING]
    assert rolling.operators and rolling.center
    assert body["periods"][ROLLING] == period_report(ROLLING, rolling, DEFAULT, cfg, engine.business)
    assert body["watermark"] == engine.watermark.newest


def test_every_worker_keeps_only_the_partitions_it_owns(engine: Engine) -> None:
    partition_of = PartitionOf(PARTITIONS)
    a, b = views_of(engine, [(0, 2), (1, 3)], partition_of)
    assert a.fixed and b.fixed and not set(a.fixed) & set(b.fixed)
    assert all(partition_of(k) in (0, 2) for k in (*a.fixed, *a.rolling))
    # The business facts are the owner's of their route's partition only.
    assert (a.business is None) != (b.business is None)
    owner = a if partition_of(BUSINESS_KEY) in a.partitions else b
    assert owner.business is not None and owner.business.event_ids == engine.business.event_ids


def test_a_key_goes_to_the_partition_its_deltas_are_sent_to() -> None:
    """Stage 2 writes a key in the partition of its `kpi.deltas` route: the producer's murmur2 of it."""
    partition_of = PartitionOf(PARTITIONS)
    for key, route in [
        ("op|o7|day:2026-01-15", "op@day:2026-01-15"),
        ("op|o|with|bars|month:2026-01", "op@month:2026-01"),
        ("queue|sales|rolling", "queue|sales"),
        ("center|_center|day:2026-01-15", "center|_center"),
        ("channel|chat|month:2026-01", "channel|chat"),
        ("center||day:2026-01-15", "center|"),
        (BUSINESS_KEY, "center|"),  # with the centre: one worker builds each scorecard
    ]:
        assert route_of(key) == route
        assert partition_of(key) == (murmur2(route.encode()) & 0x7FFFFFFF) % PARTITIONS
    # Every operator of a period is in one partition: the period's fund shares are whole there.
    assert len({partition_of(f"op|o{i}|day:2026-01-15") for i in range(50)}) == 1


def test_views_must_own_every_partition_exactly_once(engine: Engine) -> None:
    cfg = engine.cfg
    with pytest.raises(ClusterUnavailable, match=r"no worker owns partition\(s\) \[3\]"):
        merge_views(views_of(engine, [(0, 1), (2,)], PartitionOf(PARTITIONS)), PARTITIONS, cfg)
    with pytest.raises(ClusterUnavailable, match="partition 1 is owned by") as exc:
        merge_views(views_of(engine, [(0, 1), (1, 2, 3)], PartitionOf(PARTITIONS)), PARTITIONS, cfg)
    assert exc.value.error == "rebalancing" and exc.value.peer == "http://w1:6066"


def test_a_key_or_the_business_facts_reported_twice_is_refused() -> None:
    cfg = KpiConfig()
    key = "queue|sales|day:2026-01-15"
    a = LocalView("http://a", (0, 1), 1, 1, fixed={key: {"offered": 1}})
    b = LocalView("http://b", (2, 3), 1, 1, fixed={key: {"offered": 1}})
    with pytest.raises(ClusterUnavailable, match="reported twice"):
        merge_views([a, b], PARTITIONS, cfg)
    from stream.core.scorecard import BusinessState

    a = LocalView("http://a", (0, 1), 1, 1, business=BusinessState())
    b = LocalView("http://b", (2, 3), 1, 1, business=BusinessState())
    with pytest.raises(ClusterUnavailable, match="business facts"):
        merge_views([a, b], PARTITIONS, cfg)


def test_rolling_entries_slide_to_the_newest_event_of_any_worker() -> None:
    cfg = KpiConfig()
    hour = cfg.rolling_ms
    t = 1_768_467_600_000
    a = LocalView("http://a", (0, 1), t, t, rolling={"queue|q|rolling": [(t - 10, {"offered": 2})]})
    b = LocalView(
        "http://b", (2, 3), t + hour, t + hour, rolling={"queue|r|rolling": [(t + hour, {"offered": 1})]}
    )
    state = merge_views([a, b], PARTITIONS, cfg)
    assert state.newest == t + hour
    assert state.aggregates["queue|q|rolling"].counts == {}  # older than the cluster's hour
    assert state.aggregates["queue|r|rolling"].counts == {"offered": 1}


def test_periods_out_of_retention_are_left_out_as_report_leaves_them() -> None:
    cfg = KpiConfig()
    t = 1_768_467_600_000  # 2026-01-15
    old = "queue|q|day:2025-11-01"
    view = LocalView(
        "http://a", (0, 1, 2, 3), t, t, fixed={old: {"offered": 1}, "queue|q|day:2026-01-15": {}}
    )
    body = cluster_periods(merge_views([view], PARTITIONS, cfg), DEFAULT, cfg, lambda pk: None)
    assert body["periods"] == {}


def test_own_partitions_and_peers_from_faust_metadata() -> None:
    from faust.types import TP

    topic = "kpi-aggregates-changelog"
    assigned = {TP(topic, 3), TP(topic, 1), TP("kpi-business-changelog", 0), TP("t-kpi.deltas", 1)}
    assert own_partitions(assigned, topic) == (1, 3)
    metadata = {
        "http://127.0.0.1:7001": {topic: [2, 0], "kpi-business-changelog": [0, 2]},
        "http://127.0.0.1:7002": {topic: [1, 3]},
        "http://127.0.0.1:7003": {},  # a member with nothing to hold
    }
    assert peers_of(metadata, topic) == {"http://127.0.0.1:7001": (0, 2), "http://127.0.0.1:7002": (1, 3)}


def test_gather_asks_every_peer_but_itself_and_names_the_one_that_failed() -> None:
    own = LocalView("http://a", (0, 2), 0, 0)
    asked: list[str] = []

    async def fetch(url: str, expected: tuple[int, ...]) -> LocalView:
        asked.append(url)
        if url == "http://c":
            raise ClusterUnavailable("peer_unavailable", "down", url)
        return LocalView(url, expected, 0, 0)

    peers = {"http://a": (0, 2), "http://b": (1,), "http://c": (3,)}
    with pytest.raises(ClusterUnavailable) as exc:
        asyncio.run(gather_views(own, peers, fetch))
    assert exc.value.peer == "http://c" and sorted(asked) == ["http://b", "http://c"]
    views = asyncio.run(gather_views(own, {"http://a": (0, 2), "http://b": (1, 3)}, fetch))
    assert [v.url for v in views] == ["http://a", "http://b"]
    with pytest.raises(ClusterUnavailable, match="assignment is changing"):
        asyncio.run(gather_views(own, {"http://a": (0,), "http://b": (1, 2, 3)}, fetch))


# ------------------------------------------------------------------ a peer over real HTTP


RELEASE = web.AppKey("release", asyncio.Event)


@pytest.fixture()
def peer() -> Iterator[Any]:
    """serve(handler) -> the URL of a real HTTP server answering LOCAL_PATH with `handler`."""

    def serve(handler: Any) -> Any:
        async def run(check: Any) -> Any:
            app = web.Application()
            app[RELEASE] = asyncio.Event()  # a handler that never answers waits on it until the end
            app.router.add_get(LOCAL_PATH, handler)
            runner = web.AppRunner(app)
            await runner.setup()
            port = free_port()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            try:
                async with aiohttp.ClientSession() as client:
                    return await check(client, f"http://127.0.0.1:{port}")
            finally:
                app[RELEASE].set()
                await runner.cleanup()

        return run

    yield serve


def test_fetch_view_reads_a_peer(peer: Any) -> None:
    sent = LocalView("http://b", (1, 3), 5, 4, fixed={"queue|q|day:2026-01-15": {"offered": 2}})

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=sent.to_bytes(), content_type="application/json")

    async def check(client: Any, url: str) -> LocalView:
        return await fetch_view(client, url, (1, 3), 2.0)

    assert asyncio.run(peer(handler)(check)) == sent


@pytest.mark.parametrize("case", ["silent", "503", "garbage", "other_partitions"])
def test_a_peer_that_cannot_give_its_view_is_named(peer: Any, case: str) -> None:
    async def handler(request: web.Request) -> web.Response:
        if case == "silent":
            await request.app[RELEASE].wait()  # answers only after the test
        if case == "503":
            return web.json_response({"error": "rebalancing"}, status=503)
        if case == "garbage":
            return web.Response(body=b"{}", content_type="application/json")
        return web.Response(body=LocalView("http://b", (0,), 0, 0).to_bytes())

    async def check(client: Any, url: str) -> ClusterUnavailable:
        with pytest.raises(ClusterUnavailable) as exc:
            await fetch_view(client, url, (1, 3), 0.2)
        assert exc.value.peer == url and url in exc.value.detail
        return exc.value

    err = asyncio.run(peer(handler)(check))
    assert err.error == ("rebalancing" if case == "other_partitions" else "peer_unavailable")
    assert err.to_json()["peer"].startswith("http://127.0.0.1:")


def test_a_view_of_no_partitions_holds_nothing() -> None:
    st = AggState(counts={"offered": 1})
    view = local_view("http://a", (), [("queue|q|day:2026-01-15", st)], None, PartitionOf(4), 0, 0)
    assert view.fixed == {} and view.business is None

"""The cluster's periods: every worker's `/api/v1/periods` answers for the whole cluster.

Workers with the same app id split the `kpi.deltas` partitions, and with them the aggregates and
the business facts (both tables are co-partitioned with `kpi.deltas`). A worker's own tables hold
only its partitions, so it asks every other worker for theirs (`LOCAL_PATH`) and computes the
report's JSON over the union (`stream/core/report.py`), equal to `kpistream report` however many
workers there are.

Rules:
- A worker's local view holds only the keys of the partitions it owns *now*: each key's partition
  is computed from its `kpi.deltas` route with the producer's partitioner, so whatever a worker
  still holds of partitions it gave away is never counted twice.
- The peers and their partitions come from Faust's cluster metadata (the assignor's changelog
  distribution: each member's `canonical_url` and active partitions). The answer is given only when
  the views cover every partition exactly once and each peer owns what the metadata says; a peer
  that does not answer within the timeout, a rebalance or a disagreement is a 503 that names the
  peer, never a partial result.
- Keys of different partitions are disjoint, so the merge is a union; the business facts come from
  the owner of their route's partition; event time is the newest of any worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka.partitioner import DefaultPartitioner

from agents.web_auth import peer_request_options
from stream.core import jsonbytes
from stream.core.aggregate import NOW, AggState
from stream.core.config import KpiConfig
from stream.core.contributions import CENTER, CHANNEL, OP, QUEUE
from stream.core.counts import Counts
from stream.core.keys import BUSINESS_KEY, BUSINESS_ROUTE, AggKey, entity_agg, operator_route
from stream.core.periods import ROLLING, is_expired
from stream.core.report import PeriodData, group_by_period, period_report
from stream.core.scorecard import BusinessState
from stream.core.scoring import Fund, Strategy

LOCAL_PATH = "/api/v1/local/aggregates"
PEER_TIMEOUT_S = 2.0  # a peer slower than this is unavailable: the answer is a 503, never partial

REPORT_SCOPES = (OP, QUEUE, CHANNEL, CENTER)  # what a period's report reads (report.group_by_period)

Partitioner = Callable[[bytes, list[int], list[int]], int]


class ClusterUnavailable(Exception):
    """The cluster's view cannot be given now: a rebalance, or a peer that did not answer."""

    def __init__(self, error: str, detail: str, peer: str | None = None) -> None:
        super().__init__(f"{error}: {detail}")
        self.error = error
        self.detail = detail
        self.peer = peer

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.error, "detail": self.detail}
        if self.peer is not None:
            out["peer"] = self.peer
        return out


def route_of(key: str) -> str:
    """The `kpi.deltas` route whose partition holds an aggregate key (stream/core/keys.py)."""
    if key == BUSINESS_KEY:
        return BUSINESS_ROUTE
    scope, sid, period = AggKey.decode(key)
    return operator_route(period) if scope == OP else entity_agg(scope, sid)


class PartitionOf:
    """The `kpi.deltas` partition of a key: the producer's partitioner over the route, cached by route."""

    def __init__(self, partitions: int, partitioner: Partitioner | None = None) -> None:
        self.all = list(range(partitions))
        self.partitioner: Partitioner = partitioner or DefaultPartitioner()
        self._cache: dict[str, int] = {}

    def __call__(self, key: str) -> int:
        route = route_of(key)
        p = self._cache.get(route)
        if p is None:
            p = self._cache[route] = self.partitioner(route.encode(), self.all, self.all)
        return p


@dataclass(frozen=True, slots=True)
class LocalView:
    """One worker's share: the aggregates and business facts of the partitions it owns, and its event time.

    `fixed` holds day and month counts; `rolling` the timed entries of rolling aggregates, so the
    merge can slide them to the cluster's newest event (as `AggregateStore.slid` does).
    """

    url: str
    partitions: tuple[int, ...]
    newest: int  # the newest event time seen (where the rolling hour ends)
    vouched: int  # the vouched watermark (what retention is measured from)
    fixed: dict[str, Counts] = field(default_factory=dict)
    rolling: dict[str, list[tuple[int, Counts]]] = field(default_factory=dict)
    business: BusinessState | None = None
    # Aggregates its tables still hold of partitions it does not own (should be 0 once a rebalance's
    # recovery completed: Faust's store forgets revoked partitions). Reported, never merged.
    foreign_keys: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "partitions": list(self.partitions),
            "newest": self.newest,
            "vouched": self.vouched,
            "fixed": self.fixed,
            "rolling": {k: [[ts, c] for ts, c in entries] for k, entries in self.rolling.items()},
            "business": None if self.business is None else self.business.to_json(),
            "foreign_keys": self.foreign_keys,
        }

    def to_bytes(self) -> bytes:
        return jsonbytes.dumps(self.to_json())

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> LocalView:
        biz = d.get("business")
        return cls(
            url=str(d["url"]),
            partitions=tuple(sorted(int(p) for p in d["partitions"])),
            newest=int(d["newest"]),
            vouched=int(d["vouched"]),
            fixed={str(k): {str(f): int(n) for f, n in c.items()} for k, c in d["fixed"].items()},
            rolling={
                str(k): [(int(ts), {str(f): int(n) for f, n in c.items()}) for ts, c in entries]
                for k, entries in d["rolling"].items()
            },
            business=None if biz is None else BusinessState.from_json(biz),
            foreign_keys=int(d.get("foreign_keys", 0)),
        )


def local_view(
    url: str,
    partitions: Iterable[int],
    aggregates: Iterable[tuple[str, AggState]],
    business: BusinessState | None,
    partition_of: Callable[[str], int],
    newest: int,
    vouched: int,
) -> LocalView:
    """The view of the partitions this worker owns; anything else its tables still hold is left out."""
    owned = frozenset(partitions)
    fixed: dict[str, Counts] = {}
    rolling: dict[str, list[tuple[int, Counts]]] = {}
    foreign = 0
    for key, st in aggregates:
        if key == BUSINESS_KEY:
            continue
        if partition_of(key) not in owned:
            foreign += 1
            continue
        scope, _, period = AggKey.decode(key)
        if scope not in REPORT_SCOPES or period == NOW:
            continue
        if period == ROLLING:
            if st.entries:
                rolling[key] = [(ts, dict(st.entries[ts])) for ts in st.times or ()]
        elif st.counts:
            fixed[key] = dict(st.counts)
    own_business = business if partition_of(BUSINESS_KEY) in owned else None
    return LocalView(url, tuple(sorted(owned)), newest, vouched, fixed, rolling, own_business, foreign)


@dataclass(frozen=True, slots=True)
class ClusterState:
    """The union of every worker's view: what one worker would hold if it owned every partition."""

    aggregates: dict[str, AggState]
    business: BusinessState
    newest: int
    vouched: int


def merge_views(views: Sequence[LocalView], partitions: int, cfg: KpiConfig) -> ClusterState:
    """Union the views; raise ClusterUnavailable unless they own every partition exactly once."""
    owner: dict[int, str] = {}
    for v in views:
        for p in v.partitions:
            if p in owner:
                raise ClusterUnavailable(
                    "rebalancing", f"partition {p} is owned by {owner[p]} and {v.url}", v.url
                )
            owner[p] = v.url
    missing = sorted(set(range(partitions)) - set(owner))
    if missing:
        raise ClusterUnavailable("rebalancing", f"no worker owns partition(s) {missing}")
    newest = max((v.newest for v in views), default=0)
    vouched = max((v.vouched for v in views), default=0)
    aggregates: dict[str, AggState] = {}
    business: BusinessState | None = None
    horizon = newest - cfg.rolling_ms
    for v in views:
        for key, counts in v.fixed.items():
            _put(aggregates, key, AggState(counts=dict(counts)), v.url)
        for key, entries in v.rolling.items():
            st = AggState.rolling()
            for ts, c in entries:
                st.add_timed(ts, c)
            st.trim(horizon)
            _put(aggregates, key, st, v.url)
        if v.business is not None:
            if business is not None:
                raise ClusterUnavailable("rebalancing", f"two workers hold business facts ({v.url})", v.url)
            business = v.business
    return ClusterState(aggregates, business or BusinessState(), newest, vouched)


def _put(aggregates: dict[str, AggState], key: str, st: AggState, url: str) -> None:
    if key in aggregates:  # disjoint partitions cannot share a key: a worker misreports what it owns
        raise ClusterUnavailable("rebalancing", f"aggregate {key!r} reported twice ({url})", url)
    aggregates[key] = st


def cluster_periods(
    state: ClusterState,
    strategy: Strategy,
    cfg: KpiConfig,
    fund_of: Callable[[str], Fund | None],
    strategy_of: Callable[[str], Strategy] | None = None,
) -> dict[str, Any]:
    """The body of `/api/v1/periods`: the report's JSON (periods in retention, funds) plus `rolling`."""
    wm = state.vouched
    data: dict[str, PeriodData] = {
        pk: pd
        for pk, pd in group_by_period(state.aggregates).items()
        if pk == ROLLING or not is_expired(pk, wm, cfg.tz, cfg.retention_days, cfg.retention_months)
    }
    for pk in state.business.period_keys(cfg.tz):
        if not is_expired(pk, wm, cfg.tz, cfg.retention_days, cfg.retention_months):
            data.setdefault(pk, PeriodData())
    periods: dict[str, Any] = {}
    for pk in sorted(data):
        fund = None if pk == ROLLING else fund_of(pk)
        period = period_report(pk, data[pk], strategy, cfg, state.business, fund, strategy_of)
        if fund is not None:
            period["fund"] = str(fund)  # as `kpistream report` gives it
        periods[pk] = period
    return {
        "strategy": {"name": strategy.name, "weights": strategy.weights_json()},
        "watermark": state.newest,
        "periods": periods,
    }


# ------------------------------------------------------------------ the worker's side (Faust)


def own_partitions(assigned: Iterable[Any], changelog_topic: str) -> tuple[int, ...]:
    """The partitions of `changelog_topic` among assigned topic-partitions (Faust TPs)."""
    return tuple(sorted(tp.partition for tp in assigned if tp.topic == changelog_topic))


def peers_of(
    metadata: Mapping[str, Mapping[str, Sequence[int]]], changelog_topic: str
) -> dict[str, tuple[int, ...]]:
    """Each member's URL and its partitions of the aggregates changelog (members with none left out)."""
    out: dict[str, tuple[int, ...]] = {}
    for url, topics in metadata.items():
        parts = tuple(sorted(topics.get(changelog_topic, ())))
        if parts:
            out[str(url)] = parts
    return out


async def fetch_view(
    client: Any,
    url: str,
    expected: tuple[int, ...],
    timeout_s: float,
    options: Mapping[str, Any] | None = None,
) -> LocalView:
    """A peer's local view over HTTP; ClusterUnavailable naming the peer when it cannot be had.

    `options` are extra aiohttp request options: the peer token and TLS check (agents/web_auth.py).
    """
    import aiohttp

    try:
        async with client.get(
            url.rstrip("/") + LOCAL_PATH, timeout=aiohttp.ClientTimeout(total=timeout_s), **(options or {})
        ) as response:
            raw = await response.read()
            if response.status != 200:
                detail = raw.decode(errors="replace")[:200]
                raise ClusterUnavailable(
                    "peer_unavailable", f"worker {url} answered {response.status}: {detail}", url
                )
            view = LocalView.from_json(jsonbytes.loads(raw))
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise ClusterUnavailable(
            "peer_unavailable",
            f"worker {url} did not answer in {timeout_s} s ({type(exc).__name__})",
            url,
        ) from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise ClusterUnavailable("peer_unavailable", f"worker {url} sent a bad view ({exc})", url) from exc
    if view.partitions != expected:
        raise ClusterUnavailable(
            "rebalancing",
            f"worker {url} owns partitions {list(view.partitions)}, the assignment says {list(expected)}",
            url,
        )
    return view


async def gather_views(
    own: LocalView,
    peers: Mapping[str, tuple[int, ...]],
    fetch: Callable[[str, tuple[int, ...]], Any],
) -> list[LocalView]:
    """This worker's view and every peer's, fetched at once; the first failure (by URL) is raised."""
    others = sorted(url for url in peers if url != own.url)
    if own.url in peers and peers[own.url] != own.partitions:
        raise ClusterUnavailable("rebalancing", "this worker's assignment is changing", own.url)
    results = await asyncio.gather(*(fetch(url, peers[url]) for url in others), return_exceptions=True)
    views = [own]
    for result in results:
        if isinstance(result, BaseException):
            raise result
        views.append(result)
    return views


class ClusterView:
    """The worker's side: its own view from its tables, its peers from Faust's cluster metadata."""

    def __init__(
        self,
        pipeline: Any,
        strategy: Callable[[], Strategy],
        fund_of: Callable[[str], Fund | None],
        timeout_s: float = PEER_TIMEOUT_S,
        strategy_of: Callable[[str], Strategy] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.app = pipeline.app
        self.strategy = strategy
        self.strategy_of = strategy_of
        self.fund_of = fund_of
        self.timeout_s = timeout_s
        self.partition_of = PartitionOf(pipeline.settings.partitions, self.app.conf.producer_partitioner)
        self.peer_options = peer_request_options(pipeline.settings)

    @property
    def url(self) -> str:
        return str(self.app.conf.canonical_url)

    @property
    def changelog_topic(self) -> str:
        return str(self.pipeline.agg_table.changelog_topic.get_topic_name())

    def check_settled(self) -> None:
        """Raise ClusterUnavailable while partitions move or tables recover: the state is not whole then.

        A worker that owns no partition (more workers than partitions) still answers: its view is
        empty and its peers' cover every partition (merge_views checks that).
        """
        app = self.app
        recovery: Any = getattr(app.tables, "recovery", None)
        if app.rebalancing or (recovery is not None and not recovery.completed.is_set()):
            raise ClusterUnavailable("rebalancing", "partitions are being assigned or recovered", self.url)

    def local(self) -> LocalView:
        """This worker's view (served at LOCAL_PATH)."""
        self.check_settled()
        p = self.pipeline
        return local_view(
            self.url,
            own_partitions(self.app.assignor.assigned_actives(), self.changelog_topic),
            list(p.agg_table.items()),
            p.business(),
            self.partition_of,
            p.event_time.newest,
            p.event_time.value,
        )

    async def periods(self) -> dict[str, Any]:
        """The whole cluster's periods (the body of `/api/v1/periods`); raises ClusterUnavailable."""
        return cluster_periods(
            await self.state(), self.strategy(), self.pipeline.cfg, self.fund_of, self.strategy_of
        )

    async def state(self) -> ClusterState:
        """The whole cluster's aggregates and business facts, every partition once; or ClusterUnavailable."""
        own = self.local()
        peers = peers_of(self.app.router.tables_metadata(), self.changelog_topic)
        client = self.app.http_client

        async def fetch(url: str, expected: tuple[int, ...]) -> LocalView:
            return await fetch_view(client, url, expected, self.timeout_s, self.peer_options)

        views = await gather_views(own, peers, fetch)
        self.check_settled()  # a rebalance that began while peers answered makes their views stale
        return merge_views(views, self.pipeline.settings.partitions, self.pipeline.cfg)

"""The month close on the worker: `POST /api/v1/payouts/close`, `GET /api/v1/payouts/{month}`.

A close reads the whole cluster's month (agents/cluster_view.py, as `/api/v1/periods` does, so it
equals `kpistream report --fund` over the same events), checks the ledger on `kpi.payouts`, and
writes the payout records and then the close record (stream/core/payouts.py) exactly once. Asked
again, it writes no second close: it answers with the first and writes a correction for every
operator whose figures changed since (an event of the closed month that arrived after the close).
The same check runs every `payouts_check_interval_s` on the worker that owns the month's operators
(their `kpi.deltas` route), so a late event is flagged without anyone asking.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from faust import web

from agents.cluster_view import ClusterState, ClusterUnavailable, own_partitions
from stream.config import Settings
from stream.core.contributions import OP
from stream.core.counts import Counts
from stream.core.keys import agg_key
from stream.core.payouts import (
    MonthLedger,
    MonthNotClosable,
    check_closable,
    close_records,
    correction_records,
    fund_of_close,
    month_figures,
    month_period,
    read_ledger,
    strategy_of_close,
)
from stream.core.periods import MONTH_PREFIX, is_expired
from stream.core.report import group_by_period
from stream.core.scoring import Fund, Strategy
from stream.errors import ServiceError
from stream.payouts_topic import Record, read_payouts, write_payouts
from stream.strategies import StrategyBook

log = logging.getLogger(__name__)

CLOSE_PATH = "/api/v1/payouts/close"
LEDGER_PATH = "/api/v1/payouts/{month}"
MAX_BODY_BYTES = 4096

STATUS_OF_ERROR = {"bad_month": 400, "bad_request": 400, "too_early": 409, "no_activity": 409, "no_fund": 409}

Reader = Callable[[Settings], Awaitable[list[tuple[str, dict[str, Any] | None]]]]
Writer = Callable[[Settings, Sequence[Record]], Awaitable[None]]


def month_operators(state: ClusterState, period_key: str) -> dict[str, Counts]:
    """The counts of every operator with activity in the month, over the whole cluster."""
    pd = group_by_period(state.aggregates).get(period_key)
    return {} if pd is None else dict(pd.operators)


def as_body(records: Sequence[Record]) -> list[dict[str, Any]]:
    return [{"key": k, "value": v} for k, v in records]


class MonthCloser:
    """Closes months and writes their corrections; one at a time per worker (a lock)."""

    def __init__(
        self,
        settings: Settings,
        book: StrategyBook,
        state: Callable[[], Awaitable[ClusterState]],
        clock: Callable[[], float],
        read: Reader = read_payouts,
        write: Writer = write_payouts,
        owns: Callable[[str], bool] = lambda period_key: True,
        *,
        strategy_in_force: Callable[[], Strategy],
    ) -> None:
        self.settings = settings
        self.cfg = settings.kpi
        self.book = book
        # Rule: a close pays with the default strategy in force (switched at run time by
        # `kpistream strategy set`), the one whose bonus Redis, the topics and the API carry; not
        # the strategies file's default.
        self.strategy_in_force = strategy_in_force
        self.state = state
        self.clock = clock
        self.read = read
        self.write = write
        # Whether this worker owns a month's operators: only that worker writes its corrections, so
        # two workers never number corrections of one month at once.
        self.owns = owns
        self.lock = asyncio.Lock()

    def fund_for(self, period_key: str, fund_text: str | None) -> Fund:
        """The fund asked for, else the stream's for the month; MonthNotClosable without one."""
        try:
            if fund_text:
                return Fund.parse(fund_text, self.book.minor_digits)
            fallback = (
                Fund.parse(self.settings.fund_amount, self.book.minor_digits)
                if self.settings.fund_amount
                else None
            )
        except ValueError as exc:
            raise MonthNotClosable("bad_request", str(exc)) from exc
        fund = self.book.fund_for(period_key, fallback)
        if fund is None:
            raise MonthNotClosable(
                "no_fund",
                f"no fund for {period_key}: give one, or set it in the strategies file's [funds] "
                "or KPISTREAM_FUND_AMOUNT",
            )
        return fund

    async def close(self, month: str, fund_text: str | None = None) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body) of a close: 201 closed now, 200 closed before (with any new corrections)."""
        pk = month_period(month)
        mon = pk[len(MONTH_PREFIX) :]
        check_closable(mon, int(self.clock() * 1000), self.cfg)
        async with self.lock:
            ledger = read_ledger(await self.read(self.settings)).get(mon, MonthLedger())
            if ledger.close is not None:
                fixes = await self._correct(mon, ledger) if self.owns(pk) else []
                return 200, {
                    "status": "already_closed",
                    "month": mon,
                    "corrections": as_body(fixes),
                    "records": as_body([*ledger.records.items(), *fixes]),
                }
            fund = self.fund_for(pk, fund_text)
            if self.book.team_strategy:
                # A close record carries one strategy; team strategies would pay other amounts than
                # `report --fund` (which scores team operators with their team's): refused, not guessed.
                raise MonthNotClosable(
                    "team_strategies", "a month close with [teams] strategies is not supported yet"
                )
            strategy = self.strategy_in_force()
            state = await self.state()
            figures = month_figures(month_operators(state, pk), strategy, fund)
            records = close_records(mon, figures, strategy, fund, int(self.clock() * 1000))
            await self.write(self.settings, records)
            log.info("closed %s: %d operators, fund %s, strategy %s", mon, len(figures), fund, strategy.name)
            return 201, {"status": "closed", "month": mon, "corrections": [], "records": as_body(records)}

    async def ledger(self, month: str) -> dict[str, Any]:
        """What the topic holds of a month (status `open` when it has no close record)."""
        mon = month_period(month)[len(MONTH_PREFIX) :]
        ledger = read_ledger(await self.read(self.settings)).get(mon, MonthLedger())
        return {
            "status": "open" if ledger.close is None else "closed",
            "month": mon,
            "records": as_body(list(ledger.records.items())),
        }

    async def check(self) -> list[Record]:
        """Corrections for every closed month whose operators this worker owns; the records written."""
        async with self.lock:
            written: list[Record] = []
            for mon, ledger in sorted(read_ledger(await self.read(self.settings)).items()):
                if ledger.close is not None and self.owns(f"{MONTH_PREFIX}{mon}"):
                    written += await self._correct(mon, ledger)
            return written

    async def _correct(self, mon: str, ledger: MonthLedger) -> list[Record]:
        assert ledger.close is not None
        strategy, fund = strategy_of_close(ledger.close), fund_of_close(ledger.close)
        state = await self.state()
        pk = f"{MONTH_PREFIX}{mon}"
        operators = month_operators(state, pk)
        cfg = self.cfg
        if not operators or is_expired(pk, state.vouched, cfg.tz, cfg.retention_days, cfg.retention_months):
            # The month's counts are gone (retention) or not here: that is no news about its figures.
            return []
        figures = month_figures(operators, strategy, fund)
        fixes = correction_records(mon, ledger, figures, strategy, fund, int(self.clock() * 1000))
        if fixes:
            await self.write(self.settings, fixes)
            log.warning(
                "%s was closed; events that arrived after the close changed %d operators' figures: "
                "corrections %s written to kpi.payouts",
                mon,
                len(fixes),
                ", ".join(k for k, _ in fixes),
            )
        return fixes


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI 3.1 paths of the close and the ledger (merged into agents/openapi.py's document)."""
    error = {"$ref": "#/components/schemas/Error"}

    def answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": schema or error}}}

    ledger = {
        "type": "object",
        "required": ["status", "month", "records"],
        "properties": {
            "status": {"enum": ["closed", "already_closed", "open"]},
            "month": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"},
            "records": {
                "type": "array",
                "description": "kpi.payouts records {key, value} (docs/outputs.md).",
                "items": {"type": "object", "required": ["key", "value"]},
            },
            "corrections": {"type": "array", "description": "Corrections written by this call."},
        },
    }
    refused = answer("Too early (the month's grace has not passed), no fund, or no activity in the month.")
    return {
        CLOSE_PATH: {
            "post": {
                "operationId": "closeMonth",
                "summary": "Close a month for payroll",
                "description": "Writes each operator's final KPIs, F, share and amount, then the close "
                "record, once to kpi.payouts. Asked again: the first close, and corrections for figures "
                "changed since by events of the month that arrived after it.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["month"],
                                "properties": {
                                    "month": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"},
                                    "fund": {"type": "string", "description": "Default: the stream's fund."},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": answer("Closed before: nothing written twice.", ledger),
                    "201": answer("Closed now.", ledger),
                    "400": answer("A malformed body or month."),
                    "409": refused,
                    "503": answer("A rebalance, a peer or Kafka unavailable: nothing written."),
                },
            }
        },
        LEDGER_PATH: {
            "get": {
                "operationId": "getPayouts",
                "summary": "A month's payouts",
                "description": "What kpi.payouts holds of the month; status `open` before its close.",
                "parameters": [
                    {"name": "month", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": answer("The ledger of the month.", ledger),
                    "400": answer("A malformed month."),
                    "503": answer("Kafka unavailable."),
                },
            }
        },
    }


def _error(view: web.View, exc: Exception) -> web.Response:
    if isinstance(exc, MonthNotClosable):
        return view.json(
            {"error": exc.error, "detail": exc.detail}, status=STATUS_OF_ERROR.get(exc.error, 409)
        )
    if isinstance(exc, ClusterUnavailable):
        return view.json(exc.to_json(), status=503)
    return view.json({"error": "kafka_unavailable", "detail": str(exc)}, status=503)


def parse_close_body(raw: bytes) -> tuple[str, str | None]:
    """`{"month": "YYYY-MM", "fund"?: "10000.00"}` as (month, fund); MonthNotClosable if malformed."""
    if len(raw) > MAX_BODY_BYTES:
        raise MonthNotClosable("bad_request", f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw or b"{}")
    except ValueError as exc:
        raise MonthNotClosable("bad_request", f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict) or not isinstance(body.get("month"), str):
        raise MonthNotClosable("bad_request", 'expected {"month": "YYYY-MM", "fund": "AMOUNT" (optional)}')
    fund = body.get("fund")
    if fund is not None and not isinstance(fund, str):
        raise MonthNotClosable("bad_request", 'write the fund as text, e.g. "10000.00"')
    return body["month"], fund


def install_payouts(app: Any, pipeline: Any, book: StrategyBook, cluster: Any) -> MonthCloser:
    """The close and ledger routes, and the periodic correction check (if its interval is not 0)."""

    def owns(period_key: str) -> bool:
        """Whether this worker owns the `kpi.deltas` partition of the month's operators."""
        mine = own_partitions(app.assignor.assigned_actives(), cluster.changelog_topic)
        return cluster.partition_of(agg_key(OP, "", period_key)) in mine

    closer = MonthCloser(
        pipeline.settings, book, cluster.state, pipeline.clock, owns=owns, strategy_in_force=cluster.strategy
    )

    class PayoutsClose(web.View):
        async def post(self, request: web.Request) -> web.Response:
            """Close a month: its payouts written once to kpi.payouts (docs/outputs.md)."""
            try:
                month, fund = parse_close_body(await request.read())
                status, body = await closer.close(month, fund)
            except (MonthNotClosable, ClusterUnavailable, ServiceError) as exc:
                return _error(self, exc)
            return self.json(body, status=status)

    class PayoutsLedger(web.View):
        async def get(self, request: web.Request, month: str) -> web.Response:
            """A month's payout, close and correction records as kpi.payouts holds them."""
            try:
                return self.json(await closer.ledger(month))
            except (MonthNotClosable, ServiceError) as exc:
                return _error(self, exc)

    app.page(CLOSE_PATH)(PayoutsClose)
    app.page(LEDGER_PATH)(PayoutsLedger)

    interval = pipeline.settings.payouts_check_interval_s
    if interval > 0:

        async def kpistream_payout_corrections() -> None:
            try:
                await closer.check()
            except (ClusterUnavailable, ServiceError) as exc:
                log.info("payout corrections not checked now: %s", exc)

        app.timer(interval=interval)(kpistream_payout_corrections)

    return closer

"""The worker's month close (agents/payouts_api.py) over an in-memory ledger: once, refused, corrected."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import pytest

from agents.cluster_view import ClusterState
from agents.payouts_api import MonthCloser, parse_close_body
from stream.config import Settings
from stream.core.aggregate import AggState
from stream.core.keys import agg_key
from stream.core.payouts import MonthNotClosable
from stream.core.scorecard import BusinessState
from stream.core.scoring import DEFAULT, Strategy
from stream.payouts_topic import Record
from stream.strategies import StrategyBook

FEB_20 = 1_771_545_600.0  # 2026-02-20T00:00:00Z: January's grace (to Feb 10) has passed


class Ledger:
    """The topic as a list: what `write` appended, read back from the beginning."""

    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any] | None]] = []
        self.writes = 0

    async def read(self, settings: Settings) -> list[tuple[str, dict[str, Any] | None]]:
        return list(self.records)

    async def write(self, settings: Settings, records: Sequence[Record]) -> None:
        self.writes += 1
        self.records += [(k, dict(v)) for k, v in records]


def state_of(ops: dict[str, dict[str, int]], vouched: int = 0) -> ClusterState:
    aggs = {agg_key("op", op, "month:2026-01"): AggState(counts=dict(c)) for op, c in ops.items()}
    return ClusterState(aggs, BusinessState(), vouched, vouched)


def closer(
    ledger: Ledger,
    ops: dict[str, dict[str, int]],
    fund: str = "100.00",
    now: float = FEB_20,
    vouched: int = 0,
    owns: bool = True,
    book: StrategyBook | None = None,
    in_force: str | None = None,
) -> MonthCloser:
    async def state() -> ClusterState:
        return state_of(ops, vouched)

    settings = Settings(fund_amount=fund)
    book = book or StrategyBook()
    return MonthCloser(
        settings,
        book,
        state,
        lambda: now,
        ledger.read,
        ledger.write,
        lambda pk: owns,
        strategy_in_force=lambda: book.get(in_force or book.default),
    )


OPS = {
    "a": {"presented": 4, "answered": 4, "sl_answered": 4},
    "b": {"presented": 4, "answered": 3, "sl_answered": 1},
}


def test_a_month_is_closed_once_and_asked_again_answers_with_the_first_close() -> None:
    ledger = Ledger()
    ops = {k: dict(v) for k, v in OPS.items()}
    status, body = asyncio.run(closer(ledger, ops).close("2026-01"))
    assert status == 201 and body["status"] == "closed" and ledger.writes == 1
    assert [r["key"] for r in body["records"]] == ["2026-01|a", "2026-01|b", "2026-01|_close"]
    status, again = asyncio.run(
        closer(ledger, ops).close("2026-01", "999.00")
    )  # another fund changes nothing
    assert status == 200 and again["status"] == "already_closed" and ledger.writes == 1
    assert again["records"] == body["records"] and again["corrections"] == []

    ops["b"]["presented"] += 1  # a late call for b, missed
    ops["b"]["lost"] = 1
    status, late = asyncio.run(closer(ledger, ops).close("2026-01"))
    assert status == 200 and ledger.writes == 2
    assert [r["key"] for r in late["corrections"]] == ["2026-01|a|correction:1", "2026-01|b|correction:2"]
    assert sum(float(r["value"]["change"]) for r in late["corrections"]) == 0  # same fund, moved between them


def test_a_close_pays_with_the_strategy_switched_in_at_run_time_not_the_files_default() -> None:
    """`kpistream strategy set` switched the default: the bonus on the wallboard, the topics and the
    API is scored with it, so the close must pay those amounts (it once paid the file's default's)."""
    sl_first = Strategy(
        "sl-first", (Fraction(1), Fraction(0), Fraction(0), Fraction(0), Fraction(0), Fraction(0))
    )
    book = StrategyBook(strategies={DEFAULT.name: DEFAULT, sl_first.name: sl_first})
    ops = {
        "a": {"presented": 4, "answered": 4, "sl_answered": 4},  # SL 1, FCR undefined
        "b": {"presented": 4, "answered": 4, "sl_answered": 2, "fcr_contacts": 2, "fcr_resolved": 2},
    }
    ledger = Ledger()
    status, body = asyncio.run(closer(ledger, ops, book=book, in_force="sl-first").close("2026-01"))
    assert status == 201
    values = {r["key"]: r["value"] for r in body["records"]}
    # F = SL only: a 1, b 0.5 -> 2/3 and 1/3 of 100.00
    assert values["2026-01|a"]["amount"] == "66.67" and values["2026-01|b"]["amount"] == "33.33"
    assert values["2026-01|_close"]["strategy"]["name"] == "sl-first"
    file_default = asyncio.run(closer(Ledger(), ops, book=book).close("2026-01"))[1]["records"]
    assert file_default[0]["value"]["amount"] != "66.67"  # the file's default would pay otherwise


def test_the_periodic_check_corrects_only_months_this_worker_owns() -> None:
    ledger = Ledger()
    ops = {k: dict(v) for k, v in OPS.items()}
    asyncio.run(closer(ledger, ops).close("2026-01"))
    ops["a"]["presented"] += 2
    assert asyncio.run(closer(ledger, ops, owns=False).check()) == []
    status, body = asyncio.run(closer(ledger, ops, owns=False).close("2026-01"))
    assert status == 200 and body["corrections"] == []  # another worker owns January's operators
    written = asyncio.run(closer(ledger, ops).check())
    assert written and all(v["kind"] == "correction" for _, v in written)
    assert asyncio.run(closer(ledger, ops).check()) == []  # nothing changed since


def test_a_month_whose_counts_are_gone_is_not_corrected_to_zero() -> None:
    """Retention deletes a month's aggregates 13 months on; that must not read as everyone's figures gone."""
    ledger = Ledger()
    asyncio.run(closer(ledger, OPS).close("2026-01"))
    assert asyncio.run(closer(ledger, {}).check()) == []
    march_2027 = 1_804_000_000_000  # 2027-03: January 2026 is out of the 13 months' retention
    changed = {**OPS, "a": {"presented": 9}}
    assert asyncio.run(closer(ledger, changed, vouched=march_2027).check()) == []
    assert len(ledger.records) == 3


@pytest.mark.parametrize(
    ("month", "fund", "now", "error"),
    [
        ("2026-01", "100.00", FEB_20 - 11 * 86_400, "too_early"),
        ("2026-1", "100.00", FEB_20, "bad_month"),
        ("2026-01", "", FEB_20, "no_fund"),
        ("2025-12", "100.00", FEB_20, "no_activity"),
    ],
)
def test_a_close_is_refused_with_a_reason_and_writes_nothing(
    month: str, fund: str, now: float, error: str
) -> None:
    ledger = Ledger()
    with pytest.raises(MonthNotClosable) as exc:
        asyncio.run(closer(ledger, OPS, fund, now).close(month))
    assert exc.value.error == error and ledger.records == []


@pytest.mark.parametrize(
    "raw", [b"", b"not json", b"[]", b'{"month": 202601}', b'{"month": "2026-01", "fund": 10.5}', b"x" * 5000]
)
def test_a_malformed_close_body_is_a_bad_request(raw: bytes) -> None:
    with pytest.raises(MonthNotClosable) as exc:
        parse_close_body(raw)
    assert exc.value.error == "bad_request"
    assert parse_close_body(b'{"month": "2026-01", "fund": "10.00"}') == ("2026-01", "10.00")

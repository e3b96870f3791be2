"""Month close (issue #14 item 5): the grace, the records written once, corrections, the CSV."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.parse import parse_event
from stream.core.config import DAY_MS, KpiConfig
from stream.core.engine import Engine
from stream.core.payouts import (
    CLOSE,
    CORRECTION,
    PAYOUT,
    MonthNotClosable,
    check_closable,
    closable_from,
    close_grace_ms,
    close_key,
    close_records,
    correction_records,
    decimal_text,
    fund_of_close,
    month_figures,
    month_period,
    payout_key,
    payouts_csv,
    read_ledger,
    strategy_of_close,
)
from stream.core.scoring import DEFAULT, Fund
from stream.simulator import SimConfig, generate, iter_jsonl

CFG = KpiConfig()
FUND = Fund.parse("10000.00")
AT = 1_772_000_000_000


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).astimezone(UTC).timestamp() * 1000)


def ops() -> dict[str, dict[str, int]]:
    """Three operators: calls, chats, e-mails and cases, one with a negative F."""
    return {
        "op-1": {
            "presented": 10,
            "answered": 9,
            "sl_answered": 8,
            "lost": 1,
            "fcr_contacts": 4,
            "fcr_resolved": 3,
        },
        "op-2": {"presented": 7, "answered": 7, "sl_answered": 7, "responses": 3, "fast": 2, "replied": 2},
        "op-3": {"presented": 5, "answered": 1, "lost": 4, "abandoned": 4},
    }


# --------------------------------------------------------------------------- the grace


def test_the_grace_is_the_fcr_window_plus_the_late_event_grace() -> None:
    assert close_grace_ms(CFG) == 9 * DAY_MS
    assert closable_from("2026-01", CFG) == ms("2026-02-10T00:00:00+00:00")
    zoned = KpiConfig(tz="Europe/Paris", fcr_window_ms=DAY_MS, entity_grace_ms=0)
    assert closable_from("2026-01", zoned) == ms("2026-02-02T00:00:00+01:00")


def test_a_close_before_the_grace_is_refused_with_the_date_it_can_be_done() -> None:
    due = closable_from("2026-01", CFG)
    with pytest.raises(MonthNotClosable) as exc:
        check_closable("2026-01", due - 1, CFG)
    assert exc.value.error == "too_early"
    assert "2026-02-10T00:00:00.000Z" in exc.value.detail and "9 days" in exc.value.detail
    check_closable("2026-01", due, CFG)  # from then on


@pytest.mark.parametrize("bad", ["2026-1", "2026-13", "26-01", "month:2026-00", "2026-01-01", ""])
def test_a_malformed_month_is_refused(bad: str) -> None:
    with pytest.raises(MonthNotClosable) as exc:
        month_period(bad)
    assert exc.value.error == "bad_month"
    assert month_period("2026-01") == month_period("month:2026-01") == "month:2026-01"


# --------------------------------------------------------------------------- figures and records


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (Fraction(583, 100), "5.83"),
        (Fraction(1, 3), "0.3333333333"),
        (Fraction(2, 3), "0.6666666667"),
        (Fraction(-7, 4), "-1.75"),
        (Fraction(1, 2 * 10**10), "0"),  # half even: 0.00000000005 -> 0
        (Fraction(3, 2 * 10**10), "0.0000000002"),
        (Fraction(0), "0"),
        (Fraction(12), "12"),
    ],
)
def test_decimal_text_is_exact_and_rounds_half_even(x: Fraction, text: str) -> None:
    assert decimal_text(x) == text


def test_close_records_carry_exact_figures_and_add_up_to_the_fund() -> None:
    figures = month_figures(ops(), DEFAULT, FUND)
    records = close_records("2026-01", figures, DEFAULT, FUND, AT)
    keys = [k for k, _ in records]
    assert keys == ["2026-01|op-1", "2026-01|op-2", "2026-01|op-3", "2026-01|_close"]  # the close last
    by_op = {v["operator_id"]: v for _, v in records if v["kind"] == PAYOUT}
    one = by_op["op-1"]
    assert one["kpis"] == {"sl": "0.8", "lcr": "0.1", "fcr": "0.75", "car": "0", "fac": None, "rt": None}
    assert one["f"] == "4.25" and one["contacts"] == 14 and one["counts"]["presented"] == 10
    assert by_op["op-3"]["f"].startswith("-") and by_op["op-3"]["amount"] == "0.00"
    assert sum(Decimal(v["amount"]) for v in by_op.values()) == Decimal("10000.00")
    assert all(isinstance(v["fund_share"], str) and isinstance(v["amount"], str) for v in by_op.values())
    close = records[-1][1]
    assert close["kind"] == CLOSE and close["operators"] == 3 and close["paid"] == "10000.00"
    assert close["contacts"] == 14 + 12 + 5 and close["fund"] == "10000.00"
    assert close["strategy"] == {"name": "strategy-1", "weights": ["3", "4", "3", "5", "2.5", "1"]}
    assert strategy_of_close(close).weights == DEFAULT.weights and fund_of_close(close) == FUND
    json.dumps(records)  # plain JSON


def test_a_month_without_activity_is_not_closed() -> None:
    with pytest.raises(MonthNotClosable) as exc:
        close_records("2026-01", {}, DEFAULT, FUND, AT)
    assert exc.value.error == "no_activity"


def test_the_close_equals_report_with_the_fund() -> None:
    """The figures of a close are `report --fund`'s for the month, over the same events."""
    events = generate(SimConfig(seed=3, start="2026-01-31T16:00:00+00:00", hours=3, operators=20))
    engine = Engine(CFG)
    engine.process_all(parse_event(line) for line in iter_jsonl(events))
    report = engine.report(DEFAULT, lambda pk: FUND if pk.startswith("month:") else None)
    expected = report["periods"]["month:2026-01"]["operators"]
    figures = month_figures(engine.periods()["month:2026-01"].operators, DEFAULT, FUND)
    by_op = {v["operator_id"]: v for _, v in close_records("2026-01", figures, DEFAULT, FUND, AT)[:-1]}
    assert sorted(by_op) == sorted(expected)
    for op, row in expected.items():
        got = by_op[op]
        assert got["amount"] == row["bonus"] and got["counts"] == row["counts"]
        assert float(got["f"]) == pytest.approx(row["f"], abs=1e-9)
        assert float(got["fund_share"]) == pytest.approx(row["fund_share"], abs=1e-9)
        for k in got["kpis"]:
            v = row["kpis"][k]
            assert (got["kpis"][k] is None) == (v is None) and (
                v is None or float(got["kpis"][k]) == pytest.approx(v)
            )


# --------------------------------------------------------------------------- the ledger and corrections


def written(records: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any] | None]]:
    """The records as a reader of the topic gets them back (JSON round trip)."""
    return [(k, json.loads(json.dumps(v))) for k, v in records]


def test_the_ledger_knows_a_month_is_closed_only_once_its_close_record_exists() -> None:
    records = close_records("2026-01", month_figures(ops(), DEFAULT, FUND), DEFAULT, FUND, AT)
    cut_short = read_ledger(written(records[:-1]))["2026-01"]
    assert cut_short.close is None and set(cut_short.payouts) == {"op-1", "op-2", "op-3"}
    ledger = read_ledger(written(records + records))["2026-01"]  # a re-read, or a re-write of the same keys
    assert ledger.close is not None and len(ledger.records) == 4 and ledger.corrections == 0


def test_unchanged_figures_make_no_correction() -> None:
    figures = month_figures(ops(), DEFAULT, FUND)
    ledger = read_ledger(written(close_records("2026-01", figures, DEFAULT, FUND, AT)))["2026-01"]
    assert correction_records("2026-01", ledger, figures, DEFAULT, FUND, AT + 1) == []


def test_a_late_event_makes_corrections_that_add_up_to_the_new_figures() -> None:
    closed = close_records("2026-01", month_figures(ops(), DEFAULT, FUND), DEFAULT, FUND, AT)
    ledger = read_ledger(written(closed))["2026-01"]
    late = ops()
    late["op-2"] = {**late["op-2"], "presented": 8, "lost": 1}  # a late call op-2 did not answer
    late["op-4"] = {"presented": 2, "answered": 2, "sl_answered": 2}  # someone new to the month
    now = month_figures(late, DEFAULT, FUND)
    fixes = correction_records("2026-01", ledger, now, DEFAULT, FUND, AT + 1)
    assert all(v["kind"] == CORRECTION for _, v in fixes)
    assert [k for k, _ in fixes] == [
        payout_key("2026-01", op, n) for n, op in enumerate(["op-1", "op-2", "op-4"], 1)
    ]
    assert next(k for k, _ in fixes) == "2026-01|op-1|correction:1"
    new = {v["operator_id"]: v for _, v in fixes}
    assert new["op-4"]["previous"]["amount"] is None and new["op-4"]["change"] == new["op-4"]["amount"]
    # op-3's amount stays 0.00 (F < 0): no correction. Paid + changes = the new amounts, to the cent.
    paid = {v["operator_id"]: Decimal(v["amount"]) for _, v in closed if v["kind"] == PAYOUT}
    for op, fig in now.items():
        assert paid.get(op, Decimal(0)) + Decimal(new[op]["change"] if op in new else "0") == fig.amount
    assert sum(Decimal(v["change"]) for v in new.values()) == 0  # the fund is the same

    # Read back: the latest figures are the corrections', and the next revision goes on from 3.
    again = read_ledger(written(closed + fixes))["2026-01"]
    assert again.corrections == 3 and again.latest["op-2"]["revision"] == 2
    assert correction_records("2026-01", again, now, DEFAULT, FUND, AT + 2) == []
    later = dict(late, **{"op-4": {"presented": 3, "answered": 3, "sl_answered": 3}})
    more = correction_records("2026-01", again, month_figures(later, DEFAULT, FUND), DEFAULT, FUND, AT + 3)
    assert more and all(v["revision"] > 3 for _, v in more)


def test_operator_ids_that_look_like_other_keys_keep_their_own_records() -> None:
    """An operator `_close` once took the close's key and `x|correction:1` x's first correction's:
    compaction keeps one record per key, so a payout vanished from the ledger and the next check
    paid it again as a correction."""
    odd = {
        "_close": {"presented": 2, "answered": 2, "sl_answered": 2},
        "x": {"presented": 2, "answered": 1, "sl_answered": 1},
        "x|correction:1": {"presented": 2, "answered": 2, "sl_answered": 1},
        "x%7Ccorrection:1": {"presented": 3, "answered": 3, "sl_answered": 3},
    }
    figures = month_figures(odd, DEFAULT, FUND)
    closed = close_records("2026-01", figures, DEFAULT, FUND, AT)
    keys = [k for k, _ in closed]
    assert len(set(keys)) == len(keys) and keys[-1] == "2026-01|_close"
    assert "2026-01|%5Fclose" in keys and "2026-01|x%7Ccorrection:1" in keys
    ledger = read_ledger(written(closed))["2026-01"]  # the compacted topic: last value per key
    assert set(ledger.payouts) == set(odd) and ledger.close is not None
    assert correction_records("2026-01", ledger, figures, DEFAULT, FUND, AT + 1) == []
    late = {**odd, "x": {"presented": 3, "answered": 2, "sl_answered": 2}}
    fixes = correction_records("2026-01", ledger, month_figures(late, DEFAULT, FUND), DEFAULT, FUND, AT + 1)
    assert not {k for k, _ in fixes} & set(keys)
    again = read_ledger(written(closed + fixes))["2026-01"]
    assert set(again.payouts) == set(odd) and sum(Decimal(v["change"]) for _, v in fixes) == 0


@given(st.lists(st.text(alphabet="x_|%:7Cc0", min_size=1, max_size=8), min_size=2, max_size=6, unique=True))
def test_no_two_operator_ids_share_a_payout_key(ids: list[str]) -> None:
    keys = [payout_key("2026-01", op, rev) for op in ids for rev in (0, 1, 2)]
    assert len(set(keys)) == len(keys) and close_key("2026-01") not in keys


def test_a_close_of_the_largest_fund_pays_and_reports_every_cent() -> None:
    """The default decimal context keeps 28 digits: a 30-digit fund's `paid` and `change` were rounded."""
    fund = Fund.parse("123456789012345678901234567.89")
    figures = month_figures(ops(), DEFAULT, fund)
    closed = close_records("2026-01", figures, DEFAULT, fund, AT)
    assert closed[-1][1]["paid"] == "123456789012345678901234567.89"
    late = {**ops(), "op-4": {"presented": 2, "answered": 2, "sl_answered": 2}}
    ledger = read_ledger(written(closed))["2026-01"]
    fixes = correction_records("2026-01", ledger, month_figures(late, DEFAULT, fund), DEFAULT, fund, AT + 1)
    # Compared as fractions: Decimal arithmetic in the default context would round these too.
    paid = {v["operator_id"]: Fraction(v["amount"]) for _, v in closed if v["kind"] == PAYOUT}
    assert fixes
    for _, v in fixes:
        assert Fraction(v["change"]) == Fraction(v["amount"]) - paid.get(v["operator_id"], Fraction(0))
    assert sum(Fraction(v["change"]) for _, v in fixes) == 0


def test_the_csv_lists_payouts_and_corrections_for_payroll() -> None:
    closed = close_records("2026-01", month_figures(ops(), DEFAULT, FUND), DEFAULT, FUND, AT)
    rows = list(csv.DictReader(io.StringIO(payouts_csv(closed))))
    assert [r["operator_id"] for r in rows] == ["op-1", "op-2", "op-3"]
    assert sum(Decimal(r["amount"]) for r in rows) == Decimal("10000.00")
    assert rows[0]["kind"] == "payout" and rows[0]["fac"] == "" and rows[0]["strategy"] == "strategy-1"

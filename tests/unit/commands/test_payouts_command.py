"""`kpistream payouts`: what it prints of a close and its corrections."""

from __future__ import annotations

from stream.commands.payouts import table
from stream.core.payouts import close_records, correction_records, month_figures, read_ledger
from stream.core.scoring import DEFAULT, Fund

FUND = Fund.parse("100.00")
OPS = {"a": {"presented": 4, "answered": 4, "sl_answered": 4}, "b": {"presented": 4, "answered": 3}}


def test_the_table_shows_each_payout_the_close_and_each_correction() -> None:
    closed = close_records("2026-01", month_figures(OPS, DEFAULT, FUND), DEFAULT, FUND, 0)
    later = {**OPS, "c": {"presented": 1, "answered": 1, "sl_answered": 1}}
    fixes = correction_records(
        "2026-01", read_ledger(closed)["2026-01"], month_figures(later, DEFAULT, FUND), DEFAULT, FUND, 1
    )
    body = {
        "month": "2026-01",
        "status": "closed",
        "records": [{"key": k, "value": v} for k, v in closed + fixes],
    }
    lines = table(body).splitlines()
    assert lines[0] == "2026-01: closed"
    assert any(
        line.startswith("close: 2 operators, 8 contacts, paid 100.00 of 100.00 (strategy-1)")
        for line in lines
    )
    assert sum("payout" in line for line in lines) == 2
    assert any(line.strip().startswith("c ") and "correction 2 (change 50.00)" in line for line in lines), (
        lines
    )

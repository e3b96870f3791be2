"""`kpistream score` on the original paper's worked example (docs/examples/paper-operators.csv)."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from stream.cli import main
from stream.commands.score import ScoreInputError, read_kpis, score_table
from stream.core.scoring import DEFAULT

PAPER = Path(__file__).resolve().parents[3] / "docs" / "examples" / "paper-operators.csv"
PAPER_F = [5.83, 3.325, 5.16, 4.315, 3.92, 2.15, 2.375, 5.395]
PAPER_SHARE_PERCENT = [18, 10, 16, 13, 12, 7, 7, 17]


def test_paper_example_exact() -> None:
    with PAPER.open(encoding="utf-8") as f:
        result = score_table(read_kpis(f), DEFAULT)
    ops = list(result["operators"].values())
    assert [r["f"] for r in ops] == PAPER_F
    assert [round(r["fund_share"] * 100) for r in ops] == PAPER_SHARE_PERCENT
    assert sum(r["fund_share"] for r in ops) == pytest.approx(1.0)
    assert result["strategy"] == {"name": "strategy-1", "weights": [3, 4, 3, 5, 2.5, 1]}


# 10,000.00 over the paper's 8 operators (docs/metrics.md): the whole cents of share x fund sum to
# 9,999.95; the 5 cents left go to the largest remainders (op-6 .97, op-3 .92, op-4 .90, op-5 .82,
# op-7 .44). Rounding each to the cent instead would pay 9,999.99.
PAPER_BONUS = ["1795.50", "1024.02", "1589.16", "1328.92", "1207.27", "662.15", "731.45", "1661.53"]


def test_cli_json_with_fund(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "--kpis", str(PAPER), "--fund", "10000", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out, parse_float=Decimal)
    ops = out["operators"]
    assert [float(r["f"]) for r in ops.values()] == PAPER_F
    assert out["fund"] == "10000.00"
    assert [r["bonus"] for r in ops.values()] == PAPER_BONUS
    assert sum(Decimal(r["bonus"]) for r in ops.values()) == Decimal("10000.00")


def test_cli_csv_and_table_with_fund(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "--kpis", str(PAPER), "--fund", "10000.00", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["bonus"] for r in rows] == PAPER_BONUS
    assert main(["score", "--kpis", str(PAPER), "--fund", "10000.00", "--format", "table"]) == 0
    table = capsys.readouterr().out
    assert "fund 10000.00" in table and "op-1      5.83   18.0%  1795.50" in table


@pytest.mark.parametrize(
    ("fund", "why"),
    [("-1", "negative"), ("100.005", "more decimals"), ("ten", "not a decimal"), ("NaN", "finite")],
)
def test_bad_fund_is_a_clear_error(fund: str, why: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "--kpis", str(PAPER), "--fund", fund]) == 2
    err = capsys.readouterr().err
    assert why in err and err.startswith("kpistream score:")


def test_cli_csv_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "--kpis", str(PAPER), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [float(r["f"]) for r in rows] == PAPER_F and rows[0]["bonus"] == ""
    assert main(["score", "--kpis", str(PAPER), "--format", "table"]) == 0
    table = capsys.readouterr().out
    assert "op-1      5.83   18.0%" in table
    assert main(["score", "--kpis", str(PAPER)]) == 0  # JSON by default, like report
    doc = json.loads(capsys.readouterr().out)
    assert doc["operators"]["op-1"]["f"] == 5.83 and doc["strategy"]["name"] == "strategy-1"


def test_weights_fractions_and_empty_cells() -> None:
    text = "operator,sl,lcr,fcr,car,fac,rt\na,0.9,,0.5,,,\nb,,,,100%,,\n"
    kpis = read_kpis(io.StringIO(text))
    assert kpis["a"]["lcr"] is None
    result = score_table(kpis, DEFAULT)
    assert result["operators"]["a"]["f"] == 4.2  # 3*0.9 + 3*0.5; undefined KPIs add 0
    assert result["operators"]["b"]["f"] == -5.0
    assert result["operators"]["a"]["fund_share"] == 1.0 and result["operators"]["b"]["fund_share"] == 0.0


def test_custom_weights(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "--kpis", str(PAPER), "--weights", "1,0,0,0,0,0", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["strategy"]["name"] == "custom" and out["operators"]["op-1"]["f"] == 0.9


def test_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ScoreInputError, match="missing column"):
        read_kpis(io.StringIO("operator,sl\na,1\n"))
    bad = tmp_path / "bad.csv"
    bad.write_text("operator,sl,lcr,fcr,car,fac,rt\na,ninety,,,,,\n")
    assert main(["score", "--kpis", str(bad)]) == 2
    assert "line 2, column sl" in capsys.readouterr().err


@pytest.mark.parametrize("cell", ["90", "1.5", "-0.1", "101%", "-3%"])
def test_a_kpi_outside_0_to_1_is_refused_not_scored(cell: str) -> None:
    """`90` once scored as SL 9,000 % (F 270): most likely 90 % without its sign."""
    with pytest.raises(ScoreInputError, match=r"line 2, column sl: .* not a share from 0 to 1"):
        read_kpis(io.StringIO(f"operator,sl,lcr,fcr,car,fac,rt\na,{cell},,,,,\n"))


@pytest.mark.parametrize(
    ("cell", "value"), [("0", 0), ("1", 1), ("100%", 1), ("0.9", Fraction(9, 10)), ("90%", Fraction(9, 10))]
)
def test_kpis_from_0_to_1_are_read(cell: str, value: Fraction | int) -> None:
    assert read_kpis(io.StringIO(f"operator,sl,lcr,fcr,car,fac,rt\na,{cell},,,,,\n"))["a"]["sl"] == value

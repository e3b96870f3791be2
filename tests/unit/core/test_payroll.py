"""Payroll-grade amounts (CONTRACT.md section 3): the fund split in minor units, adding up exactly.

Each operator gets the whole cents of share x fund; the cents left over (fewer than the operators)
go one each by largest remainder, ties to the higher F, then to the lower operator id.
"""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.cli import main
from stream.core.aggregate import AggregateStore, AggState
from stream.core.config import KpiConfig
from stream.core.entity import Delta
from stream.core.scoring import (
    Fund,
    fund_shares,
    minor_units,
    payroll_amounts,
)
from stream.errors import StrategyError
from stream.publish import MappingReader, Publisher
from stream.strategies import StrategyBook, load_book, parse_book

D = Decimal
PAPER_F = ["5.83", "3.325", "5.16", "4.315", "3.92", "2.15", "2.375", "5.395"]


def scores(**fs: str | int) -> dict[str, Fraction]:
    return {op: Fraction(f) for op, f in fs.items()}


# --------------------------------------------------------------------------- worked examples


def test_paper_8_operators_over_10000_add_up_to_10000() -> None:
    """Whole cents sum to 9,999.95; the 5 cents left go to op6, op3, op4, op5, op7 (remainders
    .968, .922, .900, .825, .441). Rounding each amount to the cent would pay 9,999.99."""
    fs = {f"op{i + 1}": Fraction(f) for i, f in enumerate(PAPER_F)}
    amounts = payroll_amounts(fs, D("10000.00"))
    assert amounts == {
        "op1": D("1795.50"),
        "op2": D("1024.02"),
        "op3": D("1589.16"),
        "op4": D("1328.92"),
        "op5": D("1207.27"),
        "op6": D("662.15"),
        "op7": D("731.45"),
        "op8": D("1661.53"),
    }
    assert sum(a for a in amounts.values() if a is not None) == D("10000.00")
    rounded = sum(round(D(float(s * 10000)), 2) for s in fund_shares(fs).values() if s is not None)
    assert rounded == D("9999.99")  # what naive rounding pays: the bug this rule exists for
    assert all(str(a).count(".") == 1 and len(str(a).split(".")[1]) == 2 for a in amounts.values())


def test_a_fund_that_does_not_divide() -> None:
    # 100.00 / 3 = 33.333...: one cent left, equal remainders and F: the lowest id gets it.
    assert payroll_amounts(scores(b=1, a=1, c=1), D("100")) == {
        "a": D("33.34"),
        "b": D("33.33"),
        "c": D("33.33"),
    }
    # 0.05 over 2:1 -> 3.33 and 1.67 cents: whole 3 and 1, the cent left to the larger remainder.
    assert payroll_amounts(scores(x=2, y=1), D("0.05")) == {"x": D("0.03"), "y": D("0.02")}


def test_ties_in_remainder_go_to_the_higher_f_then_the_lower_id() -> None:
    # F 1 and 3 over 1.00 (100 cents, total 4): 25 and 75 exactly, nothing left.
    assert payroll_amounts(scores(a=1, b=3), D("1.00")) == {"a": D("0.25"), "b": D("0.75")}
    # F 1 and 2 over 0.01 (1 cent, total 3): 1/3 and 2/3 cent, the larger remainder (b) wins.
    assert payroll_amounts(scores(a=1, b=2), D("0.01")) == {"a": D("0.00"), "b": D("0.01")}
    # F 1 and 3 over 0.02 (total 4): 0.5 and 1.5 cents, equal remainders, one cent left: the
    # higher F (b) gets it.
    assert payroll_amounts(scores(a=1, b=3), D("0.02")) == {"a": D("0.00"), "b": D("0.02")}
    # Equal F and equal remainders: the lower id, whatever the input order.
    assert payroll_amounts(scores(zed=1, amy=1), D("0.01")) == {"zed": D("0.00"), "amy": D("0.01")}
    assert payroll_amounts(scores(amy=1, zed=1), D("0.01")) == {"amy": D("0.01"), "zed": D("0.00")}


def test_one_operator_gets_the_whole_fund() -> None:
    assert payroll_amounts(scores(solo="0.001"), D("1234.56")) == {"solo": D("1234.56")}


def test_zero_sum_gives_no_amounts() -> None:
    assert payroll_amounts(scores(a=0, b=-3), D("500.00")) == {"a": None, "b": None}
    assert payroll_amounts({}, D("500.00")) == {}


def test_negative_f_gets_zero_never_a_leftover_cent() -> None:
    amounts = payroll_amounts(scores(a=1, b=1, c=1, neg=-5), D("0.02"))
    assert amounts["neg"] == D("0.00")
    assert amounts == {"a": D("0.01"), "b": D("0.01"), "c": D("0.00"), "neg": D("0.00")}


def test_zero_fund_and_other_minor_units() -> None:
    assert payroll_amounts(scores(a=1, b=2), D("0")) == {"a": D("0.00"), "b": D("0.00")}
    yen = payroll_amounts(scores(a=1, b=1, c=1), D("1000"), minor_digits=0)
    assert yen == {"a": D("334"), "b": D("333"), "c": D("333")} and str(yen["a"]) == "334"
    dinar = payroll_amounts(scores(a=1, b=2), D("1.000"), minor_digits=3)
    assert {k: str(v) for k, v in dinar.items()} == {"a": "0.333", "b": "0.667"}


@pytest.mark.parametrize(
    ("fund", "why"),
    [
        (D("-0.01"), "negative"),
        (D("100.005"), "more decimals"),
        (D("NaN"), "finite"),
        (D("Infinity"), "finite"),
    ],
)
def test_bad_funds_are_clear_errors(fund: Decimal, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        payroll_amounts(scores(a=1), fund)
    with pytest.raises(ValueError, match=why):
        Fund(fund)


def test_fund_parse() -> None:
    assert str(Fund.parse("10000")) == "10000.00"
    assert str(Fund.parse(" 10000.5 ")) == "10000.50"
    assert str(Fund.parse("10.000")) == "10.00"  # trailing zeros are not finer than a cent
    assert str(Fund.parse(250)) == "250.00"
    assert str(Fund.parse(Fraction(5, 2))) == "2.50"
    assert str(Fund.parse("-0")) == "0.00"
    assert str(Fund.parse("1000", minor_digits=0)) == "1000"
    assert Fund.parse("12.34").units == 1234
    assert str(Fund.parse("1" + "0" * 29)) == "1" + "0" * 29 + ".00"  # no context rounding
    with pytest.raises(ValueError, match="too large"):
        Fund.parse("1e999999999")
    for bad, why in [
        ("ten", "not a decimal"),
        (1.5, "as text"),
        (True, "as text"),
        (Fraction(1, 3), "more decimals"),
        (Fraction(-1), "negative"),
        ("1.5", "more decimals"),
    ]:
        with pytest.raises(ValueError, match=why):
            Fund.parse(bad, minor_digits=0 if bad == "1.5" else 2)
    with pytest.raises(ValueError, match="digits"):
        Fund.parse("1", minor_digits=7)
    assert minor_units(D("0.10")) == 10


# --------------------------------------------------------------------------- properties

_ids = st.text(alphabet="abcdefgh", min_size=1, max_size=3)
_f = st.fractions(min_value=-10, max_value=10, max_denominator=1000)


@settings(max_examples=300, deadline=None)
@given(
    fs=st.dictionaries(_ids, _f, min_size=1, max_size=12),
    units=st.integers(min_value=0, max_value=10**12),
    digits=st.integers(min_value=0, max_value=4),
)
def test_amounts_add_up_exactly_and_stay_within_one_minor_unit(
    fs: dict[str, Fraction], units: int, digits: int
) -> None:
    fund = D(f"{units}e-{digits}")
    amounts = payroll_amounts(fs, fund, digits)
    shares = fund_shares(fs)
    assert amounts.keys() == fs.keys()
    if all(s is None for s in shares.values()):
        assert all(a is None for a in amounts.values())
        return
    paid = {op: a for op, a in amounts.items() if a is not None}
    assert len(paid) == len(fs)
    assert sum(minor_units(a, digits) for a in paid.values()) == units  # exact, in minor units
    assert sum(paid.values(), D(0)) == fund
    for op, a in paid.items():
        share = shares[op]
        assert share is not None
        assert a.as_tuple().exponent == -digits  # always exactly the minor unit's digits
        assert abs(Fraction(a) - share * Fraction(fund)) < Fraction(1, 10**digits)
        if share == 0:
            assert a == 0


@settings(max_examples=200, deadline=None)
@given(
    fs=st.dictionaries(_ids, st.sampled_from([Fraction(1), Fraction(2), Fraction(3)]), min_size=1),
    units=st.integers(min_value=0, max_value=50),
    data=st.data(),
)
def test_tie_order_is_deterministic(fs: dict[str, Fraction], units: int, data: st.DataObject) -> None:
    """Same operators in any order: the same amounts; a leftover cent never skips a better claim."""
    fund = D(units).scaleb(-2)
    first = payroll_amounts(fs, fund)
    shuffled = data.draw(st.permutations(list(fs)))
    assert payroll_amounts({op: fs[op] for op in shuffled}, fund) == first
    total = sum(fs.values(), Fraction(0))
    exact = {op: f * units / total for op, f in fs.items()}
    got_extra = {op for op, a in first.items() if a is not None and Fraction(a) * 100 > exact[op]}
    rank = sorted(fs, key=lambda op: (-(exact[op] - int(exact[op])), -fs[op], op))
    assert got_extra == set(rank[: len(got_extra)])


# --------------------------------------------------------------------------- the strategies file


def test_book_funds_per_month_default_and_fallback() -> None:
    book = parse_book({"funds": {"default": "10000.00", "2026-01": "12500.5"}})
    assert str(book.fund_for("month:2026-01")) == "12500.50"
    assert str(book.fund_for("month:2026-02")) == "10000.00"
    assert book.fund_for("day:2026-01-15") is None and book.fund_for("rolling") is None
    plain = StrategyBook()
    assert plain.fund_for("month:2026-01") is None
    assert str(plain.fund_for("month:2026-01", Fraction(3000))) == "3000.00"  # KPISTREAM_FUND_AMOUNT
    assert str(plain.fund_for("month:2026-01", "99.9")) == "99.90"
    assert plain.fund_for("day:2026-01-15", Fraction(3000)) is None
    assert str(book.fund_for("month:2026-03", Fraction(1))) == "10000.00"  # the file wins
    yen = parse_book({"funds": {"minor_digits": 0, "2026-01": 1000000}})
    assert str(yen.fund_for("month:2026-01")) == "1000000" and yen.minor_digits == 0


@pytest.mark.parametrize(
    ("funds", "why"),
    [
        ({"2026-01": "-5"}, "negative"),
        ({"2026-01": "10.001"}, "more decimals"),
        ({"2026-01": 10.5}, "as text"),
        ({"2026-13": "1"}, "YYYY-MM"),
        ({"january": "1"}, "YYYY-MM"),
        ({"minor_digits": "2"}, "whole number"),
        ({"minor_digits": 9}, "digits"),
        ("10000", "table"),
    ],
)
def test_book_fund_errors(funds: object, why: str) -> None:
    with pytest.raises(StrategyError, match=why):
        parse_book({"funds": funds})


def test_funds_from_a_toml_file(tmp_path: Path) -> None:
    p = tmp_path / "strategies.toml"
    p.write_text('default = "strategy-1"\n[funds]\ndefault = "8000.00"\n"2026-01" = "10000.00"\n')
    book = load_book(p)
    assert (str(book.fund_for("month:2026-01")), str(book.fund_for("month:2026-04"))) == (
        "10000.00",
        "8000.00",
    )


# --------------------------------------------------------------------------- the stream's records

T0 = 1_768_467_600_000  # 2026-01-15T09:00:00Z
ANSWER = {"presented": 1, "answered": 1, "sl_answered": 1}


def test_publisher_puts_the_month_amount_in_month_records_only() -> None:
    cfg = KpiConfig()
    aggs: dict[str, AggState] = {}
    store = AggregateStore(aggs, cfg, rolling=True)
    reader = MappingReader(aggs, cfg, lambda: store.watermark)
    book = parse_book({"funds": {"2026-01": "100.00"}})
    pub = Publisher(reader, [], cfg, book=book, clock=lambda: T0 / 1000)
    for i, op in enumerate(("a", "b", "c")):
        store.observe(T0)
        pub.mark(store.apply(Delta("op", op, T0, ANSWER, "t:0", i + 1, 0)))
    recs = pub.flush().operators
    month = {r["operator_id"]: r["bonus"] for r in recs if r["period"] == "month"}
    assert month == {"a": "33.34", "b": "33.33", "c": "33.33"}
    assert not any("bonus" in r for r in recs if r["period"] != "month")
    assert json.dumps(recs)  # plain JSON: decimal strings, no Decimal objects


def test_publisher_uses_the_fund_setting_for_months_the_file_does_not_name() -> None:
    cfg = KpiConfig()
    aggs: dict[str, AggState] = {}
    store = AggregateStore(aggs, cfg, rolling=True)
    reader = MappingReader(aggs, cfg, lambda: store.watermark)
    pub = Publisher(reader, [], cfg, fund=Fraction(10), clock=lambda: T0 / 1000)
    store.observe(T0)
    pub.mark(store.apply(Delta("op", "a", T0, ANSWER, "t:0", 1, 0)))
    month = [r for r in pub.flush().operators if r["period"] == "month"]
    assert [r["bonus"] for r in month] == ["10.00"]


# --------------------------------------------------------------------------- report --fund

EVENTS = [
    {"event_id": "o1", "type": "call.offered", "ts": "2026-01-15T09:00:00Z", "call_id": "c1", "queue": "q"},
    {
        "event_id": "a1",
        "type": "call.answered",
        "ts": "2026-01-15T09:00:05Z",
        "call_id": "c1",
        "operator_id": "a",
    },
    {"event_id": "o2", "type": "call.offered", "ts": "2026-01-15T09:01:00Z", "call_id": "c2", "queue": "q"},
    {
        "event_id": "a2",
        "type": "call.answered",
        "ts": "2026-01-15T09:01:05Z",
        "call_id": "c2",
        "operator_id": "b",
    },
    {"event_id": "o3", "type": "call.offered", "ts": "2026-01-15T09:02:00Z", "call_id": "c3", "queue": "q"},
    {
        "event_id": "a3",
        "type": "call.answered",
        "ts": "2026-01-15T09:02:05Z",
        "call_id": "c3",
        "operator_id": "c",
    },
]


def _events(tmp_path: Path) -> Path:
    p = tmp_path / "events.jsonl"
    p.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    return p


def test_report_fund_pays_months_exactly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--events", str(_events(tmp_path)), "--fund", "100"]) == 0
    out = json.loads(capsys.readouterr().out)
    month = out["periods"]["month:2026-01"]
    assert month["fund"] == "100.00"
    assert {op: r["bonus"] for op, r in month["operators"].items()} == {
        "a": "33.34",
        "b": "33.33",
        "c": "33.33",
    }
    day = out["periods"]["day:2026-01-15"]
    assert "fund" not in day and not any("bonus" in r for r in day["operators"].values())


def test_report_takes_the_strategies_file_funds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    strategies = tmp_path / "s.toml"
    strategies.write_text('[funds]\n"2026-01" = "0.02"\n')
    args = ["report", "--events", str(_events(tmp_path)), "--strategies", str(strategies), "--format", "csv"]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    month = [ln.split(",") for ln in lines if ln.startswith("month:") and ",operator," in ln]
    assert [(row[2], row[-1]) for row in month] == [("a", "0.01"), ("b", "0.01"), ("c", "0.00")]


def test_report_bad_fund(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--events", str(_events(tmp_path)), "--fund", "1.001"]) == 2
    assert "more decimals" in capsys.readouterr().err


def test_the_fund_setting_is_checked_at_start_up() -> None:
    """KPISTREAM_FUND_AMOUNT: a bad amount stops the worker before it starts, not every flush."""
    from agents.publishing import fund_of
    from stream.errors import ConfigError

    assert fund_of("") is None and fund_of("2500.5") == Fraction("2500.5")
    for bad in ("-1", "0.001", "lots"):
        with pytest.raises(ConfigError, match="fund_amount"):
            fund_of(bad)
    with pytest.raises(ConfigError, match="more decimals"):
        fund_of("1.5", minor_digits=0)

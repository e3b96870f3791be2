"""Output records: equal to `kpistream report`, valid against schemas/json, Redis text exact."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.generate import JSON_DIR
from schemas.parse import parse_event
from stream.core.config import KpiConfig
from stream.core.engine import Engine
from stream.core.outputs import (
    PeriodScores,
    decimal_string,
    operator_hash,
    operator_records,
    queue_hash,
    queue_record,
    scorecard_hash,
    scorecard_record,
)
from stream.core.scoring import DEFAULT, Fund, Strategy
from stream.core.timefmt import format_ts
from stream.simulator import SimConfig, generate
from stream.strategies import parse_book

NOW = 1_768_467_600_250  # 2026-01-15T09:00:00.250Z


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((JSON_DIR / name).read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.fixture(scope="module")
def engine() -> Engine:
    e = Engine(KpiConfig())
    for i, ev in enumerate(generate(SimConfig(hours=1))):
        e.process(parse_event(json.dumps(ev)), "file:0", i)
    return e


def test_records_equal_report_and_validate(engine: Engine) -> None:
    book = parse_book({"funds": {"default": "1000.00"}})
    report = engine.report(DEFAULT, book.fund_for)
    data = engine.periods()
    assert any(pk.startswith("month:") for pk in report["periods"])
    op_v, q_v, card_v = (validator(f"{n}.schema.json") for n in ("operator-score", "queue-kpis", "scorecard"))
    assert report["periods"]
    for pk, expected in report["periods"].items():
        pd = data[pk]
        fund = book.fund_for(pk)
        recs = operator_records(pk, pd.operators, DEFAULT, NOW, "UTC", fund)
        if fund is not None:  # a month: exact amounts that add up to the fund
            assert sum(Decimal(r["bonus"]) for r in recs.values()) == Decimal("1000.00")
        assert set(recs) == set(expected["operators"])
        for op, rec in recs.items():
            op_v.validate(rec)
            want = expected["operators"][op]
            assert {k: rec["kpis"][k] for k in want["kpis"]} == want["kpis"]
            assert rec["counts"] == want["counts"]
            assert (rec["f"], rec["fund_share"], rec.get("bonus")) == (
                want["f"],
                want["fund_share"],
                want.get("bonus"),
            )
            assert ("bonus" in rec) == (fund is not None) == pk.startswith("month:")
            assert rec["period"] == pk.split(":")[0] and rec["period_key"] == pk
            assert rec["period_start"] is not None and rec["updated_at"] == "2026-01-15T09:00:00.250Z"
        for q, counts in pd.queues.items():
            rec = queue_record(pk, q, counts, NOW)
            q_v.validate(rec)
            assert rec["kpis"] == expected["queues"][q]["kpis"]
            assert rec["counts"] == expected["queues"][q]["counts"]
        center = queue_record(pk, None, pd.center, NOW)
        q_v.validate(center)
        assert (center["scope"], center["queue"]) == ("center", "_center")
        assert center["kpis"] == expected["center"]["kpis"]
        card = scorecard_record(pk, pd.center, engine.business, engine.cfg, NOW)
        card_v.validate(card)
        assert {k: card[k] for k in expected["scorecard"]} == expected["scorecard"]


def test_fund_shares_are_over_active_operators_only() -> None:
    ops = {
        "a": {"presented": 2, "answered": 2, "sl_answered": 2},
        "b": {"presented": 1, "lost": 1},
        "idle": {},
    }
    recs = operator_records("rolling", ops, DEFAULT, NOW, "UTC")
    validator("operator-score.schema.json").validate(recs["idle"])
    assert recs["a"]["f"] == 3.0 and recs["b"]["f"] == -4.0
    assert recs["a"]["fund_share"] == 1.0 and recs["b"]["fund_share"] == 0.0
    assert recs["idle"]["fund_share"] is None and recs["idle"]["f"] == 0.0
    assert recs["idle"]["kpis"]["sl"] is None and not any(recs["idle"]["counts"].values())
    assert recs["a"]["period_start"] is None and recs["a"]["period"] == "rolling"
    assert "bonus" not in recs["a"]


def test_bonus_is_an_exact_decimal_string_in_the_record_and_the_hash() -> None:
    ops = {op: {"presented": 1, "answered": 1, "sl_answered": 1} for op in ("a", "b", "c")}
    recs = operator_records("month:2026-01", ops, DEFAULT, NOW, "UTC", Fund.parse("100"))
    validator("operator-score.schema.json").validate(recs["a"])
    # 100.00 / 3: 33.33 each and the cent left over to "a" (equal remainders and F: lowest id).
    assert [recs[op]["bonus"] for op in "abc"] == ["33.34", "33.33", "33.33"]
    assert operator_hash(recs["a"])["bonus"] == "33.34"
    assert json.loads(json.dumps(recs["a"]))["bonus"] == "33.34"
    none = operator_records(
        "month:2026-01", {"a": {"presented": 1, "lost": 1}}, DEFAULT, NOW, "UTC", Fund.parse("5")
    )
    assert none["a"]["bonus"] is None and operator_hash(none["a"])["bonus"] == ""


def test_strategy_per_operator() -> None:
    other = Strategy.of("other", [1, 1, 1, 1, 1, 1])
    ops = {"a": {"presented": 1, "answered": 1, "sl_answered": 1}, "b": {"presented": 1, "answered": 1}}
    recs = operator_records("day:2026-01-15", ops, lambda op: other if op == "b" else DEFAULT, NOW, "UTC")
    assert (recs["a"]["strategy"], recs["b"]["strategy"]) == ("strategy-1", "other")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (0.9, "0.9"),
        (1e-05, "0.00001"),
        (3.0, "3.0"),
        (7, "7"),
        (True, "1"),
        (1.5e20, "150000000000000000000"),
    ],
)
def test_decimal_string(value: Any, text: str) -> None:
    assert decimal_string(value) == text
    if isinstance(value, float):
        assert float(text) == value


def test_hashes_hold_decimal_strings() -> None:
    rec = operator_records("rolling", {"a": {"presented": 3, "answered": 1}}, DEFAULT, NOW, "UTC")["a"]
    h = operator_hash(rec)
    assert h["sl"] == "0.0" and h["fac"] == "" and h["presented"] == "3" and h["fund_share"] == ""
    assert h["f"] == decimal_string(rec["f"]) and h["strategy"] == "strategy-1"
    qh = queue_hash(queue_record("rolling", "sales", {"offered": 4, "answered": 3}, NOW))
    assert qh["answer_rate"] == "0.75" and qh["offered"] == "4" and qh["updated_at"] == format_ts(NOW)
    from stream.core.scorecard import BusinessState

    ch = scorecard_hash(scorecard_record("day:2026-01-15", {}, BusinessState(), KpiConfig(), NOW))
    assert ch["customer.fcr"] == "" and ch["growth.attrition_month_limit"] == "0.02"


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "d"]),
            st.fixed_dictionaries(
                {},
                optional={
                    "presented": st.integers(0, 5),
                    "answered": st.integers(0, 5),
                    "sl_answered": st.integers(0, 5),
                    "fcr_contacts": st.integers(0, 5),
                    "fcr_resolved": st.integers(0, 5),
                    "lost": st.integers(0, 5),
                },
            ),
            st.booleans(),
        ),
        max_size=30,
    )
)
@settings(max_examples=100, deadline=None)
def test_the_score_cache_never_changes_a_record(updates: list[tuple[str, dict[str, int], bool]]) -> None:
    """Flush after flush (counts changing, operators switching strategy), cached == computed afresh."""
    other = Strategy("other", DEFAULT.weights[::-1])
    ops: dict[str, dict[str, int]] = {}
    switched: set[str] = set()
    cache = PeriodScores()
    memo = PeriodScores()
    last: dict[str, Any] = {}  # each operator's (counts, strategy) as of the last build
    for op, counts, switch in updates:
        ops[op] = {k: v for k, v in counts.items() if v}
        if switch:
            switched ^= {op}

        strat = dict.fromkeys(switched, other).get

        def strategy_of(o: str, chosen: Any = strat) -> Strategy:
            return chosen(o) or DEFAULT

        cached = operator_records("month:2026-01", ops, strategy_of, NOW, "UTC", Fund.parse("100"), cache)
        fresh = operator_records("month:2026-01", ops, strategy_of, NOW, "UTC", Fund.parse("100"))
        assert cached == fresh
        # The publisher's cache keeps the sum of positive F across flushes: with changed_only, the
        # records of the operators whose counts or strategy changed (joined, left), as computed afresh.
        kept = operator_records("month:2026-01", ops, strategy_of, NOW, "UTC", None, memo, changed_only=True)
        assert memo.positive_f == sum((max(sc[3], Fraction(0)) for sc in memo.values()), Fraction(0))
        whole = operator_records("month:2026-01", ops, strategy_of, NOW, "UTC", None)
        assert kept == {op: whole[op] for op in kept}
        now = {o: (tuple(c.items()), strategy_of(o).name) for o, c in ops.items()}
        assert set(kept) == {o for o in ops if now[o] != last.get(o) and (ops[o] or last.get(o, ((),))[0])}
        last.update(now)

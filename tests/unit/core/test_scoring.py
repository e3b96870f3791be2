"""F and the bonus fund (CONTRACT.md section 3), with the paper's worked example computed by hand.

F = K1*SL - K2*LCR + K3*FCR - K4*CAR + K5*FAC + K6*RT, strategy-1 K = (3, 4, 3, 5, 2.5, 1).
Operator 1 (90/3/50/4/70/20 %): 2.7 - 0.12 + 1.5 - 0.2 + 1.75 + 0.2 = 5.83.
Fund share: max(F_i, 0) / sum of max(F_j, 0); null where the sum is 0. Amounts: share x fund in
cents, adding up to the fund exactly (tests/unit/core/test_payroll.py has the worked examples).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest

from stream.core import events as ev
from stream.core.config import KpiConfig
from stream.core.engine import Engine
from stream.core.events import Event
from stream.core.kpis import operator_kpis
from stream.core.scoring import DEFAULT, Fund, Strategy, f_score, fund_shares, to_fraction

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ids = itertools.count()
S = 1000
KPIS = ("sl", "lcr", "fcr", "car", "fac", "rt")


def ms(iso: str) -> int:
    return (datetime.fromisoformat(iso.replace("Z", "+00:00")) - _EPOCH) // timedelta(milliseconds=1)


def E(type_: str, ts: int, **kw: Any) -> Event:  # a tiny event factory
    return Event(event_id=f"sc-{next(_ids)}", type=type_, ts=ts, **kw)


def pct(*values: int) -> dict[str, Fraction]:
    return {k: Fraction(v, 100) for k, v in zip(KPIS, values, strict=True)}


# The paper's 8 operators: SL, LCR, FCR, CAR, FAC, RT in percent; F; share in whole percent.
PAPER = [
    ((90, 3, 50, 4, 70, 20), "5.83", 18),
    ((70, 20, 30, 7, 35, 60), "3.325", 10),
    ((80, 10, 67, 5, 40, 40), "5.16", 16),
    ((65, 9, 50, 20, 65, 60), "4.315", 13),
    ((40, 12, 60, 3, 50, 30), "3.92", 12),
    ((30, 20, 33, 20, 56, 66), "2.15", 7),
    ((45, 15, 25, 15, 37, 70), "2.375", 7),
    ((55, 7, 65, 4, 75, 40), "5.395", 17),
]


def test_default_strategy_weights() -> None:
    assert DEFAULT.name == "strategy-1"
    assert DEFAULT.weights == (3, 4, 3, 5, Fraction(5, 2), 1)
    assert DEFAULT.weights_json() == [3, 4, 3, 5, 2.5, 1]


def test_worked_example_is_exactly_5_83() -> None:
    f = f_score(pct(90, 3, 50, 4, 70, 20), DEFAULT)
    assert f == Fraction(583, 100)
    assert float(f) == 5.83


def test_worked_example_from_float_and_percent_inputs() -> None:
    """KPIs given as text ('90%') or as floats (0.9) give the same exact F."""
    as_text = {k: to_fraction(f"{v}%") for k, v in zip(KPIS, (90, 3, 50, 4, 70, 20), strict=True)}
    as_float = {k: to_fraction(v) for k, v in zip(KPIS, (0.9, 0.03, 0.5, 0.04, 0.7, 0.2), strict=True)}
    assert f_score(as_text, DEFAULT) == Fraction(583, 100)
    assert f_score(as_float, DEFAULT) == Fraction(583, 100)


@pytest.mark.parametrize(("kpis", "f", "share"), PAPER)
def test_paper_operator_scores(kpis: tuple[int, ...], f: str, share: int) -> None:
    assert f_score(pct(*kpis), DEFAULT) == Fraction(f)


def test_paper_fund_shares() -> None:
    scores = {f"op{i + 1}": f_score(pct(*k), DEFAULT) for i, (k, _, _) in enumerate(PAPER)}
    total = sum(Fraction(f) for _, f, _ in PAPER)
    assert total == Fraction("32.47")
    shares = fund_shares(scores)
    for i, (_, f, share) in enumerate(PAPER):
        s = shares[f"op{i + 1}"]
        assert s == Fraction(f) / total
        assert round(float(s) * 100) == share
    assert sum(s for s in shares.values() if s is not None) == 1


def test_fund_share_times_fund_is_the_exact_amount_when_it_divides() -> None:
    shares = fund_shares({"a": Fraction(3), "b": Fraction(1)})
    fund = Fraction(10_000)
    assert {k: v * fund for k, v in shares.items() if v is not None} == {"a": 7500, "b": 2500}


def test_negative_f_gets_share_zero() -> None:
    shares = fund_shares({"a": Fraction(5), "b": Fraction(-2), "c": Fraction(3)})
    assert shares == {"a": Fraction(5, 8), "b": Fraction(0), "c": Fraction(3, 8)}


def test_all_non_positive_gives_null_shares() -> None:
    assert fund_shares({"a": Fraction(0), "b": Fraction(-1)}) == {"a": None, "b": None}
    assert fund_shares({"a": Fraction(0)}) == {"a": None}
    assert fund_shares({}) == {}


def test_undefined_kpis_add_zero() -> None:
    k: dict[str, Fraction | None] = dict.fromkeys(KPIS)
    assert f_score(k, DEFAULT) == 0
    k["fac"] = Fraction(1, 2)
    assert f_score(k, DEFAULT) == Fraction(5, 4)
    k["lcr"] = Fraction(1, 4)
    assert f_score(k, DEFAULT) == Fraction(5, 4) - 1


def test_other_strategy_weights() -> None:
    s = Strategy.of("rt-first", "1,1,1,1,1,10")
    assert f_score(pct(90, 3, 50, 4, 70, 20), s) == Fraction("0.9") - Fraction("0.03") + Fraction(
        "0.5"
    ) - Fraction("0.04") + Fraction("0.7") + 10 * Fraction("0.2")
    with pytest.raises(ValueError):
        Strategy.of("bad", "1,2,3")
    with pytest.raises(ValueError):
        Strategy.of("neg", "1,-2,3,4,5,6")


def test_f_from_operator_counts() -> None:
    """Counts -> KPIs -> F: 10 presented, 8 answered in T, 1 abandoned at o, 2 not answered; ..."""
    counts = {
        "presented": 10,
        "answered": 8,
        "sl_answered": 8,
        "abandoned": 1,
        "lost": 2,
        "fcr_contacts": 4,
        "fcr_resolved": 3,
        "responses": 5,
        "fast": 4,
        "replied": 2,
        "on_time": 1,
    }
    k = operator_kpis(counts)
    assert [k[n] for n in KPIS] == [
        Fraction(8, 10),
        Fraction(2, 10),
        Fraction(3, 4),
        Fraction(1, 10),
        Fraction(4, 5),
        Fraction(1, 2),
    ]
    # 3*0.8 - 4*0.2 + 3*0.75 - 5*0.1 + 2.5*0.8 + 1*0.5 = 2.4 - 0.8 + 2.25 - 0.5 + 2 + 0.5 = 5.85
    assert f_score(k, DEFAULT) == Fraction("5.85")


# --------------------------------------------------------------------------- through the engine


def _scenario() -> list[Event]:
    d1 = ms("2026-01-15T09:00:00Z")
    d2 = ms("2026-01-16T09:00:00Z")
    return [
        # Day 1, A: c1 answered in T; c2 abandoned while ringing at A; chat: one fast response.
        E(ev.CALL_OFFERED, d1, call_id="c1", queue="q"),
        E(ev.CALL_ANSWERED, d1 + 5 * S, call_id="c1", operator_id="A"),
        E(ev.CALL_OFFERED, d1, call_id="c2", queue="q"),
        E(ev.CALL_RINGING, d1 + 1 * S, call_id="c2", operator_id="A"),
        E(ev.CALL_ABANDONED, d1 + 9 * S, call_id="c2", operator_id="A"),
        E(ev.CHAT_STARTED, d1, chat_id="h1", queue="chat"),
        E(ev.CHAT_MESSAGE, d1 + 1 * S, chat_id="h1", message_id="x1", sender="customer"),
        E(ev.CHAT_MESSAGE, d1 + 3 * S, chat_id="h1", message_id="x2", sender="operator", operator_id="A"),
        # Day 1, B: c3 answered in T; e-mail answered on time.
        E(ev.CALL_OFFERED, d1, call_id="c3", queue="q"),
        E(ev.CALL_ANSWERED, d1 + 15 * S, call_id="c3", operator_id="B"),
        E(ev.EMAIL_RECEIVED, d1, email_id="m1", queue="mail"),
        E(ev.EMAIL_REPLIED, d1 + 100 * S, email_id="m1", operator_id="B"),
        # Day 1, C: one resolved first contact.
        E(
            ev.CONTACT_DISPOSITION,
            d1,
            contact_id="k1",
            channel="call",
            operator_id="C",
            resolved=True,
            case_id="K",
        ),
        # Day 2, D: lost call that rang at D (negative F) only.
        E(ev.CALL_OFFERED, d2, call_id="c4", queue="q"),
        E(ev.CALL_RINGING, d2 + 1 * S, call_id="c4", operator_id="D"),
        E(ev.CALL_LOST, d2 + 90 * S, call_id="c4", reason="timeout"),
    ]


def test_report_f_and_shares_by_hand() -> None:
    eng = Engine(KpiConfig())
    eng.process_all(_scenario())
    fund = Fund.parse("1000")
    rep = eng.report(DEFAULT, lambda pk: fund)  # the engine pays whatever period it is given a fund for
    assert rep["strategy"] == {"name": "strategy-1", "weights": [3, 4, 3, 5, 2.5, 1]}
    day1 = rep["periods"]["day:2026-01-15"]["operators"]
    # A: SL 1/2, LCR 1/2, CAR 1/2, FAC 1 -> 1.5 - 2 - 2.5 + 2.5 = -0.5
    assert day1["A"]["f"] == -0.5
    assert day1["A"]["fund_share"] == 0.0
    # B: SL 1, LCR 0, CAR 0, RT 1 -> 3 + 1 = 4
    assert day1["B"]["f"] == 4.0
    # C: FCR 1 -> 3
    assert day1["C"]["f"] == 3.0
    assert day1["B"]["fund_share"] == float(Fraction(4, 7))
    assert day1["C"]["fund_share"] == float(Fraction(3, 7))
    # 1000 x 4/7 = 571.428..., 1000 x 3/7 = 428.571...: the cent left over goes to B (remainder .857).
    assert (day1["A"]["bonus"], day1["B"]["bonus"], day1["C"]["bonus"]) == ("0.00", "571.43", "428.57")
    # Day 2: D alone, SL 0, LCR 1, CAR 0 -> F = -4: every share null.
    day2 = rep["periods"]["day:2026-01-16"]["operators"]
    assert day2["D"]["f"] == -4.0
    assert day2["D"]["fund_share"] is None
    assert day2["D"]["bonus"] is None
    # Month: the same per-operator counts (disjoint days), shares over A, B, C, D.
    month = rep["periods"]["month:2026-01"]["operators"]
    assert {op: month[op]["f"] for op in month} == {"A": -0.5, "B": 4.0, "C": 3.0, "D": -4.0}
    assert month["D"]["fund_share"] == 0.0


def test_report_fund_shares_sum_to_one_per_period() -> None:
    eng = Engine(KpiConfig())
    eng.process_all(_scenario())
    rep = eng.report(DEFAULT)
    for pk, p in rep["periods"].items():
        shares = [row["fund_share"] for row in p["operators"].values()]
        if not shares or all(s is None for s in shares):
            continue
        assert all(s is not None and s >= 0 for s in shares), pk
        assert sum(shares) == pytest.approx(1.0, abs=1e-12), pk
        # Each share is max(F, 0) / sum of max(F, 0).
        pos = {op: max(Fraction(row["f"]), Fraction(0)) for op, row in p["operators"].items()}
        total = sum(pos.values())
        for op, row in p["operators"].items():
            assert row["fund_share"] == pytest.approx(float(pos[op] / total), abs=1e-12), (pk, op)

"""The score F, strategies and fund shares (CONTRACT.md section 3), in exact rational arithmetic.

F = K1*SL - K2*LCR + K3*FCR - K4*CAR + K5*FAC + K6*RT; an undefined KPI adds 0. Computing with
fractions makes F and the shares independent of summation order and free of float drift: the
paper's example gives exactly 5.83.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from stream.core.kpis import Ratio

SCORE_KPIS: tuple[str, ...] = ("sl", "lcr", "fcr", "car", "fac", "rt")
SIGNS: tuple[int, ...] = (1, -1, 1, -1, 1, 1)
DEFAULT_STRATEGY = "strategy-1"
DEFAULT_WEIGHTS: tuple[str, ...] = ("3", "4", "3", "5", "2.5", "1")


def to_fraction(value: object) -> Fraction:
    """A weight or KPI given as int, float, Decimal or text ('2.5', '90%') as an exact fraction."""
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, Fraction):
        return value
    if isinstance(value, int):
        return Fraction(value)
    text = str(value).strip()
    percent = text.endswith("%")
    if percent:
        text = text[:-1].strip()
    try:
        d = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc
    if not d.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    f = Fraction(d)
    return f / 100 if percent else f


@dataclass(frozen=True, slots=True)
class Strategy:
    """A named set of weights K1..K6."""

    name: str
    weights: tuple[Fraction, Fraction, Fraction, Fraction, Fraction, Fraction]
    description: str = ""

    @classmethod
    def of(cls, name: str, weights: object, description: str = "") -> Strategy:
        ws = list(weights) if isinstance(weights, list | tuple) else str(weights).split(",")
        if len(ws) != 6:
            raise ValueError(f"strategy {name!r}: expected 6 weights K1..K6, got {len(ws)}")
        fs = tuple(to_fraction(w) for w in ws)
        if any(w < 0 for w in fs):
            raise ValueError(f"strategy {name!r}: weights must not be negative (signs are in the formula)")
        return cls(name, (fs[0], fs[1], fs[2], fs[3], fs[4], fs[5]), description)

    def weights_json(self) -> list[int | float]:
        """Weights as JSON numbers: integers where whole (3, not 3.0)."""
        return [int(w) if w.denominator == 1 else float(w) for w in self.weights]


DEFAULT = Strategy.of(DEFAULT_STRATEGY, DEFAULT_WEIGHTS, "CAR first, RT last (the paper's strategy 1)")


def f_score(kpis: Mapping[str, Ratio], strategy: Strategy) -> Fraction:
    """F of one operator: undefined KPIs add 0."""
    f = Fraction(0)
    for name, sign, weight in zip(SCORE_KPIS, SIGNS, strategy.weights, strict=True):
        v = kpis.get(name)
        if v is not None:
            f += sign * weight * v
    return f


def fund_shares(scores: Mapping[str, Fraction]) -> dict[str, Fraction | None]:
    """max(F_i, 0) / sum of max(F_j, 0) over the operators given; None for all when the sum is 0."""
    positive = {k: max(v, Fraction(0)) for k, v in scores.items()}
    s = sum(positive.values(), Fraction(0))
    if s == 0:
        return dict.fromkeys(scores)
    return {k: v / s for k, v in positive.items()}


def score_float(f: Fraction) -> float:
    return float(f)

"""The score F, strategies, fund shares and payroll amounts (CONTRACT.md section 3), exactly.

F = K1*SL - K2*LCR + K3*FCR - K4*CAR + K5*FAC + K6*RT; an undefined KPI adds 0. Computing with
fractions makes F and the shares independent of summation order and free of float drift: the
paper's example gives exactly 5.83. Amounts are Decimals in the currency's minor unit that add up
to the fund exactly (largest remainder), because payroll pays them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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


def fund_shares(
    scores: Mapping[str, Fraction],
    only: Iterable[str] | None = None,
    positive_sum: Fraction | None = None,
) -> dict[str, Fraction | None]:
    """max(F_i, 0) / sum of max(F_j, 0) over the operators given; None for all when the sum is 0.

    `only`: the shares of these operators (of `scores`) alone, still over everyone's sum: a flush
    of a period with thousands of operators publishes the few whose counts changed.
    `positive_sum`: that sum when the caller keeps it (outputs.PeriodScores), exactly as computed here.
    """
    zero = Fraction(0)
    s = sum((v for v in scores.values() if v > zero), zero) if positive_sum is None else positive_sum
    wanted = scores.keys() if only is None else only
    if s == 0:
        return dict.fromkeys(wanted)
    return {k: max(scores[k], zero) / s for k in wanted}


MINOR_DIGITS = 2  # digits of the currency's minor unit: 2 = cents (0 for yen, 3 for dinars)
MAX_MINOR_DIGITS = 6  # ISO 4217 currencies have at most 4
MAX_FUND_DIGITS = 30  # no payroll is larger; bounds the work on a mistyped "1e999999999"


@dataclass(frozen=True, slots=True)
class Fund:
    """A bonus fund: an exact, non-negative amount paid in the minor unit 10 ** -minor_digits.

    The amount is kept with exactly `minor_digits` decimals ("10000" with cents is 10000.00), so
    `str(fund)` is what payroll reads. An amount finer than the minor unit (10.005 in cents) is an
    error, never rounded: a fund is money someone decided on, not a computed value.
    """

    amount: Decimal
    minor_digits: int = MINOR_DIGITS

    def __post_init__(self) -> None:
        units = minor_units(self.amount, self.minor_digits)
        object.__setattr__(self, "amount", from_minor_units(units, self.minor_digits))

    @classmethod
    def parse(cls, value: object, minor_digits: int = MINOR_DIGITS) -> Fund:
        """A fund from text ("10000.00"), an int, a Decimal or a Fraction; floats are refused.

        A float cannot say 0.10 exactly, so an amount written as a TOML or JSON float is rejected
        with a hint to quote it.
        """
        if isinstance(value, bool | float):
            raise ValueError(f'fund {value!r}: write the amount as text, e.g. "10000.00"')
        if isinstance(value, Fraction):
            check_minor_digits(minor_digits)
            units = value * Fraction(10) ** minor_digits
            if units.denominator != 1:
                raise ValueError(
                    f"fund {value}: more decimals than the currency's minor unit ({minor_digits} digits)"
                )
            return cls(from_minor_units(units.numerator, minor_digits), minor_digits)
        if isinstance(value, Decimal):
            return cls(value, minor_digits)
        text = str(value).strip()
        try:
            amount = Decimal(text)
        except InvalidOperation as exc:
            raise ValueError(f"fund {text!r}: not a decimal amount") from exc
        return cls(amount, minor_digits)

    @property
    def units(self) -> int:
        """The fund in minor units (cents)."""
        return minor_units(self.amount, self.minor_digits)

    def __str__(self) -> str:
        return format(self.amount, "f")


def check_minor_digits(minor_digits: int) -> None:
    """The digits of a minor unit: 0 (yen) to MAX_MINOR_DIGITS; ValueError otherwise."""
    if isinstance(minor_digits, bool) or not 0 <= minor_digits <= MAX_MINOR_DIGITS:
        raise ValueError(f"minor unit digits must be 0..{MAX_MINOR_DIGITS}, got {minor_digits!r}")


def minor_units(amount: Decimal, minor_digits: int = MINOR_DIGITS) -> int:
    """`amount` in minor units, exactly; ValueError if negative, not finite or finer than the unit."""
    check_minor_digits(minor_digits)
    if not amount.is_finite():
        raise ValueError(f"fund {amount}: not a finite amount")
    if amount < 0:
        raise ValueError(f"fund {amount}: must not be negative")
    if amount.adjusted() >= MAX_FUND_DIGITS:
        raise ValueError(f"fund {amount}: too large (at most {MAX_FUND_DIGITS} digits before the point)")
    units = Fraction(amount) * Fraction(10) ** minor_digits
    if units.denominator != 1:
        raise ValueError(
            f"fund {amount}: more decimals than the currency's minor unit ({minor_digits} digits)"
        )
    return units.numerator


def from_minor_units(units: int, minor_digits: int = MINOR_DIGITS) -> Decimal:
    """`units` minor units as a Decimal with exactly `minor_digits` decimals (no context rounding)."""
    return Decimal(f"{units}e-{minor_digits}")


def payroll_amounts(
    scores: Mapping[str, Fraction], fund: Decimal, minor_digits: int = MINOR_DIGITS
) -> dict[str, Decimal | None]:
    """Each operator's amount of `fund`: share x fund in minor units, adding up to `fund` exactly.

    Shares are max(F, 0) / sum of max(F, 0) over the operators given (as `fund_shares`); None for
    all when that sum is 0. Each operator first gets the whole minor units of share x fund; the
    units left over (fewer than the operators) go one each by largest remainder, ties to the
    higher F, then to the lower operator id. So every amount is within one minor unit of
    share x fund, the amounts sum to the fund, and the split does not depend on input order.
    Raises ValueError for a negative fund or one finer than the minor unit.
    """
    total_units = minor_units(fund, minor_digits)
    positive = {op: max(f, Fraction(0)) for op, f in scores.items()}
    total = sum(positive.values(), Fraction(0))
    if total == 0:
        return dict.fromkeys(scores)
    exact = {op: p * total_units / total for op, p in positive.items()}
    paid = {op: x.numerator // x.denominator for op, x in exact.items()}
    left = total_units - sum(paid.values())
    by_remainder = sorted(exact, key=lambda op: (paid[op] - exact[op], -scores[op], op))
    for op in by_remainder[:left]:
        paid[op] += 1
    return {op: from_minor_units(units, minor_digits) for op, units in paid.items()}


def amount_text(amount: Decimal | None) -> str | None:
    """An amount as published in JSON and Redis: a decimal string ("1795.50"), never a float."""
    return None if amount is None else format(amount, "f")

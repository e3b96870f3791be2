"""Strategies file (KPISTREAM_STRATEGIES): named weight sets, the default, and per-team assignments.

Format (TOML):

    default = "strategy-1"
    [strategies.strategy-1]
    weights = [3, 4, 3, 5, 2.5, 1]
    description = "CAR first, RT last"
    [teams]            # optional: operator -> team, and team -> strategy
    sales = { strategy = "strategy-2", operators = ["o1", "o2"] }
    [funds]            # optional: the bonus fund of each month, paid in the currency's minor unit
    minor_digits = 2   # 2 = cents (the default); 0 for yen
    default = "10000.00"
    "2026-01" = "12500.00"
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

from stream.core.periods import period_kind
from stream.core.scoring import DEFAULT, MINOR_DIGITS, Fund, Strategy, check_minor_digits
from stream.errors import StrategyError

MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")


@dataclass(frozen=True, slots=True)
class StrategyBook:
    """Every known strategy, the active default, and which operators use which strategy."""

    strategies: Mapping[str, Strategy] = field(default_factory=lambda: {DEFAULT.name: DEFAULT})
    default: str = DEFAULT.name
    team_of: Mapping[str, str] = field(default_factory=dict)  # operator -> team
    team_strategy: Mapping[str, str] = field(default_factory=dict)  # team -> strategy name
    funds: Mapping[str, Fund] = field(default_factory=dict)  # "YYYY-MM" -> that month's fund
    default_fund: Fund | None = None  # every month not in `funds`
    minor_digits: int = MINOR_DIGITS

    def __post_init__(self) -> None:
        if self.default not in self.strategies:
            raise StrategyError(f"default strategy {self.default!r} is not defined")
        for team, name in self.team_strategy.items():
            if name not in self.strategies:
                raise StrategyError(f"team {team!r} uses undefined strategy {name!r}")

    def get(self, name: str) -> Strategy:
        try:
            return self.strategies[name]
        except KeyError:
            known = ", ".join(sorted(self.strategies))
            raise StrategyError(f"unknown strategy {name!r} (known: {known})") from None

    def for_operator(self, operator_id: str, default: str | None = None) -> Strategy:
        """The operator's team strategy if their team has one, else the (given or file) default."""
        team = self.team_of.get(operator_id)
        if team is not None and team in self.team_strategy:
            return self.strategies[self.team_strategy[team]]
        return self.strategies[default or self.default]

    def fund_for(
        self, period_key: str, fallback: Fund | Fraction | Decimal | str | None = None
    ) -> Fund | None:
        """The bonus fund of a period: month periods only (a month is what payroll pays).

        The month's own line of `[funds]`, else the file's default, else `fallback` (the
        KPISTREAM_FUND_AMOUNT setting), in the file's minor unit; None for day and rolling periods
        and when no fund is set, so those records carry no amounts.
        """
        if period_kind(period_key) != "month":
            return None
        fund = self.funds.get(period_key.split(":", 1)[1], self.default_fund)
        if fund is None and fallback is not None and fallback != "":
            fund = fallback if isinstance(fallback, Fund) else Fund.parse(fallback, self.minor_digits)
        return fund


def parse_book(data: Mapping[str, Any]) -> StrategyBook:
    strategies: dict[str, Strategy] = {DEFAULT.name: DEFAULT}
    for name, spec in dict(data.get("strategies", {})).items():
        if not isinstance(spec, Mapping) or "weights" not in spec:
            raise StrategyError(f"strategy {name!r}: needs weights = [K1, K2, K3, K4, K5, K6]")
        try:
            strategies[name] = Strategy.of(name, spec["weights"], str(spec.get("description", "")))
        except ValueError as exc:
            raise StrategyError(str(exc)) from exc
    team_of: dict[str, str] = {}
    team_strategy: dict[str, str] = {}
    for team, spec in dict(data.get("teams", {})).items():
        if not isinstance(spec, Mapping):
            raise StrategyError(f"team {team!r}: expected a table with strategy and operators")
        if "strategy" in spec:
            team_strategy[team] = str(spec["strategy"])
        for op in spec.get("operators", ()):
            team_of[str(op)] = team
    funds, default_fund, digits = parse_funds(data.get("funds", {}))
    return StrategyBook(
        strategies,
        str(data.get("default", DEFAULT.name)),
        team_of,
        team_strategy,
        funds,
        default_fund,
        digits,
    )


def parse_funds(spec: object) -> tuple[dict[str, Fund], Fund | None, int]:
    """The `[funds]` table: minor_digits, default, and "YYYY-MM" = amount (amounts as strings)."""
    if not isinstance(spec, Mapping):
        raise StrategyError('[funds]: expected a table such as "2026-01" = "10000.00"')
    digits = spec.get("minor_digits", MINOR_DIGITS)
    try:
        if not isinstance(digits, int):
            raise ValueError(f"minor unit digits must be a whole number, got {digits!r}")
        check_minor_digits(digits)
    except ValueError as exc:
        raise StrategyError(f"[funds] minor_digits: {exc}") from exc
    funds: dict[str, Fund] = {}
    default_fund: Fund | None = None
    for key, value in spec.items():
        if key == "minor_digits":
            continue
        if key != "default" and not MONTH.match(key):
            raise StrategyError(f'[funds] {key!r}: expected "default" or a month "YYYY-MM"')
        try:
            fund = Fund.parse(value, digits)
        except ValueError as exc:
            raise StrategyError(f"[funds] {key!r}: {exc}") from exc
        if key == "default":
            default_fund = fund
        else:
            funds[key] = fund
    return funds, default_fund, digits


def load_book(path: str | Path | None) -> StrategyBook:
    """Read a strategies file; no path means the built-in default only."""
    if not path:
        return StrategyBook()
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise StrategyError(f"cannot read strategies file {p}: {exc}") from exc
    return parse_book(data)


def resolve(book: StrategyBook, name: str | None, weights: str | None) -> Strategy:
    """--weights K1,..,K6 (an ad-hoc 'custom' strategy) or --strategy NAME or the book's default."""
    if weights:
        try:
            return Strategy.of("custom", weights)
        except ValueError as exc:
            raise StrategyError(str(exc)) from exc
    return book.get(name or book.default)

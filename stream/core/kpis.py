"""KPI values from counts (CONTRACT.md section 2). Exact rationals inside; None where undefined."""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction

Ratio = Fraction | None

OPERATOR_KPIS: tuple[str, ...] = ("sl", "lcr", "fcr", "car", "fac", "rt", "sl_answered_only", "sl_inclusive")
QUEUE_KPIS: tuple[str, ...] = (
    "sl",
    "lcr",
    "car",
    "answer_rate",
    "fcr",
    "fac",
    "rt",
    "sl_answered_only",
    "sl_inclusive",
)


def ratio(num: int, den: int) -> Ratio:
    """num / den, or None when the denominator is zero (an undefined KPI)."""
    return Fraction(num, den) if den else None


def _common(c: Mapping[str, int]) -> dict[str, Ratio]:
    return {
        "fcr": ratio(c.get("fcr_resolved", 0), c.get("fcr_contacts", 0)),
        "fac": ratio(c.get("fast", 0), c.get("responses", 0)),
        "rt": ratio(c.get("on_time", 0), c.get("replied", 0)),
    }


def operator_kpis(c: Mapping[str, int]) -> dict[str, Ratio]:
    """An operator's KPIs over the calls presented to them (and their chats, e-mails, cases)."""
    presented = c.get("presented", 0)
    sl_answered = c.get("sl_answered", 0)
    common = _common(c)
    return {
        "sl": ratio(sl_answered, presented),
        "lcr": ratio(c.get("lost", 0), presented),
        "fcr": common["fcr"],
        "car": ratio(c.get("abandoned", 0), presented),
        "fac": common["fac"],
        "rt": common["rt"],
        "sl_answered_only": ratio(sl_answered, c.get("answered", 0)),
        "sl_inclusive": ratio(sl_answered + c.get("abandoned_in_sl", 0), presented),
    }


def queue_kpis(c: Mapping[str, int]) -> dict[str, Ratio]:
    """A queue's (or the centre's) KPIs over its offered calls."""
    offered = c.get("offered", 0)
    answered = c.get("answered", 0)
    abandoned = c.get("abandoned", 0)
    sl_answered = c.get("sl_answered", 0)
    common = _common(c)
    return {
        "sl": ratio(sl_answered, offered),
        "lcr": ratio(abandoned + c.get("lost", 0), offered),
        "car": ratio(abandoned, offered),
        "answer_rate": ratio(answered, offered),
        "fcr": common["fcr"],
        "fac": common["fac"],
        "rt": common["rt"],
        "sl_answered_only": ratio(sl_answered, answered),
        "sl_inclusive": ratio(sl_answered + c.get("abandoned_in_sl", 0), offered),
    }


def as_float(v: Ratio) -> float | None:
    """The nearest float to an exact value (None stays None)."""
    return None if v is None else float(v)


def floats(kpis: Mapping[str, Ratio]) -> dict[str, float | None]:
    return {k: as_float(v) for k, v in kpis.items()}

"""Month close (issue #14 item 5): the figures payroll pays, written once, and corrections after.

A month is closed once its *grace* has passed: its end (in the configured zone) plus the FCR repeat
window (a repeat up to that long after a first contact still retracts it, in the first contact's
month) plus `entity_grace_ms` (how late the project expects an event to arrive). Before that the
month's figures can still move by the contract's own rules, so a close is refused.

The close is a ledger on the compacted `kpi.payouts` topic (one partition), keyed so that no record
ever replaces another:
- `{YYYY-MM}|{operator_id}`: kind `payout`, one per operator with activity in the month: the final
  KPIs, F, share and amount, the strategy, the fund and the contacts they came from;
- `{YYYY-MM}|_close`: kind `close`, written last: the close is complete once it exists (a close cut
  short re-writes the same payout records and then this one);
- `{YYYY-MM}|{operator_id}|correction:{n}`: kind `correction`: an event of a closed month arrived
  after the close and changed that operator's figures. It carries the new figures, the previous
  ones (the payout or the correction n-1) and the change of the amount. The payout is never
  rewritten: what was paid stays on record, and close + changes = what `report` says now.

Everything here is exact: KPIs, F and shares as decimal strings of the exact fractions (rounded half
even at `DECIMALS` places), amounts exact in the currency's minor unit (CONTRACT.md section 3).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Context, Decimal, Inexact
from fractions import Fraction
from typing import Any

from stream.core.config import KpiConfig
from stream.core.counts import OPERATOR_COUNT_FIELDS, Counts, full
from stream.core.kpis import Ratio, operator_kpis
from stream.core.periods import MONTH_PREFIX, period_bounds
from stream.core.scoring import (
    MAX_FUND_DIGITS,
    MAX_MINOR_DIGITS,
    SCORE_KPIS,
    Fund,
    Strategy,
    amount_text,
    f_score,
    fund_shares,
    payroll_amounts,
)
from stream.core.timefmt import format_ts

PAYOUT = "payout"
CLOSE = "close"
CORRECTION = "correction"
CLOSE_ID = "_close"  # the operator slot of the close record's key (an operator's never starts with _)
DECIMALS = 10  # places of the KPIs, F and shares as decimal strings (amounts: the minor unit)
# The figures whose change makes a correction (the counts hold every input to the others).
FIGURES: tuple[str, ...] = ("counts", "f", "fund_share", "amount")

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
# Sums and differences of amounts, exact: room for every digit a fund may have, and an error rather
# than a rounding if that were ever short (the default context keeps 28 digits and rounds silently).
_MONEY = Context(prec=2 * (MAX_FUND_DIGITS + MAX_MINOR_DIGITS), traps=[Inexact])
# The operator slot of a key, escaped where an id could pass for another key: '%' and '|' always,
# '_' first (the close's slot is `_close`); every other id is written as it is.
_KEY_ESCAPES = {"%": "%25", "|": "%7C"}


class MonthNotClosable(ValueError):
    """A close asked too early, for a malformed month, or with nothing to pay."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail


def month_period(month: str) -> str:
    """'2026-01' (or 'month:2026-01') as the period key 'month:2026-01'; MonthNotClosable if malformed."""
    text = month[len(MONTH_PREFIX) :] if month.startswith(MONTH_PREFIX) else month
    if not _MONTH.match(text):
        raise MonthNotClosable("bad_month", f"expected a month as YYYY-MM, got {month!r}")
    return f"{MONTH_PREFIX}{text}"


def close_grace_ms(cfg: KpiConfig) -> int:
    """How long after its end a month's figures can still change: the FCR window plus late arrival."""
    return cfg.fcr_window_ms + cfg.entity_grace_ms


def closable_from(month: str, cfg: KpiConfig) -> int:
    """The first instant (epoch ms) at which `month` may be closed."""
    _, end = period_bounds(month_period(month), cfg.tz)
    return end + close_grace_ms(cfg)


def check_closable(month: str, now_ms: int, cfg: KpiConfig) -> None:
    """Raise MonthNotClosable (error `too_early`) while the month's grace has not passed at `now_ms`."""
    due = closable_from(month, cfg)
    if now_ms < due:
        days = Fraction(close_grace_ms(cfg), 86_400_000)
        raise MonthNotClosable(
            "too_early",
            f"month {month_period(month)[len(MONTH_PREFIX) :]} can be closed from {format_ts(due)}: its end "
            f"({cfg.tz}) plus {decimal_text(days, 3)} days of grace (the FCR repeat window, "
            f"fcr_window_ms, plus entity_grace_ms for late events)",
        )


def decimal_text(x: Fraction, places: int = DECIMALS) -> str:
    """An exact fraction as a decimal string, rounded half even at `places`, without trailing zeros."""
    scaled = x * 10**places
    whole, rest = divmod(scaled.numerator, scaled.denominator)  # floor, so rest >= 0 for negatives too
    if 2 * rest > scaled.denominator or (2 * rest == scaled.denominator and whole % 2 == 1):
        whole += 1
    text = format(Decimal(whole).scaleb(-places), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _ratio_text(v: Ratio) -> str | None:
    return None if v is None else decimal_text(v)


def contacts_of(counts: Mapping[str, int]) -> int:
    """The contacts an operator's KPIs came from: the denominators of the six KPIs, added.

    Calls presented (SL, LCR, CAR), chat responses (FAC), e-mails replied (RT) and first contacts
    (FCR): each counted once per KPI it is the denominator of, so a call is one contact.
    """
    return sum(counts.get(k, 0) for k in ("presented", "responses", "replied", "fcr_contacts"))


@dataclass(frozen=True, slots=True)
class PayoutFigures:
    """One operator's figures of a month: exact, as computed from the month's counts."""

    operator_id: str
    counts: Counts
    kpis: dict[str, Ratio]
    f: Fraction
    fund_share: Fraction | None
    amount: Decimal | None

    def to_json(self) -> dict[str, Any]:
        """The figure fields of a payout or correction record (decimal strings, never floats)."""
        return {
            "kpis": {k: _ratio_text(self.kpis.get(k)) for k in SCORE_KPIS},
            "counts": full(self.counts, OPERATOR_COUNT_FIELDS),
            "contacts": contacts_of(self.counts),
            "f": decimal_text(self.f),
            "fund_share": None if self.fund_share is None else decimal_text(self.fund_share),
            "amount": amount_text(self.amount),
        }


def month_figures(
    operators: Mapping[str, Counts], strategy: Strategy, fund: Fund
) -> dict[str, PayoutFigures]:
    """Every operator's figures of a month, shares and amounts over all of them (as `report --fund`)."""
    kpis = {op: operator_kpis(c) for op, c in operators.items()}
    scores = {op: f_score(k, strategy) for op, k in kpis.items()}
    shares = fund_shares(scores)
    amounts = payroll_amounts(scores, fund.amount, fund.minor_digits)
    return {
        op: PayoutFigures(op, dict(operators[op]), kpis[op], scores[op], shares[op], amounts[op])
        for op in sorted(operators)
    }


def key_slot(operator_id: str) -> str:
    """An operator id as written in a key: no two ids, nor an id and `_close`, give one slot.

    Rule: `%` and `|` are percent-escaped and so is a leading `_`, so a slot never contains `|`
    and never starts with `_`: an operator `_close` or `x|correction:1` cannot take the key of the
    close or of x's correction (compaction would have dropped the record it replaced).
    """
    slot = (
        "".join(_KEY_ESCAPES.get(c, c) for c in operator_id)
        if "%" in operator_id or "|" in operator_id
        else operator_id
    )
    return "%5F" + slot[1:] if slot.startswith("_") else slot


def payout_key(month: str, operator_id: str, revision: int = 0) -> str:
    """An operator's record key: `{YYYY-MM}|{operator_id}` (the id escaped by `key_slot`), with
    `|correction:{n}` for the n-th correction."""
    base = f"{month_period(month)[len(MONTH_PREFIX) :]}|{key_slot(operator_id)}"
    return base if revision == 0 else f"{base}|{CORRECTION}:{revision}"


def close_key(month: str) -> str:
    """The close record's key, `{YYYY-MM}|_close`: no operator's key (`key_slot`)."""
    return f"{month_period(month)[len(MONTH_PREFIX) :]}|{CLOSE_ID}"


def money_sum(amounts: Iterable[Decimal | None]) -> Decimal:
    """The exact sum of amounts (None counts 0), at any size a fund may have."""
    total = Decimal(0)
    for a in amounts:
        if a is not None:
            total = _MONEY.add(total, a)
    return total


def _common(month: str, strategy: Strategy, fund: Fund, at_ms: int) -> dict[str, Any]:
    pk = month_period(month)
    return {
        "month": pk[len(MONTH_PREFIX) :],
        "period_key": pk,
        "strategy": {"name": strategy.name, "weights": [decimal_text(w) for w in strategy.weights]},
        "fund": str(fund),
        "at": format_ts(at_ms),
    }


def close_records(
    month: str, figures: Mapping[str, PayoutFigures], strategy: Strategy, fund: Fund, at_ms: int
) -> list[tuple[str, dict[str, Any]]]:
    """(key, value) of a close: a payout record per operator, then the close record (written last)."""
    if not figures:
        raise MonthNotClosable("no_activity", f"no operator has activity in {month_period(month)}")
    common = _common(month, strategy, fund, at_ms)
    out: list[tuple[str, dict[str, Any]]] = []
    for op, fig in sorted(figures.items()):
        out.append((payout_key(month, op), {"kind": PAYOUT, **common, "operator_id": op, **fig.to_json()}))
    paid = money_sum(fig.amount for fig in figures.values())
    summary = {
        "kind": CLOSE,
        **common,
        "operators": len(figures),
        "contacts": sum(contacts_of(fig.counts) for fig in figures.values()),
        "paid": format(paid, "f"),
    }
    out.append((close_key(month), summary))
    return out


@dataclass(slots=True)
class MonthLedger:
    """What `kpi.payouts` holds of one month: the close, each operator's latest record, revisions."""

    close: dict[str, Any] | None = None
    payouts: dict[str, dict[str, Any]] = field(default_factory=dict)  # operator -> its payout record
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)  # operator -> payout or last correction
    corrections: int = 0  # the highest correction revision of the month
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> value, in first-seen order


def read_ledger(records: Iterable[tuple[str, dict[str, Any] | None]]) -> dict[str, MonthLedger]:
    """Months by 'YYYY-MM' from the topic's records in offset order; the last value of a key wins."""
    by_key: dict[str, dict[str, Any]] = {}
    for key, value in records:
        if value is None:
            by_key.pop(key, None)  # a tombstone
        elif isinstance(value, dict) and value.get("kind") in (PAYOUT, CLOSE, CORRECTION):
            by_key[key] = value
    months: dict[str, MonthLedger] = {}
    for key, value in by_key.items():
        ledger = months.setdefault(str(value.get("month")), MonthLedger())
        ledger.records[key] = value
        kind = value["kind"]
        if kind == CLOSE:
            ledger.close = value
            continue
        op = str(value.get("operator_id"))
        if kind == PAYOUT:
            ledger.payouts[op] = value
            ledger.latest.setdefault(op, value)
        else:
            rev = int(value.get("revision", 0))
            ledger.corrections = max(ledger.corrections, rev)
            if int(ledger.latest.get(op, {}).get("revision", 0)) <= rev:
                ledger.latest[op] = value
    return months


def _figure_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: record.get(k) for k in FIGURES}


def correction_records(
    month: str,
    ledger: MonthLedger,
    figures: Mapping[str, PayoutFigures],
    strategy: Strategy,
    fund: Fund,
    at_ms: int,
) -> list[tuple[str, dict[str, Any]]]:
    """Corrections for every operator whose figures now differ from its latest record (none if equal).

    An operator new to the month gets a correction from nothing (previous amount 0); one whose
    activity is gone (a retraction) gets one to zero counts. The fund and strategy are the close's.
    """
    if ledger.close is None:
        raise ValueError(f"{month_period(month)} is not closed")
    zero = PayoutFigures("", {}, operator_kpis({}), Fraction(0), None, None).to_json()
    common = _common(month, strategy, fund, at_ms)
    out: list[tuple[str, dict[str, Any]]] = []
    revision = ledger.corrections
    for op in sorted(set(figures) | set(ledger.latest)):
        now = figures[op].to_json() if op in figures else zero
        before = ledger.latest.get(op)
        previous = _figure_fields(before) if before is not None else _figure_fields(zero)
        if _figure_fields(now) == previous:
            continue
        revision += 1
        change = _MONEY.subtract(Decimal(now["amount"] or "0"), Decimal(previous["amount"] or "0"))
        out.append(
            (
                payout_key(month, op, revision),
                {
                    "kind": CORRECTION,
                    **common,
                    "operator_id": op,
                    "revision": revision,
                    **now,
                    "previous": previous,
                    "change": format(change, "f"),
                },
            )
        )
    return out


def strategy_of_close(close: Mapping[str, Any]) -> Strategy:
    """The strategy a close was computed with (corrections use it, whatever the default is now)."""
    s = close["strategy"]
    return Strategy.of(str(s["name"]), list(s["weights"]))


def fund_of_close(close: Mapping[str, Any]) -> Fund:
    """The fund of a close, with its minor unit (the digits after the point)."""
    text = str(close["fund"])
    digits = len(text.split(".", 1)[1]) if "." in text else 0
    return Fund.parse(text, digits)


CSV_COLUMNS: tuple[str, ...] = (
    "month",
    "kind",
    "revision",
    "operator_id",
    "strategy",
    "contacts",
    *SCORE_KPIS,
    "f",
    "fund_share",
    "amount",
    "change",
    "fund",
    "at",
)


def payouts_csv(records: Iterable[tuple[str, Mapping[str, Any]]]) -> str:
    """The payout and correction records as CSV for payroll (the close record is left out)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for _, r in records:
        if r.get("kind") not in (PAYOUT, CORRECTION):
            continue
        row: dict[str, Any] = {
            "month": r["month"],
            "kind": r["kind"],
            "revision": r.get("revision", 0),
            "operator_id": r["operator_id"],
            "strategy": r["strategy"]["name"],
            "contacts": r["contacts"],
            **{k: r["kpis"].get(k) for k in SCORE_KPIS},
            "f": r["f"],
            "fund_share": r["fund_share"],
            "amount": r["amount"],
            "change": r.get("change", r["amount"]),
            "fund": r["fund"],
            "at": r["at"],
        }
        w.writerow({c: "" if row[c] is None else row[c] for c in CSV_COLUMNS})
    return buf.getvalue()

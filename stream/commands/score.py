"""`kpistream score`: F, fund shares and bonuses straight from a table of per-operator KPIs.

For what-if analysis and for the paper's worked example (docs/examples/paper-operators.csv): the
same formula, fund-share rule and payroll split as the stream, over KPIs someone already has.
Amounts are exact decimal strings in the currency's minor unit that add up to the fund.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from stream.commands.report import add_strategy_args
from stream.config import load_settings
from stream.core.kpis import Ratio
from stream.core.scoring import (
    SCORE_KPIS,
    Fund,
    Strategy,
    amount_text,
    f_score,
    fund_shares,
    payroll_amounts,
    to_fraction,
)
from stream.errors import KpiStreamError
from stream.strategies import load_book, resolve

COLUMNS = ("operator", *SCORE_KPIS)


class ScoreInputError(KpiStreamError):
    """The KPI table cannot be read: a missing column or a value that is not a number."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "score",
        help="F, fund share and bonus from a CSV of per-operator KPIs",
        description="Columns operator, sl, lcr, fcr, car, fac, rt; values as fractions (0.9) or "
        "percentages (90%%); an empty cell is an undefined KPI (adds 0 to F).",
    )
    p.add_argument("--kpis", required=True, metavar="FILE.csv", help="the KPI table ('-' = stdin)")
    add_strategy_args(p)
    p.add_argument(
        "--fund",
        metavar="AMOUNT",
        help="the bonus fund to share out, e.g. 10000.00: exact amounts in the minor unit "
        "(cents; [funds] minor_digits of the strategies file) that add up to it",
    )
    p.add_argument(
        "--format",
        choices=("json", "table", "csv"),
        default="json",
        help="output format (default json, like report)",
    )
    p.add_argument("--config", metavar="FILE.toml", help="settings file")
    p.set_defaults(func=run)


def read_kpis(text: Iterable[str]) -> dict[str, dict[str, Ratio]]:
    """operator -> KPI fractions (None where the cell is empty), in file order."""
    reader = csv.DictReader(text)
    fields = [f.strip().lower() for f in reader.fieldnames or ()]
    missing = [c for c in COLUMNS if c not in fields]
    if missing:
        raise ScoreInputError(f"missing column(s): {', '.join(missing)} (need {', '.join(COLUMNS)})")
    out: dict[str, dict[str, Ratio]] = {}
    for line, raw in enumerate(reader, 2):
        row = {str(k).strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
        op = row["operator"]
        if not op:
            continue
        kpis: dict[str, Ratio] = {}
        for name in SCORE_KPIS:
            cell = row[name]
            try:
                value = to_fraction(cell) if cell else None
            except ValueError as exc:
                raise ScoreInputError(f"line {line}, column {name}: {exc}") from exc
            # Rule: a KPI is a share, 0 to 1 (0 % to 100 %); "90" is 90 times the whole, not
            # 90 %: most likely a percentage without its sign, refused rather than scored.
            if value is not None and not 0 <= value <= 1:
                raise ScoreInputError(
                    f"line {line}, column {name}: {cell!r} is not a share from 0 to 1; write a "
                    f"percentage with its sign ({cell}%) or a fraction (0.9)"
                )
            kpis[name] = value
        out[op] = kpis
    return out


def _float(v: Ratio) -> float | None:
    return None if v is None else float(v)


def score_table(
    kpis: Mapping[str, Mapping[str, Ratio]], strategy: Strategy, fund: Fund | None = None
) -> dict[str, Any]:
    """The JSON of `kpistream score`: the strategy, the fund, and per operator F, share and bonus.

    The fund and the bonuses are decimal strings ("1795.50"): exact, adding up to the fund.
    """
    scores = {op: f_score(k, strategy) for op, k in kpis.items()}
    shares = fund_shares(scores)
    amounts = {} if fund is None else payroll_amounts(scores, fund.amount, fund.minor_digits)
    operators: dict[str, Any] = {}
    for op, k in kpis.items():
        share = shares[op]
        row: dict[str, Any] = {
            "kpis": {n: _float(k.get(n)) for n in SCORE_KPIS},
            "f": float(scores[op]),
            "fund_share": None if share is None else float(share),
            "bonus": amount_text(amounts.get(op)),
        }
        operators[op] = row
    return {
        "strategy": {"name": strategy.name, "weights": strategy.weights_json()},
        "fund": None if fund is None else str(fund),
        "operators": operators,
    }


def _csv_cell(v: Any) -> str:
    """Floats with their round-trip digits, amounts (decimal strings) as they are, null empty."""
    if v is None:
        return ""
    return repr(v) if isinstance(v, float) else str(v)


def _num(v: Any, digits: int) -> str:
    if v is None:
        return ""
    return f"{v:.{digits}f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v)


def render(result: Mapping[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(result, indent=2) + "\n"
    ops = result["operators"]
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["operator", "f", "fund_share", "bonus"])
        for op, r in ops.items():
            w.writerow([op, *(_csv_cell(r[c]) for c in ("f", "fund_share", "bonus"))])
        return buf.getvalue()
    rows = [["operator", "F", "share", "bonus"]]
    for op, r in ops.items():
        share = "" if r["fund_share"] is None else f"{r['fund_share'] * 100:.1f}%"
        rows.append([op, _num(r["f"], 6), share, _num(r["bonus"], 2)])
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    s = result["strategy"]
    head = f"strategy {s['name']} K = {', '.join(str(w) for w in s['weights'])}"
    head += f", fund {result['fund']}\n" if result.get("fund") is not None else "\n"
    lines = ("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)
    return head + "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    try:
        overrides = {"strategies": args.strategies} if args.strategies else None
        settings = load_settings(toml_path=args.config, overrides=overrides)
        book = load_book(settings.strategies)
        strategy = resolve(book, args.strategy, args.weights)
        fund = Fund.parse(args.fund, book.minor_digits) if args.fund else None
        if args.kpis == "-":
            kpis = read_kpis(sys.stdin)
        else:
            with Path(args.kpis).open(encoding="utf-8", newline="") as f:
                kpis = read_kpis(f)
    except (KpiStreamError, OSError, ValueError) as exc:
        print(f"kpistream score: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(render(score_table(kpis, strategy, fund), args.format))
    return 0

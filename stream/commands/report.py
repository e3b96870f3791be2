"""`kpistream report`: the stream's computation over a JSON-lines file, for backfills and what-if."""

from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import io
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from schemas.parse import parse_event
from stream.config import load_settings
from stream.core.engine import Engine
from stream.core.events import Event
from stream.core.keys import CENTER_ID
from stream.core.kpis import QUEUE_KPIS
from stream.core.periods import period_kind
from stream.core.scoring import Fund
from stream.errors import ConfigError, InvalidEvent, KpiStreamError
from stream.strategies import StrategyBook, load_book, resolve


def add_strategy_args(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--weights", metavar="K1,K2,K3,K4,K5,K6", help="ad-hoc weights (a strategy named 'custom')"
    )
    g.add_argument(
        "--strategy", metavar="NAME", help="a strategy of the strategies file (default: its default)"
    )
    p.add_argument("--strategies", metavar="FILE", help="strategies file (default: KPISTREAM_STRATEGIES)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "report",
        help="compute every KPI, F and fund share over a JSON-lines file of events",
        description="Run the same computation as the stream over a JSON-lines file (day and month periods).",
    )
    p.add_argument(
        "--events", required=True, metavar="FILE.jsonl", help="events, one JSON object per line ('-' = stdin)"
    )
    add_strategy_args(p)
    p.add_argument(
        "--format", choices=("json", "table", "csv"), default="json", help="output format (default json)"
    )
    p.add_argument(
        "--fund",
        metavar="AMOUNT",
        help="bonus fund of every month period, e.g. 10000.00: adds each operator's exact amount "
        "(default: the strategies file's [funds], else KPISTREAM_FUND_AMOUNT; days get none)",
    )
    p.add_argument("--tz", help="time zone of day and month periods (default KPISTREAM_TZ or UTC)")
    p.add_argument("--config", metavar="FILE.toml", help="settings file")
    p.add_argument("--max-bytes", type=int, help="largest accepted event, in bytes")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    p.set_defaults(func=run)


@contextlib.contextmanager
def open_events(path: str) -> Iterator[BinaryIO]:
    """The events file ('-' = stdin) as bytes: each line is validated as the stream validates a message."""
    if path == "-":
        yield sys.stdin.buffer
        return
    with Path(path).open("rb") as f:
        yield f


def read_events(
    lines: Iterable[bytes], max_bytes: int, errors: list[tuple[int, str, str]]
) -> Iterator[tuple[int, Event]]:
    """Valid events with their line numbers; bad lines (not UTF-8 included) go to `errors`, never fatal."""
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield n, parse_event(line.rstrip(b"\r\n"), max_bytes=max_bytes)
        except InvalidEvent as exc:
            errors.append((n, exc.reason, exc.detail))


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a file is read: ~10 % faster (docs/benchmarks.md).

    Reading creates an event object per line and a few dicts, none in a reference cycle, so the
    collector's generation-0 passes (one per 700 allocations) free nothing; reference counting
    frees what dies. The collector runs again as before afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def run_report(args: argparse.Namespace) -> tuple[dict[str, Any], list[tuple[int, str, str]], Engine]:
    overrides: dict[str, Any] = {}
    if args.tz:
        overrides["tz"] = args.tz
    if args.strategies:
        overrides["strategies"] = args.strategies
    if args.max_bytes:
        overrides["max_message_bytes"] = args.max_bytes
    settings = load_settings(toml_path=args.config, overrides=overrides)
    book = load_book(settings.strategies)
    strategy = resolve(book, args.strategy, args.weights)
    fund = month_funds(book, args.fund, settings.fund_amount)
    engine = Engine(settings.kpi)
    errors: list[tuple[int, str, str]] = []
    with open_events(args.events) as stream, gc_paused():
        # The batch path gives the stream's totals (tests/unit/core/test_batch.py) a few times faster.
        late = engine.process_batch(read_events(stream, settings.max_message_bytes, errors))
    errors.extend((n, exc.reason, exc.detail) for n, exc in late)
    errors.sort()
    # The file's own choice (no --strategy/--weights): each operator with their team's strategy, as
    # the stream scores them; a named strategy or weights score everyone alike (a what-if).
    own = book.for_operator if not (args.strategy or args.weights) and book.team_strategy else None
    report = engine.report(strategy, fund, own)
    for pk, period in report["periods"].items():
        if (f := fund(pk)) is not None:
            period["fund"] = str(f)
    return report, errors, engine


def month_funds(book: StrategyBook, flag: str | None, setting: str) -> Callable[[str], Fund | None]:
    """The fund of each period: `--fund` for every month, else the stream's (`StrategyBook.fund_for`).

    Only months get a fund: a month is what payroll pays, and a day's share of a month fund is
    not an amount anyone pays (docs/metrics.md).
    """
    try:
        if flag:
            fund = Fund.parse(flag, book.minor_digits)
            return lambda pk: fund if period_kind(pk) == "month" else None
        fallback = Fund.parse(setting, book.minor_digits) if setting else None
    except ValueError as exc:
        raise ConfigError("fund" if flag else "fund_amount", str(exc)) from exc
    return lambda pk: book.fund_for(pk, fallback)


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4f}".rstrip("0").rstrip(".") if v != int(v) else str(int(v))
    return str(v)


SCOPE_KPIS = ("sl", "lcr", "car", "answer_rate", "fcr", "fac", "rt")
OP_KPIS = ("sl", "lcr", "fcr", "car", "fac", "rt")


def rows(report: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Flat rows (period, scope, id, KPIs, F, share) for the table and CSV formats."""
    for pk, p in report["periods"].items():
        for op, r in p["operators"].items():
            yield {
                "period": pk,
                "scope": "operator",
                "id": op,
                **{k: r["kpis"][k] for k in OP_KPIS},
                "answer_rate": None,
                "f": r["f"],
                "fund_share": r["fund_share"],
                "bonus": r.get("bonus"),
            }
        for q, r in p["queues"].items():
            yield {
                "period": pk,
                "scope": "queue",
                "id": q,
                **{k: r["kpis"][k] for k in SCOPE_KPIS},
                "f": None,
                "fund_share": None,
                "bonus": None,
            }
        yield {
            "period": pk,
            "scope": "center",
            "id": CENTER_ID,
            **{k: p["center"]["kpis"][k] for k in SCOPE_KPIS},
            "f": None,
            "fund_share": None,
            "bonus": None,
        }


# The table's columns: where, then the queue KPIs as the contract names them (without the SL
# variants), then the operator's score, share and amount.
COLUMNS = ("period", "scope", "id", *QUEUE_KPIS[: QUEUE_KPIS.index("rt") + 1], "f", "fund_share", "bonus")


def render(report: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report, indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        for r in rows(report):
            w.writerow({c: "" if r.get(c) is None else r[c] for c in COLUMNS})
        return buf.getvalue()
    table = [list(COLUMNS)] + [[_fmt(r.get(c)) for c in COLUMNS] for r in rows(report)]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    header = f"strategy {report['strategy']['name']} K={report['strategy']['weights']}\n"
    return (
        header
        + "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table)
        + "\n"
    )


def run(args: argparse.Namespace) -> int:
    try:
        report, errors, engine = run_report(args)
    except (KpiStreamError, OSError) as exc:
        print(f"kpistream report: {exc}", file=sys.stderr)
        return 2
    text = render(report, args.format)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    for n, reason, detail in errors[:20]:
        print(f"line {n}: {reason}: {detail}", file=sys.stderr)
    orphans = engine.orphan_calls()
    print(
        f"{engine.events} events, {len(errors)} rejected, {len(orphans)} orphan calls"
        + (f" ({', '.join(orphans[:10])}{'...' if len(orphans) > 10 else ''})" if orphans else ""),
        file=sys.stderr,
    )
    return 0

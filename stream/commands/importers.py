"""`kpistream import queue-log|calls-csv`: a PBX's own history as contract events (JSON lines).

The events go to stdout (or ``-o FILE``), ready for ``kpistream report --events`` or
``kpistream produce --events``. A summary goes to stderr: events written, lines skipped with their
reasons, source records ignored, and what had to be reconstructed. Exit status: 0 when every line
was used or deliberately ignored, 1 when at least one line was skipped, 2 when the file or the
options cannot be used at all. `import queue-log --follow FILE --produce` follows a live log into
Kafka instead (stream/commands/queue_log_follow.py). See docs/importers.md.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from stream.importers import ImportResult, calls_csv, queue_log, to_jsonl

EXIT_OK = 0
EXIT_SKIPPED = 1
EXIT_UNUSABLE = 2
SHOW_SKIPPED = 20  # lines listed one by one on stderr; the rest are only counted

# An importer: (input lines, result to fill) -> the events, lazily.
Converter = Callable[[TextIO, ImportResult], Iterator[dict[str, Any]]]


def _add_common(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("file", metavar="FILE", help=f"{what} ('-' = stdin)")
    p.add_argument(
        "--tz",
        default="UTC",
        metavar="ZONE",
        help="IANA zone of times written without an offset, e.g. Europe/Berlin (default UTC)",
    )
    p.add_argument("-o", "--output", metavar="OUT.jsonl", help="write the events here instead of stdout")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "import",
        help="turn PBX data (Asterisk queue_log, a CSV of calls) into contract events",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kinds = p.add_subparsers(dest="kind", metavar="KIND")
    kinds.required = True

    ql = kinds.add_parser(
        "queue-log",
        help="an Asterisk queue_log file (TIME|CALLID|QUEUE|AGENT|EVENT|DATA...)",
        description="Read an Asterisk queue_log in its native pipe format"
        " (TIME|CALLID|QUEUENAME|AGENT|EVENT|DATA1|DATA2|...)."
        " Epoch times in seconds, with or without a fraction, or milliseconds; date-time"
        " exports of the realtime table are read in --tz. Concatenate rotated files in time"
        " order on stdin: cat queue_log.1 queue_log | kpistream import queue-log -",
    )
    _add_common(ql, "the queue_log file")
    _add_follow(ql)
    ql.set_defaults(func=run_queue_log)

    cc = kinds.add_parser(
        "calls-csv",
        help="a CSV export with one row per call",
        description=(
            "Read a CSV with a header row and one row per call. --map names the columns: "
            "COLUMN=FIELD pairs, comma-separated (repeat --map for column names with commas). "
            f"Fields: {', '.join(calls_csv.FIELDS)}. queue and entered are required, and an "
            "outcome column or an answered/abandoned time column. Times are ISO 8601, epoch seconds, "
            "or --time-format; times without an offset are in --tz."
        ),
    )
    _add_common(cc, "the CSV file")
    cc.add_argument(
        "--map",
        action="append",
        required=True,
        metavar="COLUMN=FIELD,...",
        help="e.g. 'uniqueid=call_id,queue=queue,start=entered,answer=answered,status=outcome'",
    )
    cc.add_argument(
        "--time-format",
        metavar="PATTERN",
        help="strptime pattern of the times, e.g. '%%d.%%m.%%Y %%H:%%M:%%S'",
    )
    cc.add_argument("--delimiter", default=",", help="field separator (default ','); use '\\t' for tabs")
    for name, default in (
        ("answered", calls_csv.DEFAULT_ANSWERED),
        ("abandoned", calls_csv.DEFAULT_ABANDONED),
        ("lost", calls_csv.DEFAULT_LOST),
    ):
        cc.add_argument(
            f"--{name}-values",
            metavar="V1,V2,...",
            help=f"outcome values meaning {name}, case-insensitive (default {','.join(sorted(default))})",
        )
    cc.add_argument(
        "--abandoned-at-agent",
        action="store_true",
        help="an agent on an abandoned row means the call was ringing there (charged to that operator)",
    )
    cc.set_defaults(func=run_calls_csv)


def _add_follow(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "live (--follow --produce)",
        "Follow the file as Asterisk writes it (tail -F: rotation, truncation, a file not there yet)"
        " and send its events to Kafka as `kpistream produce` does, until SIGTERM. The position is"
        " stored in a state file after Kafka acknowledged the events before it, so a restart, even"
        " after SIGKILL, loses and duplicates nothing (a line read again gives the same event ids).",
    )
    g.add_argument("--follow", action="store_true", help="follow FILE as it grows (needs --produce)")
    g.add_argument("--produce", action="store_true", help="send the events to Kafka (needs --follow)")
    g.add_argument(
        "--state",
        metavar="STATE_FILE",
        help="where the position is kept (default: .NAME.kpistream-follow next to FILE)",
    )
    g.add_argument(
        "--from-end",
        action="store_true",
        help="with no state file yet: skip what FILE holds now (default: read it from its start)",
    )
    g.add_argument("--metrics-port", type=int, metavar="PORT", help="serve Prometheus /metrics on PORT")
    g.add_argument("--metrics-host", default="0.0.0.0", help="address of --metrics-port (default 0.0.0.0)")
    g.add_argument("--poll", type=float, default=0.25, metavar="SECONDS", help="idle pause (default 0.25)")
    g.add_argument(
        "--save-every",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="store the position at most this often (default 1): what a restart may read again",
    )
    g.add_argument("--broker", help="kafka://HOST:PORT (KPISTREAM_BROKER)")
    g.add_argument("--config", metavar="FILE.toml", help="settings file (also KPISTREAM_CONFIG)")
    g.add_argument("--no-create-topics", action="store_true", help="do not create missing topics first")


def _run_follow(args: argparse.Namespace) -> int:
    from stream.commands import queue_log_follow
    from stream.config import load_settings
    from stream.errors import KpiStreamError
    from stream.importers.follow_state import default_state_path

    if not (args.follow and args.produce) or args.file == "-" or args.output:
        print(
            "kpistream import queue-log: --follow and --produce go together, with a FILE (not '-')"
            " and no --output",
            file=sys.stderr,
        )
        return EXIT_UNUSABLE
    log_path = Path(args.file)
    try:
        settings = load_settings(
            toml_path=args.config, overrides={"broker": args.broker} if args.broker else {}
        )
        if not args.no_create_topics:
            import asyncio

            from stream.topic_admin import create_topics
            from stream.topics import topic_specs

            asyncio.run(create_topics(settings.bootstrap_servers, topic_specs(settings)))
    except (KpiStreamError, OSError) as exc:
        print(f"kpistream import queue-log: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    opts = queue_log_follow.FollowOptions(
        log_path=log_path,
        state_path=Path(args.state) if args.state else default_state_path(log_path),
        tz=args.tz,
        start_at_end=args.from_end,
        poll_s=args.poll,
        save_every_s=args.save_every,
    )
    return queue_log_follow.run(settings, opts, args.metrics_port, args.metrics_host)


@contextlib.contextmanager
def _open_in(path: str, encoding: str) -> Iterator[TextIO]:
    if path == "-":
        yield sys.stdin
        return
    with Path(path).open(encoding=encoding, errors="replace", newline="") as f:
        yield f


def _write(events: Iterable[dict[str, Any]], output: str | None) -> Counter[str]:
    """Write the events as JSON lines as they come; their counts by type."""
    types: Counter[str] = Counter()

    def counted() -> Iterator[dict[str, Any]]:
        for e in events:
            types[e["type"]] += 1
            yield e

    if output:
        with Path(output).open("w", encoding="utf-8") as f:
            f.writelines(to_jsonl(counted()))
    else:
        sys.stdout.writelines(to_jsonl(counted()))
        sys.stdout.flush()
    return types


def _summary(cmd: str, result: ImportResult, types: Counter[str]) -> None:
    err = sys.stderr
    for s in result.skipped[:SHOW_SKIPPED]:
        print(f"line {s.line}: {s.reason}: {s.detail}", file=err)
    if len(result.skipped) > SHOW_SKIPPED:
        print(f"... and {len(result.skipped) - SHOW_SKIPPED} more skipped lines", file=err)
    by_reason = Counter(s.reason for s in result.skipped)
    n_skipped = len(result.skipped)
    print(
        f"kpistream import {cmd}: {types.total()} events written"
        + (f" ({', '.join(f'{t} {n}' for t, n in sorted(types.items()))})" if types else "")
        + f"; {n_skipped} line{'' if n_skipped == 1 else 's'} skipped"
        + (f" ({', '.join(f'{r} {n}' for r, n in by_reason.most_common())})" if by_reason else ""),
        file=err,
    )
    if result.ignored:
        print(
            "ignored: " + ", ".join(f"{name} {n}" for name, n in sorted(result.ignored.items())),
            file=err,
        )
    for note, n in sorted(result.notes.items()):
        print(f"note: {note}: {n}", file=err)


def _run(cmd: str, path: str, encoding: str, output: str | None, convert: Converter) -> int:
    result = ImportResult()
    try:
        with _open_in(path, encoding) as f:
            # The converter checks its options (zone, CSV header) before the output is opened.
            events = convert(f, result)
            types = _write(events, output)
    except (OSError, ValueError) as exc:
        print(f"kpistream import {cmd}: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    _summary(cmd, result, types)
    return EXIT_SKIPPED if result.skipped else EXIT_OK


def run_queue_log(args: argparse.Namespace) -> int:
    if args.follow or args.produce:
        return _run_follow(args)
    return _run(
        "queue-log", args.file, "utf-8", args.output, lambda f, r: queue_log.iter_events(f, r, args.tz)
    )


def _csv_options(args: argparse.Namespace) -> calls_csv.CsvOptions:
    kw: dict[str, Any] = {}
    for name in ("answered", "abandoned", "lost"):
        text = getattr(args, f"{name}_values")
        if text is not None:
            kw[f"{name}_values"] = calls_csv.parse_values(text)
    delimiter = "\t" if args.delimiter in ("\\t", "tab") else args.delimiter
    if len(delimiter) != 1:
        raise ValueError(f"--delimiter must be one character, got {args.delimiter!r}")
    return calls_csv.CsvOptions(
        mapping=calls_csv.parse_map(args.map),
        tz=args.tz,
        time_format=args.time_format,
        abandoned_at_agent=args.abandoned_at_agent,
        delimiter=delimiter,
        **kw,
    )


def run_calls_csv(args: argparse.Namespace) -> int:
    try:
        options = _csv_options(args)
    except ValueError as exc:
        print(f"kpistream import calls-csv: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    return _run(
        "calls-csv", args.file, "utf-8-sig", args.output, lambda f, r: calls_csv.iter_events(f, options, r)
    )

"""`kpistream validate FILE.jsonl [--max-bytes N]`: check a JSON-lines file of input events.

Every bad line is printed to stdout as ``LINE: REASON: detail`` (1-based physical line numbers);
a summary goes to stderr. Blank lines are skipped. Exit status: 0 when every event is valid, 1 when
at least one line is bad, 2 when the file cannot be read. ``-`` reads standard input.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, BinaryIO, TextIO

from schemas.parse import DEFAULT_MAX_BYTES, REASONS, parse_event
from stream.errors import InvalidEvent

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_UNREADABLE = 2


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of bytes, got {n}")
    return n


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE.jsonl", help="JSON-lines file of events ('-' for stdin)")
    parser.add_argument(
        "--max-bytes",
        type=_positive_int,
        default=DEFAULT_MAX_BYTES,
        metavar="N",
        help=f"largest accepted event in bytes of UTF-8, without its line end (default {DEFAULT_MAX_BYTES})",
    )


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check a JSON-lines file of input events against the contract",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def _strip_line_end(line: bytes) -> bytes:
    if line.endswith(b"\n"):
        line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
    return line


def validate_lines(lines: Iterable[bytes], max_bytes: int, out: TextIO) -> tuple[int, Counter[str]]:
    """Check each line; print the bad ones to `out`. Returns (events checked, bad lines by reason)."""
    checked = 0
    bad: Counter[str] = Counter()
    for number, line in enumerate(lines, start=1):
        raw = _strip_line_end(line)
        if not raw.strip():
            continue
        checked += 1
        try:
            parse_event(raw, max_bytes=max_bytes)
        except InvalidEvent as exc:
            bad[exc.reason] += 1
            detail = " ".join(exc.detail.splitlines())
            out.write(f"{number}: {exc.reason}: {detail}\n")
    return checked, bad


def validate_file(path: str, max_bytes: int, out: TextIO, err: TextIO) -> int:
    """Validate the file at `path` ('-' for stdin); returns the exit status."""
    try:
        if path == "-":
            checked, bad = validate_lines(sys.stdin.buffer, max_bytes, out)
        else:
            with open(path, "rb") as fh:
                stream: BinaryIO = fh
                checked, bad = validate_lines(stream, max_bytes, out)
    except OSError as exc:
        err.write(f"kpistream validate: cannot read {path}: {exc.strerror or exc}\n")
        return EXIT_UNREADABLE
    n_bad = sum(bad.values())
    summary = f"{path}: {checked} events, {checked - n_bad} valid, {n_bad} invalid"
    if n_bad:
        by_reason = ", ".join(f"{r} {bad[r]}" for r in REASONS if bad[r])
        summary += f" ({by_reason})"
    err.write(summary + "\n")
    return EXIT_INVALID if n_bad else EXIT_OK


def run(args: argparse.Namespace) -> int:
    return validate_file(args.file, args.max_bytes, sys.stdout, sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry point: `python -m stream.commands.validate FILE.jsonl`."""
    parser = argparse.ArgumentParser(prog="kpistream validate", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

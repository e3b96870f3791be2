"""The `kpistream` console script: one sub-command per module, each with --help."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# Each module exposes `register(subparsers) -> None`; its parser sets `func(args) -> int`.
COMMAND_MODULES: tuple[str, ...] = (
    "stream.commands.worker",
    "stream.commands.report",
    "stream.commands.produce",
    "stream.commands.validate",
    "stream.commands.score",
    "stream.commands.strategy",
    "stream.commands.dev",
    "stream.commands.demo",
    "stream.commands.simulate",
    "stream.commands.importers",
    "stream.commands.bench",
    "stream.commands.web_user",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kpistream",
        description="Streaming KPI processor for contact centres (see docs/ and CONTRACT.md).",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    rc: int = args.func(args)
    return rc


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The `kpistream` console script: one sub-command per module, each with --help."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from stream.config import load_settings
from stream.errors import ConfigError
from stream.logformat import configure_logging
from stream.metrics import kpistream_version

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
    "stream.commands.payouts",
    "stream.commands.web_user",
    "stream.commands.topics",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kpistream",
        description="Streaming KPI processor for contact centres (see docs/ and CONTRACT.md).",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    parser.add_argument("--version", action="version", version=f"kpistream {kpistream_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _log_format() -> str:
    """`log_format` from the environment (a command that reads a settings file applies its own)."""
    try:
        return load_settings().log_format
    except ConfigError:
        return "text"  # the command itself reports the bad setting


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Read from the process's own arguments: it may execute itself again (stream/allocator.py).
    args.started_as_program = argv is None
    configure_logging(_log_format(), getattr(logging, str(args.log_level).upper(), logging.INFO))
    rc: int = args.func(args)
    return rc


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

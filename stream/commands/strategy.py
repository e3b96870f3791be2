"""`kpistream strategy list|show NAME|set NAME`: the weight sets of F and the one in force.

The strategies come from the strategies file (KPISTREAM_STRATEGIES); the default in force is the
last one written to the control topic by `set` (running workers switch to it within seconds),
else the file's default.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import Any

from stream import kafka_clients
from stream.commands.worker import add_settings_args, settings_from_args
from stream.config import Settings
from stream.control import read_default_strategy, write_default_strategy
from stream.core.scoring import Strategy
from stream.errors import KpiStreamError, ServiceError
from stream.strategies import StrategyBook, load_book


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "strategy",
        help="list, show or switch the strategy (weights K1..K6) of the score F",
        description="List or show the strategies of the strategies file, or switch the default of "
        "every running worker through the control topic.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    ls = actions.add_parser("list", help="every strategy, the file default and the active one")
    show = actions.add_parser("show", help="one strategy's weights, description and teams")
    show.add_argument("name")
    st = actions.add_parser("set", help="make NAME the default of every worker (control topic)")
    st.add_argument("name")
    for a in (ls, show, st):
        add_settings_args(a)
        a.add_argument("--format", choices=("table", "json"), default="table", help="output format")
        a.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the broker")
    p.set_defaults(func=run)


def active_strategy(settings: Settings, timeout: float) -> tuple[str | None, str | None]:
    """(name from the control topic or None, an error text when the broker could not be read)."""
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # a missing broker is reported once, below, not as a traceback
    try:
        return asyncio.run(read_default_strategy(settings, timeout)), None
    except ServiceError as exc:
        return None, str(exc)
    finally:
        quiet.setLevel(level)


def describe(s: Strategy, book: StrategyBook) -> dict[str, Any]:
    teams = sorted(t for t, name in book.team_strategy.items() if name == s.name)
    return {"name": s.name, "weights": s.weights_json(), "description": s.description, "teams": teams}


def _weights(w: list[int | float]) -> str:
    return ", ".join(str(x) for x in w)


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
        book = load_book(settings.strategies)
        if args.action == "set":
            strategy = book.get(args.name)
            kafka_clients.check_connection_sync(settings)
            if settings.topics_mode == "create":  # check: the control topic is the operator's
                from stream.topic_admin import create_topics
                from stream.topics import topic_specs

                asyncio.run(create_topics(settings, topic_specs(settings)))
            asyncio.run(write_default_strategy(settings, strategy.name))
            print(f"default strategy is now {strategy.name} (K = {_weights(strategy.weights_json())})")
            return 0
        active, error = active_strategy(settings, args.timeout)
        if args.action == "show":
            info = describe(book.get(args.name), book)
            info["file_default"] = info["name"] == book.default
            info["active"] = info["name"] == (active or book.default)
            if args.format == "json":
                print(json.dumps(info, indent=2))
            else:
                print(f"{info['name']}: K = {_weights(info['weights'])}")
                if info["description"]:
                    print(f"  {info['description']}")
                if info["teams"]:
                    print(f"  teams: {', '.join(info['teams'])}")
                print(f"  active: {'yes' if info['active'] else 'no'}")
        else:
            rows = [describe(s, book) for _, s in sorted(book.strategies.items())]
            in_force = active or book.default
            if args.format == "json":
                out = {"default": book.default, "active": in_force, "strategies": rows}
                print(json.dumps(out, indent=2))
            else:
                width = max(len(r["name"]) for r in rows)
                for r in rows:
                    mark = "*" if r["name"] == in_force else " "
                    print(f"{mark} {r['name']:<{width}}  K = {_weights(r['weights']):<22} {r['description']}")
        if error is not None:
            print(f"(broker not reachable, showing the file default: {error})", file=sys.stderr)
        return 0
    except KpiStreamError as exc:
        print(f"kpistream strategy: {exc}", file=sys.stderr)
        return 2

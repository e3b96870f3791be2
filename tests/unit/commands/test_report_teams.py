"""`report` scores each operator with their team's strategy, as the stream does (one definition)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stream.cli import main
from stream.simulator import SimConfig, generate
from stream.strategies import load_book

TEAMS = """
default = "strategy-1"
[strategies.resolve-first]
weights = [1, 1, 6, 1, 1, 1]
[teams.digital]
strategy = "resolve-first"
operators = ["op-001", "op-002"]
"""


def _report(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, dict[str, float]]:
    assert main(["report", *args, "--format", "json"]) == 0
    body = json.loads(capsys.readouterr().out)
    return {pk: {op: row["f"] for op, row in p["operators"].items()} for pk, p in body["periods"].items()}


def test_team_operators_get_their_strategy_and_a_named_one_scores_everyone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in generate(SimConfig(seed=5, hours=1.0))))
    strategies = tmp_path / "strategies.toml"
    strategies.write_text(TEAMS)
    inputs = ("--events", str(events), "--strategies", str(strategies))
    own = _report(capsys, *inputs)
    alike = _report(capsys, *inputs, "--strategy", "strategy-1")
    month = next(pk for pk in own if pk.startswith("month:"))
    assert {"op-001", "op-002"} <= set(own[month])
    for op in own[month]:
        if op in ("op-001", "op-002"):
            assert own[month][op] != alike[month][op]  # the team's weights
        else:
            assert own[month][op] == alike[month][op]
    assert load_book(str(strategies)).for_operator("op-001").name == "resolve-first"

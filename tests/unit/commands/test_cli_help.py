"""Every command and sub-command of `kpistream` answers --help (and the top level lists them all)."""

from __future__ import annotations

import pytest

from stream.cli import main

COMMANDS = [
    "worker", "report", "produce", "validate", "dev", "dev up", "dev down", "dev status", "demo", "score",
    "strategy", "strategy list", "strategy show", "strategy set", "import", "import queue-log",
    "import calls-csv", "bench", "simulate", "web-user",
    "topics", "topics plan", "topics create", "topics check",
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS)
def test_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*command.split(), "--help"])
    assert exc.value.code == 0
    assert "usage: kpistream" in capsys.readouterr().out


def test_top_level_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for top in {c.split()[0] for c in COMMANDS}:
        assert top in out

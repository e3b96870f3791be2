"""The command lines of `import queue-log --follow --produce` and `produce -` (no broker needed:
these are refused before anything connects)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.cli import main


@pytest.mark.parametrize(
    "extra",
    [
        ["--follow"],  # without --produce
        ["--produce"],  # without --follow
        ["--follow", "--produce", "-o", "out.jsonl"],
    ],
)
def test_follow_and_produce_go_together(
    tmp_path: Path, extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", "queue-log", str(tmp_path / "queue_log"), *extra]) == 2
    assert "--follow and --produce go together" in capsys.readouterr().err


def test_follow_refuses_stdin(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", "queue-log", "-", "--follow", "--produce"]) == 2
    assert "not '-'" in capsys.readouterr().err


def test_produce_takes_one_source() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["produce", "-", "--events", "x.jsonl"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(["produce"])

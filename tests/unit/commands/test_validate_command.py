"""`kpistream validate FILE.jsonl`: bad lines on stdout, a summary on stderr, exit 0/1/2."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.examples import example
from stream.commands import validate


def write(tmp_path: Path, lines: list[bytes]) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def good(etype: str = "call.ended", **kw: object) -> bytes:
    return json.dumps(example(etype, **kw)).encode()


MIXED = [
    good("call.offered"),  # 1
    b"",  # 2 blank: skipped
    b"not json",  # 3
    good("call.ringing", operator_id=...),  # 4
    b"   ",  # 5 blank
    good("chat.message", sender="customer", operator_id=...) + b"\r",  # 6 CRLF is fine
    good(type="call.exploded"),  # 7
    good(ts="2026-01-15T09:00:00"),  # 8
    good(call_id=12),  # 9
    b"\xff\xfe",  # 10
    good(pad="x" * 300),  # 11: too large with --max-bytes 300
]


def test_mixed_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, MIXED)
    assert validate.main([str(path), "--max-bytes", "300"]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert [line.split(": ")[:2] for line in lines] == [
        ["3", "invalid_json"],
        ["4", "missing_field"],
        ["7", "unknown_type"],
        ["8", "bad_timestamp"],
        ["9", "invalid_field"],
        ["10", "invalid_json"],
        ["11", "too_large"],
    ]
    assert lines[1] == "4: missing_field: field 'operator_id' is required for call.ringing"
    assert "9 events, 2 valid, 7 invalid" in err
    assert "invalid_json 2" in err


def test_all_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, [good(t) for t in ("call.offered", "agent.state", "business.orders")])
    assert validate.main([str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "3 events, 3 valid, 0 invalid" in err


def test_empty_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    assert validate.main([str(path)]) == 0
    assert "0 events" in capsys.readouterr().err


def test_unreadable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert validate.main([str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert validate.main([str(tmp_path)]) == 2  # a directory


def test_bad_max_bytes(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        validate.main([str(write(tmp_path, [good()])), "--max-bytes", "0"])
    assert info.value.code == 2


def test_register_adds_the_subcommand(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    validate.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["validate", str(tmp_path / "x.jsonl"), "--max-bytes", "10"])
    assert args.func is validate.run and args.max_bytes == 10


def test_as_a_process(tmp_path: Path) -> None:
    path = write(tmp_path, MIXED[:4])
    proc = subprocess.run(
        [sys.executable, "-m", "stream.commands.validate", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stdout == (
        "3: invalid_json: not valid JSON: Expecting value at character 0\n"
        "4: missing_field: field 'operator_id' is required for call.ringing\n"
    )
    assert "3 events, 1 valid, 2 invalid" in proc.stderr

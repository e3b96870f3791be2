"""Following a queue_log without Kafka: tail -F semantics (stream/importers/tail.py), the state file
(stream/importers/follow_state.py) and the importer's reader resumed from its state between any
two lines (stream/importers/queue_log.py `LineReader`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from stream.importers import ImportResult, queue_log
from stream.importers.follow_state import FollowState, default_state_path, load_state, save_state
from stream.importers.tail import Follower, Position

DATA = Path(__file__).resolve().parents[2] / "data"


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(text)


def texts(lines: list[tuple[int, str]]) -> list[str]:
    return [t for _, t in lines]


def test_complete_lines_only_numbered_over_the_log(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    append(log, "a\nb\npart")
    f = Follower(log)
    assert f.read() == [(1, "a"), (2, "b")]
    assert f.position.offset == 4 and f.position.line_no == 2
    assert f.read() == []
    append(log, "ial\nc\n")
    assert f.read() == [(3, "partial"), (4, "c")]
    assert f.lag_bytes() == 0


def test_a_file_that_does_not_exist_yet(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    f = Follower(log)
    assert f.read() == [] and f.position == Position()
    append(log, "a\n")
    assert f.read() == []  # opened: its lines come once the caller stored the position naming it
    assert f.generation == 1 and f.position.ino == os.stat(log).st_ino
    assert f.read() == [(1, "a")]


def test_rotation_by_rename_reads_the_old_file_to_its_end_first(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    append(log, "a\nb\n")
    f = Follower(log)
    assert texts(f.read()) == ["a", "b"]
    append(log, "c\nlast without newline")
    log.rename(tmp_path / "queue_log.1")
    assert texts(f.read()) == ["c"]  # the path is gone: the old file may still grow
    append(tmp_path / "queue_log.1", "\nd\n")
    append(log, "e\n")
    assert f.read() == [(4, "last without newline"), (5, "d")]  # one file per read
    assert f.position.ino == os.stat(log).st_ino and f.position.offset == 0
    assert f.read() == [(6, "e")]
    assert f.rotations == 1 and f.position.offset == 2


def test_a_last_line_without_newline_is_read_when_the_file_is_rotated(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    append(log, "a\nb")
    f = Follower(log)
    assert texts(f.read()) == ["a"]
    log.rename(tmp_path / "queue_log.1")
    append(log, "c\n")
    assert f.read() == [(2, "b")]
    assert f.read() == [(3, "c")]


def test_truncation_reads_again_from_the_start(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    append(log, "a\nb\n")
    f = Follower(log)
    assert texts(f.read()) == ["a", "b"]
    log.write_text("c\n")  # truncated, shorter
    assert f.read() == []  # started over: the caller stores the position at the start first
    assert f.truncations == 1 and f.position.offset == 0 and f.position.line_no == 2
    assert f.read() == [(3, "c")]
    # Truncated and written past the old size between two reads: the first bytes tell.
    log.write_text("x" * 10 + "\n" + "y\n")
    assert f.read() == []
    assert f.read() == [(4, "x" * 10), (5, "y")]
    assert f.truncations == 2


def test_resume_in_the_same_file(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    append(log, "a\nb\n")
    f = Follower(log)
    f.read()
    pos = Position.from_json(json.loads(json.dumps(f.position.to_json())))
    f.close()
    append(log, "c\n")
    g = Follower(log, pos)
    assert g.read() == [(3, "c")]


def test_resume_after_a_rotation_while_stopped(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    append(log, "a\nb\n")
    f = Follower(log)
    f.read()
    pos = f.position
    f.close()
    append(log, "c\n")
    log.rename(tmp_path / "queue_log.1")
    append(log, "d\n")
    g = Follower(log, pos)
    assert g.read() == [(3, "c")]
    assert g.read() == [(4, "d")]
    assert g.rotations == 1


def test_restart_after_a_rotation_before_the_first_save_after_acks(tmp_path: Path) -> None:
    """The flake of the follow test: started before the log existed (position with no file
    stored), the follower read and produced the first file, was killed before its next save, and
    the file was rotated meanwhile. The restart must read the rotated file's unread lines with
    their own numbers, then the new file; it used to read the new file as lines 1, 2...
    (other event ids: counted twice), never recording the first file as read."""
    log, state_path = tmp_path / "queue_log", tmp_path / "follow.state"

    def store(f: Follower) -> None:  # what follow_and_produce does once Kafka acknowledged
        save_state(state_path, FollowState(str(log), f.position, {}))

    first = Follower(log)  # no log yet
    store(first)
    assert load_state(state_path) == FollowState(str(log), Position(), {})
    append(log, "a\nb\n")
    generation = first.generation
    assert first.read() == []  # the file is opened, none of its lines used yet...
    assert first.generation == generation + 1
    store(first)  # ...until the position naming it is stored
    stored = load_state(state_path)
    assert stored is not None
    assert (stored.position.ino, stored.position.offset, stored.position.line_no) == (
        os.stat(log).st_ino,
        0,
        0,
    )
    append(log, "c\n")
    assert first.read() == [(1, "a"), (2, "b"), (3, "c")]  # produced; SIGKILL before the next save
    first.close()
    append(log, "d\n")  # the writer goes on, rotates (a last line still to the old file), goes on
    log.rename(tmp_path / "queue_log.1")
    append(tmp_path / "queue_log.1", "e\n")
    append(log, "f\ng\n")

    restart = Follower(log, stored.position)
    assert restart.read() == [(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e")]  # same ids again
    # The new file is open, none of its lines used: the caller stores this position first.
    assert (restart.position.ino, restart.position.offset, restart.position.line_no) == (
        os.stat(log).st_ino,
        0,
        5,
    )
    assert restart.read() == [(6, "f"), (7, "g")]
    assert restart.rotations == 1 and restart.truncations == 0


def test_resume_after_a_truncation_and_rewrite_while_stopped(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    append(log, "first line\n")
    f = Follower(log)
    f.read()
    pos = f.position
    f.close()
    log.write_text("other line\nmore\n")  # same inode, longer than the offset, other first bytes
    g = Follower(log, pos)
    assert g.read() == [(2, "other line"), (3, "more")]
    assert g.truncations == 1


def test_resume_when_the_old_file_is_gone(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    append(log, "a\n")
    f = Follower(log)
    f.read()
    pos = f.position
    f.close()
    log.unlink()
    append(tmp_path / "unrelated", "zzz\n")
    append(log, "b\n")
    assert Follower(log, pos).read() == [(2, "b")]


def test_start_at_end_numbers_lines_as_from_the_start(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    append(log, "a\nb\npart")
    f = Follower(log, start_at_end=True)
    assert f.read() == []
    append(log, "ial\n")
    assert f.read() == [(3, "partial")]


def test_state_file_round_trip_and_refusal(tmp_path: Path) -> None:
    path = default_state_path(tmp_path / "queue_log")
    assert path == tmp_path / ".queue_log.kpistream-follow"
    assert load_state(path) is None
    state = FollowState(str(tmp_path / "queue_log"), Position(1, 2, 30, 4, "ab", 30), {"k": [1]})
    save_state(path, state)
    assert load_state(path) == state
    assert not path.with_name(path.name + ".tmp").exists()
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not a follow state file"):
        load_state(path)


def test_reader_resumed_between_any_two_lines_gives_the_same_events() -> None:
    """A stop (state saved, process gone) between any two lines, a call half read included,
    changes nothing: the events are those of the file read in one go, ids included."""
    lines = (DATA / "queue_log.sample").read_text(encoding="utf-8").splitlines()
    whole = queue_log.convert([line + "\n" for line in lines])
    zone = ZoneInfo("UTC")
    for cut in range(1, len(lines)):
        result = ImportResult()
        reader = queue_log.LineReader(result, zone)
        events = [e for n, line in enumerate(lines[:cut], 1) for e in reader.feed(n, line)]
        state = json.loads(json.dumps(reader.state()))
        reader = queue_log.LineReader.restore(state, result, zone)
        events += [e for n, line in enumerate(lines[cut:], cut + 1) for e in reader.feed(n, line)]
        assert events == whole.events, f"stopped after line {cut}"
        assert result.skipped == whole.skipped


def test_reader_forgets_calls_idle_for_long() -> None:
    result = ImportResult()
    reader = queue_log.LineReader(result, ZoneInfo("UTC"))
    reader.feed(1, "1768467000|c1|support|NONE|ENTERQUEUE||100|1")
    reader.feed(2, "1768553500|c2|support|NONE|ENTERQUEUE||101|1")
    assert reader.forget_calls_before(reader.newest_ms - 24 * 3600 * 1000) == 1
    assert set(reader.state()["visits"]) == {"c2"}
    # A finished call goes sooner than an open one.
    reader.feed(4, "1768553500|c2|support|NONE|ABANDON|1|1|0")
    reader.feed(5, "1768553501|c4|support|NONE|ENTERQUEUE||103|1")
    reader.feed(6, "1768557200|c5|support|NONE|ENTERQUEUE||104|1")
    assert (
        reader.forget_calls_before(reader.newest_ms - 24 * 3600 * 1000, reader.newest_ms - 3600 * 1000) == 1
    )
    assert set(reader.state()["visits"]) == {"c4", "c5"}
    # A line from a wrong clock (year 2286) does not make the open calls look old.
    reader.clock_limit_ms = 1768560000_000
    reader.feed(3, "9999999999|c3|support|NONE|ENTERQUEUE||102|1")
    assert reader.newest_ms == 1768557200_000


def test_bad_state_is_refused() -> None:
    with pytest.raises(ValueError):
        queue_log.LineReader.restore({"visits": {}}, ImportResult(), ZoneInfo("UTC"))

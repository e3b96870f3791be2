"""The state file of a queue_log follower: where it stands in the log and the calls it has open.

Written only after every event of the lines before the position was acknowledged by Kafka, and
atomically (a temporary file in the same directory, fsync, rename, fsync of the directory), so
after a crash or SIGKILL the file holds either the previous state or the new one, never a mix: a
restart reads again at most the lines since the last save, whose events get the same ids (a
harmless duplicate downstream), and no line is skipped. The reader state (open calls, visit
counts, agent states) is the one after exactly those lines, so a call whose lines straddle the
stop goes on as if read in one go.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from stream.importers.tail import Position

__all__ = ["STATE_VERSION", "FollowState", "default_state_path", "load_state", "save_state"]

STATE_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class FollowState:
    """What a restart needs: the followed path, the position and the queue_log reader's state."""

    path: str
    position: Position
    reader: dict[str, Any]


def default_state_path(log_path: Path) -> Path:
    """Next to the log: ``/var/log/asterisk/queue_log`` -> ``.queue_log.kpistream-follow`` there."""
    return log_path.with_name(f".{log_path.name}.kpistream-follow")


def load_state(path: Path) -> FollowState | None:
    """The state stored at `path`, None if there is none; ValueError if the file is not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"version {data.get('version')!r}, expected {STATE_VERSION}")
        return FollowState(str(data["path"]), Position.from_json(data["position"]), dict(data["reader"]))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: not a follow state file ({exc})") from None


def save_state(path: Path, state: FollowState) -> None:
    """Replace the state at `path` atomically (module docstring)."""
    data = {
        "version": STATE_VERSION,
        "path": state.path,
        "position": state.position.to_json(),
        "reader": state.reader,
    }
    tmp = path.with_name(f"{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(data, f, separators=(",", ":"))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

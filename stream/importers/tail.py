"""Follow a growing log file with ``tail -F`` semantics, from a position that survives a restart.

A `Follower` hands out the complete lines written to a path since its position, whichever file
the path names over time:

- **rotation by rename** (``mv queue_log queue_log.1`` and a new ``queue_log``, as Asterisk's
  ``logger rotate`` does): the old file is read to its end (a last line without a newline
  included), then the new one from its start;
- **truncation** (``copytruncate``, ``> queue_log``): the file is read again from its start. Lines
  written after the last read and before the truncation are gone with it (as with ``tail -F``);
- **a path that does not exist** (yet, or between a rename and the new file): nothing is read
  until it does;
- **a restart**: a `Position` names the file by device and inode plus a digest of its first bytes
  (so a file truncated and written again, or a new file that got a reused inode, is not mistaken
  for the old one), the bytes consumed in it and the lines consumed in the whole log. If the path
  names another file by then, the old one is looked for next to it (``queue_log.1``...) and read to
  its end first.

Only complete lines are consumed: a line still being written is read again, whole, next time.
Lines are numbered over the whole log (across rotations), so a line read again after a restart
keeps its number. Reading never blocks: `read` returns what is there now.

A `read` returns the lines of one file at most: the one that opens a file (the first one, the
next one after a rotation) or starts a truncated file over returns none of its lines, and moves
`generation` on. The caller stores the position, which then names that file at its start, before
it uses any of its lines: a restart finds the file by its inode, among the rotated copies if it
was rotated meanwhile, and reads it again with the same line numbers. (Storing only a position
in the previous file, or one with no file, would make a restart read whatever the path names by
then, numbering its lines as if the unsaved file had never been read.)
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final

__all__ = ["HEAD_BYTES", "Follower", "Position"]

log = logging.getLogger(__name__)

HEAD_BYTES: Final = 256  # the first bytes of a file that identify it, with its device and inode
READ_BYTES: Final = 1 << 20  # at most this much is read from one file per `read`


@dataclass(frozen=True, slots=True)
class Position:
    """Where a follower stands: `offset` bytes of file (`dev`, `ino`) consumed, whose first
    `head_len` bytes have the sha-256 `head`; `line_no` lines of the whole log consumed.
    `dev` = `ino` = 0: no file opened yet."""

    dev: int = 0
    ino: int = 0
    offset: int = 0
    line_no: int = 0
    head: str = ""
    head_len: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "dev": self.dev,
            "ino": self.ino,
            "offset": self.offset,
            "line_no": self.line_no,
            "head": self.head,
            "head_len": self.head_len,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Position:
        """ValueError if `data` is not a position."""
        try:
            pos = cls(
                dev=int(data["dev"]),
                ino=int(data["ino"]),
                offset=int(data["offset"]),
                line_no=int(data["line_no"]),
                head=str(data["head"]),
                head_len=int(data["head_len"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a file position: {exc!r}") from None
        if min(pos.offset, pos.line_no, pos.head_len) < 0 or pos.head_len > pos.offset:
            raise ValueError(f"not a file position: {data!r}")
        return pos


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Follower:
    """The lines of `path` as it grows, rotates and is truncated (module docstring)."""

    def __init__(self, path: Path, position: Position | None = None, *, start_at_end: bool = False) -> None:
        self.path = path
        self.rotations = 0  # files left for the next one
        self.truncations = 0  # times the file was found shorter or rewritten
        self.generation = 0  # times reading started over in a file: opened, or found truncated
        self._f: BinaryIO | None = None
        self._ident = (0, 0)
        self._offset = 0  # bytes consumed (complete lines) in the open file
        self._partial = b""  # bytes read after `_offset`, not yet ending in a newline
        self._line_no = 0
        self._head = ""
        self._head_len = 0
        if position is not None:
            self._resume(position)
        else:
            self._open_path(at_end=start_at_end)

    # -- public ----------------------------------------------------------------------------

    @property
    def position(self) -> Position:
        """The position after the last line returned by `read`."""
        self._update_head()
        return Position(*self._ident, self._offset, self._line_no, self._head, self._head_len)

    def read(self) -> list[tuple[int, str]]:
        """The complete lines available now, as (line number in the whole log, text without its
        newline), of one file at most: none of a file this call opens or finds truncated (its
        lines come with the next call, once the caller stored the position naming it)."""
        out: list[tuple[int, str]] = []
        if self._f is None:
            self._open_path()
            return out
        if self._check_truncated():
            return out
        out += self._read_available()
        current = self._stat_path()
        if current is not None and current != self._ident:
            # Renamed away: what was written to the old file before the rename is read first.
            out += self._read_available(final=True)
            log.info("%s: rotated (a new file at the path); reading it from its start", self.path)
            self.rotations += 1
            self._close()
            self._open_path()
        return out

    def lag_bytes(self) -> int:
        """Bytes written to the log that `read` has not consumed yet (0 when caught up)."""
        lag = 0
        if self._f is not None:
            lag += max(os.fstat(self._f.fileno()).st_size - self._offset, 0)
        try:
            st = os.stat(self.path)
        except OSError:
            return lag
        if (st.st_dev, st.st_ino) != self._ident:
            lag += st.st_size
        return lag

    def close(self) -> None:
        self._close()

    # -- files -----------------------------------------------------------------------------

    def _stat_path(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def _open(self, path: Path) -> bool:
        try:
            f = path.open("rb")
        except OSError:
            return False
        st = os.fstat(f.fileno())
        self._f, self._ident = f, (st.st_dev, st.st_ino)
        self._offset, self._partial, self._head, self._head_len = 0, b"", "", 0
        return True

    def _open_path(self, *, at_end: bool = False) -> bool:
        if not self._open(self.path):
            return False
        self.generation += 1
        if at_end:
            # Start after the last complete line, numbering lines as a read from the start would.
            assert self._f is not None
            read = 0
            while chunk := self._f.read(READ_BYTES):
                self._line_no += chunk.count(b"\n")
                if (last := chunk.rfind(b"\n")) >= 0:
                    self._offset = read + last + 1
                read += len(chunk)
            self._f.seek(self._offset)
        return True

    def _close(self) -> None:
        if self._f is not None:
            self._f.close()
        self._f, self._ident, self._partial = None, (0, 0), b""
        self._offset, self._head, self._head_len = 0, "", 0

    def _head_matches(self, f: BinaryIO, head: str, head_len: int) -> bool:
        return head_len == 0 or _digest(os.pread(f.fileno(), head_len, 0)) == head

    def _update_head(self) -> None:
        if self._f is not None and self._head_len < min(self._offset, HEAD_BYTES):
            self._head_len = min(self._offset, HEAD_BYTES)
            self._head = _digest(os.pread(self._f.fileno(), self._head_len, 0))

    def _resume(self, pos: Position) -> None:
        self._line_no = pos.line_no
        if pos.ino == 0:
            self._open_path()
            return
        for candidate in self._candidates():
            try:
                st = os.stat(candidate)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) != (pos.dev, pos.ino) or not self._open(candidate):
                continue
            assert self._f is not None
            if (st.st_dev, st.st_ino) == self._ident and self._head_matches(self._f, pos.head, pos.head_len):
                if candidate != self.path:
                    log.info("%s: rotated while stopped; reading %s to its end first", self.path, candidate)
                self._offset, self._head, self._head_len = pos.offset, pos.head, pos.head_len
                self._f.seek(pos.offset)
                return
            self._close()
        log.warning(
            "%s: the file of the stored position is gone or was rewritten; reading the path from its start",
            self.path,
        )
        self.truncations += 1
        self._open_path()

    def _candidates(self) -> list[Path]:
        """The path, then the files next to it whose name starts with its name (rotated copies)."""
        out = [self.path]
        try:
            with os.scandir(self.path.parent) as it:
                out += sorted(
                    Path(e.path)
                    for e in it
                    if e.name.startswith(self.path.name) and e.name != self.path.name and e.is_file()
                )
        except OSError:
            pass
        return out

    def _check_truncated(self) -> bool:
        """True if the open file was truncated or rewritten: reading starts over at its start."""
        assert self._f is not None
        size = os.fstat(self._f.fileno()).st_size
        if size >= self._offset + len(self._partial) and self._head_matches(
            self._f, self._head, self._head_len
        ):
            return False
        log.warning("%s: truncated or rewritten; reading it again from its start", self.path)
        self.truncations += 1
        self.generation += 1
        self._offset, self._partial, self._head, self._head_len = 0, b"", "", 0
        self._f.seek(0)
        return True

    def _read_available(self, *, final: bool = False) -> list[tuple[int, str]]:
        """Complete lines from the open file's read point to its end; with `final`, a last line
        without a newline too (the file will not grow any more)."""
        assert self._f is not None
        data = self._partial + self._f.read(READ_BYTES)
        if final:
            rest = self._f.read()
            while rest:
                data += rest
                rest = self._f.read()
            if data and not data.endswith(b"\n"):
                data += b"\n"
        end = data.rfind(b"\n") + 1
        self._partial = data[end:]
        out: list[tuple[int, str]] = []
        for raw in data[:end].split(b"\n")[:-1]:
            self._line_no += 1
            out.append((self._line_no, raw.decode("utf-8", errors="replace")))
        # A line added by `final` was not in the file: the offset stays within it.
        self._offset = min(self._offset + end, os.fstat(self._f.fileno()).st_size)
        self._update_head()
        return out

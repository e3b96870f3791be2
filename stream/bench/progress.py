"""Progress lines and the error of a step that could not complete."""

from __future__ import annotations

import sys
import time

from stream.errors import KpiStreamError


class BenchError(KpiStreamError):
    """A benchmark step could not complete (service down, worker died, timeout)."""


def say(msg: str) -> None:
    """Progress on stderr (stdout is reserved for the result)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

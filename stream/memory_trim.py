"""Give the C allocator's free memory back to the operating system (glibc's `malloc_trim`).

Measured on the memory step (5,000 operators x 40 days, docs/benchmarks.md "Memory: what the RSS
is"): of a 734 MB worker, glibc's heap held 211 MB *free* (`mallinfo2().fordblks`): large
objects (the records and encodings of a publisher flush, changelog values) freed in the middle of
the heap, which glibc only returns from its top, so the pages stayed resident for good.
`malloc_trim(0)` walks every arena and releases the free pages wherever they are. Elsewhere than
glibc (musl, macOS) there is no such call and nothing is done.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Trim = Callable[[], bool]


def glibc_trim() -> Trim | None:
    """`malloc_trim(0)` of the C library this process runs on, or None when it has none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int

    def run() -> bool:
        return bool(trim(0))

    return run


class MemoryTrimmer:
    """Calls the trim at most once per `interval_s`; says how long it took (it holds the GIL)."""

    def __init__(
        self, trim: Trim | None, interval_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.trim = trim
        self.interval_s = interval_s
        self.clock = clock
        self.last = clock()

    def maybe_trim(self) -> bool:
        """Trim when due; True when memory was given back."""
        if self.trim is None or not self.interval_s or self.clock() - self.last < self.interval_s:
            return False
        started = self.clock()
        released = self.trim()
        self.last = self.clock()
        log.debug("malloc_trim: released %s, %.3fs", released, self.last - started)
        return released

    async def run(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """Trim every `interval_s` until cancelled (a task of the worker's loop)."""
        while self.trim is not None and self.interval_s > 0:
            await sleep(self.interval_s)
            self.maybe_trim()

"""The worker gives glibc's free heap memory back: freed large objects stop counting in its RSS."""

from __future__ import annotations

import os
import sys

import pytest

from stream.memory_trim import MemoryTrimmer, glibc_trim


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_the_trim_runs_at_most_once_per_interval() -> None:
    calls: list[float] = []
    clock = Clock()
    trimmer = MemoryTrimmer(lambda: calls.append(clock.t) is None, 10.0, clock)
    assert not trimmer.maybe_trim()  # not due right after start
    clock.t += 10.0
    assert trimmer.maybe_trim()
    clock.t += 5.0
    assert not trimmer.maybe_trim()
    clock.t += 5.0
    assert trimmer.maybe_trim()
    assert calls == [110.0, 120.0]


def test_no_trim_or_no_interval_never_trims() -> None:
    clock = Clock()
    never = MemoryTrimmer(None, 10.0, clock)
    off = MemoryTrimmer(lambda: True, 0.0, clock)
    clock.t += 1_000.0
    assert not never.maybe_trim() and not off.maybe_trim()


async def test_the_task_trims_every_interval() -> None:
    calls = 0

    def trim() -> bool:
        nonlocal calls
        calls += 1
        return True

    clock = Clock()
    trimmer = MemoryTrimmer(trim, 10.0, clock)
    naps: list[float] = []

    async def sleep(s: float) -> None:
        naps.append(s)
        clock.t += s
        if len(naps) == 3:
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        await trimmer.run(sleep)
    assert naps == [10.0, 10.0, 10.0] and calls == 2


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux") or glibc_trim() is None, reason="glibc only")
def test_freed_heap_memory_in_the_middle_of_the_heap_goes_back_to_the_system() -> None:
    trim = glibc_trim()
    assert trim is not None
    # 200 MB of 2 KB objects (malloc, not pymalloc); every 50th kept, so the freed chunks lie
    # between live ones and glibc cannot give them back from the top of its heap by itself.
    blocks = [bytearray(2048) for _ in range(100_000)]
    kept = blocks[::50]
    del blocks
    before = _rss_mb()
    trim()
    after = _rss_mb()
    assert before - after > 100, (before, after)
    assert len(kept) == 2_000

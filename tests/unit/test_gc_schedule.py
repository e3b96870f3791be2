"""The worker's full garbage collections run on a clock: none on allocations, one per interval."""

from __future__ import annotations

import gc

import pytest

from stream.config import Settings
from stream.errors import ConfigError
from stream.gc_schedule import NEVER, FullCollections


class FakeCollector:
    def __init__(self) -> None:
        self.threshold = (700, 10, 10)
        self.collected: list[int] = []

    def get_threshold(self) -> tuple[int, int, int]:
        return self.threshold

    def set_threshold(self, threshold0: int, threshold1: int = 10, threshold2: int = 10, /) -> None:
        self.threshold = (threshold0, threshold1, threshold2)

    def collect(self, generation: int = 2) -> int:
        self.collected.append(generation)
        return 3


def test_install_turns_off_the_automatic_full_pass_and_keeps_the_young_thresholds() -> None:
    fake = FakeCollector()
    fake.threshold = (1000, 15, 10)
    FullCollections(300.0, fake).install()
    assert fake.threshold == (1000, 15, NEVER)


def test_interval_zero_leaves_pythons_schedule_alone() -> None:
    fake = FakeCollector()
    collections = FullCollections(0.0, fake)
    collections.install()
    assert fake.threshold == (700, 10, 10)


def test_the_real_collector_accepts_the_threshold() -> None:
    before = gc.get_threshold()
    try:
        FullCollections(300.0).install()
        assert gc.get_threshold() == (before[0], before[1], NEVER)
        assert FullCollections(300.0).collect() >= 0
    finally:
        gc.set_threshold(*before)


def test_collect_is_a_full_pass_and_says_how_long_it_took() -> None:
    fake = FakeCollector()
    times = iter([10.0, 10.25])
    collections = FullCollections(300.0, fake, clock=lambda: next(times))
    assert collections.collect() == 3
    assert fake.collected == [2]
    assert collections.last_seconds == pytest.approx(0.25)


async def test_the_task_collects_once_per_interval() -> None:
    fake = FakeCollector()
    naps: list[float] = []

    async def sleep(s: float) -> None:
        naps.append(s)
        if len(naps) == 4:
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        await FullCollections(120.0, fake).run(sleep)
    assert naps == [120.0] * 4
    assert fake.collected == [2, 2, 2]  # after each of the first three naps


async def test_the_task_does_nothing_with_interval_zero() -> None:
    fake = FakeCollector()
    await FullCollections(0.0, fake).run()
    assert fake.collected == []


def test_the_interval_is_validated() -> None:
    assert Settings().gc_full_interval_s == 300.0
    with pytest.raises(ConfigError, match="gc_full_interval_s"):
        Settings(gc_full_interval_s=-1.0)

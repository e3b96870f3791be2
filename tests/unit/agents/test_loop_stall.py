"""The event-loop stall probe: lateness of its timer, the longest one, a warning near the session timeout."""

from __future__ import annotations

import asyncio
import logging

import pytest
from prometheus_client import CollectorRegistry

from agents.loop_stall import LoopStall


def test_the_longest_stall_is_kept_and_a_long_one_is_warned(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    probe = LoopStall(registry, session_timeout_s=6.0)
    with caplog.at_level(logging.WARNING, logger="agents.loop_stall"):
        for stall in (0.01, 0.4, -0.001, 0.2):
            probe.observe(stall)
        assert not caplog.records
        probe.observe(2.5)  # over 6 s / 3
    assert probe.longest == 2.5
    assert registry.get_sample_value("kpistream_event_loop_stall_max_seconds") == 2.5
    assert registry.get_sample_value("kpistream_event_loop_stall_seconds_count") == 5
    assert registry.get_sample_value("kpistream_event_loop_stall_seconds_bucket", {"le": "0.25"}) == 3
    assert "stalled 2.50 s" in caplog.text


def test_run_measures_how_late_the_timer_wakes_up() -> None:
    now = [100.0]
    lateness = iter([0.0, 0.3, 0.05])

    async def sleep(interval: float) -> None:
        try:
            now[0] += interval + next(lateness)
        except StopIteration:
            raise asyncio.CancelledError from None

    probe = LoopStall(CollectorRegistry(), 6.0, interval_s=0.05, clock=lambda: now[0], sleep=sleep)
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(probe.run())
    assert probe.longest == pytest.approx(0.3)

"""The growth plot of the memory step: its points from the samples, and the PNG it writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stream.bench.plot import GrowthPoint, growth_points, main, plot_growth, rss_points


def _memory(samples: list[list[float]]) -> dict[str, Any]:
    return {"operators": 100, "days": 10, "events": 2_000, "idle_rss_mb": 60.0, "samples": samples}


def test_points_are_speeds_over_intervals_and_state_at_their_end() -> None:
    # 2 events per operator-day: 1,000 events consumed hold 500 operator-days.
    samples = [[0.0, 0.0, 60.0], [5.0, 1_000.0, 120.0], [10.0, 1_500.0, 150.0], [15.0, 2_000.0, 170.0]]
    assert growth_points(_memory(samples)) == [
        GrowthPoint(500.0, 200.0, 120.0),
        GrowthPoint(750.0, 100.0, 150.0),
        GrowthPoint(1_000.0, 100.0, 170.0),
    ]


def test_intervals_without_consumption_are_no_speed_figure() -> None:
    # Settling after the last event (and a repeated read at the same instant) are left out.
    samples = [[0.0, 0.0, 60.0], [5.0, 2_000.0, 200.0], [10.0, 2_000.0, 210.0], [10.0, 2_000.0, 210.0]]
    assert growth_points(_memory(samples)) == [GrowthPoint(1_000.0, 400.0, 200.0)]
    assert growth_points(_memory([])) == []
    assert growth_points({"events": 0}) == []


def test_spans_of_state_merge_intervals_until_that_much_more_is_held() -> None:
    samples = [[0.0, 0.0, 60.0], [5.0, 100.0, 70.0], [10.0, 1_000.0, 80.0], [15.0, 1_100.0, 90.0]]
    samples += [[21.0, 2_000.0, 95.0], [26.0, 2_000.0, 96.0]]
    # Spans of at least 400 operator-days (800 events): 0-10 s and 10-21 s; nothing after.
    assert growth_points(_memory(samples), span_operator_days=400.0) == [
        GrowthPoint(500.0, 100.0, 80.0),
        GrowthPoint(1_000.0, 90.9, 95.0),  # 1,000 events in 11 s, rounded
    ]


def test_rss_is_every_sample_also_after_the_last_event() -> None:
    samples = [[0.0, 0.0, 60.0], [5.0, 2_000.0, 200.0], [10.0, 2_000.0, 250.0]]
    assert rss_points(_memory(samples)) == [(0.0, 60.0), (1_000.0, 200.0), (1_000.0, 250.0)]
    assert rss_points({"events": 0}) == []


def test_plot_writes_a_png_from_a_result_document(tmp_path: Path) -> None:
    samples = [[0.0, 0.0, 60.0], [5.0, 1_000.0, 120.0], [10.0, 2_000.0, 170.0]]
    result = {"figures": {"memory": _memory(samples)}, "machine": {"cpu_model": "test", "cpus": 2}}
    source = tmp_path / "bench.json"
    source.write_text(json.dumps(result))
    out = tmp_path / "docs" / "growth.png"
    assert main([str(source), "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000


def test_plot_refuses_a_result_without_samples(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no memory samples"):
        plot_growth({"figures": {"memory": _memory([])}}, tmp_path / "x.png")
    source = tmp_path / "bench.json"
    source.write_text(json.dumps({"figures": {"memory": _memory([])}}))
    assert main([str(source), "-o", str(tmp_path / "x.png")]) == 2

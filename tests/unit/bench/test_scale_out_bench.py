"""The pure parts of the scale-out step (stream/bench/scale_out.py) and its ratio (stats.py)."""

from __future__ import annotations

from stream.bench import stats
from stream.bench.config import STEPS, BenchConfig
from stream.bench.scale_out import summary, total_consumed
from stream.commands.bench import STEPS as CLI_STEPS


def test_total_consumed_is_unknown_when_a_worker_does_not_answer() -> None:
    assert total_consumed([0.0, 0.0]) == 0.0
    assert total_consumed([1200.0, 800.0]) == 2000.0
    assert total_consumed([1200.0, None]) is None
    assert total_consumed([]) == 0.0


def test_summary_takes_the_faster_complete_single_run_as_baseline() -> None:
    ones = [{"complete": True, "events_per_s": 4000.0}, {"complete": True, "events_per_s": 5000.0}]
    out = summary(ones, {"complete": True, "events_per_s": 7500.0}, 2)
    assert out["one_worker"]["events_per_s"] == 5000.0
    assert out["complete"] is True and out["speedup_2_vs_1"] == 1.5 and out["cpus"] == 2
    doc = stats.build_result({}, {}, {}, {"scale_out": out})
    assert doc["ratios"]["scale_out_2_vs_1"] == 1.5
    assert "scale-out, 2 workers" in stats.render_table(doc)


def test_inexact_totals_fail_the_figure() -> None:
    ones = [{"complete": True, "events_per_s": 5000.0}]
    bad_pair = {"complete": False, "events_per_s": 9000.0, "redis_differences": ["x"]}
    out = summary(ones, bad_pair, 2)
    assert out["complete"] is False and out["speedup_2_vs_1"] is None
    doc = stats.build_result({}, {}, {}, {"scale_out": out})
    assert doc["ratios"]["scale_out_2_vs_1"] is None
    assert "INCOMPLETE" in stats.render_table(doc)
    bad_single = [{"complete": False, "events_per_s": 9000.0}, {"complete": True, "events_per_s": 5000.0}]
    out = summary(bad_single, {"complete": True, "events_per_s": 7000.0}, 2)
    assert out["complete"] is False and out["speedup_2_vs_1"] is None
    assert summary([], {}, None)["speedup_2_vs_1"] is None


def test_scale_out_is_a_step_of_the_bench_and_of_quick() -> None:
    assert "scale_out" in STEPS and tuple(STEPS) == tuple(CLI_STEPS)
    assert BenchConfig.quick_config().events <= 5_000

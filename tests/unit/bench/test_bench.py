"""Smoke tests of the benchmark harness's pure parts (no timing, no services)."""

from __future__ import annotations

import json

import pytest

from stream.bench import stats
from stream.bench.config import BenchConfig
from stream.bench.expected import expected_redis
from stream.bench.profile import summarise
from stream.bench.quix_app import call_counts
from stream.bench.worker import sum_metric
from stream.bench.workload import (
    PROBE_QUEUE,
    memory_events,
    probe_pair,
    renamed,
    simulated_events,
    to_message,
)
from stream.cli import build_parser


def test_percentile_interpolates_between_ranks() -> None:
    assert stats.percentile([], 50) is None
    assert stats.percentile([3.0], 99) == 3.0
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert stats.percentile(values, 0) == 1.0
    assert stats.percentile(values, 100) == 100.0
    assert stats.percentile(values, 50) == pytest.approx(50.5)
    assert stats.percentile(values, 99) == pytest.approx(99.01)
    assert stats.percentile([10.0, 0.0], 50) == 5.0  # order does not matter
    with pytest.raises(ValueError):
        stats.percentile(values, 101)


def test_rate_and_ratio_handle_missing_values() -> None:
    assert stats.rate(100, 2.0) == 50.0
    assert stats.rate(100, 0.0) is None
    assert stats.rate(100, None) is None
    assert stats.ratio(3.0, 2.0) == 1.5
    assert stats.ratio(None, 2.0) is None
    assert stats.ratio(3.0, 0.0) is None


def test_latency_summary_counts_missing_probes() -> None:
    s = stats.latency_summary([0.5, 1.0, 1.5], sent=4)
    assert s["probes_seen"] == 3 and s["probes_missing"] == 1
    assert s["p50_s"] == 1.0
    assert stats.latency_summary([], sent=0)["p99_s"] is None


def _figures() -> dict[str, object]:
    return {
        "throughput": {
            "worker": {"events_per_s": 25_000.0},
            "worker_calls_only": {"events_per_s": 30_000.0},
            "raw_consumer": {"events_per_s": 100_000.0},
            "quix": {"events_per_s": 20_000.0},
        },
        "latency": {"p50_s": 0.6, "p99_s": 1.4, "probes_missing": 0},
        "report": {
            "engine": {"events_per_s": 120_000.0},
            "cli": {"events_per_s": 90_000.0},
            "json_loads": {"events_per_s": 600_000.0},
        },
        "memory": {"idle_rss_mb": 70.0, "loaded_rss_mb": 210.0},
        "memory_rocksdb": {"idle_rss_mb": 72.0, "loaded_rss_mb": 105.0},
        "state_growth": {"fresh": {"events_per_s": 8_000.0}, "loaded": {"events_per_s": 7_200.0}},
    }


def test_result_document_shape_ratios_and_targets() -> None:
    doc = stats.build_result({"cpus": 2}, {"python": "3.11"}, {"events": 1}, _figures())
    assert set(doc) == {"schema", "machine", "versions", "params", "figures", "ratios", "targets"}
    assert doc["schema"] == stats.SCHEMA
    json.dumps(doc)  # serialisable as is
    r = doc["ratios"]
    assert r["worker_vs_raw_consumer"] == 0.25
    assert r["worker_calls_only_vs_quix"] == 1.5
    assert r["report_vs_json_loads"] == 0.2
    assert r["loaded_rss_vs_idle_rss"] == 3.0
    assert r["rocksdb_loaded_rss_vs_memory_store"] == 0.5
    assert r["state_growth_loaded_vs_fresh"] == 0.9
    assert all(doc["targets"].values()), doc["targets"]
    text = stats.render_table(doc)
    assert "latency p99" in text and "worker_ahead_of_quix" in text


def test_targets_fail_and_unknown() -> None:
    figs = _figures()
    figs["latency"] = {"p50_s": 0.6, "p99_s": 1.0, "probes_missing": 3}  # missing probes fail it
    figs["memory"] = {"loaded_rss_mb": 400.0}
    figs["memory_rocksdb"] = {"loaded_rss_mb": 140.0, "complete": False}  # cap hit: not a figure
    del figs["report"]
    t = stats.targets(figs)
    assert t["latency_p99_below_2s"] is False
    assert t["worker_rss_below_300mb"] is False
    assert t["worker_rss_rocksdb_below_150mb"] is False
    assert t["report_events_per_s_at_least_100000"] is None  # not measured
    assert stats.targets({})["worker_ahead_of_quix"] is None
    figs = _figures()
    figs["throughput"]["worker"]["complete"] = False  # type: ignore[index]
    assert stats.targets(figs)["worker_events_per_s_at_least_20000"] is False


def test_workloads_are_deterministic_and_keyed_like_produce() -> None:
    a, b = simulated_events(500), simulated_events(500)
    assert a == b and len(a) == 500
    m = to_message(a[-1])
    assert m.value == json.dumps(a[-1], separators=(",", ":")).encode()
    offered, lost = probe_pair(7, 1_768_435_200_000)
    assert offered["queue"] == PROBE_QUEUE and offered["call_id"] == lost["call_id"]
    assert to_message(lost).key == b"probe-7"
    mem = memory_events(operators=10, days=3, per_op_day=2)
    assert len(mem) == 10 * 3 * 2
    assert len({e["operator_id"] for e in mem if "operator_id" in e}) == 10
    assert len(memory_events(operators=10, days=3, per_op_day=3)) == 90


def test_quix_call_counts_match_kpistream_definitions() -> None:
    answered = {"o_ts": 0, "out": "call.answered", "out_ts": 20_000}
    assert call_counts(answered, 20_000, 0) == {"offered": 1, "answered": 1, "sl_answered": 1}
    late = {"o_ts": 0, "out": "call.abandoned", "out_ts": 30_000}
    assert call_counts(late, 20_000, 0) == {"offered": 1, "abandoned": 1}
    assert call_counts(late, 20_000, 60_000) == {"short_abandoned": 1}


def test_sum_metric_and_profile_summary() -> None:
    text = (
        "# HELP callcenter_events_total x\n"
        'callcenter_events_total{type="call.offered"} 3.0\n'
        'callcenter_events_total{type="chat.ended"} 2.0\n'
        "callcenter_events_created 1.0\n"
    )
    assert sum_metric(text, "callcenter_events_total") == 5.0
    main = "_run_module_as_main (<frozen runpy>:198);run_forever (asyncio/base_events.py:607)"
    raw = [
        f"{main};EpollSelector.select (selectors.py:468) 50",
        f"{main};ingest (agents/pipeline.py:10);loads (/usr/lib/python3.11/json/__init__.py:346) 30",
        f"{main};ingest (agents/pipeline.py:10) 20",
        "_bootstrap (threading.py:1002);run (mode/threads.py:66);Condition.wait (threading.py:320) 40",
    ]
    s = summarise(raw)
    assert s["samples"] == 140
    assert s["busy_percent_by_thread"] == {"main": 50.0, "other threads": 0.0}
    assert s["inclusive"][0]["percent_of_busy"] == 100.0
    assert s["by_area_of_leaf"] == {"json": 60.0, "kpistream": 40.0}
    assert s["inclusive_ours"][0]["function"] == "ingest (agents/pipeline.py)"


def test_cli_parses_bench_flags() -> None:
    args = build_parser().parse_args(["bench", "--json", "--quick", "--events", "1000"])
    assert args.json and args.quick and args.events == 1000
    assert BenchConfig.quick_config().events < BenchConfig().events


def test_a_renamed_workload_is_the_same_work_about_other_contacts() -> None:
    """The loaded worker's second window: new calls, chats, e-mails and cases of the same operators."""
    events = simulated_events(600)
    again = renamed(events, "-2")
    assert [e["type"] for e in again] == [e["type"] for e in events]
    assert {e.get("operator_id") for e in again} == {e.get("operator_id") for e in events}
    assert not {e["event_id"] for e in again} & {e["event_id"] for e in events}
    once, twice = expected_redis(events), expected_redis(events + again)
    assert once.keys() == twice.keys()
    center = next(k for k in once if k.startswith("kpi:center:day:"))
    assert twice[center]["offered"] == 2 * once[center]["offered"] > 0

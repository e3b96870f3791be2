"""Issue 13 item 6, the parts a worker's process holds: metrics, /metrics off the loop, logs, --version."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from agents.consumer_lag import LagGauge, partition_lag
from stream import cli
from stream.config import load_settings
from stream.errors import ConfigError
from stream.logformat import JsonFormatter, configure_logging, worker_logging_config
from stream.metrics import Exposition, Metrics, kpistream_version


def _samples(metrics: Metrics) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


# ------------------------------------------------------------------------------------ metrics
def test_standard_collectors_and_build_info_are_on_the_workers_registry() -> None:
    samples = _samples(Metrics.create())
    assert "process_resident_memory_bytes" in samples and "process_cpu_seconds_total" in samples
    assert "python_info" in samples and "python_gc_collections_total" in samples
    [(labels, value)] = samples["kpistream_build_info"]
    assert value == 1 and labels["version"] == kpistream_version() and labels["faust"].startswith("0.")


def test_freshness_is_wall_clock_minus_the_newest_event_time() -> None:
    m = Metrics.create()
    newest = [0]
    m.watch_event_time(lambda: newest[0], clock=lambda: 1_000_100.5)
    assert math.isnan(_samples(m)["kpistream_data_freshness_seconds"][0][1])  # no event yet: no age
    newest[0] = 1_000_000_000
    samples = _samples(m)
    assert samples["kpistream_data_freshness_seconds"][0][1] == pytest.approx(100.5)
    assert samples["kpistream_newest_event_timestamp_seconds"][0][1] == 1_000_000


def test_lag_is_end_minus_processed_and_never_negative() -> None:
    ends = {("calls", 0): 120, ("calls", 1): 50, ("calls", 2): None, ("calls", 3): 7}
    done = {("calls", 0): 100, ("calls", 1): 51, ("calls", 2): 3, ("calls", 3): None}
    assert partition_lag(ends, done) == {("calls", 0): 20, ("calls", 1): 0}


def test_a_partition_given_away_loses_its_lag_series() -> None:
    m = Metrics.create()
    view = LagGauge(m.consumer_lag)
    view.show({("calls", 0): 5, ("calls", 1): 0})
    view.show({("calls", 1): 2, ("chats", 3): 9})
    got = {(lb["topic"], lb["partition"]): v for lb, v in _samples(m)["kpistream_consumer_lag"]}
    assert got == {("calls", "1"): 2, ("chats", "3"): 9}


# ------------------------------------------------------------------------------------ /metrics
class HandshakeCollector:
    """A collector whose collection finishes only after a coroutine on the event loop has run."""

    def __init__(self) -> None:
        self.loop_ran = threading.Event()
        self.collections = 0

    def collect(self) -> Iterator[GaugeMetricFamily]:
        self.collections += 1
        ran = self.loop_ran.wait(timeout=30)  # a render on the loop's thread would stall it: never set
        yield GaugeMetricFamily(
            "handshake_loop_ran", "1 when the loop ran during collection", value=float(ran)
        )


async def test_the_event_loop_keeps_running_while_metrics_are_rendered() -> None:
    registry = CollectorRegistry()
    collector = HandshakeCollector()
    registry.register(collector)
    exposition = Exposition(registry)

    async def meanwhile() -> None:
        await asyncio.sleep(0)
        collector.loop_ran.set()

    render = asyncio.ensure_future(exposition.render())
    await asyncio.sleep(0)  # the render has started in its thread
    await meanwhile()
    body = (await render).decode()
    assert "handshake_loop_ran 1.0" in body


async def test_concurrent_scrapes_share_one_render() -> None:
    registry = CollectorRegistry()
    collector = HandshakeCollector()
    registry.register(collector)
    exposition = Exposition(registry)
    first, second = asyncio.ensure_future(exposition.render()), asyncio.ensure_future(exposition.render())
    await asyncio.sleep(0.01)
    collector.loop_ran.set()
    assert await first == await second
    assert collector.collections == 1
    await exposition.render()  # the next scrape renders again
    assert collector.collections == 2


# ------------------------------------------------------------------------------------ logs
def _record(msg: str, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("broken\nline")
        except ValueError:
            import sys

            exc_info = sys.exc_info()
    return logging.LogRecord("kpistream.test", logging.ERROR, __file__, 1, msg, (), exc_info)


def test_a_json_log_line_is_one_object_with_time_level_logger_message() -> None:
    line = JsonFormatter().format(_record("redis at redis://kpi:s3cret@host:6379/0\nis down", exc=True))
    assert "\n" not in line
    obj = json.loads(line)
    assert set(obj) == {"time", "level", "logger", "message", "exception"}
    assert obj["level"] == "ERROR" and obj["logger"] == "kpistream.test"
    assert obj["time"].endswith("Z") and obj["time"][10] == "T"
    assert "s3cret" not in line and "redis://kpi:***@host" in obj["message"]
    assert "ValueError: broken" in obj["exception"]
    assert "exception" not in json.loads(JsonFormatter().format(_record("fine")))


def test_configure_logging_json_writes_json_lines_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("json", logging.INFO)
        logging.getLogger("kpistream.x").info("hello %s", "there")
        logging.getLogger("kpistream.x").debug("not at INFO")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    lines = capsys.readouterr().err.splitlines()
    assert [json.loads(x)["message"] for x in lines] == ["hello there"]


def test_the_log_format_setting() -> None:
    assert load_settings(env={}).log_format == "text"
    assert load_settings(env={"KPISTREAM_LOG_FORMAT": "json"}).log_format == "json"
    with pytest.raises(ConfigError, match="log_format"):
        load_settings(env={"KPISTREAM_LOG_FORMAT": "xml"})
    assert worker_logging_config("text", logging.INFO) is None
    config = worker_logging_config("json", logging.INFO)
    assert config is not None and config["formatters"]["json"]["()"].endswith(".JsonFormatter")


def test_kpistream_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"kpistream {kpistream_version()}"

"""Issue 13 item 6 on a real worker: consumer lag, data freshness and build info on /metrics, and
JSON log lines.

The worker runs with `KPISTREAM_LOG_FORMAT=json`; after a simulated hour is produced and processed,
/metrics shows a lag series for every input partition (all 0 once caught up), the newest event time
vouched by two events, freshness measured from it, the build, and the standard collectors; and every
line the worker logged is one JSON object.
"""

from __future__ import annotations

import json
import math
import random
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from support_faults import Fleet, Producer, centre_events, disorder, fault_seed, month_boundary, write_jsonl

from stream.metrics import kpistream_version
from stream.topics import INPUT_TOPICS

Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
        text = r.read().decode()
    out: Samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def vouched_ms(events: list[dict[str, Any]]) -> int:
    """The newest event time vouched by two events: the newest time of an event other than the newest."""
    stamps = sorted(
        (
            (int(datetime.fromisoformat(e["ts"].replace("Z", "+00:00")).timestamp() * 1000), e["event_id"])
            for e in events
        ),
        reverse=True,
    )
    newest_id = stamps[0][1]
    return next(ts for ts, eid in stamps if eid != newest_id)


def test_lag_freshness_build_info_and_json_logs(
    kafka_broker: Any, redis_server: Any, worker_env: Any, tmp_path: Path
) -> None:
    seed = fault_seed()
    redis_url = f"redis://{redis_server.host}:{redis_server.port}/12"
    fleet = Fleet(tmp_path, worker_env, kafka_broker.url, redis_url)
    try:
        events = disorder(
            centre_events(seed, month_boundary() - timedelta(minutes=30), 20, 8), random.Random(seed)
        )
        path = write_jsonl(tmp_path / "events.jsonl", events)
        w = fleet.launch(wait=True, KPISTREAM_LOG_FORMAT="json")
        prefix = w.env["KPISTREAM_TOPIC_PREFIX"]
        partitions = {
            (prefix + name, str(p))
            for stream, name in INPUT_TOPICS.items()
            for p in range(1 if stream == "business" else 4)
        }
        Producer(w.env, path).wait()
        want_newest = vouched_ms(events) / 1000

        deadline = time.monotonic() + 120
        while True:
            samples = scrape(w.port)
            lag = {(lb["topic"], lb["partition"]): v for lb, v in samples.get("kpistream_consumer_lag", [])}
            newest = samples["kpistream_newest_event_timestamp_seconds"][0][1]
            if (
                set(lag) == partitions and not any(lag.values()) and newest == want_newest
            ) or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert set(lag) == partitions, f"lag series {sorted(lag)}\n{w.log_tail()}"
        assert not any(lag.values()), lag
        assert newest == want_newest
        before = time.time()
        freshness = scrape(w.port)["kpistream_data_freshness_seconds"][0][1]
        assert not math.isnan(freshness)
        assert before - want_newest - 1 <= freshness <= time.time() - want_newest + 1
        [(build, one)] = samples["kpistream_build_info"]
        assert one == 1 and build["version"] == kpistream_version()
        assert samples["process_resident_memory_bytes"][0][1] > 0 and "python_info" in samples

        lines = [x for x in Path(w.log_path).read_text(encoding="utf-8").splitlines() if x.strip()]
        assert lines, "the worker logged nothing"
        for line in lines:
            obj = json.loads(line)  # fails on any line that is not JSON
            assert {"time", "level", "logger", "message"} <= set(obj), line
            datetime.fromisoformat(obj["time"].replace("Z", "+00:00")).astimezone(UTC)
    finally:
        fleet.stop_all()

"""After a second worker joins, the first keeps only the aggregates of the partitions it still owns.

Faust's memory store forgets a revoked partition's keys only if it knows their partition; the
keys a worker wrote itself are recorded by `WriteBack` (agents/batching.py). Without that, the
first worker kept every operator (and its publisher republished them over the new owner's).
Faust's RocksDB store closes a revoked partition's database and iterates assigned ones only.
"""

from __future__ import annotations

import json
import time
import urllib.error
from pathlib import Path
from typing import Any

import pytest
from support.workers import free_port
from tests_support import kpistream

from stream.simulator import SimConfig, generate, iter_jsonl


def local_view(worker: Any) -> dict[str, Any]:
    """The worker's own partitions (`/api/v1/local/aggregates`); empty while it rebalances (503)."""
    try:
        return dict(worker.get_json("/api/v1/local/aggregates"))
    except urllib.error.HTTPError as exc:
        if exc.code == 503:
            return {"fixed": {}, "foreign_keys": -1, "partitions": []}
        raise


def operators(worker: Any) -> dict[str, dict[str, Any]]:
    """`period|operator` -> that operator's counts, as this worker holds them for its own partitions."""
    return operators_of(local_view(worker))


def operators_of(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`period|operator` -> counts of one local view."""
    out = {}
    for key, counts in view["fixed"].items():
        scope, rest = key.split("|", 1)
        op, pk = rest.rsplit("|", 1)
        if scope == "op":
            out[f"{pk}|{op}"] = {f: n for f, n in counts.items() if n}
    return out


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_a_revoked_partitions_keys_leave_the_first_workers_table(
    kafka_broker: Any, worker_env: Any, start_worker: Any, tmp_path: Path, store: str
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(iter_jsonl(generate(SimConfig(seed=5, hours=1.0)))) + "\n")
    env = {**worker_env(kafka_broker.url), "KPISTREAM_STORE": store}
    first = start_worker(env)
    assert kpistream("produce", "--events", str(path), "--quiet", env=env).returncode == 0
    r = kpistream("report", "--events", str(path), env=env)
    assert r.returncode == 0, r.stderr
    expected = {
        f"{pk}|{op}": {f: n for f, n in v["counts"].items() if n}
        for pk, data in json.loads(r.stdout)["periods"].items()
        for op, v in data["operators"].items()
    }
    deadline = time.monotonic() + 90
    while operators(first) != expected and time.monotonic() < deadline:
        time.sleep(1.0)
    assert operators(first) == expected

    second = start_worker(
        {**env, "KPISTREAM_WEB_PORT": str(free_port()), "KPISTREAM_DATA_DIR": str(tmp_path / "2")}
    )
    # Each condition is judged on one snapshot of both views: a view asked for again after the loop
    # may fall into the next rebalance (Faust often runs two when a member joins) and read as empty.
    deadline = time.monotonic() + 90
    while True:
        va, vb = local_view(first), local_view(second)
        a, b = operators_of(va), operators_of(vb)
        settled = va["foreign_keys"] == vb["foreign_keys"] == 0
        if (settled and va["fixed"] and vb["fixed"] and {**a, **b} == expected) or (
            time.monotonic() > deadline
        ):
            break
        time.sleep(1.0)
    # Operators are aggregated by period (a period's route is one partition), so one worker may own
    # every operator of the file; each owns some aggregates.
    assert va["fixed"] and vb["fixed"], (
        f"both workers own some aggregates: {va['partitions']=} {vb['partitions']=}"
    )
    assert sorted(a.keys() & b.keys()) == [], "an aggregate is held by two workers"
    assert va["foreign_keys"] == 0, "the first worker still holds partitions it gave away"
    assert vb["foreign_keys"] == 0
    assert {**a, **b} == expected

"""Issue 13 item 3 on real Apache Kafka and Redis: Redis as ops run it.

A worker writes through an ACL user with a password over TLS (a CA made by the test), and two
centres share one Redis under two key prefixes. In each case what the worker leaves in Redis equals
`kpistream report` over the same input, and nothing lands outside the deployment's own keys.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from support.secure_redis import SecureRedisServer, make_certificates
from support_faults import (
    Fleet,
    Producer,
    centre_events,
    converge,
    disorder,
    fault_seed,
    month_boundary,
    periods_summary,
    redis_client,
    redis_url_of,
    report_json,
    shape_of_report,
    write_jsonl,
)

PASSWORD = "kpi-Secret-7f3a"  # the test's own Redis user
REDIS_DB = 11


@pytest.fixture()
def seed() -> int:
    return fault_seed()


def _report(fleet: Fleet, name: str, events: list[dict[str, Any]]) -> tuple[Path, dict[str, Any]]:
    path = write_jsonl(fleet.tmp / name, events)
    return path, shape_of_report(report_json(path, fleet.env())["periods"])


def test_a_worker_writes_through_an_acl_user_over_tls(
    kafka_broker: Any, worker_env: Any, tmp_path: Path, seed: int
) -> None:
    certs = make_certificates(tmp_path / "certs")
    server = SecureRedisServer(tmp_path / "redis", "kpistream", PASSWORD, certs)
    server.start(timeout=30)
    fleet = Fleet(tmp_path, worker_env, kafka_broker.url, server.url)
    try:
        assert server.url.startswith("rediss://kpistream:")
        events = disorder(
            centre_events(seed, month_boundary() - timedelta(minutes=20), 40, 12), random.Random(seed)
        )
        path, want = _report(fleet, "events.jsonl", events)
        w = fleet.launch(wait=True, KPISTREAM_REDIS_SSL_CAFILE=str(certs.ca))
        Producer(w.env, path).wait()
        context = f"seed={seed}; report: {periods_summary(want)}"
        converge(want, w.env, server.client(), [w], topics=False, context=context, fleet=fleet)

        # The wallboard API and the readiness probe read through the same user and TLS.
        w.wait_ready(60)  # ready: its Redis check included (polled; a rebalance may answer 503 once)
        assert w.get_json("/readyz")["checks"]["redis"]["ok"], w.log_tail()
        queues = w.get_json("/api/v1/queues")
        assert queues["center"]["periods"]["day"] is not None, queues
        assert PASSWORD not in Path(w.log_path).read_text(encoding="utf-8", errors="replace")
    finally:
        fleet.stop_all()
        server.stop()


def test_a_wrong_password_is_reported_without_the_password(
    kafka_broker: Any, worker_env: Any, tmp_path: Path
) -> None:
    server = SecureRedisServer(tmp_path / "redis", "kpistream", PASSWORD)
    server.start(timeout=30)
    fleet = Fleet(tmp_path, worker_env, kafka_broker.url, server.url.replace(PASSWORD, "wrong-Pass-99"))
    try:
        w = fleet.launch(wait=True)  # Redis is not required to be ready: the worker counts without it
        redis_check = w.get_json("/readyz")["checks"]["redis"]
        assert not redis_check["ok"], redis_check
        log = Path(w.log_path).read_text(encoding="utf-8", errors="replace")
        assert "wrong-Pass-99" not in log and "wrong-Pass-99" not in str(redis_check)
    finally:
        fleet.stop_all()
        server.stop()


@pytest.fixture()
def shared_redis(redis_server: Any) -> Iterator[str]:
    url = redis_url_of(redis_server, REDIS_DB)
    redis_client(url).flushdb()
    yield url
    redis_client(url).flushdb()


def test_two_centres_share_one_redis_under_two_prefixes(
    kafka_broker: Any, shared_redis: str, worker_env: Any, tmp_path: Path, seed: int
) -> None:
    r = redis_client(shared_redis)
    centres = {}
    try:
        for n, name in enumerate(("centre-a", "centre-b")):
            tmp = tmp_path / name
            tmp.mkdir()
            fleet = Fleet(tmp, worker_env, kafka_broker.url, shared_redis)
            start = month_boundary() - timedelta(minutes=20 + 10 * n)
            events = disorder(centre_events(seed + n, start, 30, 10), random.Random(seed + n))
            path, want = _report(fleet, "events.jsonl", events)
            w = fleet.launch(
                KPISTREAM_REDIS_KEY_PREFIX=f"{name}:",
                KPISTREAM_APP_ID=f"{name}-{tmp_path.name[-12:]}".replace("_", "-"),
                KPISTREAM_TOPIC_PREFIX=f"{name}-{tmp_path.name[-12:]}-".replace("_", "-"),
            )
            centres[name] = (fleet, w, path, want)
        for _fleet, w, path, _ in centres.values():
            w.wait_ready()
            Producer(w.env, path).wait()
        for name, (fleet, w, _, want) in centres.items():
            context = f"seed={seed}; {name}; report: {periods_summary(want)}"
            converge(want, w.env, r, [w], topics=False, context=context, fleet=fleet)
        # Each centre's keys are under its prefix, and only there: a key of the other would have
        # made the converge above fail (same shapes read under each prefix).
        strays = [
            k for k in r.scan_iter("*", count=1000) if not k.startswith(("centre-a:kpi:", "centre-b:kpi:"))
        ]
        assert strays == []
        assert r.exists("centre-a:kpi:center:rolling", "centre-b:kpi:center:rolling") == 2
    finally:
        for fleet, *_ in centres.values():
            fleet.stop_all()

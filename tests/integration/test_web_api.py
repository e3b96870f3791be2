"""The web port with authentication on, two workers on Apache Kafka: refused requests, HTTP ingest.

Events posted to `POST /api/v1/events` (JSON Lines, an array, one object) end up counted exactly as
`kpistream report` counts the same file, read from `/api/v1/periods`, which needs the workers to
read each other's partitions with the peer token. Invalid events are answered one by one and never
written; an oversized body is refused whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from tests_support import kpistream

from stream.config import load_settings
from stream.simulator import SimConfig, generate, iter_jsonl
from stream.topics import INPUT_TOPICS, topic_specs

pytestmark = pytest.mark.integration

TOKENS = {
    "KPISTREAM_WEB_VIEWER_TOKEN": "viewer-token-for-tests",
    "KPISTREAM_WEB_INGEST_TOKEN": "ingest-token-for-tests",
    "KPISTREAM_WEB_ADMIN_TOKEN": "admin-token-for-tests",
    "KPISTREAM_WEB_PEER_TOKEN": "peer-token-for-tests",
}
VIEWER = TOKENS["KPISTREAM_WEB_VIEWER_TOKEN"]
INGEST = TOKENS["KPISTREAM_WEB_INGEST_TOKEN"]
PEER = TOKENS["KPISTREAM_WEB_PEER_TOKEN"]
BODY_LIMIT = 262_144


def call(
    worker: Any,
    path: str,
    *,
    token: str | None = None,
    method: str = "GET",
    body: bytes | None = None,
    content_type: str | None = None,
) -> tuple[int, Any]:
    """(status, JSON body) of one request with a real HTTP client; 4xx and 5xx included."""
    request = urllib.request.Request(f"{worker.base_url}{path}", data=body, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=60, context=worker.tls_context()) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def chunks(lines: list[str], limit: int) -> list[list[str]]:
    """Consecutive groups of lines whose JSON Lines body stays under `limit` bytes."""
    out: list[list[str]] = [[]]
    size = 0
    for line in lines:
        n = len(line.encode()) + 1
        if out[-1] and size + n > limit:
            out.append([])
            size = 0
        out[-1].append(line)
        size += n
    return out


async def input_messages(env: dict[str, str]) -> int:
    """How many messages the input topics hold (every partition's end offset)."""
    settings = load_settings(env=env)
    specs = topic_specs(settings)
    names = [settings.topic(name) for name in INPUT_TOPICS.values()]
    tps = [TopicPartition(name, p) for name in names for p in range(specs[name].partitions)]
    consumer = AIOKafkaConsumer(bootstrap_servers=env["KPISTREAM_BROKER"].split("://", 1)[1])
    await consumer.start()
    try:
        consumer.assign(tps)  # the client fetches the metadata of assigned topics only
        ends = await consumer.end_offsets(tps)
        return sum(ends.values())
    finally:
        with contextlib.suppress(asyncio.CancelledError):  # aiokafka's stop of an unsubscribed consumer
            await consumer.stop()


def test_auth_and_http_ingest_equal_report(
    kafka_broker: Any, worker_env: Any, start_worker: Any, tmp_path: Path
) -> None:
    lines = list(
        iter_jsonl(generate(SimConfig(seed=21, start="2026-01-31T22:30:00+00:00", hours=3, profile="flat")))
    )
    events_file = tmp_path / "events.jsonl"
    events_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = worker_env(kafka_broker.url, KPISTREAM_WEB_MAX_BODY_BYTES=str(BODY_LIMIT), **TOKENS)
    env2 = {
        **env,
        "KPISTREAM_WEB_PORT": worker_env(kafka_broker.url)["KPISTREAM_WEB_PORT"],
        "KPISTREAM_DATA_DIR": str(tmp_path / "worker-1-data"),
    }
    w1, w2 = start_worker(env), start_worker(env2)  # ready: /readyz is open

    # Refused: no credentials (401), wrong role (403), wrong token (401); probes stay open.
    assert call(w1, "/healthz")[0] == 200
    assert call(w1, "/metrics")[0] == 200
    status, body = call(w1, "/api/v1/periods")
    assert status == 401 and body["error"] == "unauthorized"
    assert call(w1, "/api/v1/queues", token="not-a-token")[0] == 401
    event = lines[0].encode()
    assert call(w1, "/api/v1/events", method="POST", body=event, content_type="application/json")[0] == 401
    status, body = call(
        w1, "/api/v1/events", token=VIEWER, method="POST", body=event, content_type="application/json"
    )
    assert status == 403 and body["error"] == "forbidden"
    assert call(w1, "/api/v1/periods", token=INGEST)[0] == 403  # ingest writes, never reads
    assert call(w1, "/api/v1/local/aggregates", token=VIEWER)[0] == 403
    assert call(w1, "/api/v1/local/aggregates", token=PEER)[0] in (200, 503)  # 503: still rebalancing

    # Refused whole: a body over the limit, a type that is not JSON, a broken array.
    big = "\n".join(lines[:3000]).encode()
    assert len(big) > BODY_LIMIT
    status, body = call(
        w1, "/api/v1/events", token=INGEST, method="POST", body=big, content_type="application/x-ndjson"
    )
    assert status == 413 and body["error"] == "too_large"
    status, _ = call(w1, "/api/v1/events", token=INGEST, method="POST", body=event, content_type="text/plain")
    assert status == 415
    status, body = call(
        w1, "/api/v1/events", token=INGEST, method="POST", body=b"[" + event, content_type="application/json"
    )
    assert status == 400 and body["error"] == "invalid_json"
    assert asyncio.run(input_messages(env)) == 0  # nothing of those was written

    # Ingest: the file in JSON Lines bodies to one worker, its last events as an array and one by one
    # to the other; every event accepted and acknowledged.
    head, array, singles = lines[:-40], lines[-40:-3], lines[-3:]
    accepted = 0
    for group in chunks(head, BODY_LIMIT):
        body_bytes = ("\n".join(group) + "\n").encode()
        status, body = call(
            w1,
            "/api/v1/events",
            token=INGEST,
            method="POST",
            body=body_bytes,
            content_type="application/x-ndjson",
        )
        assert status == 200, body
        assert body["accepted"] == len(group) and body["rejected"] == 0
        assert [e["line"] for e in body["events"]] == list(range(1, len(group) + 1))
        accepted += body["accepted"]
    status, body = call(
        w2,
        "/api/v1/events",
        token=INGEST,
        method="POST",
        body=("[" + ",".join(array) + "]").encode(),
        content_type="application/json",
    )
    assert status == 200 and body["accepted"] == len(array), body
    first = body["events"][0]
    assert first["status"] == "accepted" and first["event_id"] == json.loads(array[0])["event_id"]
    assert first["topic"].startswith(env["KPISTREAM_TOPIC_PREFIX"] + "events.") and first["offset"] >= 0
    accepted += body["accepted"]
    for line in singles:
        status, body = call(
            w2,
            "/api/v1/events",
            token=INGEST,
            method="POST",
            body=line.encode(),
            content_type="application/json",
        )
        assert status == 200 and body["accepted"] == 1, body
        accepted += 1
    assert accepted == len(lines)

    # Malformed events beside a valid one (a repeat, which changes nothing): answered one by one.
    bad = [
        lines[5],
        '{"event_id": "x-1", "type": "call.offered", "ts": 1769900000, "queue": "q"}',
        '{"event_id": "x-2", "type": "call.teleported", "ts": 1769900000}',
        '{"event_id": "x-3", "type": "call.offered", "ts": "yesterday", "call_id": "c", "queue": "q"}',
        "42",
    ]
    status, body = call(
        w1,
        "/api/v1/events",
        token=INGEST,
        method="POST",
        body=("[" + ",".join(bad) + "]").encode(),
        content_type="application/json",
    )
    assert status == 422
    assert [(e["status"], e.get("reason")) for e in body["events"]] == [
        ("accepted", None),
        ("rejected", "missing_field"),
        ("rejected", "unknown_type"),
        ("rejected", "bad_timestamp"),
        ("rejected", "invalid_json"),
    ]
    assert body["events"][1]["event_id"] == "x-1" and body["events"][1]["field"] == "call_id"
    accepted += 1
    assert asyncio.run(input_messages(env)) == accepted  # exactly the accepted ones were written

    # What the workers count is what report counts over the same file (both workers, whole cluster).
    r = kpistream("report", "--events", str(events_file), env=env)
    assert r.returncode == 0, r.stderr
    expected = dict(json.loads(r.stdout)["periods"])
    assert set(expected) == {"day:2026-01-31", "day:2026-02-01", "month:2026-01", "month:2026-02"}
    for worker in (w1, w2):
        got = periods_when_equal(worker, expected)
        assert got == expected, (
            "\n".join(differences(expected, got)[:20]) + "\n" + lag_lines(w1, w2) + "\n" + worker.log_tail()
        )


def lag_lines(*workers: Any) -> str:
    """Each worker's non-zero consumer lag (unread input, per partition): where the counts stopped."""
    out = []
    for w in workers:
        _, body = call(w, "/metrics", token=VIEWER)
        text = body if isinstance(body, str) else json.dumps(body)
        lags = [
            ln
            for ln in text.splitlines()
            if ln.startswith("kpistream_consumer_lag{") and not ln.endswith(" 0.0")
        ]
        out.append(f"{w.base_url} lag: {lags or 'none'}")
    return "\n".join(out)


def differences(want: Any, got: Any, path: str = "") -> list[str]:
    """Every leaf where `got` differs from `want`, one line each (a failure a reader can act on)."""
    if isinstance(want, dict) and isinstance(got, dict):
        out: list[str] = []
        for k in sorted(set(want) | set(got), key=str):
            out += differences(want.get(k, "<missing>"), got.get(k, "<missing>"), f"{path}.{k}")
        return out
    return [] if want == got else [f"{path}: report {want!r}, worker {got!r}"]


def periods_when_equal(worker: Any, expected: dict[str, Any], timeout: float = 180) -> Any:
    """The worker's day and month periods, polled until they equal `expected` or `timeout` passed."""
    deadline = time.monotonic() + timeout
    got: Any = None
    while time.monotonic() < deadline:
        status, body = call(worker, "/api/v1/periods", token=VIEWER)
        if status == 200:
            got = {k: v for k, v in body["periods"].items() if k != "rolling"}
            if got == expected:
                break
        else:
            assert status == 503, body  # a rebalance or a peer: never 401 (peers authenticate)
        time.sleep(1.0)
    return got


def test_tls_web_port_with_peers(
    kafka_broker: Any, worker_env: Any, start_worker: Any, tmp_path: Path
) -> None:
    """HTTPS on the web port: two workers read each other's partitions over TLS with the peer token."""
    cert, key = tmp_path / "web.crt", tmp_path / "web.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    tls = {"KPISTREAM_WEB_TLS_CERTFILE": str(cert), "KPISTREAM_WEB_TLS_KEYFILE": str(key)}
    env = worker_env(kafka_broker.url, KPISTREAM_WEB_TLS_CAFILE=str(cert), **tls, **TOKENS)
    env2 = {
        **env,
        "KPISTREAM_WEB_PORT": worker_env(kafka_broker.url)["KPISTREAM_WEB_PORT"],
        "KPISTREAM_DATA_DIR": str(tmp_path / "worker-1-data"),
    }
    w1, w2 = start_worker(env), start_worker(env2)  # ready over https
    assert w1.base_url.startswith("https://")
    with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP is not served
        urllib.request.urlopen(f"http://127.0.0.1:{w1.port}/healthz", timeout=10)
    assert call(w1, "/api/v1/periods")[0] == 401

    lines = list(iter_jsonl(generate(SimConfig(seed=5, start="2026-01-15T09:00:00+00:00", hours=1))))
    events_file = tmp_path / "events.jsonl"
    events_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    status, body = call(
        w2,
        "/api/v1/events",
        token=INGEST,
        method="POST",
        body=events_file.read_bytes(),
        content_type="application/x-ndjson",
    )
    assert status == 200 and body["accepted"] == len(lines), body
    r = kpistream("report", "--events", str(events_file), env=env)
    assert r.returncode == 0, r.stderr
    expected = dict(json.loads(r.stdout)["periods"])
    for worker in (w1, w2):
        got = periods_when_equal(worker, expected)
        assert got == expected, "\n".join(differences(expected, got)[:20]) + "\n" + worker.log_tail()

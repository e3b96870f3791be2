"""Every client through a real Apache Kafka that only speaks SASL_SSL (SCRAM-SHA-512, a test CA).

One secured broker for the module (stream/devenv/kafka.py `BrokerSecurity`): its certificate is
made here by a private CA and names localhost and 127.0.0.1 (hostname checking stays on), its
SCRAM users are written by `kafka-storage format --add-scram`. Through it a worker (Faust's
consumer, producers, topic creation, the Kafka sink, the control follower), `produce`,
`strategy set|list`; the worker's periods equal `report` over the same events. A wrong password
and an untrusted certificate end `produce` and the worker at once, with one error line that
names the cause, and no output anywhere holds a password.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests_support import wait_for_periods

from stream import kafka_clients
from stream.config import load_settings
from stream.devenv.kafka import BrokerSecurity, KafkaBroker, kafka_available
from stream.devenv.tls import make_ca, make_pki, openssl_available
from stream.simulator import SimConfig, generate, iter_jsonl
from stream.topics import OPERATOR_SCORES

REPO = Path(__file__).resolve().parents[2]
USER = "kpistream"
PASSWORD = f"pw{secrets.token_hex(12)}"  # random: finding it in any output can only be a leak
WRONG = f"wrong{secrets.token_hex(12)}"
FAIL_FAST_S = 60  # a subprocess still running after this has hung, not failed fast


@pytest.fixture(scope="module")
def secured_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    if not (kafka_available() and openssl_available()):
        pytest.skip("a SASL_SSL Apache Kafka needs Java 17+, the Kafka jars or Maven, and openssl")
    tmp = tmp_path_factory.mktemp("kafka-sasl-ssl")
    broker = KafkaBroker(tmp / "kafka", security=BrokerSecurity(make_pki(tmp / "pki"), {USER: PASSWORD}))
    broker.start(timeout=180)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def untrusted_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA that did not sign the broker's certificate."""
    cert, _ = make_ca(tmp_path_factory.mktemp("other-ca"), name="someone else's CA")
    return cert


def run_cli(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stream.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def no_secret(*texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text and WRONG not in text


def error_lines(text: str) -> list[str]:
    """The lines a person reads as problems: logged at WARNING or above, or printed by a command."""
    return [
        ln
        for ln in text.splitlines()
        if any(f" {level} " in ln for level in ("WARNING", "ERROR", "CRITICAL"))
        or ln.startswith("kpistream ")
    ]


def wait_for_strategy(redis_url: str, want: str, timeout: float = 30.0) -> str | None:
    """The strategy the worker published op-001's day score with, once it is `want` (or at timeout)."""
    import redis

    got = None
    with redis.Redis.from_url(redis_url, decode_responses=True) as r:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = r.hget("kpi:op:op-001:day:2026-01-15", "strategy")
            if got == want:
                break
            time.sleep(0.5)
    return got


def report_of(path: Path, env: dict[str, str], strategy: str) -> dict[str, Any]:
    r = run_cli("report", "--events", str(path), "--strategy", strategy, env=env)
    assert r.returncode == 0, r.stderr
    return dict(json.loads(r.stdout)["periods"])


async def count_messages(env: dict[str, str], topic: str, timeout: float = 30.0) -> int:
    """Messages of a topic read within `timeout` (until the first arrive), by a consumer built from
    the same security settings (the sink may still be writing when the periods already agree)."""
    consumer = kafka_clients.consumer(
        load_settings(env=env), topic, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        n = 0
        deadline = time.monotonic() + timeout
        while n == 0 and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=1000)
            n += sum(len(v) for v in batch.values())
        return n
    finally:
        await consumer.stop()


def test_worker_produce_and_strategy_through_sasl_ssl(
    secured_kafka: KafkaBroker, redis_server: Any, worker_env: Any, start_worker: Any, tmp_path: Path
) -> None:
    env = worker_env(
        secured_kafka.url,
        f"redis://{redis_server.host}:{redis_server.port}/7",
        KPISTREAM_STRATEGIES=str(REPO / "deploy" / "strategies.toml"),
        **secured_kafka.client_env(USER),
    )
    assert env["KPISTREAM_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(iter_jsonl(generate(SimConfig(seed=13, hours=0.5)))) + "\n")
    worker = start_worker(env)

    produced = run_cli("produce", "--events", str(events), "--quiet", env=env)
    assert produced.returncode == 0, produced.stderr
    expected = report_of(events, env, "strategy-1")
    assert wait_for_periods(worker, expected) == expected
    # The worker's Kafka sink wrote the score topic through the same listener.
    assert asyncio.run(count_messages(env, env["KPISTREAM_TOPIC_PREFIX"] + OPERATOR_SCORES)) > 0

    switched = run_cli("strategy", "set", "strategy-2", env=env)
    assert switched.returncode == 0, switched.stderr
    listed = run_cli("strategy", "list", env=env)
    assert "* strategy-2" in listed.stdout, listed.stderr
    assert wait_for_strategy(env["KPISTREAM_REDIS_URL"], "strategy-2") == "strategy-2"  # the worker followed

    no_secret(
        produced.stdout, produced.stderr, switched.stdout, switched.stderr, listed.stdout, listed.stderr
    )
    worker.stop()
    no_secret(worker.log_path.read_text(errors="replace"))


FAILURES = {
    "wrong password": (
        {"KPISTREAM_KAFKA_SASL_PASSWORD": WRONG},
        "login refused (wrong user name or password",
    ),
    "untrusted certificate": ({}, "the broker's TLS certificate is not trusted"),
}


@pytest.mark.parametrize("case", list(FAILURES))
@pytest.mark.parametrize("command", ["produce", "worker"])
def test_refused_access_fails_fast_with_one_clear_line(
    secured_kafka: KafkaBroker,
    untrusted_ca: Path,
    worker_env: Any,
    tmp_path: Path,
    case: str,
    command: str,
) -> None:
    change, says = FAILURES[case]
    env = worker_env(secured_kafka.url, **{**secured_kafka.client_env(USER), **change})
    if case == "untrusted certificate":
        env["KPISTREAM_KAFKA_SSL_CAFILE"] = str(untrusted_ca)
    events = tmp_path / "one.jsonl"
    events.write_text(
        json.dumps({"event_id": "e1", "type": "call.offered", "ts": 1, "call_id": "c1", "queue": "q"})
    )
    args = ("produce", "--events", str(events), "--quiet") if command == "produce" else ("worker",)

    r = run_cli(*args, env=env, timeout=FAIL_FAST_S)  # raises TimeoutExpired if it hangs

    assert r.returncode == 2, r.stderr[-3000:]
    lines = error_lines(r.stdout + r.stderr)
    assert len(lines) == 1, r.stderr[-3000:]
    assert says in lines[0] and secured_kafka.bootstrap in lines[0], lines[0]
    assert "Traceback" not in r.stderr
    no_secret(r.stdout, r.stderr)

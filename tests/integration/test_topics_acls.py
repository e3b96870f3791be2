"""The ACLs `kpistream topics plan` prints suffice for a worker in check mode, on a broker enforcing them.

The test's own Apache Kafka runs the StandardAuthorizer. Its PLAINTEXT listener is the worker's
(principal `User:ANONYMOUS`, which has no rights but those the plan's ACL lines grant); a
SASL_PLAINTEXT listener with a PLAIN super user is the administrator's and the brokers' own. The
printed `kafka-acls.sh` lines run as they are, through Kafka's own `AclCommand`.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from tests_support import kpistream, wait_for_center_counts

from stream.devenv.kafka import KafkaBroker, kafka_available, libs_dir
from stream.devenv.process import free_port

ADMIN_JAAS = (
    'org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-pw"'
)


class AuthorizingBroker(KafkaBroker):
    """A one-node Apache Kafka that enforces ACLs; `admin_bootstrap` is its SASL listener."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self.admin_port = free_port(self.host)

    @property
    def admin_bootstrap(self) -> str:
        return f"{self.host}:{self.admin_port}"

    def _properties(self, log_dir: Path) -> str:
        h, p, a, c = self.host, self.port, self.admin_port, self.controller_port
        server_jaas = f'{ADMIN_JAAS} user_admin="admin-pw";'
        extra = {
            "listeners": f"PLAINTEXT://{h}:{p},ADMIN://{h}:{a},CONTROLLER://{h}:{c}",
            "advertised.listeners": f"PLAINTEXT://{h}:{p},ADMIN://{h}:{a}",
            "listener.security.protocol.map": (
                "CONTROLLER:SASL_PLAINTEXT,ADMIN:SASL_PLAINTEXT,PLAINTEXT:PLAINTEXT"
            ),
            "inter.broker.listener.name": "ADMIN",
            "sasl.enabled.mechanisms": "PLAIN",
            "sasl.mechanism.inter.broker.protocol": "PLAIN",
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.admin.plain.sasl.jaas.config": server_jaas,
            "listener.name.controller.plain.sasl.jaas.config": server_jaas,
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:admin",
            "allow.everyone.if.no.acl.found": "false",
        }
        lines = [
            line for line in super()._properties(log_dir).splitlines() if line.split("=", 1)[0] not in extra
        ]
        return "".join(f"{line}\n" for line in lines) + "".join(f"{k}={v}\n" for k, v in extra.items())


def kafka_acls(lines: list[str], cwd: Path) -> None:
    """Run printed `kafka-acls.sh ...` lines with Kafka's own AclCommand, side by side (a JVM each)."""
    java = shutil.which("java") or "java"
    # Short-lived JVMs: stop at the first JIT tier, no parallel GC threads.
    jvm = [java, "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", f"{libs_dir()}/*"]
    procs = []
    for line in lines:
        args = shlex.split(line)
        assert args[0] == "kafka-acls.sh", line
        cmd = [*jvm, "kafka.admin.AclCommand", *args[1:]]
        procs.append(
            subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        )
    for proc in procs:
        out, _ = proc.communicate(timeout=180)
        assert proc.returncode == 0, out


async def send_as_admin(bootstrap: str, topic: str, events: list[dict[str, Any]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_plain_username="admin",
        sasl_plain_password="admin-pw",
        acks="all",
    )
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(topic, json.dumps(event).encode(), key=event["call_id"].encode())
    finally:
        await producer.stop()


async def first_records_as_admin(bootstrap: str, topic: str, timeout: float = 60.0) -> int:
    """How many records `topic` has once it has any (read by the administrator), 0 after `timeout`."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_plain_username="admin",
        sasl_plain_password="admin-pw",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            if batch:
                return sum(len(records) for records in batch.values())
        return 0
    finally:
        await consumer.stop()


def test_a_worker_in_check_mode_needs_only_the_planned_acls(
    worker_env: Any, start_worker: Any, tmp_path: Path
) -> None:
    if not kafka_available():
        pytest.skip("Apache Kafka needs Java 17+ and either cached jars or Maven")
    broker = AuthorizingBroker(tmp_path / "kafka")
    broker.start(timeout=180)
    try:
        props = tmp_path / "admin.properties"
        props.write_text(
            f"security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.jaas.config={ADMIN_JAAS};\n"
        )
        env = {**worker_env(broker.url), "KPISTREAM_TOPICS_MODE": "check"}
        plan = kpistream(
            "topics", "plan", "--json", "--principal", "User:ANONYMOUS", "--command-config", str(props),
            "--broker", f"kafka://{broker.admin_bootstrap}", env=env,
        )  # fmt: skip
        assert plan.returncode == 0, plan.stderr
        doc = json.loads(plan.stdout)
        assert "CREATE" not in {
            a["operation"] for a in doc["acls"]
        }  # check mode: the topics are the operator's

        refused = kpistream("worker", env=env)  # no ACL yet: every topic is invisible, so missing
        assert refused.returncode == 2 and "missing: " in refused.stderr, refused.stderr[-2000:]

        # The operator creates the topics (here: the same principal, allowed to for a moment), and
        # grants the plan's ACLs: the printed lines, run as they are.
        temporary = f"kafka-acls.sh --bootstrap-server {broker.admin_bootstrap} --command-config {props}"
        temporary += " --{} --allow-principal User:ANONYMOUS --operation All --topic '*'"
        kafka_acls([temporary.format("add"), *doc["acl_commands"]], tmp_path)
        created = kpistream("topics", "create", env=env)
        assert created.returncode == 0, created.stdout + created.stderr
        kafka_acls([temporary.format("remove") + " --force"], tmp_path)
        checked = kpistream("topics", "check", env=env)
        assert checked.returncode == 0, checked.stdout + checked.stderr

        worker = start_worker(env)
        offered = {"event_id": "e1", "type": "call.offered", "ts": "2026-01-15T09:00:00Z", "queue": "q"}
        answered = {
            "event_id": "e2",
            "type": "call.answered",
            "ts": "2026-01-15T09:00:05Z",
            "operator_id": "o",
        }
        events = [{**offered, "call_id": "c1"}, {**answered, "call_id": "c1"}]
        # The events come from the administrator: the worker's principal has the plan's ACLs and nothing else.
        asyncio.run(
            send_as_admin(broker.admin_bootstrap, env["KPISTREAM_TOPIC_PREFIX"] + "events.telephony", events)
        )
        expected = {"offered": 1, "answered": 1, "sl_answered": 1}
        center = wait_for_center_counts(worker, "day:2026-01-15", expected)
        assert all(center.get(k) == v for k, v in expected.items()), (center, worker.log_tail(3000))
        # The score topics' (idempotent) producer wrote too.
        scores = env["KPISTREAM_TOPIC_PREFIX"] + "kpi.operator-scores"
        assert asyncio.run(first_records_as_admin(broker.admin_bootstrap, scores)) > 0, worker.log_tail(3000)
        assert "AuthorizationFailed" not in worker.log_tail(500_000), worker.log_tail(3000)
        worker.stop()  # before its broker: a worker without a broker takes its whole stop limit
    finally:
        broker.stop()

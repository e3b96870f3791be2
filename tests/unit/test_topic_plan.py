"""The topic plan: the exact list a worker uses, its principal's ACLs, the comparison with a cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stream.cli import main
from stream.config import Settings, load_settings
from stream.errors import ConfigError
from stream.topic_acls import Acl, acl_commands, worker_acls
from stream.topic_admin import TopicState
from stream.topic_check import TopicsMismatch, compare
from stream.topics import CONTROL, PAYOUTS, TopicSpec, cleanup_policy, topic_plan

TABLES = ("call-state", "chat-state", "email-state", "case-state", "agent-state")
TABLES += ("seen-ids", "aggregates", "business", "alerts")


def settings(**kw: Any) -> Settings:
    base: dict[str, Any] = {"topic_prefix": "p.", "app_id": "app", "partitions": 3}
    return Settings(**{**base, **kw})


def test_the_plan_is_every_topic_with_its_partitions_policy_and_copies() -> None:
    s = settings(replication_factor=3, min_insync_replicas=2)
    got = {
        name: (
            spec.partitions,
            cleanup_policy(spec),
            spec.replication_factor,
            spec.config.get("min.insync.replicas"),
        )
        for name, spec in topic_plan(s).items()
    }
    expected: dict[str, tuple[int, str, int, str]] = {
        "p.events.telephony": (3, "delete", 3, "2"),
        "p.events.chat": (3, "delete", 3, "2"),
        "p.events.email": (3, "delete", 3, "2"),
        "p.events.agent": (3, "delete", 3, "2"),
        "p.events.contact": (3, "delete", 3, "2"),
        "p.events.business": (1, "delete", 3, "2"),
        "p.kpi.deltas": (3, "delete", 3, "2"),
        "p.kpi.dead-letters": (1, "delete", 3, "2"),
        "p.kpi.operator-scores": (3, "compact", 3, "2"),
        "p.kpi.queue-kpis": (3, "compact", 3, "2"),
        "p.kpi.alerts": (1, "delete", 3, "2"),
        "p.kpi.scorecard": (1, "compact", 3, "2"),
        "p.kpi.control": (1, "compact", 3, "2"),
        "p.kpi.payouts": (1, "compact", 3, "2"),
        # Faust names changelogs after the app id, without the topic prefix.
        **{f"app-{table}-changelog": (3, "compact", 3, "2") for table in TABLES},
    }
    assert got == expected
    assert list(got) == list(expected)  # the order the worker creates them and `plan` prints them


def test_the_plan_is_exactly_what_the_worker_uses(tmp_path: Path) -> None:
    """Every topic of the Faust app, its tables, the Kafka sink, the control and payouts clients: no more."""
    from agents.pipeline import Pipeline
    from stream.sinks.kafka import KafkaSink

    s = load_settings(
        env={},
        overrides={"topic_prefix": "p.", "app_id": "app", "partitions": 3, "data_dir": str(tmp_path)},
    )
    pipeline = Pipeline(s)
    app = pipeline.app
    used: dict[str, Any] = {}
    for topic in [
        *pipeline.input_topics.values(),
        pipeline.deltas_topic,
        pipeline.dead_topic,
        pipeline.alerts_topic,
    ]:
        used[topic.get_topic_name()] = topic
    for agent in app.agents.values():  # every topic consumed
        used[agent.channel.get_topic_name()] = agent.channel
    for table in app.tables.values():
        used[table.changelog_topic.get_topic_name()] = table.changelog_topic
    sink = KafkaSink(s)
    # Read and written with plain aiokafka clients: the control topic, the month closes.
    names = {
        *used,
        sink.scores_topic,
        sink.queues_topic,
        sink.scorecard_topic,
        s.topic(CONTROL),
        s.topic(PAYOUTS),
    }
    plan = topic_plan(s)
    assert names == set(plan)
    for name, topic in used.items():
        if topic.partitions:  # Faust declares these with their own count: it must be the plan's
            assert topic.partitions == plan[name].partitions, name
        if name.endswith("-changelog"):
            assert topic.compacting and cleanup_policy(plan[name]) == "compact"
    # At-least-once, no transactions: the principal needs no TRANSACTIONAL_ID ACL.
    assert app.conf.processing_guarantee.value == "at_least_once" and not app.in_transaction
    assert app.conf.topic_allow_declare is True


def test_a_worker_in_check_mode_lets_faust_declare_nothing(tmp_path: Path) -> None:
    from agents.pipeline import make_app

    s = load_settings(env={"KPISTREAM_TOPICS_MODE": "check"}, overrides={"data_dir": str(tmp_path)})
    assert s.topics_mode == "check"
    assert make_app(s).conf.topic_allow_declare is False


def test_an_unknown_topics_mode_is_refused_by_name() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={"KPISTREAM_TOPICS_MODE": "ensure"})
    assert "topics_mode" in str(info.value) and "create, check" in str(info.value)


def _acls(s: Settings) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for acl in worker_acls(s):
        out.setdefault(f"{acl.resource_type}:{acl.resource_name}", set()).add(acl.operation)
    return out


def test_acls_of_a_worker_in_check_mode() -> None:
    acls = _acls(settings(topics_mode="check"))
    read, write = {"DESCRIBE", "DESCRIBE_CONFIGS", "READ"}, {"DESCRIBE", "DESCRIBE_CONFIGS", "WRITE"}
    rw = {"DESCRIBE", "DESCRIBE_CONFIGS", "READ", "WRITE"}
    expected = {
        **{
            f"TOPIC:p.events.{s}": rw  # written too: HTTP ingest (POST /api/v1/events)
            for s in ("telephony", "chat", "email", "agent", "contact", "business")
        },
        "TOPIC:p.kpi.deltas": rw,
        "TOPIC:p.kpi.dead-letters": write,
        "TOPIC:p.kpi.operator-scores": write,
        "TOPIC:p.kpi.queue-kpis": write,
        "TOPIC:p.kpi.alerts": write,
        "TOPIC:p.kpi.scorecard": write,
        "TOPIC:p.kpi.control": read,
        "TOPIC:p.kpi.payouts": rw,
        **{f"TOPIC:app-{table}-changelog": rw for table in TABLES},
        "GROUP:app": {"READ"},
        "CLUSTER:kafka-cluster": {"IDEMPOTENT_WRITE"},  # the score topics' producer is idempotent
    }
    assert acls == expected


def test_acls_of_a_worker_that_creates_its_topics() -> None:
    acls = _acls(settings(topics_mode="create"))
    assert acls["TOPIC:p.events.telephony"] == {"DESCRIBE", "READ", "WRITE", "CREATE"}
    assert acls["TOPIC:app-seen-ids-changelog"] == {"DESCRIBE", "READ", "WRITE", "CREATE"}
    assert acls["GROUP:app"] == {"READ"}
    ops = {acl.operation for acl in worker_acls(settings())}
    assert not ops & {"DESCRIBE_CONFIGS", "ALTER", "DELETE", "ALTER_CONFIGS"}
    assert {acl.resource_type for acl in worker_acls(settings())} == {"TOPIC", "GROUP", "CLUSTER"}


def test_acl_commands_group_resources_by_operations_and_quote() -> None:
    acls = [
        Acl("TOPIC", "a", "DESCRIBE"),
        Acl("TOPIC", "a", "READ"),
        Acl("TOPIC", "b b", "DESCRIBE"),
        Acl("TOPIC", "b b", "READ"),
        Acl("TOPIC", "c", "DESCRIBE"),
        Acl("TOPIC", "c", "WRITE"),
        Acl("GROUP", "g", "READ"),
        Acl("CLUSTER", "kafka-cluster", "IDEMPOTENT_WRITE"),
    ]
    lines = acl_commands(acls, "User:kpistream", "k1:9093,k2:9093", "admin.properties")
    head = "kafka-acls.sh --bootstrap-server k1:9093,k2:9093 --command-config admin.properties --add"
    head += " --allow-principal User:kpistream"
    assert lines == [
        f"{head} --operation Describe --operation Read --topic a --topic 'b b'",
        f"{head} --operation Describe --operation Write --topic c",
        f"{head} --operation Read --group g",
        f"{head} --operation IdempotentWrite --cluster",
    ]


def test_plan_json_on_the_command_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KPISTREAM_APP_ID", "app")
    monkeypatch.setenv("KPISTREAM_TOPIC_PREFIX", "p.")
    monkeypatch.setenv("KPISTREAM_TOPICS_MODE", "create")
    args = ["topics", "plan", "--json", "--broker", "kafka://k1:9093", "--partitions", "3"]
    assert main([*args, "--principal", "User:svc", "--topics-mode", "check"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [t["name"] for t in doc["topics"]] == list(topic_plan(settings()))
    deltas = next(t for t in doc["topics"] if t["name"] == "p.kpi.deltas")
    assert deltas == {
        "name": "p.kpi.deltas",
        "partitions": 3,
        "replication_factor": 1,
        "cleanup_policy": "delete",
        "min_insync_replicas": None,
        "config": {},
        "worker": ["read", "write"],
    }
    assert doc["consumer_groups"] == ["app"] and doc["topics_mode"] == "check"
    assert {a["principal"] for a in doc["acls"]} == {"User:svc"}
    assert len(doc["acls"]) == len(worker_acls(settings(topics_mode="check")))
    assert all(
        line.startswith("kafka-acls.sh --bootstrap-server k1:9093 --add") for line in doc["acl_commands"]
    )

    assert main(["topics", "plan", "--broker", "kafka://k1:9093", "--partitions", "3"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split() == [
        "topic",
        "partitions",
        "replication",
        "cleanup.policy",
        "min.insync.replicas",
        "other",
        "configs",
        "worker",
    ]
    assert "consumer groups: app" in text and "--operation Create" in text


def state(
    partitions: int, policy: str | None = None, replicas: int = 1, isr: str | None = None
) -> TopicState:
    config = {k: v for k, v in (("cleanup.policy", policy), ("min.insync.replicas", isr)) if v is not None}
    return TopicState(partitions, replicas, config)


def test_compare_names_every_missing_or_wrong_topic() -> None:
    plan = {
        "in": TopicSpec(4, {}),
        "log": TopicSpec(4, {"cleanup.policy": "compact"}),
        "gone": TopicSpec(1, {}),
        "gone2": TopicSpec(1, {}),
        "few": TopicSpec(4, {}),
        "ok": TopicSpec(2, {"cleanup.policy": "compact", "min.insync.replicas": "2"}, 3),
    }
    found = {
        "in": state(4, "compact"),  # a compacted input would drop events
        "log": state(4, "compact,delete"),  # a changelog that deletes would lose state
        "few": state(2, "delete"),
        "ok": state(2, "compact", replicas=2, isr="1"),
        "other": state(9),
    }
    diff = compare(plan, found)
    assert diff.problems == [
        "missing: gone, gone2",
        "in has cleanup.policy=compact, needs delete",
        "log has cleanup.policy=compact,delete, needs compact",
        "few has 2 partitions, needs 4",
    ]
    assert diff.warnings == [
        "ok has 2 replicas, the plan has 3",
        "ok has min.insync.replicas=1, the plan has 2",
    ]
    assert not diff.ok
    message = str(TopicsMismatch("k:1", diff.problems))
    assert message.startswith(
        "topics on k:1 do not match `kpistream topics plan` (4 problems): missing: gone"
    )
    assert "few has 2 partitions, needs 4" in message


def test_compare_accepts_the_plan_itself() -> None:
    plan = topic_plan(settings())
    found = {
        name: state(spec.partitions, cleanup_policy(spec), spec.replication_factor)
        for name, spec in plan.items()
    }
    assert compare(plan, found).ok and compare(plan, found).warnings == []

"""The local-services layer without starting real services: parsing, process control, errors."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from stream.commands import dev as command
from stream.devenv.kafka import KafkaBroker, _new_cluster_id, java_major
from stream.devenv.process import ManagedProcess, free_port, log_tail, pid_alive, stop_pid
from stream.devenv.services import pick_broker_kind
from stream.errors import ServiceError
from stream.topic_admin import bootstrap_of


def test_cluster_id_is_kafka_uuid_form() -> None:
    for _ in range(200):
        cid = _new_cluster_id()
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cid) and not cid.startswith("-")


@pytest.mark.parametrize(
    ("banner", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('java version "1.8.0_292"', 8),
        ('openjdk version "21" 2023-09-19', 21),
        ("garbage", None),
    ],
)
def test_java_major_parses_the_banner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, banner: str, major: int | None
) -> None:
    fake = tmp_path / "java"
    fake.write_text(f"#!/bin/sh\necho '{banner}' >&2\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert java_major() == major


def test_no_java_means_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert java_major() is None


def test_broker_kind_choice() -> None:
    assert pick_broker_kind("tansu") == "tansu"
    assert pick_broker_kind("kafka") == "kafka"
    with pytest.raises(ServiceError):
        pick_broker_kind("zookeeper")


def test_kafka_properties_are_loopback_and_explicit_topics(tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path, port=19999, controller_port=19998)
    props = dict(
        line.split("=", 1) for line in broker._properties(tmp_path / "data").splitlines() if "=" in line
    )
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19999,CONTROLLER://127.0.0.1:19998"
    assert props["auto.create.topics.enable"] == "false"
    assert props["process.roles"] == "broker,controller"
    assert props["offsets.topic.replication.factor"] == "1"
    assert broker.url == "kafka://127.0.0.1:19999" and broker.bootstrap == "127.0.0.1:19999"


def test_bootstrap_forms() -> None:
    assert bootstrap_of("kafka://a:1;b:2") == "a:1,b:2"
    assert bootstrap_of("127.0.0.1:9092") == "127.0.0.1:9092"


def test_stop_pid_kills_a_process_that_ignores_sigterm() -> None:
    proc = subprocess.Popen(
        ["bash", "-c", "trap '' TERM; sleep 60 & wait"], start_new_session=True, stdout=subprocess.DEVNULL
    )
    time.sleep(0.2)
    started = time.monotonic()
    stop_pid(proc.pid, timeout=0.5, popen=proc)
    assert proc.poll() is not None and time.monotonic() - started < 10
    assert not pid_alive(proc.pid)


class _Fake(ManagedProcess):
    name = "fake"

    def __init__(self, data_dir: Path, script: str) -> None:
        super().__init__(data_dir)
        self.script = script

    @property
    def url(self) -> str:
        return f"fake://{self.host}:{self.port}"

    def _command(self) -> Sequence[str]:
        return ["sh", "-c", self.script]


def test_start_failure_reports_the_log_tail(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match="boom-from-the-log"):
        _Fake(tmp_path, "echo boom-from-the-log; exit 3").start(timeout=10)


def test_start_timeout_stops_the_process(tmp_path: Path) -> None:
    fake = _Fake(tmp_path, "echo waiting; exec sleep 60")
    with pytest.raises(ServiceError, match="not ready"):
        fake.start(timeout=1)
    assert fake.pid is not None and not pid_alive(fake.pid)
    assert "waiting" in log_tail(fake.log_path)


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 1024 <= port <= 65535


def test_dev_command_help_and_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    parser = argparse.ArgumentParser(prog="kpistream")
    command.register(parser.add_subparsers(dest="command"))
    for action in ("up", "down", "status"):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args(["dev", action, "--help"])
        assert exc.value.code == 0
    assert "--broker" in capsys.readouterr().out
    for name in ("KPISTREAM_BROKER", "KPISTREAM_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    args = parser.parse_args(["dev", "status", "--data-dir", str(tmp_path)])
    assert args.func(args) == 3  # nothing recorded
    assert command.cmd_down(parser.parse_args(["dev", "down", "--data-dir", str(tmp_path)])) == 0
    assert command.entry_running({"pid": os.getpid(), "marker": Path(sys.executable).name})
    assert not command.entry_running({"pid": os.getpid(), "marker": "no-such-marker-xyz"})


def test_start_refuses_a_port_in_use(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # held and listening: a port in use, which free_port never returns
        s.listen()
        fake = _Fake(tmp_path, "exec sleep 60")
        fake.port = s.getsockname()[1]
        with pytest.raises(ServiceError, match="already in use"):
            fake.start(timeout=5)
        assert fake.pid is None


def test_cluster_nodes_share_the_quorum_and_replicate_internal_topics(tmp_path: Path) -> None:
    from stream.devenv.kafka_cluster import KafkaCluster

    cluster = KafkaCluster(tmp_path, brokers=3)
    props = [
        dict(line.split("=", 1) for line in n._properties(tmp_path / "d").splitlines() if "=" in line)
        for n in cluster.nodes
    ]
    assert [p["node.id"] for p in props] == ["1", "2", "3"]
    voters = props[0]["controller.quorum.voters"]
    assert voters.count("@127.0.0.1:") == 3 and all(p["controller.quorum.voters"] == voters for p in props)
    assert all(p["offsets.topic.replication.factor"] == "3" for p in props)
    assert all(p["transaction.state.log.min.isr"] == "2" for p in props)
    assert len({n.port for n in cluster.nodes} | {n.controller_port for n in cluster.nodes}) == 6
    assert cluster.url == "kafka://" + ";".join(f"127.0.0.1:{n.port}" for n in cluster.nodes)
    assert bootstrap_of(cluster.url) == cluster.bootstrap
    assert len({n.cluster_id for n in cluster.nodes}) == 1


def test_cluster_entry_runs_only_when_every_node_does() -> None:
    me = {"pid": os.getpid(), "marker": Path(sys.executable).name}
    gone = {"pid": 2**22 + 12345, "marker": "x"}
    assert command.entry_running({"kind": "kafka", "nodes": [me, me, me]})
    assert not command.entry_running({"kind": "kafka", "nodes": [me, gone, me]})


def test_dev_up_refuses_a_tansu_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    parser = argparse.ArgumentParser(prog="kpistream")
    command.register(parser.add_subparsers(dest="command"))
    monkeypatch.setenv("KPISTREAM_REDIS_URL", "redis://127.0.0.1:1/0")  # start no Redis
    monkeypatch.delenv("KPISTREAM_BROKER", raising=False)
    for extra, message in (
        (["--broker", "tansu", "--brokers", "3"], "Apache Kafka"),
        (["--brokers", "0"], "at least 1"),
    ):
        args = parser.parse_args(["dev", "up", "--data-dir", str(tmp_path), *extra])
        assert args.func(args) == 1
        assert message in capsys.readouterr().err

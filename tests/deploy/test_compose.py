"""docker-compose.yml is valid Compose and wires the services the way the README says.

The schema is the Compose Specification JSON Schema shipped by PyPI docker-compose 1.29.2
(see tests/data/compose-spec.json.source); no Docker engine is needed.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO / "tests" / "data" / "compose-spec.json"
SCHEMA_SHA256 = "0dc04bd346dcfee1b1419628fff79937bbf076925f298f272a2b490e2b112bac"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    return data


def _validate(schema: dict[str, Any], doc: dict[str, Any]) -> None:
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    cls(schema).validate(doc)


def test_schema_is_the_recorded_upstream_file() -> None:
    assert hashlib.sha256(SCHEMA_PATH.read_bytes()).hexdigest() == SCHEMA_SHA256


def test_compose_file_matches_the_compose_spec(schema: dict[str, Any], compose: dict[str, Any]) -> None:
    _validate(schema, compose)


def test_schema_rejects_a_broken_file(schema: dict[str, Any], compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["worker"]["depends_on"]["kafka"]["condition"] = "service_ready"
    with pytest.raises(jsonschema.ValidationError):
        _validate(schema, broken)
    broken = copy.deepcopy(compose)
    broken["services"]["redis"]["healthcheck"]["every"] = "5s"
    with pytest.raises(jsonschema.ValidationError):
        _validate(schema, broken)


def test_services_and_wiring(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"kafka", "redis", "worker", "simulator", "prometheus", "grafana"}
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert services["redis"]["image"] == "redis:7"
    assert "--appendonly" in services["redis"]["command"]
    worker = services["worker"]
    assert worker["build"]["dockerfile"] == "deploy/Dockerfile"
    assert worker["command"] == ["kpistream", "worker"]
    assert worker["environment"]["KPISTREAM_BROKER"] == "kafka://kafka:9092"
    assert worker["environment"]["KPISTREAM_REDIS_URL"] == "redis://redis:6379/0"
    assert worker["depends_on"] == {
        "kafka": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    assert "http://localhost:6066/healthz" in " ".join(worker["healthcheck"]["test"])
    for name in ("kafka", "redis", "worker"):
        assert services[name]["healthcheck"]["test"], name


def test_simulator_feeds_the_worker(compose: dict[str, Any]) -> None:
    """`docker compose up` shows a live wallboard: the simulator produces once the worker is up."""
    services = compose["services"]
    sim, worker = services["simulator"], services["worker"]
    assert sim["image"] == worker["image"] and sim["build"] == worker["build"]
    assert sim["command"][:3] == ["kpistream", "simulate", "--produce"]
    assert sim["environment"]["KPISTREAM_BROKER"] == worker["environment"]["KPISTREAM_BROKER"]
    assert sim["depends_on"] == {"worker": {"condition": "service_healthy"}}
    assert sim["restart"] == "on-failure"  # a re-sent day changes nothing (event_id idempotency)
    speed = float(sim["command"][sim["command"].index("--speed") + 1])
    hours = float(sim["command"][sim["command"].index("--hours") + 1])
    # Today from 08:00 at `speed` runs ahead of the wall clock by up to 08:00 + hours; the worker
    # must not take those events for `future` dead letters.
    assert speed > 1
    assert int(worker["environment"]["KPISTREAM_MAX_CLOCK_SKEW_MS"]) >= (8 + hours) * 3_600_000
    assert sim["environment"]["KPISTREAM_TZ"] == worker["environment"]["KPISTREAM_TZ"]


def test_kafka_has_a_listener_for_host_tools(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    env = kafka["environment"]
    listeners = dict(item.split("://", 1) for item in env["KAFKA_LISTENERS"].split(","))
    advertised = dict(item.split("://", 1) for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    host, port = advertised["HOST"].rsplit(":", 1)
    assert host == "127.0.0.1"
    assert listeners["HOST"] == f":{port}"
    assert protocols["HOST"] == "PLAINTEXT"
    assert f"127.0.0.1:{port}:{port}" in kafka["ports"]
    assert advertised["PLAINTEXT"] == "kafka:9092"  # what the containers use
    assert set(listeners) - {"CONTROLLER"} == set(advertised)


def test_published_ports_are_loopback_only(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on all interfaces"


def test_mounted_and_built_files_exist(compose: dict[str, Any]) -> None:
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    assert "FROM python:3.11-slim" in dockerfile
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), source
    prom = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    targets = [t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    assert "worker:6066" in targets
    for path in (REPO / "deploy" / "grafana").rglob("*.json"):
        json.loads(path.read_text(encoding="utf-8"))
    for path in (REPO / "deploy" / "grafana" / "provisioning").rglob("*.yml"):
        assert yaml.safe_load(path.read_text(encoding="utf-8"))["apiVersion"] == 1


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_prometheus_config_passes_promtool() -> None:
    proc = subprocess.run(
        ["promtool", "check", "config", str(REPO / "deploy" / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _dockerignore_admits(patterns: list[str], path: str) -> bool:
    """Docker's rule, enough for our allowlist: the last matching pattern wins, `!` re-admits."""
    import fnmatch

    admitted = True
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        body = body.rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(prefix, body) for prefix in prefixes) or fnmatch.fnmatch(
            path, body.removeprefix("**/")
        ):
            admitted = negate
    return admitted


def test_dockerignore_keeps_the_context_to_what_the_image_copies() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied: list[str] = []
    for line in (REPO / "deploy" / "Dockerfile").read_text(encoding="utf-8").splitlines():
        if line.startswith("COPY "):
            copied += line.split()[1:-1]
    assert {"pyproject.toml", "README.md", "LICENSE", "stream", "agents", "schemas"} <= set(copied)
    for source in copied:
        assert (REPO / source).exists(), source
        assert _dockerignore_admits(patterns, source), f"{source} is copied but excluded by .dockerignore"
        assert _dockerignore_admits(patterns, f"{source}/x.py") or (REPO / source).is_file(), source
    for excluded in (".venv", ".cache/kafka", ".git", "tests/unit", ".kpistream", "stream/__pycache__"):
        assert not _dockerignore_admits(patterns, excluded), f"{excluded} would be sent to the daemon"


def test_license_is_the_apache_license_pyproject_names() -> None:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == {"text": "Apache-2.0"}
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.lstrip().startswith("Apache License")
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    # The unmodified text of https://www.apache.org/licenses/LICENSE-2.0.txt
    assert hashlib.sha256(text.encode()).hexdigest() == (
        "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"
    )


def test_faust_streaming_is_bounded_above() -> None:
    """agents/faust_compat.py uses Faust internals: a new minor release must be a deliberate upgrade."""
    import tomllib

    deps = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    (faust,) = [d for d in deps if d.startswith("faust-streaming")]
    assert "<" in faust, faust

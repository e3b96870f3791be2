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
    assert set(services) == {"kafka", "redis", "worker", "prometheus", "grafana"}
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

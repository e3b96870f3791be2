"""The Helm chart (deploy/helm/kpistream) lints, and renders the manifests docs/deploy.md describes.

`helm lint` and `helm template` run for real; helm is built from the Go module proxy into the
cache when it is missing (tests/support/helm.py). Without helm and without Go the tests skip
(in CI they fail). The rendered environment is fed to `load_settings`, so the chart can only set
settings that exist, with values the worker accepts.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.helm import HelmUnavailable, ensure_helm

from stream.config import Settings, load_settings
from stream.core.config import KpiConfig
from stream.strategies import load_book

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "kpistream"
RELEASE = "kpi"
FULLNAME = "kpi-kpistream"
SECRET_ENVS = {
    "KPISTREAM_KAFKA_SASL_PASSWORD",
    "KPISTREAM_REDIS_URL",
    "KPISTREAM_WEB_VIEWER_TOKEN",
    "KPISTREAM_WEB_ADMIN_TOKEN",
    "KPISTREAM_WEB_INGEST_TOKEN",
    "KPISTREAM_WEB_PEER_TOKEN",
}
# Files mounted from the Secret: they exist only in the pod (their paths are checked against the
# mounts), so they are left out when the rendered environment is loaded here.
MOUNTED_FILES = {
    "KPISTREAM_KAFKA_SSL_CAFILE",
    "KPISTREAM_KAFKA_SSL_CERTFILE",
    "KPISTREAM_KAFKA_SSL_KEYFILE",
    "KPISTREAM_REDIS_SSL_CAFILE",
    "KPISTREAM_WEB_AUTH_FILE",
}
SETTING_NAMES = {f.name for f in fields(Settings)} | {f.name for f in fields(KpiConfig)}


@pytest.fixture(scope="module")
def helm() -> Path:
    try:
        return ensure_helm()
    except HelmUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))


def _run(helm: Path, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm), *args], capture_output=True, text=True, timeout=120, check=False, cwd=REPO
    )


def render(helm: Path, *sets: str) -> list[dict[str, Any]]:
    """`helm template` with `--set` pairs, as parsed manifests."""
    args = ["template", RELEASE, str(CHART), "--namespace", "ops"]
    for s in sets:
        args += ["--set", s]
    proc = _run(helm, args)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def render_fails(helm: Path, *sets: str) -> str:
    args = ["template", RELEASE, str(CHART)]
    for s in sets:
        args += ["--set", s]
    proc = _run(helm, args)
    assert proc.returncode != 0, "helm template accepted values it should refuse"
    return proc.stderr


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    pod = one(docs, "StatefulSet")["spec"]["template"]["spec"]
    (worker,) = pod["containers"]
    return dict(worker)


def env_of(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container(docs)["env"]}


def pod_env(docs: list[dict[str, Any]], secrets: dict[str, str]) -> dict[str, str]:
    """The environment a worker pod gets, `$(VAR)` expanded as the kubelet does."""
    out: dict[str, str] = {}
    for name, e in env_of(docs).items():
        if "value" in e:
            out[name] = re.sub(r"\$\((\w+)\)", lambda m: out.get(m[1], m[0]), e["value"])
        elif "fieldRef" in e.get("valueFrom", {}):
            path = e["valueFrom"]["fieldRef"]["fieldPath"]
            out[name] = {"metadata.name": f"{FULLNAME}-1", "metadata.namespace": "ops"}[path]
        else:
            key = e["valueFrom"]["secretKeyRef"]["key"]
            if key in secrets:
                out[name] = secrets[key]
    return out


def settings_of(env: dict[str, str]) -> Settings:
    return load_settings(env={k: v for k, v in env.items() if k not in MOUNTED_FILES})


def test_chart_lints(helm: Path) -> None:
    proc = _run(helm, ["lint", "--strict", str(CHART)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = _run(helm, ["lint", "--strict", str(CHART), "--set", "serviceMonitor.enabled=true"])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_default_values_render_the_production_set(helm: Path) -> None:
    docs = render(helm)
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)
    assert kinds == [
        f"ConfigMap/{FULLNAME}-strategies",
        f"PodDisruptionBudget/{FULLNAME}",
        f"Service/{FULLNAME}",
        f"Service/{FULLNAME}-headless",
        f"StatefulSet/{FULLNAME}",
    ], "no Secret (existingSecret by default) and no ServiceMonitor unless enabled"


def test_statefulset_has_stable_identities_and_a_volume_for_rocksdb(helm: Path) -> None:
    docs = render(helm)
    sts = one(docs, "StatefulSet")
    headless = one(docs, "Service", f"{FULLNAME}-headless")
    assert sts["spec"]["serviceName"] == headless["metadata"]["name"]
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True  # peers found while rebalancing
    assert sts["spec"]["replicas"] == 3
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
    env = env_of(docs)
    mounts = {m["name"]: m["mountPath"] for m in container(docs)["volumeMounts"]}
    assert mounts["data"] == env["KPISTREAM_DATA_DIR"]["value"]
    assert env["KPISTREAM_STORE"]["value"] == "rocksdb://"
    assert env["KPISTREAM_TABLE_STANDBY_REPLICAS"]["value"] == "0"
    pod = sts["spec"]["template"]["spec"]
    assert pod["enableServiceLinks"] is False  # no stray KPISTREAM_*_PORT variables
    assert pod["securityContext"]["fsGroup"] == 10001
    for selector in (sts["spec"]["selector"]["matchLabels"], headless["spec"]["selector"]):
        assert selector.items() <= sts["spec"]["template"]["metadata"]["labels"].items()


def test_probes_resources_and_ports(helm: Path) -> None:
    worker = container(render(helm))
    assert worker["command"] == ["kpistream", "worker"]
    assert worker["ports"] == [{"name": "web", "containerPort": 6066, "protocol": "TCP"}]
    assert worker["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "web", "scheme": "HTTP"}
    assert worker["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "web", "scheme": "HTTP"}
    assert worker["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert worker["resources"]["requests"]["cpu"] and worker["resources"]["requests"]["memory"]
    assert worker["resources"]["limits"]["memory"]


def test_three_broker_values(helm: Path) -> None:
    docs = render(helm)
    env = pod_env(docs, {"redis-url": "redis://redis:6379/0", "kafka-sasl-password": "pw"})
    settings = settings_of(env)
    assert settings.bootstrap_servers.count(",") == 2  # three brokers
    assert settings.replication_factor == 3
    assert settings.min_insync_replicas == 2
    assert settings.table_standby_replicas == 0
    assert settings.store == "rocksdb://"
    assert settings.web_host == "0.0.0.0"
    assert settings.partitions == 12
    assert (
        settings.web_advertised_url == f"http://{FULLNAME}-1.{FULLNAME}-headless.ops.svc.cluster.local:6066"
    )
    assert env["KPISTREAM_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["KPISTREAM_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert env["KPISTREAM_KAFKA_SSL_CAFILE"] == "/etc/kpistream/kafka/ca.crt"
    mounts = {m["name"]: m["mountPath"] for m in container(docs)["volumeMounts"]}
    assert env["KPISTREAM_KAFKA_SSL_CAFILE"].startswith(mounts["kafka-tls"] + "/")
    assert env["KPISTREAM_LOG_FORMAT"] == "json"


def test_mounted_files_are_where_the_settings_point(helm: Path) -> None:
    docs = render(helm, "kafka.ssl.clientCert=true", "web.authFile=true", "redis.caCert=true")
    env = pod_env(docs, {})
    mounts = {m["name"]: m["mountPath"] for m in container(docs)["volumeMounts"]}
    volumes = {v["name"]: v for v in one(docs, "StatefulSet")["spec"]["template"]["spec"]["volumes"]}
    for setting, volume, key in (
        ("KPISTREAM_KAFKA_SSL_CAFILE", "kafka-tls", "kafka-ca.crt"),
        ("KPISTREAM_KAFKA_SSL_CERTFILE", "kafka-tls", "kafka-client.crt"),
        ("KPISTREAM_KAFKA_SSL_KEYFILE", "kafka-tls", "kafka-client.key"),
        ("KPISTREAM_REDIS_SSL_CAFILE", "redis-tls", "redis-ca.crt"),
        ("KPISTREAM_WEB_AUTH_FILE", "web-auth", "web-auth.toml"),
    ):
        items = {i["path"]: i["key"] for i in volumes[volume]["secret"]["items"]}
        directory, _, filename = env[setting].rpartition("/")
        assert directory == mounts[volume], setting
        assert items[filename] == key, setting
        assert volumes[volume]["secret"]["secretName"] == "kpistream-credentials"


def test_every_variable_is_a_setting(helm: Path) -> None:
    for sets in ((), ("kafka.ssl.clientCert=true", "web.authFile=true", "redis.caCert=true")):
        names = {n for n in env_of(render(helm, *sets)) if n.startswith("KPISTREAM_")}
        unknown = {n for n in names if n.removeprefix("KPISTREAM_").lower() not in SETTING_NAMES}
        assert unknown == set(), unknown  # a name the worker does not know: a typo in the chart


def test_secrets_are_referenced_never_inlined(helm: Path) -> None:
    docs = render(helm)
    env = env_of(docs)
    for name in SECRET_ENVS:
        assert "value" not in env[name], name
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "kpistream-credentials"
    assert "optional" not in env["KPISTREAM_REDIS_URL"]["valueFrom"]["secretKeyRef"]
    assert env["KPISTREAM_WEB_PEER_TOKEN"]["valueFrom"]["secretKeyRef"]["optional"] is True
    volumes = {v["name"]: v for v in one(docs, "StatefulSet")["spec"]["template"]["spec"]["volumes"]}
    assert volumes["kafka-tls"]["secret"]["secretName"] == "kpistream-credentials"


def test_chart_made_secret_holds_the_values_and_only_it(helm: Path) -> None:
    password, token = "s3cret-Pa55", "viewer-tok-123"
    docs = render(
        helm,
        "existingSecret=",
        f"secrets.kafkaSaslPassword={password}",
        "secrets.kafkaCaCert=-----BEGIN CERTIFICATE-----",
        "secrets.redisUrl=redis://:pw@redis:6379/0",
        f"secrets.webViewerToken={token}",
        "secrets.webPeerToken=peer-tok-456",
    )
    secret = one(docs, "Secret", FULLNAME)
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data == {
        "kafka-sasl-password": password,
        "kafka-ca.crt": "-----BEGIN CERTIFICATE-----",
        "redis-url": "redis://:pw@redis:6379/0",
        "web-viewer-token": token,
        "web-peer-token": "peer-tok-456",
    }
    for doc in docs:
        if doc["kind"] != "Secret":
            text = yaml.safe_dump(doc)
            assert password not in text and token not in text and ":pw@" not in text, doc["kind"]
    env = env_of(docs)
    assert env["KPISTREAM_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == FULLNAME
    annotations = one(docs, "StatefulSet")["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/secret" in annotations  # a changed secret rolls the pods


def test_strategies_file_is_a_configmap_of_the_repository_file(helm: Path, tmp_path: Path) -> None:
    docs = render(helm)
    cm = one(docs, "ConfigMap")
    content = cm["data"]["strategies.toml"]
    assert content.strip() == (REPO / "deploy" / "strategies.toml").read_text(encoding="utf-8").strip()
    (tmp_path / "strategies.toml").write_text(content, encoding="utf-8")
    assert load_book(tmp_path / "strategies.toml").default == "strategy-1"
    env = env_of(docs)
    mounts = {m["name"]: m["mountPath"] for m in container(docs)["volumeMounts"]}
    assert env["KPISTREAM_STRATEGIES"]["value"] == mounts["strategies"] + "/strategies.toml"
    volumes = {v["name"]: v for v in one(docs, "StatefulSet")["spec"]["template"]["spec"]["volumes"]}
    assert volumes["strategies"]["configMap"]["name"] == cm["metadata"]["name"]


def test_pod_disruption_budget_covers_the_workers(helm: Path) -> None:
    docs = render(helm)
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["maxUnavailable"] == 1
    labels = one(docs, "StatefulSet")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    kinds = {d["kind"] for d in render(helm, "podDisruptionBudget.enabled=false")}
    assert "PodDisruptionBudget" not in kinds


def test_service_monitor_only_when_enabled(helm: Path) -> None:
    assert not [d for d in render(helm) if d["kind"] == "ServiceMonitor"]
    docs = render(helm, "serviceMonitor.enabled=true", "serviceMonitor.labels.release=prom")
    sm = one(docs, "ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "prom"
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] == "web" and endpoint["path"] == "/metrics"
    web = one(docs, "Service", FULLNAME)
    assert sm["spec"]["selector"]["matchLabels"].items() <= web["metadata"]["labels"].items()
    assert web["spec"]["ports"][0]["name"] == "web"


def test_one_broker_plaintext_variant(helm: Path) -> None:
    docs = render(
        helm,
        "kafka.bootstrapServers={kafka:9092}",
        "kafka.securityProtocol=PLAINTEXT",
        "kafka.replicationFactor=1",
        "kafka.minInsyncReplicas=0",
        "replicaCount=1",
    )
    env = env_of(docs)
    assert not {"KPISTREAM_KAFKA_SASL_PASSWORD", "KPISTREAM_KAFKA_SSL_CAFILE"} & set(env)
    volumes = {v["name"] for v in one(docs, "StatefulSet")["spec"]["template"]["spec"]["volumes"]}
    assert "kafka-tls" not in volumes
    settings = settings_of(pod_env(docs, {"redis-url": "redis://redis:6379/0"}))
    assert settings.broker == "kafka://kafka:9092"
    assert settings.replication_factor == 1


def test_values_the_worker_would_refuse_are_refused_by_the_chart(helm: Path) -> None:
    assert "tableStandbyReplicas must be 0" in render_fails(helm, "tableStandbyReplicas=1")
    assert "securityProtocol" in render_fails(helm, "kafka.securityProtocol=SASL")
    # values.schema.json: a misspelled key or a value no setting takes is refused by name
    assert "replicaCont" in render_fails(helm, "replicaCont=2")
    assert "logFormat" in render_fails(helm, "logFormat=xml")
    assert "topicsMode" in render_fails(helm, "kafka.topicsMode=ensure")
    assert "kafka-sasl-password" in render_fails(helm, "existingSecret=", "secrets.redisUrl=redis://r:6379/0")
    assert "redis-url" in render_fails(helm, "existingSecret=", "secrets.kafkaSaslPassword=pw")
    assert "minInsyncReplicas" in render_fails(helm, "kafka.replicationFactor=1")
    own_secret = ("existingSecret=", "secrets.redisUrl=redis://r:6379/0", "secrets.kafkaSaslPassword=pw")
    viewer_only = ("kafka.ssl.caCert=false", "secrets.webViewerToken=t")
    assert "webPeerToken" in render_fails(helm, *own_secret, *viewer_only)


def test_https_web_port_changes_probes_monitor_and_peer_url(helm: Path) -> None:
    docs = render(helm, "web.scheme=HTTPS", "serviceMonitor.enabled=true")
    worker = container(docs)
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert worker[probe]["httpGet"]["scheme"] == "HTTPS", probe
    assert one(docs, "ServiceMonitor")["spec"]["endpoints"][0]["scheme"] == "https"
    assert env_of(docs)["KPISTREAM_WEB_ADVERTISED_URL"]["value"].startswith("https://$(POD_NAME).")

"""Monitoring files of deploy/: Prometheus rules and config, Alertmanager, the Grafana dashboard.

- `promtool check rules`, `promtool test rules` (deploy/prometheus/rules/kpistream.rules.test.yml)
  and `promtool check config`: skipped when promtool is missing, failed instead when `CI` is set
  (Debian's `prometheus` package, installed by `make setup` where apt is available).
- `amtool check-config` and routing of deploy/alertmanager/alertmanager.yml: skipped without amtool
  (Debian's `prometheus-alertmanager`).
- Every metric name and label used by the rules and the dashboard is one that `stream/metrics.py`
  exports (or a Prometheus built-in), with no external tool.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from stream.core.config import KpiConfig
from stream.metrics import Metrics

REPO = Path(__file__).resolve().parents[2]
PROM_DIR = REPO / "deploy" / "prometheus"
PROM_CONFIG = PROM_DIR / "prometheus.yml"
RULES = PROM_DIR / "rules" / "kpistream.rules.yml"
RULE_TESTS = PROM_DIR / "rules" / "kpistream.rules.test.yml"
AM_CONFIG = REPO / "deploy" / "alertmanager" / "alertmanager.yml"
AM_COMPOSE = REPO / "deploy" / "alertmanager" / "compose.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "kpistream.json"
DATASOURCES = REPO / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
ALERTING_DOC = REPO / "docs" / "alerting.md"

# Series Prometheus itself writes, with their labels (besides the target's job and instance).
BUILTINS: dict[str, set[str]] = {"up": set(), "ALERTS": {"*"}, "ALERTS_FOR_STATE": {"*"}}
# The standard collectors on the worker's registry (prometheus_client's process_*, python_*): not
# fields of Metrics, and not all required on the dashboard.
STANDARD_PREFIXES = ("process_", "python_")
TARGET_LABELS = {"job", "instance"}
# Used by the rules but not exported yet: asked for in docs/alerting.md ("What the rules need").
# Once stream/metrics.py has it, this entry is dead and can go.
PENDING: dict[str, set[str]] = {}  # metrics the rules may use before stream/metrics.py exports them
SEVERITIES = {"critical", "warning", "info"}


# ---------------------------------------------------------------------------------------- helpers
def _tool(name: str, *, required_in_ci: bool) -> str:
    path = shutil.which(name)
    if path is None:
        if required_in_ci and os.environ.get("CI"):
            pytest.fail(f"{name} is not installed but CI is set (install Debian's prometheus package)")
        pytest.skip(f"{name} not installed")
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, timeout=120)


def _exported() -> dict[str, set[str]]:
    """Metric name -> label names, as the worker's /metrics exposes them (counters with _total)."""
    metrics = Metrics.create()
    collectors: list[Any] = []
    for f in dataclasses.fields(metrics):
        value = getattr(metrics, f.name)
        if isinstance(value, dict):
            collectors.extend(value.values())
        elif hasattr(value, "_labelnames"):
            collectors.append(value)
    out: dict[str, set[str]] = {}
    for c in collectors:
        name = c._name + ("_total" if c._type == "counter" else "")
        out[name] = set(c._labelnames)
    registered = {
        fam.name + ("_total" if fam.type == "counter" else "")
        for fam in metrics.registry.collect()
        if not fam.name.startswith(STANDARD_PREFIXES)
    }
    assert registered <= set(out), "a metric of stream.metrics is not a field of Metrics"
    return out


def _standard() -> dict[str, set[str]]:
    """The standard collectors' series on the worker's registry, with their labels."""
    out: dict[str, set[str]] = {}
    for fam in Metrics.create().registry.collect():
        if fam.name.startswith(STANDARD_PREFIXES):
            for sample in fam.samples:
                out.setdefault(sample.name, set()).update(sample.labels)
    return out


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_SELECTOR = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)?\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)\b(?!\s*\()")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "inf", "nan"}


def promql_selectors(expr: str) -> list[tuple[str, set[str]]]:
    """(metric name, label names matched) of every series selector in a PromQL expression."""
    text = _VARIABLE.sub("x", _STRING.sub('""', expr))
    found: list[tuple[str, set[str]]] = []
    for m in _SELECTOR.finditer(text):
        if m.group(1) and m.group(1) not in _KEYWORDS:
            found.append((m.group(1), set(_MATCHER.findall(m.group(2)))))
    text = _SELECTOR.sub(lambda m: "" if m.group(1) else " ", text)
    text = _GROUPING.sub(" ", _RANGE.sub(" ", text))
    found.extend((name, set()) for name in _IDENT.findall(text) if name not in _KEYWORDS)
    return found


def test_promql_selectors_parser() -> None:
    expr = (
        'sum by (job, reason) (increase(callcenter_dead_letters_total{reason!~"a|b"}[5m])) > 0\n'
        'and on (queue) x_ratio{period="$period", queue=~"${queue}"} > 1e-3 or up offset 5m'
    )
    assert sorted(promql_selectors(expr), key=lambda t: t[0]) == [
        ("callcenter_dead_letters_total", {"reason"}),
        ("up", set()),
        ("x_ratio", {"period", "queue"}),
    ]


def _check_selectors(exprs: list[str], where: str) -> set[str]:
    """Every selector names an exported (or built-in, or pending) metric with its own labels."""
    exported = _exported()
    known = {**exported, **_standard(), **BUILTINS, **PENDING}
    used: set[str] = set()
    for expr in exprs:
        selectors = promql_selectors(expr)
        assert selectors, f"{where}: no metric in {expr!r}"
        for name, labels in selectors:
            assert name in known, f"{where}: {name} (in {expr!r}) is not a metric of stream/metrics.py"
            allowed = known[name] | TARGET_LABELS
            if "*" not in allowed:
                assert labels <= allowed, f"{where}: {name} has no label {labels - allowed} ({expr!r})"
            used.add(name)
    return used


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _alert_rules() -> list[dict[str, Any]]:
    return [r for g in _load_yaml(RULES)["groups"] for r in g["rules"] if "alert" in r]


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


# ---------------------------------------------------------------------------------------- promtool
def test_rules_pass_promtool_check() -> None:
    promtool = _tool("promtool", required_in_ci=True)
    proc = _run(promtool, "check", "rules", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rules_unit_tests_pass() -> None:
    promtool = _tool("promtool", required_in_ci=True)
    proc = _run(promtool, "test", "rules", str(RULE_TESTS))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_prometheus_config_and_its_rules_pass_promtool() -> None:
    promtool = _tool("promtool", required_in_ci=True)
    proc = _run(promtool, "check", "config", str(PROM_CONFIG))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 rule files found" in proc.stdout


def test_rule_unit_tests_fail_when_a_threshold_is_inclusive(tmp_path: Path) -> None:
    """The promtool tests do catch `>=` where the contract says "above"."""
    promtool = _tool("promtool", required_in_ci=True)
    rules = RULES.read_text(encoding="utf-8")
    assert 'callcenter_lost_call_ratio{period="rolling", scope="queue"} > 0.10' in rules
    (tmp_path / RULES.name).write_text(rules.replace("> 0.10", ">= 0.10"), encoding="utf-8")
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    proc = _run(promtool, "test", "rules", str(tmp_path / RULE_TESTS.name))
    assert proc.returncode != 0
    assert 'queue="support"' in proc.stdout + proc.stderr


# ---------------------------------------------------------------------------------------- rules
def test_prometheus_config_loads_the_rules_file_only() -> None:
    config = _load_yaml(PROM_CONFIG)
    assert config["rule_files"] == ["rules/kpistream.rules.yml"]  # not the *.test.yml next to it
    targets = [
        t for am in config["alerting"]["alertmanagers"] for sc in am["static_configs"] for t in sc["targets"]
    ]
    assert targets == ["alertmanager:9093"]


def test_every_alert_has_severity_annotations_runbook_and_a_test() -> None:
    doc = ALERTING_DOC.read_text(encoding="utf-8")
    anchors = {_slug(h) for h in re.findall(r"^#+ (.+)$", doc, flags=re.M)}
    tested = {t["alertname"] for case in _load_yaml(RULE_TESTS)["tests"] for t in case["alert_rule_test"]}
    rules = _alert_rules()
    names = {r["alert"] for r in rules}
    assert names == {
        "CallCenterLostCallRateHigh",
        "CallCenterAbandonRateHigh",
        "CallCenterServiceLevelLow",
        "CallCenterAttritionMonthlyHigh",
        "CallCenterAttritionAnnualHigh",
        "KpistreamWorkerDown",
        "KpistreamDeadLettersIncreasing",
        "KpistreamSinkErrors",
        "KpistreamWallboardStale",
        "KpistreamConsumerLagHigh",
    }
    assert names <= tested
    for rule in rules:
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), rule["alert"]
        page, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert page == "docs/alerting.md" and anchor == rule["alert"].lower(), rule["alert"]
        assert anchor in anchors, f"docs/alerting.md has no section {rule['alert']}"


def test_rule_thresholds_are_the_product_defaults() -> None:
    """The rules hard-code the defaults of stream/core/config.py (docs/alerting.md says so)."""
    cfg = KpiConfig()
    by_name: dict[str, list[str]] = {}
    for rule in _alert_rules():
        by_name.setdefault(rule["alert"], []).append(rule["expr"])

    def numbers(exprs: list[str], op: str) -> set[float]:
        return {float(v) for e in exprs for v in re.findall(rf"\s{re.escape(op)}\s*([0-9.]+)", e)}

    assert numbers(by_name["CallCenterLostCallRateHigh"], ">") == {cfg.lcr_threshold}
    assert numbers(by_name["CallCenterAbandonRateHigh"], ">") == {cfg.car_threshold}
    assert numbers(by_name["CallCenterServiceLevelLow"], "<") == {cfg.sl_target}
    for name in ("CallCenterLostCallRateHigh", "CallCenterAbandonRateHigh", "CallCenterServiceLevelLow"):
        assert numbers(by_name[name], ">=") == {float(cfg.alert_min_offered)}, name
    severities = {
        (r["alert"], "center" if 'scope="center"' in r["expr"] else "queue"): r["labels"]["severity"]
        for r in _alert_rules()
        if r["alert"] in ("CallCenterLostCallRateHigh", "CallCenterAbandonRateHigh")
    }
    assert severities == {
        ("CallCenterLostCallRateHigh", "queue"): "warning",
        ("CallCenterLostCallRateHigh", "center"): "critical",
        ("CallCenterAbandonRateHigh", "queue"): "warning",
        ("CallCenterAbandonRateHigh", "center"): "critical",
    }


def test_rules_use_exported_metrics_and_labels() -> None:
    used = _check_selectors([r["expr"] for r in _alert_rules()], "rules")
    for series in (s["series"] for case in _load_yaml(RULE_TESTS)["tests"] for s in case["input_series"]):
        _check_selectors([series], "rule tests")
    assert not (used & set(PENDING)) - set(_exported()), "rules use a metric stream/metrics.py lacks"


def test_scorecard_figures_alerted_on_exist() -> None:
    """The attrition rules use the dimension/figure names the Prometheus sink writes."""
    source = (REPO / "stream" / "core" / "scorecard.py").read_text(encoding="utf-8")
    for rule in _alert_rules():
        for dim, fig in re.findall(r'dimension="(\w+)", figure="(\w+)"', rule["expr"]):
            assert f'"{dim}": {{' in source, dim
            assert f'"{fig}":' in source, fig


# ---------------------------------------------------------------------------------------- alertmanager
def test_alertmanager_config_passes_amtool() -> None:
    amtool = _tool("amtool", required_in_ci=False)
    proc = _run(amtool, "check-config", str(AM_CONFIG))
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=critical", "alertname=CallCenterLostCallRateHigh", "scope=center"], "on-call"),
        (["severity=critical", "alertname=KpistreamWorkerDown"], "on-call"),
        (["severity=warning", "alertname=CallCenterAbandonRateHigh", "scope=queue"], "supervisors"),
        (["severity=info", "alertname=CallCenterAttritionMonthlyHigh"], "management"),
        (["alertname=Unknown"], "supervisors"),
    ],
)
def test_alertmanager_routes_by_severity(labels: list[str], receiver: str) -> None:
    amtool = _tool("amtool", required_in_ci=False)
    proc = _run(amtool, "config", "routes", "test", f"--config.file={AM_CONFIG}", *labels)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == receiver


def test_alertmanager_inhibits_queue_alerts_under_a_centre_alert() -> None:
    config = _load_yaml(AM_CONFIG)
    names = {r["alert"] for r in _alert_rules()}
    centre = [
        r
        for r in config["inhibit_rules"]
        if 'scope="center"' in r["source_matchers"] and r["equal"] == ["alertname"]
    ]
    assert len(centre) == 1
    assert centre[0]["target_matchers"] == ['scope="queue"']
    source_names = re.search(r'alertname=~"([^"]+)"', " ".join(centre[0]["source_matchers"]))
    assert source_names is not None
    assert set(source_names.group(1).split("|")) == {
        "CallCenterLostCallRateHigh",
        "CallCenterAbandonRateHigh",
        "CallCenterServiceLevelLow",
    }
    for rule in config["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            m = re.match(r'alertname=~?"([^"]+)"', matcher)
            if m:
                assert set(m.group(1).split("|")) <= names, matcher
    severities = {r["labels"]["severity"] for r in _alert_rules()}
    routed = {m for route in config["route"]["routes"] for m in route["matchers"]}
    assert {f'severity="{s}"' for s in severities} <= routed


def test_alertmanager_compose_override_is_valid_compose() -> None:
    """deploy/alertmanager/compose.yml merged over docker-compose.yml is valid Compose."""
    schema = json.loads((REPO / "tests" / "data" / "compose-spec.json").read_text(encoding="utf-8"))
    base = _load_yaml(REPO / "docker-compose.yml")
    override = _load_yaml(AM_COMPOSE)

    def merge(a: Any, b: Any) -> Any:
        if isinstance(a, dict) and isinstance(b, dict):
            out = copy.deepcopy(a)
            for k, v in b.items():
                out[k] = merge(a[k], v) if k in a else v
            return out
        return b

    merged = merge(base, override)
    jsonschema.validators.validator_for(schema)(schema).validate(merged)
    am = merged["services"]["alertmanager"]
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in am["command"]
    assert am["volumes"][0] == "./deploy/alertmanager:/etc/alertmanager:ro"
    assert all(str(p).startswith("127.0.0.1:") for p in am["ports"])
    assert merged["services"]["prometheus"]["depends_on"]["alertmanager"] == {"condition": "service_healthy"}
    assert merged["services"]["prometheus"]["depends_on"]["worker"] == {"condition": "service_started"}
    assert "./deploy/prometheus:/etc/prometheus:ro" in base["services"]["prometheus"]["volumes"]


# ---------------------------------------------------------------------------------------- grafana
def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def _panels() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in _dashboard()["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def _dashboard_exprs() -> list[str]:
    exprs = [t["expr"] for p in _panels() for t in p.get("targets", [])]
    for var in _dashboard()["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
            assert m, query
            exprs.append(m.group(1))
    return exprs


def test_dashboard_uses_exported_metrics_and_labels() -> None:
    used = _check_selectors(_dashboard_exprs(), "dashboard")
    assert not used & set(PENDING) - set(_exported()), "the dashboard must not use a metric not exported yet"
    # every metric of stream/metrics.py is on the dashboard (a pending one may be added later)
    exported = set(_exported()) - set(PENDING)
    assert exported <= used, sorted(exported - used)


def _datasource_refs(node: Any) -> list[dict[str, Any]]:
    """Every `datasource` object anywhere in the dashboard (panels, targets, variables)."""
    if isinstance(node, dict):
        found = [node["datasource"]] if isinstance(node.get("datasource"), dict) else []
        return found + [r for v in node.values() for r in _datasource_refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _datasource_refs(v)]
    return []


def test_dashboard_imports_into_any_grafana() -> None:
    """The Prometheus is a template variable, never a fixed uid: importing needs no edit."""
    dash = _dashboard()
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert dash["templating"]["list"][0]["name"] == "datasource"  # resolved before the queries using it
    refs = _datasource_refs(dash)
    prometheus = [r for r in refs if r.get("type") == "prometheus"]
    assert prometheus and all(r == {"type": "prometheus", "uid": "${datasource}"} for r in prometheus)
    assert {r["uid"] for r in refs} <= {"${datasource}", "-- Grafana --"}  # the built-in annotations
    text = DASHBOARD.read_text(encoding="utf-8")
    provisioned_uid = _load_yaml(DATASOURCES)["datasources"][0]["uid"]
    assert f'"uid": "{provisioned_uid}"' not in text
    assert "__inputs" not in dash and "id" not in dash  # no export leftovers tied to one Grafana


def test_dashboard_shows_a_stale_wallboard_and_the_lag() -> None:
    by_title = {p["title"]: p for p in _panels()}
    age = by_title["Wallboard data age"]
    assert age["targets"][0]["expr"].startswith("kpistream_data_freshness_seconds")
    steps = [s["value"] for s in age["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    stale_rule = next(r for r in _alert_rules() if r["alert"] == "KpistreamWallboardStale")
    assert steps == [None, 300] and "kpistream_data_freshness_seconds > 300" in stale_rule["expr"]
    assert by_title["Consumer lag by topic"]["targets"][0]["expr"].startswith(
        "sum by (topic) (kpistream_consumer_lag"
    )
    assert "partition" in by_title["Consumer lag by partition"]["targets"][0]["legendFormat"]
    assert "{{version}}" in by_title["Worker versions"]["targets"][0]["legendFormat"]


def test_dashboard_panels() -> None:
    dash = _dashboard()
    panels = _panels()
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for p in panels:
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}", p["title"]
            assert p["targets"], p["title"]
    by_title = {p["title"]: p for p in panels}
    for title, metric, limit in (
        ("Service level by queue", "callcenter_service_level_ratio", 0.8),
        ("Lost call rate by queue", "callcenter_lost_call_ratio", 0.1),
        ("Call abandon rate by queue", "callcenter_abandon_ratio", 0.05),
        ("Answer rate by queue", "callcenter_answer_ratio", None),
    ):
        p = by_title[title]
        expr = p["targets"][0]["expr"]
        assert expr.startswith(metric + "{") and 'scope="queue"' in expr and "period=" in expr, expr
        assert p["targets"][0]["legendFormat"] == "{{queue}}"
        steps = [
            s["value"] for s in p["fieldConfig"]["defaults"]["thresholds"]["steps"] if s["value"] is not None
        ]
        if limit is not None:
            assert steps and abs(steps[0] - limit) < 1e-5, (title, steps)
    board = by_title["Operator leaderboard (rolling hour)"]
    assert board["type"] == "table"
    assert 'callcenter_operator_score{period="rolling"}' in board["targets"][0]["expr"]
    assert board["targets"][0]["instant"] is True
    assert by_title["Active KPI alerts (kpistream)"]["targets"][0]["expr"].startswith(
        "callcenter_alert_active"
    )
    assert any("callcenter_dead_letters_total" in t["expr"] for p in panels for t in p.get("targets", []))
    assert any(
        t["expr"] == "callcenter_scorecard_value" and p["type"] == "table"
        for p in panels
        for t in p.get("targets", [])
    )
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert [o["value"] for o in variables["period"]["options"]] == ["rolling", "day", "month"]

"""A worker bound to 0.0.0.0 (a Kubernetes pod) tells its peers a URL they can reach."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.config import load_settings
from stream.errors import ConfigError


def test_advertised_url_becomes_the_peers_url(tmp_path: Path) -> None:
    from agents.pipeline import make_app

    env = {
        "KPISTREAM_WEB_HOST": "0.0.0.0",
        "KPISTREAM_WEB_ADVERTISED_URL": "http://kpistream-1.kpistream-headless.ops.svc:6066",
        "KPISTREAM_DATA_DIR": str(tmp_path),
    }
    app = make_app(load_settings(env=env))
    assert str(app.conf.canonical_url) == "http://kpistream-1.kpistream-headless.ops.svc:6066"
    assert app.conf.web_bind == "0.0.0.0"


def test_without_it_the_url_is_host_and_port(tmp_path: Path) -> None:
    from agents.pipeline import make_app

    app = make_app(load_settings(env={"KPISTREAM_WEB_PORT": "7001", "KPISTREAM_DATA_DIR": str(tmp_path)}))
    assert str(app.conf.canonical_url) == "http://127.0.0.1:7001"


def test_advertised_url_must_be_http() -> None:
    with pytest.raises(ConfigError, match="web_advertised_url"):
        load_settings(env={"KPISTREAM_WEB_ADVERTISED_URL": "kpistream-0:6066"})

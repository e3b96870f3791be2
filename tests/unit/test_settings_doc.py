"""docs/settings.md is exactly what the generator makes of the settings, and every setting is described."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from stream.config import Settings
from stream.core.config import KpiConfig
from stream.devtools import settings_doc
from stream.devtools.settings_doc import DOC_PATH, REGENERATE


def test_every_setting_has_a_description() -> None:
    missing = settings_doc.undocumented()
    assert not missing, (
        f"settings without a description: {missing}; declare them with "
        "setting(default, 'one-line description', secret=...) in stream/config.py "
        f"(kpi_setting in stream/core/config.py), then run: {REGENERATE}"
    )


def test_every_field_is_on_the_page() -> None:
    names = {r.name for r in [*settings_doc.settings_rows(), *settings_doc.kpi_rows()]}
    top = {f.name for f in fields(Settings)} - {"kpi"}
    kpi_only = {f.name for f in fields(KpiConfig)} - top  # KpiConfig.tz is the top-level tz
    assert names == top | kpi_only


def test_settings_page_is_generated_from_the_definitions() -> None:
    current = DOC_PATH.read_text(encoding="utf-8") if DOC_PATH.exists() else ""
    assert current == settings_doc.render(), f"docs/settings.md is stale; run: {REGENERATE}"


def test_secret_settings_are_marked_on_the_page() -> None:
    page = settings_doc.render()
    for row in settings_doc.settings_rows():
        line = next(line for line in page.splitlines() if line.startswith(f"| `{row.name}` |"))
        assert ("| yes |" in line) == row.secret, line


def test_check_mode_reports_a_stale_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "settings.md"
    stale.write_text("# Settings\n", encoding="utf-8")
    assert settings_doc.main(["--check", "--out", str(stale)]) == 1
    assert REGENERATE in capsys.readouterr().err
    assert settings_doc.main(["--out", str(stale)]) == 0
    assert settings_doc.main(["--check", "--out", str(stale)]) == 0
    assert stale.read_text(encoding="utf-8") == settings_doc.render()

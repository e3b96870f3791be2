"""The wall around Faust's private API: one module, a version range, and digests of what we copied."""

from __future__ import annotations

import re
from pathlib import Path

import faust
import pytest

from agents import faust_compat
from stream.errors import KpiStreamError

REPO = Path(__file__).resolve().parents[3]

# The private Faust names kpistream relies on; only agents/faust_compat.py may spell them.
PRIVATE = re.compile(
    r"\b(_drain_messages|_tp_to_callback_lock|_tp_index|_read_offset|_n_acked|_add_gap|_finalized"
    r"|_errors|_new_changelog_topic|_set_current_event|_key_partition|_commit_every)\b"
)


def test_the_installed_faust_has_the_sources_we_copied_and_rely_on() -> None:
    """Fails after a Faust upgrade that changed any of them: re-read it, adapt faust_compat, update."""
    assert faust_compat.changed_sources() == []


def test_a_changed_source_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    name = next(iter(faust_compat.WATCHED))
    monkeypatch.setitem(faust_compat.WATCHED, name, "0" * 64)
    assert faust_compat.changed_sources() == [name]


@pytest.mark.parametrize("version", ["0.15.3", "0.15.4", "0.15.10"])
def test_supported_versions_start(version: str) -> None:
    assert faust_compat.check_faust_version(version) == version


@pytest.mark.parametrize("version", ["0.15.2", "0.14.9", "0.16.0", "0.16.0rc1", "1.0.0"])
def test_unsupported_versions_are_one_clear_error(version: str) -> None:
    with pytest.raises(KpiStreamError, match=rf"faust-streaming {re.escape(version)} is not supported"):
        faust_compat.check_faust_version(version)


def test_the_installed_version_is_supported() -> None:
    assert faust_compat.check_faust_version() == faust.__version__


def test_no_private_faust_name_outside_the_compat_module() -> None:
    offenders = []
    for path in sorted([*REPO.glob("agents/**/*.py"), *REPO.glob("stream/**/*.py")]):
        if path.name == "faust_compat.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if PRIVATE.search(code) and not code.lstrip().startswith(("Faust's", "`")):
                offenders.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert offenders == []


def test_changelog_topic_is_the_one_faust_builds_with_our_serializers() -> None:
    app = faust.App("compat-test", broker="kafka://localhost:1")
    ours = faust_compat.changelog_topic(app, "t1", 4, "raw", "raw")
    table = app.Table("t2", partitions=4)
    table.key_serializer = table.value_serializer = "raw"
    faust_built = table._new_changelog_topic()
    assert ours.get_topic_name() == "compat-test-t1-changelog"
    assert faust_built.get_topic_name() == "compat-test-t2-changelog"
    for attr in (
        "key_serializer",
        "value_serializer",
        "partitions",
        "compacting",
        "deleting",
        "retention",
        "acks",
        "internal",
        "maxsize",
        "allow_empty",
    ):
        assert getattr(ours, attr) == getattr(faust_built, attr), attr


def test_a_table_built_with_it_uses_it() -> None:
    app = faust.App("compat-test2", broker="kafka://localhost:1")
    topic = faust_compat.changelog_topic(app, "t", 2, "raw", "raw")
    table = app.Table("t", partitions=2, changelog_topic=topic)
    assert table.changelog_topic is topic
    assert table.changelog_topic_name == "compat-test2-t-changelog"


def test_the_worker_refuses_an_unsupported_faust_with_one_error_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import argparse

    from stream.commands import worker

    monkeypatch.setattr(faust, "__version__", "0.16.1")
    with caplog.at_level("ERROR"):
        assert worker.run(argparse.Namespace()) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [
        "faust-streaming 0.16.1 is not supported: kpistream needs faust-streaming>=0.15.3,<0.16 "
        "(agents/faust_compat.py uses its private API)"
    ]

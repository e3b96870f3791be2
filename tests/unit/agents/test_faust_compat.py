"""The wall around Faust's private API: one module, a version range, and digests of what we copied."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import aiokafka
import faust
import mode
import pytest

from agents import faust_compat
from stream.errors import KpiStreamError

REPO = Path(__file__).resolve().parents[3]

COMPAT = Path(faust_compat.__file__)
# Faust's documented custom-codec hook: a codec subclasses `faust.serializers.codecs.Codec` and
# implements `_dumps`/`_loads` (the faust_compat module rule names this one exception).
ALLOWED = {"agents/codecs.py": {"_dumps", "_loads"}}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _library_source() -> str:
    return "\n".join(
        p.read_text(errors="replace")
        for pkg in (faust, mode, aiokafka)
        for p in Path(str(pkg.__file__)).parent.rglob("*.py")
    )


def _names_used(tree: ast.AST) -> set[str]:
    """The private names a module touches: attributes, methods it defines (overrides), getattr strings."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            out.add(node.attr)
        elif isinstance(node, ast.ClassDef):  # a method of a subclass may override Faust's
            out |= {f.name for f in node.body if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)}
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.add(node.value)
    return {n for n in out if _private(n) and n.isidentifier()}


def private_faust_names() -> set[str]:
    """Every private name faust_compat touches (or watches) that is Faust's, mode's or aiokafka's.

    Derived from faust_compat's own source and WATCHED, so a name it starts using is guarded at once;
    its own helpers (`_current`, `_track`, ...) are not names of those libraries and stay out.
    """
    names = _names_used(ast.parse(COMPAT.read_text()))
    names |= {part for key in faust_compat.WATCHED for part in key.split(":")[1].split(".") if _private(part)}
    lib = _library_source()
    return {n for n in names if re.search(rf"(?:\bdef |\.){re.escape(n)}\b", lib)}


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


def test_the_guarded_names_include_what_faust_compat_relies_on() -> None:
    names = private_faust_names()
    for name in ("_drain_messages", "_read_offset", "_committed_offset", "_schedule_shutdown", "_stopped"):
        assert name in names
    assert not names & {"_current", "_track", "_version_tuple"}  # faust_compat's own helpers


def test_no_private_faust_name_outside_the_compat_module() -> None:
    guarded = private_faust_names() | {n for allowed in ALLOWED.values() for n in allowed}
    offenders = []
    for path in sorted(
        [*REPO.glob("agents/**/*.py"), *REPO.glob("stream/**/*.py"), *REPO.glob("schemas/**/*.py")]
    ):
        if path == COMPAT:
            continue
        rel = path.relative_to(REPO).as_posix()
        used = _names_used(ast.parse(path.read_text())) & guarded
        offenders += [f"{rel}: {name}" for name in sorted(used - ALLOWED.get(rel, set()))]
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

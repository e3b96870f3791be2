"""The worker runs on jemalloc when the system has it: the plan, and a real second start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stream.allocator import (
    MALLOC_CONF,
    MARKER,
    find_jemalloc,
    jemalloc_loaded,
    plan,
    use_configured_allocator,
)
from stream.config import load_settings
from stream.errors import ConfigError

LIB = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"


def test_auto_with_the_library_starts_again_under_jemalloc_keeping_the_environment() -> None:
    p = plan("auto", {"PATH": "/bin", "LD_PRELOAD": "/opt/other.so"}, LIB)
    assert p.env is not None
    assert p.env["PATH"] == "/bin"
    assert p.env["LD_PRELOAD"] == f"{LIB} /opt/other.so"  # ours first, the user's kept
    assert p.env["PYTHONMALLOC"] == "malloc"  # Python's objects go to jemalloc, not to pymalloc
    assert p.env["MALLOC_CONF"] == MALLOC_CONF
    assert p.env[MARKER] == "1"


def test_an_operators_malloc_conf_is_kept() -> None:
    p = plan("jemalloc", {"MALLOC_CONF": "narenas:1"}, LIB)
    assert p.env is not None and p.env["MALLOC_CONF"] == "narenas:1"


def test_nothing_is_done_twice_nor_over_the_environment_nor_when_python_is_chosen() -> None:
    assert plan("auto", {MARKER: "1", "LD_PRELOAD": LIB}, LIB).env is None
    assert plan("auto", {"LD_PRELOAD": "/x/libjemalloc.so.2", "PYTHONMALLOC": "malloc"}, LIB).env is None
    assert plan("python", {}, LIB).env is None


def test_without_the_library_auto_runs_on_python_and_jemalloc_refuses_to_start() -> None:
    p = plan("auto", {}, None)
    assert p.env is None and "apt-get install libjemalloc2" in p.reason
    with pytest.raises(ConfigError, match="allocator"):
        plan("jemalloc", {}, None)


def test_the_setting_is_validated_once_with_the_others() -> None:
    assert load_settings(env={}).allocator == "auto"
    assert load_settings(env={"KPISTREAM_ALLOCATOR": "python"}).allocator == "python"
    with pytest.raises(ConfigError, match="allocator"):
        load_settings(env={"KPISTREAM_ALLOCATOR": "tcmalloc"})


def test_the_second_start_gets_the_same_arguments_and_the_new_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (MARKER, "LD_PRELOAD", "PYTHONMALLOC"):
        monkeypatch.delenv(name, raising=False)
    calls: list[tuple[str, list[str], dict[str, str]]] = []
    assert use_configured_allocator("auto", execve=lambda *a: calls.append(a), find=lambda: LIB) == "python"
    assert len(calls) == 1
    exe, argv, env = calls[0]
    assert exe == sys.executable and argv == list(sys.orig_argv)
    assert env["LD_PRELOAD"] == LIB and env[MARKER] == "1"
    # Told to keep Python's allocator, or without the library: nothing is executed.
    assert use_configured_allocator("python", execve=lambda *a: calls.append(a), find=lambda: LIB) == "python"
    assert use_configured_allocator("auto", execve=lambda *a: calls.append(a), find=lambda: None) == "python"
    assert len(calls) == 1


def test_a_failed_second_start_goes_on_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MARKER, raising=False)

    def fail(*_: object) -> None:
        raise OSError("exec format error")

    assert use_configured_allocator("auto", execve=fail, find=lambda: LIB) == "python"


@pytest.mark.skipif(
    find_jemalloc() is None or not Path("/proc/self/maps").exists(), reason="needs libjemalloc2"
)
def test_a_real_program_starts_again_once_under_jemalloc_with_the_same_pid(tmp_path: Path) -> None:
    code = (
        "import os, sys\n"
        "from stream.allocator import use_configured_allocator, jemalloc_loaded\n"
        "print('start', os.getpid(), file=sys.stderr, flush=True)\n"
        "got = use_configured_allocator('auto')\n"
        "print(got, os.getpid(), jemalloc_loaded(), os.environ.get('PYTHONMALLOC'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in (MARKER, "LD_PRELOAD", "PYTHONMALLOC")}
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, check=True
    )
    starts = [line.split()[1] for line in r.stderr.splitlines() if line.startswith("start ")]
    assert len(starts) == 2 and starts[0] == starts[1]  # started twice, one process
    assert r.stdout.split() == ["jemalloc", starts[0], "True", "malloc"]
    assert not jemalloc_loaded()  # this test process itself is left alone

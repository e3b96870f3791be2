"""The worker's memory allocator: jemalloc under Python's objects when the system has it.

Measured on the memory step (5,000 operators x 40 days, docs/benchmarks.md "The allocator"):
CPython's own allocator (pymalloc) gives an arena of 1 MiB back only when every block in it is
free. The worker's state is allocated between the short-lived objects of its flushes, so about
80-100 MB of empty pools stayed resident in arenas that a few live objects kept. With
`PYTHONMALLOC=malloc` and jemalloc, which gives free pages back one by one from a background
thread, the loaded RSS went from 400 to 345 MB at the same speed; glibc's malloc in that role
made it worse (486 MB: a header per object) and slower.

Rule: both variables are read when a process starts, so `kpistream worker` started as a program
executes itself again, once, at its start (same PID, same arguments) with them set. The marker
variable stops a second time; `allocator = "python"` keeps Python's allocator; a system without
libjemalloc runs on Python's allocator with one warning (`"auto"`, the default) or does not start
(`"jemalloc"`).
"""

from __future__ import annotations

import contextlib
import ctypes.util
import logging
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from stream.config import ALLOCATORS
from stream.errors import ConfigError

log = logging.getLogger(__name__)

MARKER = "KPISTREAM_ALLOCATOR_EXEC"  # set in the environment of the re-executed process
LIBRARY = "libjemalloc.so.2"
# Decay: freed pages go back within a second, from jemalloc's own thread (not on the event loop);
# muzzy 0: returned with MADV_DONTNEED, so the RSS shows it at once (MADV_FREE pages stay counted
# until the kernel needs them). Measured against dirty_decay_ms:0 with 2 arenas: same RSS, slower.
MALLOC_CONF = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0"
_DIRS = (
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/usr/local/lib",
    "/opt/homebrew/lib",
)


def find_jemalloc(dirs: tuple[str, ...] = _DIRS) -> str | None:
    """The path of libjemalloc.so.2 in the usual library directories (else the loader's name)."""
    for d in dirs:
        p = Path(d) / LIBRARY
        if p.is_file():
            return str(p)
    return ctypes.util.find_library("jemalloc")


@dataclass(frozen=True, slots=True)
class AllocatorPlan:
    """What the worker does at its start: nothing (`env` None) or execute again with `env`."""

    env: dict[str, str] | None
    reason: str
    runs: str = "python"  # the allocator the process runs on when `env` is None


def plan(choice: str, env: Mapping[str, str], library: str | None) -> AllocatorPlan:
    """Decide from the setting (one of ALLOCATORS), the environment and the jemalloc found (None: none)."""
    assert choice in ALLOCATORS, choice  # validated with the settings
    if choice == "python":
        return AllocatorPlan(None, "Python's allocator (allocator = python)")
    if env.get(MARKER):
        return AllocatorPlan(None, f"jemalloc ({env.get('LD_PRELOAD', '')})", "jemalloc")
    if "jemalloc" in env.get("LD_PRELOAD", "") and env.get("PYTHONMALLOC") == "malloc":
        return AllocatorPlan(None, "jemalloc (set by the environment)", "jemalloc")
    if library is None:
        if choice == "jemalloc":
            raise ConfigError(
                "allocator",
                f"jemalloc asked for, but {LIBRARY} is not installed (apt-get install libjemalloc2)",
            )
        return AllocatorPlan(None, f"Python's allocator: no {LIBRARY} here (apt-get install libjemalloc2)")
    preload = " ".join(p for p in (library, env.get("LD_PRELOAD", "")) if p)
    new = dict(env)
    new.update(LD_PRELOAD=preload, PYTHONMALLOC="malloc", MALLOC_CONF=env.get("MALLOC_CONF", MALLOC_CONF))
    new[MARKER] = "1"
    return AllocatorPlan(new, f"jemalloc ({library})")


def jemalloc_loaded(maps: Path = Path("/proc/self/maps")) -> bool:
    """Whether jemalloc is mapped into this process (False where /proc is missing)."""
    try:
        return "libjemalloc" in maps.read_text()
    except OSError:
        return False


def use_configured_allocator(
    choice: str,
    *,
    execve: Callable[[str, list[str], dict[str, str]], object] = os.execve,
    find: Callable[[], str | None] = find_jemalloc,
) -> str:
    """Execute this program again under jemalloc when the plan says so; else say what runs.

    Call it only at the start of a process that was started as the `kpistream` program (it runs
    `sys.orig_argv` again), before threads or connections exist. Returns "jemalloc" or "python".
    """
    p = plan(choice, os.environ, find())
    if p.env is None:
        if os.environ.get(MARKER) and not jemalloc_loaded():
            log.warning("memory allocator: jemalloc was preloaded but is not mapped; Python's runs")
            return "python"
        running = p.runs
        (log.info if running == "jemalloc" or choice == "python" else log.warning)(
            "memory allocator: %s", p.reason
        )
        return running
    log.info("memory allocator: %s; starting again under it", p.reason)
    for stream in (*logging.getLogger().handlers, sys.stdout, sys.stderr):  # nothing lost in the exec
        with contextlib.suppress(ValueError, OSError):  # a stream already closed
            stream.flush()
    try:
        execve(sys.executable, list(sys.orig_argv), p.env)
    except OSError as exc:  # the process goes on as it is
        log.warning("memory allocator: could not start again under jemalloc (%s); Python's runs", exc)
    return "python"

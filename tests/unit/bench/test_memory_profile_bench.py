"""The pure parts of the memory profile (stream/bench/memory_profile.py): who owns an allocation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

from stream.bench.memory_profile import HOOK, STDLIB, growth_by_owner, library_of, owner_of, rss_parts_mb

SITE = "/work/.venv/lib/python3.11/site-packages"


def traceback(*innermost_first: tuple[str, int]) -> tracemalloc.Traceback:
    # tracemalloc's own frame tuples come most recent first; Traceback reverses them.
    return tracemalloc.Traceback(innermost_first)


def test_the_innermost_kpistream_line_owns_an_allocation_made_in_a_library() -> None:
    tb = traceback(
        (f"{SITE}/aiokafka/record/default_records.py", 120),
        ("/work/main/agents/batching.py", 88),
        ("/work/main/stream/core/entity.py", 40),
    )
    assert owner_of(tb) == ("agents/batching.py:88", "aiokafka")


def test_an_allocation_with_no_kpistream_frame_belongs_to_its_library_only() -> None:
    tb = traceback((f"{SITE}/faust/tables/base.py", 300), (f"{STDLIB}asyncio/events.py", 80))
    assert owner_of(tb) == ("-", "faust")


def test_a_site_packages_path_named_like_a_package_of_ours_is_a_library() -> None:
    # An installed copy of a package with a `stream/` directory is not kpistream's source.
    assert library_of(f"{SITE}/somelib/stream/x.py") == "somelib"
    assert library_of(f"{SITE}/six.py") == "six"
    assert library_of("/work/main/schemas/events.py") == "kpistream"
    assert library_of(f"{STDLIB}json/decoder.py") == "python stdlib"
    assert library_of("/work/main/tests/unit/test_x.py") == "other"
    assert library_of("<frozen importlib._bootstrap>") == "<frozen importlib._bootstrap>"


def test_growth_is_the_loaded_snapshot_minus_the_idle_one_by_owner() -> None:
    tracemalloc.start(5)
    try:
        idle = tracemalloc.take_snapshot()
        held = [bytearray(64 * 1024) for _ in range(32)]  # 2 MiB, allocated from this test module
        loaded = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    out = growth_by_owner(idle, loaded, top=5)
    assert len(held) == 32
    assert out["traced_growth_mb"] >= 2.0
    assert out["growth_by_library_mb"]["other"] >= 2.0  # a test module is not kpistream's
    assert abs(out["traced_loaded_mb"] - out["traced_idle_mb"] - out["traced_growth_mb"]) <= 0.11


def test_the_census_hook_reads_both_allocators_of_a_real_interpreter(tmp_path: Path) -> None:
    """The hook's census in a child interpreter: pymalloc's arenas and glibc's heap, parsed."""
    env = {**os.environ, "KPISTREAM_BENCH_CENSUS_DIR": str(tmp_path)}
    env.pop("KPISTREAM_BENCH_TRACEMALLOC_DIR", None)
    child = subprocess.Popen([sys.executable, "-c", HOOK + "\ntime.sleep(20)\n"], env=env)
    try:
        (tmp_path / "x.census-request").touch()
        path = tmp_path / "x.census.json"
        deadline = time.monotonic() + 15
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        census = json.loads(path.read_text())
    finally:
        child.kill()
        child.wait()
    assert census["pymalloc_arenas"] > 0 and census["pymalloc_used_bytes"] > 0
    assert census["gc_objects"] > 1000 and census["gc_types"][0][1] > 0
    parts = rss_parts_mb(census)
    assert parts["pymalloc_arenas"] and parts["pymalloc_used"] is not None
    if sys.platform.startswith("linux") and census["malloc"] is not None:  # glibc
        assert parts["malloc_used"] is not None and parts["malloc_used"] > 0

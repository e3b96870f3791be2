"""Memory and cost of the seen-ids store (stream/core/seen.py), printed as JSON.

    python -m stream.bench.seen_memory [--ids 1000000] [--days 400] [--lookups 200000]

- bytes per id held: the store over a dict, measured with tracemalloc (the values, keys and dict
  together), for the ids spread over `--days` buckets and for the same ids over a tenth of the days
  (more chunks per bucket); beside it, a Python set of the same ints, the naive alternative;
- cost per look-up (hit and miss, one bucket each, fingerprint hashing separate) and per id added,
  with the bytes each add assigns to the mapping (what a Faust table writes to its changelog) for a
  sweep-sized batch and for one entity's ids at a time.
Timings are CPU time of this process (time.process_time), so other load on the machine inflates them
less than wall-clock time would; read them as orders of magnitude all the same.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
import tracemalloc
from datetime import date, timedelta
from typing import Any

from stream.core.seen import CHUNK_IDS, SeenIds, fingerprint


def _days(n: int) -> list[str]:
    start = date(2025, 1, 1)
    return [f"day:{start + timedelta(days=i):%Y-%m-%d}" for i in range(n)]


def _fill(ids: int, days: list[str], batch: int, seed: int) -> tuple[dict[str, bytes], dict[str, list[int]]]:
    """A store of `ids` random fingerprints spread evenly over `days`, added `batch` at a time."""
    rng = random.Random(seed)
    table: dict[str, bytes] = {}
    seen = SeenIds(table, cache_chunks=0)
    held: dict[str, list[int]] = {}
    per_day = ids // len(days)
    for day in days:
        fps = [rng.getrandbits(64) for _ in range(per_day)]
        held[day] = fps
        for i in range(0, per_day, batch):
            seen.add(day, fps[i : i + batch])
    return table, held


def memory(ids: int, n_days: int, seed: int = 1) -> dict[str, Any]:
    """Bytes per id held by the store's mapping after adding `ids` ids over `n_days` buckets."""
    days = _days(n_days)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    table, held = _fill(ids, days, batch=500, seed=seed)
    del held
    gc.collect()
    store_bytes = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    n = sum(len(v) for v in table.values()) // 8
    return {
        "ids": n,
        "days": n_days,
        "chunks": len(table),
        "value_bytes": sum(len(v) for v in table.values()),
        "traced_bytes": store_bytes,
        "bytes_per_id": round(store_bytes / n, 2),
    }


def set_baseline(ids: int, seed: int = 1) -> dict[str, Any]:
    """The same number of 64-bit ints in a Python set (what an in-memory `set` of fingerprints costs)."""
    rng = random.Random(seed)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    s = {rng.getrandbits(64) for _ in range(ids)}
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return {"ids": len(s), "bytes_per_id": round(used / len(s), 2)}


def _ns(seconds: float, n: int) -> float:
    return round(seconds / n * 1e9, 1)


def lookups(ids: int, n_days: int, n: int, seed: int = 2) -> dict[str, Any]:
    """Nanoseconds per contains() (hit and miss) and per fingerprint()."""
    days = _days(n_days)
    table, held = _fill(ids, days, batch=500, seed=seed)
    seen = SeenIds(table)
    rng = random.Random(seed + 1)
    hits = [(d, held[d][rng.randrange(len(held[d]))]) for d in (rng.choice(days) for _ in range(n))]
    misses = [(rng.choice(days), rng.getrandbits(64)) for _ in range(n)]
    contains = seen.contains
    t0 = time.process_time()
    found = sum(contains(d, fp) for d, fp in hits)
    t1 = time.process_time()
    wrong = sum(contains(d, fp) for d, fp in misses)
    t2 = time.process_time()
    empty = sum(contains("day:2030-01-01", fp) for _, fp in misses)  # a bucket nothing expired into yet
    t3 = time.process_time()
    for i in range(n):
        fingerprint("call", f"call-{i}", f"evt-{i}")
    t4 = time.process_time()
    assert found == n, "a fingerprint that was added was not found"
    return {
        "ids": ids,
        "days": n_days,
        "chunks_per_day": round(len(table) / n_days, 2),
        "lookups": n,
        "contains_hit_ns": _ns(t1 - t0, n),
        "contains_miss_ns": _ns(t2 - t1, n),
        "contains_empty_day_ns": _ns(t3 - t2, n),
        "false_positives": wrong + empty,
        "fingerprint_ns": _ns(t4 - t3, n),
    }


class _Counting(dict[str, bytes]):
    """A dict that counts the bytes assigned to it (a table's changelog volume)."""

    written = 0

    def __setitem__(self, key: str, value: bytes) -> None:
        self.written += len(value)
        super().__setitem__(key, value)


def adds(ids: int, batch: int, seed: int = 3) -> dict[str, Any]:
    """Nanoseconds and mapping bytes written per id added, `batch` ids per add, into one day."""
    rng = random.Random(seed)
    table = _Counting()
    seen = SeenIds(table)
    fps = [rng.getrandbits(64) for _ in range(ids)]
    t0 = time.process_time()
    for i in range(0, ids, batch):
        seen.add("day:2026-01-15", fps[i : i + batch])
    t1 = time.process_time()
    return {
        "ids": ids,
        "batch": batch,
        "add_ns_per_id": _ns(t1 - t0, ids),
        "written_bytes_per_id": round(table.written / ids, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--ids", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=400)
    ap.add_argument("--lookups", type=int, default=200_000)
    args = ap.parse_args(argv)
    dense_days = max(1, args.days // 10)
    result = {
        "python": sys.version.split()[0],
        "chunk_ids": CHUNK_IDS,
        "memory": memory(args.ids, args.days),
        "memory_dense": memory(args.ids, dense_days),
        "python_set_of_ints": set_baseline(args.ids),
        "lookup": lookups(args.ids, args.days, args.lookups),
        "lookup_dense": lookups(args.ids, dense_days, args.lookups),
        "add_sweep_batch": adds(min(args.ids, 200_000), 500),
        "add_one_entity_at_a_time": adds(min(args.ids, 20_000), 6),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

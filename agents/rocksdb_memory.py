"""One memory budget for all of a worker's RocksDB databases (with `store = rocksdb://`).

Faust opens one database per table and partition (9 tables x 4 partitions: 36 in the default
deployment), and by default gives each its own block cache and memtables, so the worker's memory
grows with the number of partitions it holds, not with what it reads. Rule: every database of a
worker shares one block cache (which also holds the index and filter blocks, so they do not grow
with the data on disk) and one write buffer manager (a cap on all memtables together; a database
whose memtable would pass it is flushed to disk). Writers are never stalled: RocksDB's calls run
on the event loop, and a stall would stop the whole worker. agents/faust_compat.py hands these
to Faust's store; this module only owns them and reports their usage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

MB = 2**20


@dataclass(frozen=True, slots=True)
class RocksDBMemory:
    """The block cache and the write buffer manager every RocksDB database of one worker uses."""

    cache: Any  # rocksdict.Cache
    write_buffers: Any  # rocksdict.WriteBufferManager
    cache_bytes: int
    memtables_bytes: int

    @classmethod
    def create(cls, cache_mb: float, memtables_mb: float) -> RocksDBMemory:
        import rocksdict

        cache_bytes, memtables_bytes = int(cache_mb * MB), int(memtables_mb * MB)
        return cls(
            cache=rocksdict.Cache(cache_bytes),
            write_buffers=rocksdict.WriteBufferManager(memtables_bytes, False),
            cache_bytes=cache_bytes,
            memtables_bytes=memtables_bytes,
        )

    def usage_bytes(self) -> dict[str, int]:
        """What RocksDB holds now: block cache (data, index and filter blocks) and memtables."""
        return {
            "block_cache": int(self.cache.get_usage()),
            "memtables": int(self.write_buffers.get_usage()),
        }

    def register(self, registry: CollectorRegistry) -> Gauge:
        """`kpistream_rocksdb_memory_bytes{part}` on the worker's page, read when scraped."""
        gauge = Gauge(
            "kpistream_rocksdb_memory_bytes",
            "Memory the worker's RocksDB databases hold together, by part (block_cache, memtables)",
            ["part"],
            registry=registry,
        )
        gauge.labels(part="block_cache").set_function(lambda: float(self.cache.get_usage()))
        gauge.labels(part="memtables").set_function(lambda: float(self.write_buffers.get_usage()))
        limit = Gauge(
            "kpistream_rocksdb_memory_limit_bytes",
            "The configured cap of each part (rocksdb_block_cache_mb, rocksdb_memtables_mb)",
            ["part"],
            registry=registry,
        )
        limit.labels(part="block_cache").set(self.cache_bytes)
        limit.labels(part="memtables").set(self.memtables_bytes)
        return gauge

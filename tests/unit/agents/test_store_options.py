"""With rocksdb:// every table's databases get the configured memtables and share one worker budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from tests_support import open_partition_db

from agents.pipeline import Pipeline, store_options
from stream.config import load_settings
from stream.errors import ConfigError


def rocksdb_pipeline(tmp_path: Path, **overrides: object) -> Pipeline:
    return Pipeline(
        load_settings(env={}, overrides={"store": "rocksdb://", "data_dir": str(tmp_path), **overrides})
    )


def all_tables(p: Pipeline) -> list[Any]:
    return [*p.entity_tables.values(), p.agg_table, p.business_table, p.alert_table, p.seen_table]


def test_every_rocksdb_table_gets_the_configured_memtables_and_the_worker_s_shared_memory(
    tmp_path: Path,
) -> None:
    p = rocksdb_pipeline(
        tmp_path, rocksdb_write_buffer_mb=3, rocksdb_block_cache_mb=5, rocksdb_memtables_mb=7
    )
    assert p.rocksdb_memory is not None
    assert (p.rocksdb_memory.cache_bytes, p.rocksdb_memory.memtables_bytes) == (5 * 2**20, 7 * 2**20)
    for table in all_tables(p):
        options = table.data.rocksdb_options  # the options Faust's store opens each database with
        assert options.write_buffer_size == 3 * 2**20, table.name
        assert options.max_write_buffer_number == 2
        assert options.memory is p.rocksdb_memory, table.name


def test_the_databases_of_all_tables_and_partitions_count_against_one_budget(tmp_path: Path) -> None:
    p = rocksdb_pipeline(tmp_path, rocksdb_block_cache_mb=4, rocksdb_memtables_mb=64)
    memory = p.rocksdb_memory
    assert memory is not None
    assert memory.usage_bytes() == {"block_cache": 0, "memtables": 0}
    value = b"x" * 1000
    dbs = [open_partition_db(table.data, partition) for table in all_tables(p) for partition in (0, 1)]
    for db in dbs:
        for i in range(200):  # 200 kB a database, 3.6 MB in all: under each one's 2 MB memtable
            db.put(b"k%d" % i, value)
    # One write buffer manager counts every database's memtables: more than any one holds.
    assert memory.usage_bytes()["memtables"] > 3 * 2**20
    for db in dbs:
        db.flush()
        assert db.get(b"k7") == value
    # Blocks read back from disk sit in the one cache, within its cap.
    assert 0 < memory.usage_bytes()["block_cache"] <= 4 * 2**20 * 1.1
    page = generate_latest(p.metrics.registry).decode()
    assert 'kpistream_rocksdb_memory_limit_bytes{part="memtables"} 6.7108864e+07' in page
    assert 'kpistream_rocksdb_memory_bytes{part="block_cache"}' in page
    for db in dbs:
        db.close()


def test_the_memory_store_takes_no_options(tmp_path: Path) -> None:
    settings = load_settings(env={}, overrides={"data_dir": str(tmp_path)})
    assert store_options(settings) is None
    assert Pipeline(settings).rocksdb_memory is None  # builds its tables as before


@pytest.mark.parametrize(
    "name", ["rocksdb_write_buffer_mb", "rocksdb_memtables_mb", "rocksdb_block_cache_mb"]
)
def test_rocksdb_memory_is_at_least_a_megabyte(name: str) -> None:
    for too_small in (0, 0.5):
        with pytest.raises(ConfigError, match=name):
            load_settings(env={}, overrides={name: too_small})
    load_settings(env={}, overrides={name: 1})

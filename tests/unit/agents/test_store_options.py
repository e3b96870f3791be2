"""With rocksdb:// every table's partition databases get the configured memory, not Faust's defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.pipeline import Pipeline, store_options
from stream.config import load_settings
from stream.errors import ConfigError


def test_every_rocksdb_table_gets_the_configured_memtables_and_cache(tmp_path: Path) -> None:
    settings = load_settings(
        env={},
        overrides={
            "store": "rocksdb://",
            "data_dir": str(tmp_path),
            "rocksdb_write_buffer_mb": 3,
            "rocksdb_block_cache_mb": 5,
        },
    )
    p = Pipeline(settings)
    tables = [*p.entity_tables.values(), p.agg_table, p.business_table, p.alert_table, p.seen_table]
    for table in tables:
        options = table.data.rocksdb_options  # the store Faust built for the table
        assert options.write_buffer_size == 3 * 2**20, table.name
        assert options.max_write_buffer_number == 2
        assert options.block_cache_size == 5 * 2**20


def test_the_memory_store_takes_no_options(tmp_path: Path) -> None:
    settings = load_settings(env={}, overrides={"data_dir": str(tmp_path)})
    assert store_options(settings) is None
    Pipeline(settings)  # builds its tables as before


@pytest.mark.parametrize("name", ["rocksdb_write_buffer_mb", "rocksdb_block_cache_mb"])
def test_rocksdb_memory_is_at_least_a_megabyte(name: str) -> None:
    for too_small in (0, 0.5):
        with pytest.raises(ConfigError, match=name):
            load_settings(env={}, overrides={name: too_small})
    load_settings(env={}, overrides={name: 1})

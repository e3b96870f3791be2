"""WriteBack records the partition of every key it writes in Faust's memory store.

Faust's memory store forgets, when a recovery completes, the keys of partitions no longer
assigned, but knows the partition only of keys it recovered from a changelog: without the
record, keys this worker wrote for a partition it gave away stay (and get republished).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import faust
from faust.stores.memory import Store
from faust.types import TP
from tests_support import open_partition_db

from agents import faust_compat
from agents.batching import WriteBack


class TableOverStore(MutableMapping[str, Any]):
    """What a Faust table does with its memory store, minus the changelog."""

    def __init__(self, store: Store) -> None:
        self.data = store

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.data[key] = value

    def __delitem__(self, key: str) -> None:
        del self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def table() -> TableOverStore:
    app = faust.App("owners-test", broker="kafka://localhost:1")
    t = app.Table("t", partitions=4)
    return TableOverStore(Store("memory://", app, t))


def test_flush_records_each_written_key_partition_and_forgets_deleted_ones() -> None:
    t = table()
    owners = faust_compat.key_partitions(t)
    assert owners == {}
    wb: WriteBack[int] = WriteBack(t, partition=2)
    wb["a"], wb["b"] = 1, 2
    wb.flush()
    assert dict(t) == {"a": 1, "b": 2} and owners == {"a": 2, "b": 2}
    del wb["a"]
    wb.flush()
    assert dict(t) == {"b": 2} and owners == {"b": 2}


def test_without_a_partition_nothing_is_recorded() -> None:
    t = table()
    wb: WriteBack[int] = WriteBack(t)
    wb["a"] = 1
    wb.flush()
    assert faust_compat.key_partitions(t) == {}


def test_plain_mappings_have_no_owners() -> None:
    backing: dict[str, int] = {}
    wb: WriteBack[int] = WriteBack(backing, partition=1)
    wb["a"] = 1
    wb.flush()
    assert backing == {"a": 1} and faust_compat.key_partitions(backing) is None


async def test_faust_drops_the_written_keys_of_a_revoked_partition_at_recovery_end() -> None:
    t = table()
    for partition, keys in ((0, ["kept", "also-kept"]), (3, ["given-away"])):
        wb: WriteBack[str] = WriteBack(t, partition=partition)
        for k in keys:
            wb[k] = k
        wb.flush()
    # A rebalance left this worker partitions 0 and 1 of the changelog: Faust's own hook runs.
    await t.data.on_recovery_completed({TP("owners-test-t-changelog", 0), TP("x", 1)}, set())
    assert sorted(t) == ["also-kept", "kept"]


def test_partition_keys_of_a_memory_store_are_the_recovered_and_the_written() -> None:
    t = table()
    faust_compat.key_partitions(t)["recovered"] = 1  # as the store's changelog recovery records it
    t["recovered"] = 0
    wb: WriteBack[int] = WriteBack(t, partition=1)
    wb["written"] = 1
    WriteBack(t, partition=2)["elsewhere"] = 2
    wb.flush()
    assert sorted(faust_compat.partition_keys(t, 1)) == ["recovered", "written"]
    assert faust_compat.partition_keys(t, 3) == []


def test_partition_keys_of_a_rocksdb_store_are_its_partition_database(tmp_path: Path) -> None:
    from faust.stores.rocksdb import Store as RocksStore

    app = faust.App("owners-rocks", broker="kafka://localhost:1", datadir=str(tmp_path))
    t = app.Table("t", partitions=4)
    store = RocksStore("rocksdb://", app, t)
    holder = TableOverStore(store)  # type: ignore[arg-type]
    for partition, key in ((1, b"a"), (1, b"b"), (2, b"c")):
        open_partition_db(store, partition).put(key, b"1")
    assert sorted(faust_compat.partition_keys(holder, 1)) == [b"a", b"b"]
    assert faust_compat.partition_keys(holder, 3) == []


def test_a_plain_mapping_has_no_partition_keys() -> None:
    assert faust_compat.partition_keys({"a": 1, "b": 2}, 0) is None

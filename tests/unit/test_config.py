"""Worker settings: validated once, with errors that name the setting."""

from __future__ import annotations

import pytest

from stream.config import load_settings
from stream.errors import ConfigError


def test_rocksdb_store_is_accepted() -> None:
    assert load_settings(env={"KPISTREAM_STORE": "rocksdb://"}).store == "rocksdb://"


def test_defaults_are_valid() -> None:
    s = load_settings(env={})
    assert s.store == "memory://" and s.batch_linger_s == 0.1 and s.share_interval_s == 10.0
    assert s.faust_sensors is False


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"KPISTREAM_STORE": "redis://"}, "store"),  # Faust has no such table store
        ({"KPISTREAM_BATCH_LINGER_S": "2"}, "batch_linger_s"),
        ({"KPISTREAM_BATCH_LINGER_S": "-0.1"}, "batch_linger_s"),
        ({"KPISTREAM_SHARE_INTERVAL_S": "0.5"}, "share_interval_s"),  # shorter than the flush interval
        ({"KPISTREAM_AGGREGATE_BATCH_BYTES": "100"}, "aggregate_batch_bytes"),  # under one delta message
    ],
)
def test_bad_values_are_refused_by_name(env: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env=env)
    assert setting in str(info.value)

"""Replication settings: validated once, applied to every topic kpistream creates and every changelog."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.config import Settings, load_settings
from stream.errors import ConfigError
from stream.topics import faust_topic_class, replication_config, topic_specs


def test_defaults_fit_one_broker() -> None:
    s = load_settings(env={})
    assert (s.replication_factor, s.min_insync_replicas, s.table_standby_replicas) == (1, 0, 0)
    assert replication_config(s) == {}
    assert all(spec.replication_factor == 1 for spec in topic_specs(s).values())
    assert all("min.insync.replicas" not in spec.config for spec in topic_specs(s).values())


def test_environment_sets_replication() -> None:
    s = load_settings(
        env={
            "KPISTREAM_REPLICATION_FACTOR": "3",
            "KPISTREAM_MIN_INSYNC_REPLICAS": "2",
            "KPISTREAM_TABLE_STANDBY_REPLICAS": "1",
        }
    )
    assert (s.replication_factor, s.min_insync_replicas, s.table_standby_replicas) == (3, 2, 1)


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"KPISTREAM_REPLICATION_FACTOR": "0"}, "replication_factor"),
        ({"KPISTREAM_MIN_INSYNC_REPLICAS": "2"}, "min_insync_replicas"),  # more than the 1 copy
        ({"KPISTREAM_REPLICATION_FACTOR": "3", "KPISTREAM_MIN_INSYNC_REPLICAS": "-1"}, "min_insync_replicas"),
        ({"KPISTREAM_TABLE_STANDBY_REPLICAS": "-1"}, "table_standby_replicas"),
        # RocksDB standbys lost counts at failover (docs/benchmarks.md, "Failover").
        (
            {"KPISTREAM_TABLE_STANDBY_REPLICAS": "1", "KPISTREAM_STORE": "rocksdb://"},
            "table_standby_replicas",
        ),
    ],
)
def test_bad_replication_is_refused_by_name(env: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env=env)
    assert setting in str(info.value)


def test_every_topic_gets_the_replication_and_keeps_its_own_config() -> None:
    s = Settings(replication_factor=3, min_insync_replicas=2, topic_prefix="x.")
    specs = topic_specs(s)
    assert len(specs) == 14 and all(name.startswith("x.") for name in specs)
    for spec in specs.values():
        assert spec.replication_factor == 3
        assert spec.config["min.insync.replicas"] == "2"
    assert specs["x.kpi.operator-scores"].config["cleanup.policy"] == "compact"
    assert "cleanup.policy" not in specs["x.events.telephony"].config
    partitions, _config, replicas = specs["x.kpi.deltas"]  # a plain tuple for create_topics
    assert (partitions, replicas) == (s.partitions, 3)


def test_faust_app_declares_changelogs_with_the_replication() -> None:
    """The app's tables get changelog topics with the replicas and min.insync.replicas of the settings."""
    import faust

    s = Settings(replication_factor=3, min_insync_replicas=2, table_standby_replicas=1)
    app = faust.App("t-replication", broker="kafka://127.0.0.1:1", Topic=faust_topic_class(s))
    app.conf.topic_replication_factor = s.replication_factor
    table = app.Table("counts", partitions=4)
    topic = table.changelog_topic
    assert topic.config == {"min.insync.replicas": "2"}
    assert app.conf.topic_replication_factor == 3
    clone = topic.clone(config={"retention.ms": "1000"})
    assert clone.config == {"min.insync.replicas": "2", "retention.ms": "1000"}


def test_make_app_passes_replication_and_standbys(tmp_path: object) -> None:
    from agents.pipeline import make_app

    s = Settings(
        replication_factor=3, min_insync_replicas=2, table_standby_replicas=1, data_dir=str(tmp_path)
    )
    app = make_app(s)
    assert app.conf.topic_replication_factor == 3
    assert app.conf.table_standby_replicas == 1
    assert app.topic("t").config == {"min.insync.replicas": "2"}


def test_every_table_of_the_worker_has_its_changelog_created_up_front(tmp_path: Path) -> None:
    """A changelog left to Faust could be missing from the consumer's first metadata (an agent crash)."""
    from agents.pipeline import Pipeline
    from stream.topics import changelog_specs

    settings = load_settings(env={}, overrides={"data_dir": str(tmp_path), "partitions": 3})
    pipeline = Pipeline(settings)
    tables = {t.changelog_topic.get_topic_name() for t in pipeline.app.tables.values()}
    specs = changelog_specs(settings)
    assert tables == set(specs)
    assert all(s.partitions == 3 and s.config["cleanup.policy"] == "compact" for s in specs.values())

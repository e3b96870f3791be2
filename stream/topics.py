"""Every topic the product reads or writes, with its partition count, config and replication.

Topics are created explicitly (`topic_specs`); the table changelogs, which Faust declares itself,
get the same replication through the app's settings and `faust_topic_class`. `topic_plan` is the
one list of every topic a worker uses: the worker creates or checks it (setting `topics_mode`),
and `kpistream topics plan|create|check` shows, applies and compares it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from stream.config import Settings

INPUT_TOPICS: Mapping[str, str] = {
    "telephony": "events.telephony",
    "chat": "events.chat",
    "email": "events.email",
    "agent": "events.agent",
    "contact": "events.contact",
    "business": "events.business",
}
DELTAS = "kpi.deltas"
DEAD_LETTERS = "kpi.dead-letters"
OPERATOR_SCORES = "kpi.operator-scores"
QUEUE_KPIS = "kpi.queue-kpis"
ALERTS = "kpi.alerts"
SCORECARD = "kpi.scorecard"
CONTROL = "kpi.control"
# Month closes and their corrections (stream/core/payouts.py): a ledger, one partition so it is read in order.
PAYOUTS = "kpi.payouts"

COMPACTED = {"cleanup.policy": "compact"}

# The worker's tables (agents/pipeline.py); each has a compacted changelog `{app_id}-{name}-changelog`.
ENTITY_KINDS: tuple[str, ...] = ("call", "chat", "email", "case", "agent")
TABLES: tuple[str, ...] = (
    *(f"{kind}-state" for kind in ENTITY_KINDS),
    "seen-ids",
    "aggregates",
    "business",
    "alerts",
)


class TopicSpec(NamedTuple):
    """How one topic is created: partitions, topic-level config, number of copies."""

    partitions: int
    config: Mapping[str, str]
    replication_factor: int = 1


def replication_config(settings: Settings) -> dict[str, str]:
    """The topic-level config every kpistream topic and changelog carries (empty: broker defaults)."""
    if settings.min_insync_replicas:
        return {"min.insync.replicas": str(settings.min_insync_replicas)}
    return {}


def topic_specs(settings: Settings) -> dict[str, TopicSpec]:
    """name -> TopicSpec of every topic, with the settings' prefix and replication applied.

    Input topics keyed by entity share the partition count of the tables that consume them;
    `events.business` has no key and a single global state, so it has one partition.
    """
    p = settings.partitions
    base = replication_config(settings)

    def spec(partitions: int, config: Mapping[str, str] | None = None) -> TopicSpec:
        return TopicSpec(partitions, {**(config or {}), **base}, settings.replication_factor)

    specs: dict[str, TopicSpec] = {}
    for stream, name in INPUT_TOPICS.items():
        specs[settings.topic(name)] = spec(1 if stream == "business" else p)
    specs[settings.topic(DELTAS)] = spec(p)
    specs[settings.topic(DEAD_LETTERS)] = spec(1)
    specs[settings.topic(OPERATOR_SCORES)] = spec(p, COMPACTED)
    specs[settings.topic(QUEUE_KPIS)] = spec(p, COMPACTED)
    specs[settings.topic(ALERTS)] = spec(1)
    specs[settings.topic(SCORECARD)] = spec(1, COMPACTED)
    specs[settings.topic(CONTROL)] = spec(1, COMPACTED)
    specs[settings.topic(PAYOUTS)] = spec(1, COMPACTED)
    return specs


def changelog_name(settings: Settings, table: str) -> str:
    """The changelog topic of a table, as Faust names it (agents/faust_compat.py: changelog_topic)."""
    return f"{settings.app_id}-{table}-changelog"


def changelog_specs(settings: Settings) -> dict[str, TopicSpec]:
    """name -> TopicSpec of every table changelog: compacted, partitioned like the tables.

    Created with the other topics before the worker starts. Left to Faust, a changelog declared
    while the consumer took its first metadata was missing from that metadata for minutes
    (`metadata_max_age`), and the first write to its table crashed the agent with
    PartitionsMismatch ("has 0 partitions") again at every restart of the agent: stage 2 stalled.
    """
    base = replication_config(settings)
    spec = TopicSpec(settings.partitions, {**COMPACTED, **base}, settings.replication_factor)
    return {changelog_name(settings, table): spec for table in TABLES}


def faust_topic_class(settings: Settings) -> Any:
    """A `faust.Topic` whose declared topics (the table changelogs) carry `replication_config`.

    Faust declares changelog topics with `topic_replication_factor` replicas but with no way to set a
    topic config app-wide; the app's `Topic` setting takes this class instead. Topics that already
    exist (everything in `topic_specs`, created first) are left as they are.
    """
    import faust

    extra = replication_config(settings)

    class ReplicatedTopic(faust.Topic):
        def __init__(self, *args: Any, config: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
            super().__init__(*args, config={**extra, **(config or {})}, **kwargs)

    return ReplicatedTopic


def topic_plan(settings: Settings) -> dict[str, TopicSpec]:
    """name -> TopicSpec of every topic a worker uses: its topics and its tables' changelogs.

    The one list: the worker creates it (`topics_mode = "create"`) or checks it (`"check"`), and
    `kpistream topics plan|create|check` prints, creates and compares exactly these.
    """
    return {**topic_specs(settings), **changelog_specs(settings)}


def cleanup_policy(spec: TopicSpec) -> str:
    """The `cleanup.policy` a topic of the plan must have (Kafka's default is `delete`)."""
    return spec.config.get("cleanup.policy", "delete")


# What a worker does with each topic (for the ACLs of its principal, stream/topic_acls.py).
READ = "read"
WRITE = "write"


def worker_access(settings: Settings) -> dict[str, frozenset[str]]:
    """name -> {READ, WRITE}: how a worker uses each topic of `topic_plan`.

    It consumes the inputs and `kpi.deltas` in its consumer group, writes the inputs too (HTTP
    ingest, `POST /api/v1/events`: agents/ingest.py), reads the control topic without
    a group (agents/publishing.py), writes deltas, dead letters, alerts and the score topics, reads
    and writes the month closes (`kpi.payouts`, without a group: agents/payouts_api.py), and reads
    (recovery) and writes its changelogs.
    """
    rw = frozenset({READ, WRITE})
    access: dict[str, frozenset[str]] = dict.fromkeys(
        (settings.topic(name) for name in INPUT_TOPICS.values()), rw
    )
    access[settings.topic(DELTAS)] = rw
    for name in (DEAD_LETTERS, OPERATOR_SCORES, QUEUE_KPIS, ALERTS, SCORECARD):
        access[settings.topic(name)] = frozenset({WRITE})
    access[settings.topic(CONTROL)] = frozenset({READ})
    access[settings.topic(PAYOUTS)] = rw
    access.update(dict.fromkeys(changelog_specs(settings), rw))
    return access


def consumer_groups(settings: Settings) -> tuple[str, ...]:
    """The Kafka consumer groups a worker joins: Faust's one group, named after the app id."""
    return (settings.app_id,)

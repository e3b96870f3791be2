"""Every topic the product reads or writes, with its partition count and config: created explicitly."""

from __future__ import annotations

from collections.abc import Mapping

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

COMPACTED = {"cleanup.policy": "compact"}


def topic_specs(settings: Settings) -> dict[str, tuple[int, Mapping[str, str]]]:
    """name -> (partitions, config) of every topic, with the settings' prefix applied.

    Input topics keyed by entity share the partition count of the tables that consume them;
    `events.business` has no key and a single global state, so it has one partition.
    """
    p = settings.partitions
    specs: dict[str, tuple[int, Mapping[str, str]]] = {}
    for stream, name in INPUT_TOPICS.items():
        specs[settings.topic(name)] = (1 if stream == "business" else p, {})
    specs[settings.topic(DELTAS)] = (p, {})
    specs[settings.topic(DEAD_LETTERS)] = (1, {})
    specs[settings.topic(OPERATOR_SCORES)] = (p, COMPACTED)
    specs[settings.topic(QUEUE_KPIS)] = (p, COMPACTED)
    specs[settings.topic(ALERTS)] = (1, {})
    specs[settings.topic(SCORECARD)] = (1, COMPACTED)
    specs[settings.topic(CONTROL)] = (1, COMPACTED)
    return specs


def input_topic(settings: Settings, stream: str) -> str:
    return settings.topic(INPUT_TOPICS[stream])

"""The keys of the compacted score topics (CONTRACT.md section 5): `{entity}|{period_key}`.

`kpi.operator-scores` is keyed `{operator_id}|{period_key}` and `kpi.queue-kpis` `{queue}|{period_key}`
(`_center|{period_key}` for the centre): one key per entity and period, so compaction keeps the
latest record of every operator-day, operator-month and rolling window instead of only the newest
period of an entity. Ids may contain '|': the period key (which never does) is split off the right.
"""

from __future__ import annotations

from dataclasses import dataclass

from stream.core.keys import CENTER_ID
from stream.sinks.redis_keys import is_period_key

SEPARATOR = "|"


@dataclass(frozen=True, slots=True, order=True)
class ScoreKey:
    """One record's key on a score topic: the operator or queue (`_center` for the centre) and period."""

    entity_id: str
    period_key: str

    @property
    def is_center(self) -> bool:
        return self.entity_id == CENTER_ID

    def encode(self) -> bytes:
        if not self.entity_id:
            raise ValueError("a score key needs a non-empty id")
        if not is_period_key(self.period_key):
            raise ValueError(f"not a period key: {self.period_key!r}")
        return f"{self.entity_id}{SEPARATOR}{self.period_key}".encode()

    @classmethod
    def decode(cls, key: bytes) -> ScoreKey:
        """The key of a score-topic record; ValueError for a key this product did not write."""
        text = key.decode()
        entity_id, sep, period_key = text.rpartition(SEPARATOR)
        if not sep or not entity_id or not is_period_key(period_key):
            raise ValueError(f"not a score key: {text!r}")
        return cls(entity_id, period_key)


def operator_score_key(rec: dict[str, object]) -> bytes:
    """The `kpi.operator-scores` key of an operator record."""
    return ScoreKey(str(rec["operator_id"]), str(rec["period_key"])).encode()


def queue_kpis_key(rec: dict[str, object]) -> bytes:
    """The `kpi.queue-kpis` key of a queue or centre record (its `queue` is `_center` for the centre)."""
    return ScoreKey(str(rec["queue"]), str(rec["period_key"])).encode()

"""Stage 1: route a validated event to its entity's state and return the count changes it causes.

One path for the stream and for `Engine.process`: the worker builds a `Stage1` per partition of a
batch over that partition's write-back caches; `kpistream report` builds one over dicts.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Protocol

from stream.core.config import KpiConfig
from stream.core.contributions import KIND_OF_STREAM
from stream.core.entity import Delta, EntityState, EntityStore
from stream.core.events import STREAM_OF_TYPE, Event


def state_key(event: Event) -> str:
    """The entity state key of an event (FCR by case key, the rest by their id)."""
    if STREAM_OF_TYPE[event.type] == "contact":
        return event.case_key or ""
    return event.entity_key


class ExpiredEvents(Protocol):
    """The ids of the events of entities whose state expired (stream/core/seen.py)."""

    def seen(self, kind: str, key: str, event: Event) -> bool: ...


class Stage1:
    """Entity state of every kind over the given mappings; `expired` answers for dropped entities."""

    def __init__(
        self,
        tables: Mapping[str, MutableMapping[str, EntityState]],
        cfg: KpiConfig,
        *,
        expired: ExpiredEvents | None = None,
    ) -> None:
        self.cfg = cfg
        self.stores = {kind: EntityStore(tables[kind], kind, cfg) for kind in tables}
        self.expired = expired

    def process(self, event: Event, source: str, offset: int) -> list[Delta]:
        """The deltas of one event read at `source`/`offset` (none for a repeated event_id)."""
        kind = KIND_OF_STREAM.get(event.stream)
        if kind is None:
            return []
        key = state_key(event)
        store = self.stores[kind]
        if self.expired is not None:
            state = store.table.get(key)
            if (state is None or state.index_of(event.event_id) < 0) and self.expired.seen(kind, key, event):
                # A repeat of an event of this entity whose earlier state expired (CONTRACT s.1 horizon).
                # Asked for every event the state does not hold, not only for a new state: a replay
                # that starts with one new event must not let the old ones through.
                return []
        return store.apply(key, event, source, offset)

"""Count vectors: sparse dicts of non-negative-in-total integers that add and subtract exactly."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from sys import intern

Counts = dict[str, int]

# Field order of the published `counts` objects (zeros included, so every consumer sees every field).
OPERATOR_COUNT_FIELDS: tuple[str, ...] = (
    "presented",
    "answered",
    "sl_answered",
    "abandoned",
    "abandoned_in_sl",
    "lost",
    "responses",
    "fast",
    "replied",
    "on_time",
    "fcr_contacts",
    "fcr_resolved",
)
QUEUE_COUNT_FIELDS: tuple[str, ...] = (
    "offered",
    "answered",
    "sl_answered",
    "abandoned",
    "abandoned_in_sl",
    "short_abandoned",
    "lost",
    "responses",
    "fast",
    "replied",
    "on_time",
    "fcr_contacts",
    "fcr_resolved",
)


def add_into(target: Counts, delta: Mapping[str, int], sign: int = 1) -> None:
    """target += sign * delta, dropping fields that reach zero so equal totals compare equal."""
    for k, v in delta.items():
        n = target.get(k, 0) + sign * v
        if n:
            # Field names decoded from JSON are new strings each time: intern them, or every one of
            # the many aggregates kept (operators x days) holds its own copies.
            target[intern(k)] = n
        else:
            target.pop(k, None)


def total(parts: Iterable[Mapping[str, int]]) -> Counts:
    out: Counts = {}
    for p in parts:
        add_into(out, p)
    return out


def full(counts: Mapping[str, int], fields: tuple[str, ...]) -> Counts:
    """Every field of `fields`, zeros included, in that order."""
    return {f: counts.get(f, 0) for f in fields}

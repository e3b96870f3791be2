"""Aggregate keys grouped by period: a retention sweep pops whole periods."""

from __future__ import annotations

from stream.core.aggregate import KeysByPeriod


def test_keys_are_grouped_by_period_and_an_expired_period_is_popped_whole() -> None:
    keys = KeysByPeriod()
    keys.add(["op|a|day:2026-01-01", "op|b|day:2026-01-01", "queue|q|day:2026-01-02"])
    keys.add(
        ["op|a|month:2026-01", "op|a|day:2026-01-01", "op|x|y|day:2026-01-01"]
    )  # a repeat; an id with '|'
    asked: list[str] = []

    def expired(pk: str) -> bool:
        asked.append(pk)
        return pk == "day:2026-01-01"

    assert sorted(keys.pop_expired(expired)) == [
        "op|a|day:2026-01-01",
        "op|b|day:2026-01-01",
        "op|x|y|day:2026-01-01",
    ]
    assert sorted(asked) == ["day:2026-01-01", "day:2026-01-02", "month:2026-01"]  # once per period
    assert len(keys) == 2
    assert keys.pop_expired(expired) == []
    assert sorted(keys.pop_expired(lambda pk: True)) == ["op|a|month:2026-01", "queue|q|day:2026-01-02"]
    assert len(keys) == 0 and keys.by_period == {}

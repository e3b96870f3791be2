"""The periods a partition holds: a retention sweep tests each period once and pops whole periods."""

from __future__ import annotations

from stream.core.aggregate import HeldPeriods


def test_periods_are_held_once_and_an_expired_period_is_popped() -> None:
    held = HeldPeriods(["op|a|day:2026-01-01", "op|b|day:2026-01-01", "queue|q|day:2026-01-02"])
    held.add(["op|a|month:2026-01", "op|a|day:2026-01-01", "op|x|y|day:2026-01-01", "business"])
    assert held.periods == {"day:2026-01-01", "day:2026-01-02", "month:2026-01"}  # an id with '|'
    asked: list[str] = []

    def expired(pk: str) -> bool:
        asked.append(pk)
        return pk == "day:2026-01-01"

    assert held.pop_expired(expired) == {"day:2026-01-01"}
    assert sorted(asked) == ["day:2026-01-01", "day:2026-01-02", "month:2026-01"]  # once per period
    assert len(held) == 2
    assert held.pop_expired(expired) == set()
    assert held.pop_expired(lambda pk: True) == {"month:2026-01", "day:2026-01-02"}
    assert len(held) == 0

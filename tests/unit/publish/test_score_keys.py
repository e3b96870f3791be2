"""The keys of the compacted score topics: one per entity and period, decoded back exactly."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.sinks.kafka_keys import ScoreKey, operator_score_key, queue_kpis_key

ids = st.one_of(st.text(min_size=1, max_size=30), st.sampled_from(["|", "a|b", "op|day:2026-01-15", ":"]))
periods = st.one_of(
    st.just("rolling"),
    st.dates(min_value=date(1000, 1, 1)).map(lambda d: f"day:{d:%Y-%m-%d}"),
    st.dates(min_value=date(1000, 1, 1)).map(lambda d: f"month:{d:%Y-%m}"),
)


@given(ids, periods)
def test_score_keys_round_trip(entity: str, pk: str) -> None:
    key = ScoreKey(entity, pk)
    assert ScoreKey.decode(key.encode()) == key


def test_contract_spelling_and_the_centre() -> None:
    rec = {"operator_id": "op-001", "period_key": "day:2026-01-15"}
    assert operator_score_key(rec) == b"op-001|day:2026-01-15"
    center = {"scope": "center", "queue": "_center", "period_key": "month:2026-01"}
    assert queue_kpis_key(center) == b"_center|month:2026-01"
    assert ScoreKey.decode(b"_center|month:2026-01").is_center
    assert not ScoreKey.decode(b"sales|rolling").is_center


@pytest.mark.parametrize("raw", [b"op-001", b"|rolling", b"op|day:2026-01", b"op|now"])
def test_keys_of_older_versions_or_other_writers_are_refused(raw: bytes) -> None:
    # `op-001` alone is how operator scores were keyed before the contract change
    with pytest.raises(ValueError):
        ScoreKey.decode(raw)

"""The Redis key layout: every key decodes to what was encoded, whatever the ids hold."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.wallboard import latest_keys
from stream.sinks.redis import operator_key, queue_key
from stream.sinks.redis_keys import (
    CenterKey,
    LeaderboardKey,
    LiveQueueKey,
    OperatorKey,
    QueueKey,
    ScorecardKey,
    WriterKey,
    decode_key,
    is_period_key,
    period_key_of,
    queue_or_center_key,
)

#: Ids as hostile as events can make them: ':' and '|' (the separators) and look-alike period keys.
ids = st.one_of(
    st.text(min_size=1, max_size=30),
    st.text(alphabet=":|day0123456789-rolingmth", min_size=1, max_size=30),
    st.sampled_from([":", "|", "a:rolling", "x:day:2026-01-15", "month:2026-01", "q:", ":q", "op|1"]),
)
days = st.dates(min_value=date(1000, 1, 1)).map(lambda d: f"day:{d:%Y-%m-%d}")
months = st.dates(min_value=date(1000, 1, 1)).map(lambda d: f"month:{d:%Y-%m}")
periods = st.one_of(st.just("rolling"), days, months)


@given(ids, periods)
def test_id_and_period_keys_round_trip(sid: str, pk: str) -> None:
    for key in (OperatorKey(sid, pk), QueueKey(sid, pk)):
        text = key.encode()
        assert type(key).decode(text) == key
        assert decode_key(text) == key
    assert LiveQueueKey.decode(LiveQueueKey(sid).encode()) == LiveQueueKey(sid)
    assert decode_key(LiveQueueKey(sid).encode()) == LiveQueueKey(sid)
    assert decode_key(WriterKey(sid).encode()) == WriterKey(sid)


@given(periods)
def test_period_keys_round_trip(pk: str) -> None:
    for key in (CenterKey(pk), LeaderboardKey(pk), ScorecardKey(pk)):
        assert decode_key(key.encode()) == key
    assert period_key_of(OperatorKey("a:b", pk).encode()) == (None if pk == "rolling" else pk)


def test_the_contract_spelling() -> None:
    assert OperatorKey("op-001", "day:2026-01-15").encode() == "kpi:op:op-001:day:2026-01-15"
    assert QueueKey("sales", "month:2026-01").encode() == "kpi:queue:sales:month:2026-01"
    assert CenterKey("rolling").encode() == "kpi:center:rolling"
    assert LeaderboardKey("day:2026-01-15").encode() == "kpi:leaderboard:day:2026-01-15"
    assert ScorecardKey("month:2026-01").encode() == "kpi:scorecard:month:2026-01"
    assert LiveQueueKey("sales").encode() == "kpi:live:queue:sales"
    assert queue_or_center_key("_center", "rolling") == CenterKey("rolling")
    assert queue_or_center_key(None, "rolling") == CenterKey("rolling")
    rec = {"operator_id": "a:1", "period_key": "rolling"}
    assert operator_key(rec) == "kpi:op:a:1:rolling"
    assert queue_key({"scope": "center", "queue": "_center", "period_key": "rolling"}) == "kpi:center:rolling"
    assert queue_key({"scope": "queue", "queue": "s", "period_key": "rolling"}) == "kpi:queue:s:rolling"


@pytest.mark.parametrize(
    "key",
    [
        "kpi:op:rolling",  # no id
        "kpi:op::rolling",  # empty id
        "kpi:op:a:day:2026-1-15",  # not a period key
        "kpi:op:a",
        "kpi:center:a:rolling",
        "kpi:center:",
        "kpi:live:queue:",
        "kpi:alerts:active",
        "kpi:updates",
        "other:op:a:rolling",
    ],
)
def test_foreign_keys_decode_to_none(key: str) -> None:
    assert decode_key(key) is None


def test_encoding_refuses_what_would_not_decode() -> None:
    with pytest.raises(ValueError):
        OperatorKey("", "rolling").encode()
    with pytest.raises(ValueError):
        QueueKey("q", "now").encode()
    with pytest.raises(ValueError):
        CenterKey("day:2026-01").encode()
    assert is_period_key("day:2026-01-15") and not is_period_key("day:2026-01-15x")


def test_wallboard_current_periods_with_colons_in_ids() -> None:
    keys = [
        OperatorKey("x:day:2027-01-01", "rolling").encode(),  # an id that looks like a later day
        QueueKey("q:month:2030-01", "day:2026-01-15").encode(),
        CenterKey("month:2026-01").encode(),
    ]
    assert latest_keys(keys) == {"rolling": "rolling", "day": "day:2026-01-15", "month": "month:2026-01"}

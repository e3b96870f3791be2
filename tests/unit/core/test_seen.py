"""Fingerprints of seen event ids (stream/core/seen.py): exact membership per day bucket, chunking,
the mapping as the only truth, and expiry with the month's retention."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.core import events as ev
from stream.core.config import KpiConfig
from stream.core.events import Event
from stream.core.periods import day_key, period_bounds
from stream.core.seen import (
    CHUNK_IDS,
    SeenIds,
    decode_chunk,
    encode_chunk,
    fingerprint,
    month_of_day,
)

SETTINGS = settings(max_examples=150, deadline=None)
U64 = st.integers(min_value=0, max_value=2**64 - 1)
# A few fingerprint values, so that random adds repeat ids and random look-ups hit.
SMALL_FP = st.integers(min_value=0, max_value=60)
DAYS = ["day:2026-01-30", "day:2026-01-31", "day:2026-02-01"]


def ms(y: int, m: int, d: int, h: int = 0, mi: int = 0, tz: str = "UTC") -> int:
    return int(datetime(y, m, d, h, mi, tzinfo=ZoneInfo(tz)).timestamp() * 1000)


def chunk_invariants(table: dict[str, bytes], seen: SeenIds, day: str) -> list[list[int]]:
    """Chunks numbered from 0, sorted, no id twice in a chunk, only the last one not full."""
    chunks = []
    n = 0
    while (raw := table.get(seen.chunk_key(day, n))) is not None:
        chunks.append(list(decode_chunk(raw)))
        n += 1
    for i, c in enumerate(chunks):
        assert c == sorted(set(c))
        assert 0 < len(c) <= seen.chunk_ids
        if i < len(chunks) - 1:
            assert len(c) == seen.chunk_ids
    assert len(table) >= n
    return chunks


# ---------------------------------------------------------------- fingerprints


def test_fingerprint_is_a_stable_64_bit_value_of_all_three_parts() -> None:
    fp = fingerprint("call", "c1", "e1")
    assert fp == fingerprint("call", "c1", "e1")
    assert 0 <= fp < 2**64
    others = {
        fingerprint("chat", "c1", "e1"),
        fingerprint("call", "c2", "e1"),
        fingerprint("call", "c1", "e2"),
        # Part boundaries are length-prefixed: moving a character across a boundary is another id.
        fingerprint("call", "c1e", "1"),
        fingerprint("callc", "1", "e1"),
        fingerprint("call", "", "c1e1"),
    }
    assert fp not in others and len(others) == 6


def test_fingerprint_accepts_any_string() -> None:
    assert fingerprint("call", "\ud800", "\x00é\U0001f600") != fingerprint(
        "call", "\ud801", "\x00é\U0001f600"
    )


def test_chunk_encoding_round_trips_little_endian() -> None:
    fps = [0, 1, 2**63, 2**64 - 1]
    raw = encode_chunk(fps)
    assert raw[:8] == bytes(8) and raw[8:16] == (1).to_bytes(8, "little")
    assert list(decode_chunk(raw)) == fps
    with pytest.raises(ValueError, match="whole number"):
        decode_chunk(raw[:-1])


# ---------------------------------------------------------------- add and contains


def test_contains_after_add_in_any_chunk_and_not_before() -> None:
    table: dict[str, bytes] = {}
    seen = SeenIds(table, chunk_ids=4)
    day = "day:2026-01-15"
    assert not seen.contains(day, 5)
    written = seen.add(day, [10, 3, 7, 1, 9, 12, 5, 3])  # 7 distinct ids: two chunks (4 + 3)
    assert written == ["seen|day:2026-01-15|0", "seen|day:2026-01-15|1"]
    for fp in (1, 3, 5, 7, 9, 10, 12):
        assert seen.contains(day, fp)
    for fp in (0, 2, 4, 11, 13, 2**64 - 1):
        assert not seen.contains(day, fp)
    assert not seen.contains("day:2026-01-16", 10)  # buckets are separate
    assert seen.count(day) == 7
    chunk_invariants(table, seen, day)


def test_add_rewrites_only_the_open_chunk_and_appends() -> None:
    table: dict[str, bytes] = {}
    seen = SeenIds(table, chunk_ids=4)
    day = "day:2026-01-15"
    seen.add(day, range(6))  # chunk 0 full, chunk 1 holds 2
    before = dict(table)
    written = seen.add(day, [100, 101, 102, 103])
    assert written == [seen.chunk_key(day, 1), seen.chunk_key(day, 2)]
    assert table[seen.chunk_key(day, 0)] is before[seen.chunk_key(day, 0)]
    assert seen.add(day, [102, 103]) == []  # all in the open chunk: nothing written
    assert seen.add(day, []) == []
    chunks = chunk_invariants(table, seen, day)
    assert sorted(x for c in chunks for x in c) == [0, 1, 2, 3, 4, 5, 100, 101, 102, 103]
    # An id of a full chunk added again goes to the open chunk: stored twice, the same membership.
    assert seen.add(day, [0]) == [seen.chunk_key(day, 2)]
    assert seen.count(day) == 11 and seen.contains(day, 0)


def test_a_full_last_chunk_is_not_rewritten() -> None:
    table: dict[str, bytes] = {}
    seen = SeenIds(table, chunk_ids=3)
    day = "day:2026-01-15"
    seen.add(day, [1, 2, 3])
    assert seen.add(day, [4]) == [seen.chunk_key(day, 1)]


def test_add_refuses_a_key_that_is_not_a_day() -> None:
    with pytest.raises(ValueError, match="day key"):
        SeenIds({}).add("month:2026-01", [1])


@SETTINGS
@given(
    batches=st.lists(st.tuples(st.sampled_from(DAYS), st.lists(SMALL_FP, max_size=12)), max_size=12),
    chunk_ids=st.integers(min_value=1, max_value=5),
    probes=st.lists(SMALL_FP, max_size=20),
)
def test_membership_equals_a_set_per_day_across_chunks_and_fresh_readers(
    batches: list[tuple[str, list[int]]], chunk_ids: int, probes: list[int]
) -> None:
    """No false negatives or positives on fingerprints, whatever the chunk boundaries, the re-opened
    chunks and the object reading the mapping; each add writes only the open chunk and new ones."""
    table: dict[str, bytes] = {}
    model: dict[str, set[int]] = {d: set() for d in DAYS}
    seen = SeenIds(table, chunk_ids=chunk_ids)
    for i, (day, fps) in enumerate(batches):
        # Alternate writers over the same mapping: a fresh one must re-open the open chunk.
        writer = seen if i % 2 == 0 else SeenIds(table, chunk_ids=chunk_ids)
        n_before = len(chunk_invariants(table, writer, day))
        before = dict(table)
        written = writer.add(day, fps)
        changed = {k for k in table if before.get(k) is not table[k]}
        assert set(written) == changed
        allowed = {writer.chunk_key(day, n) for n in range(max(n_before - 1, 0), n_before + len(fps) + 1)}
        assert changed <= allowed
        if n_before:
            assert changed.isdisjoint({writer.chunk_key(day, n) for n in range(n_before - 1)})
        model[day].update(fps)
        for reader in (seen, SeenIds(table, chunk_ids=chunk_ids), SeenIds(table, cache_chunks=0)):
            for d in DAYS:
                for fp in {*probes, *model[d]}:
                    assert reader.contains(d, fp) == (fp in model[d])
    for d in DAYS:
        chunks = chunk_invariants(table, seen, d)
        assert {x for c in chunks for x in c} == model[d]
        assert seen.count(d) >= len(model[d])
    assert seen.days() == sorted(d for d in DAYS if model[d])


@SETTINGS
@given(fps=st.lists(U64, min_size=1, max_size=40), chunk_ids=st.integers(min_value=1, max_value=7))
def test_full_range_fingerprints_round_trip_through_the_mapping(fps: list[int], chunk_ids: int) -> None:
    table: dict[str, bytes] = {}
    SeenIds(table, chunk_ids=chunk_ids).add("day:2026-03-01", fps)
    copy = {k: bytes(v) for k, v in table.items()}  # as a changelog would restore them
    reader = SeenIds(copy, chunk_ids=chunk_ids)
    assert all(reader.contains("day:2026-03-01", fp) for fp in fps)
    assert reader.count("day:2026-03-01") == len(set(fps))  # one add: no id twice


def test_the_cache_never_hides_a_write_made_by_another_object() -> None:
    table: dict[str, bytes] = {}
    a = SeenIds(table, chunk_ids=4)
    b = SeenIds(table, chunk_ids=4)
    day = "day:2026-01-15"
    a.add(day, [1, 2])
    assert a.contains(day, 1) and not a.contains(day, 3)  # a caches chunk 0
    b.add(day, [3, 4, 5])  # rewrites chunk 0 and opens chunk 1 behind a's back
    assert a.contains(day, 3) and a.contains(day, 5)
    a.add(day, [6])  # a must append to b's open chunk 1, not overwrite anything
    assert all(b.contains(day, fp) for fp in range(1, 7))
    del table[a.chunk_key(day, 1)]  # a deletion made elsewhere (the sweep deleting an expired chunk)
    assert not a.contains(day, 6) and a.contains(day, 1)
    a.forget_cache()
    assert a.contains(day, 4)


def test_prefixes_keep_partitions_apart_in_one_mapping() -> None:
    table: dict[str, bytes] = {}
    p0 = SeenIds(table, prefix="seen|call|0")
    p1 = SeenIds(table, prefix="seen|call|1")
    table["K1"] = b"not ours"  # other keys of the same table are ignored
    p0.add("day:2026-01-15", [7])
    assert p0.contains("day:2026-01-15", 7) and not p1.contains("day:2026-01-15", 7)
    assert p1.days() == []
    assert p0.days() == ["day:2026-01-15"]
    assert p1.expired_keys(ms(2030, 1, 1), KpiConfig()) == []


def test_default_chunk_is_32_kib() -> None:
    table: dict[str, bytes] = {}
    seen = SeenIds(table)
    # Distinct ids spread over the whole range (an odd multiplier is a bijection modulo 2**64).
    seen.add("day:2026-01-15", [i * 0x9E3779B97F4A7C15 % 2**64 for i in range(CHUNK_IDS + 1)])
    sizes = sorted(len(v) for v in table.values())
    assert sizes == [8, 32 * 1024]


# ---------------------------------------------------------------- events


def call(event_id: str, call_id: str, ts: int) -> Event:
    return Event(event_id=event_id, type=ev.CALL_OFFERED, ts=ts, call_id=call_id, queue="q")


def test_events_of_expired_entities_are_seen_in_their_own_days() -> None:
    table: dict[str, bytes] = {}
    seen = SeenIds(table, "Europe/Berlin")
    late_evening = ms(2026, 1, 15, 23, 30, "Europe/Berlin")  # 22:30 UTC: still the 15th locally
    c1 = [call("e1", "c1", late_evening), call("e2", "c1", late_evening + 3_600_000)]  # the 16th locally
    c2 = [call("e3", "c2", late_evening)]
    written = seen.add_entities([("call", "c1", c1), ("call", "c2", c2)])
    assert written == ["seen|day:2026-01-15|0", "seen|day:2026-01-16|0"]  # one write per day
    assert seen.count("day:2026-01-15") == 2 and seen.count("day:2026-01-16") == 1
    for e in c1:
        assert seen.seen("call", "c1", e)
    assert seen.seen("call", "c2", c2[0])
    assert not seen.seen("call", "c2", c1[0])  # the fingerprint holds the entity key
    assert not seen.seen("chat", "c1", c1[0])  # and the kind
    assert not seen.seen("call", "c1", call("e9", "c1", late_evening))


# ---------------------------------------------------------------- expiry


def oldest_month_kept(watermark_ms: int, tz: str, retention_months: int) -> str:
    """An independent reading of the month retention: the local month of the watermark, minus n-1."""
    local = datetime.fromtimestamp(watermark_ms / 1000, tz=ZoneInfo(tz)).date().replace(day=1)
    for _ in range(retention_months - 1):
        local = (local - timedelta(days=1)).replace(day=1)
    return f"{local:%Y-%m}"


def test_expiry_is_by_the_month_retention_not_the_day_retention() -> None:
    cfg = KpiConfig(retention_days=40, retention_months=13)
    table: dict[str, bytes] = {}
    seen = SeenIds(table, chunk_ids=2)
    for day in ("day:2025-10-31", "day:2025-11-30", "day:2025-12-01", "day:2026-11-30"):
        seen.add(day, [1, 2, 3])  # two chunks each
    wm = ms(2026, 12, 1, 9)
    gone = seen.expired_keys(wm, cfg)
    assert sorted(gone) == sorted(
        seen.chunk_key(d, n) for d in ("day:2025-10-31", "day:2025-11-30") for n in (0, 1)
    )
    assert seen.expired_keys(0, cfg) == []  # no event time yet: nothing expires
    for k in gone:
        del table[k]
    assert seen.days() == ["day:2025-12-01", "day:2026-11-30"]
    assert seen.contains("day:2025-12-01", 3)  # 365 days back: out of day retention, month kept


def test_expiry_uses_the_local_month_of_the_watermark() -> None:
    tz = "America/New_York"
    cfg = KpiConfig(tz=tz, retention_months=1)
    seen = SeenIds({}, tz)
    seen.add("day:2026-02-28", [1])
    utc_march = ms(2026, 3, 1, 2)  # 2026-03-01T02:00Z is still February in New York
    assert seen.expired_keys(utc_march, cfg) == []
    march_local = ms(2026, 3, 1, 0, 0, tz)
    assert seen.expired_keys(march_local, cfg) == ["seen|day:2026-02-28|0"]


@SETTINGS
@given(
    offsets=st.lists(st.integers(min_value=0, max_value=800), min_size=1, max_size=25, unique=True),
    wm_offset=st.integers(min_value=0, max_value=900),
    wm_minute=st.integers(min_value=0, max_value=1439),
    months=st.integers(min_value=1, max_value=14),
    tz=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Pacific/Kiritimati"]),
)
def test_expiry_drops_exactly_the_buckets_whose_month_is_out_of_retention(
    offsets: list[int], wm_offset: int, wm_minute: int, months: int, tz: str
) -> None:
    base = date(2025, 1, 1)
    cfg = KpiConfig(tz=tz, retention_days=40, retention_months=months)
    table: dict[str, bytes] = {}
    seen = SeenIds(table, tz, chunk_ids=1)
    days = [f"day:{base + timedelta(days=o):%Y-%m-%d}" for o in offsets]
    for d in days:
        seen.add(d, [1, 2])
    start, _ = period_bounds(f"day:{base + timedelta(days=wm_offset):%Y-%m-%d}", tz)
    wm = start + wm_minute * 60_000
    oldest = oldest_month_kept(wm, tz, months)
    want = {seen.chunk_key(d, n) for d in days if d[4:11] < oldest for n in (0, 1)}
    assert set(seen.expired_keys(wm, cfg)) == want
    assert all(month_of_day(d) == f"month:{d[4:11]}" for d in days)


def test_day_key_of_an_instant_matches_the_bucket_seen_uses() -> None:
    ts = int(datetime(2026, 1, 15, 23, 59, tzinfo=UTC).timestamp() * 1000)
    seen = SeenIds({}, "Asia/Tokyo")
    seen.add_entities([("call", "c", [call("e", "c", ts)])])
    assert seen.days() == [day_key(ts, "Asia/Tokyo")] == ["day:2026-01-16"]

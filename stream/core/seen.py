"""Fingerprints of the event ids of expired entities, so a replay is recognised after the state is gone.

Stage 1 recognises a repeated `event_id` while the entity's state is kept (entity.py); the state is
dropped after `entity_grace_ms` of idle event time to bound memory. CONTRACT.md section 1 asks more:
a repeated `event_id` changes nothing for as long as any period the event falls in is retained. So
when an entity's state expires, the ids of its events move here, as 8-byte fingerprints of
(kind, entity key, event_id), and an event that is not in its entity's state is looked up here.

Layout, in any `MutableMapping[str, bytes]` (a dict, or a Faust table with a bytes codec):
- one bucket per day of event time (`day:YYYY-MM-DD`, the event's own day in the configured zone), so
  a whole bucket is dropped when its period leaves retention;
- a bucket is a run of chunks `{prefix}|{day}|0`, `{prefix}|{day}|1`, ...; each chunk is a sorted
  array of unsigned 64-bit fingerprints, little-endian, at most `chunk_ids` of them (4096 = 32 KiB).
  Adding ids rewrites only the last (open) chunk and appends new ones: a table logs every assignment
  to its changelog, so a write costs at most one open chunk plus the new ids.

An event is looked up in the bucket of its own day, so a re-send of an `event_id` with an event time
on another day is not recognised here (stage 1 recognises it while the entity's state is kept).

The mapping is the only truth: the in-process cache of decoded chunks is checked against the value
the mapping holds now (by identity) at every read, so writes by others (changelog recovery, another
`SeenIds` over the same mapping) are never missed.

False positives. A fingerprint is 64 bits of BLAKE2b, so a new event whose day bucket holds N ids is
taken for a repeat with probability N / 2**64. Over a day of E events, each looked up once against
at most E ids of its day, the expected number of genuine events dropped is at most E**2 / 2**64:
5.4e-8 a day at a million events a day (one wrong event in ~50,000 years), 5.4e-6 at ten million
(one in ~500 years). Collisions between two stored ids are harmless (both events were counted).
32 bits would drop ~230 genuine events a day at a million a day, so 64 bits are the smallest word
that makes the error negligible, and 128 would double the memory for nothing. The hash is not keyed:
a producer who wants an event ignored can already resend a used `event_id`.
"""

from __future__ import annotations

import hashlib
import sys
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, MutableMapping, Sequence

from stream.core.config import KpiConfig
from stream.core.events import Event
from stream.core.periods import DAY_PREFIX, MONTH_PREFIX, day_key, is_expired

FINGERPRINT_BYTES = 8
CHUNK_IDS = 4096  # ids per chunk: 32 KiB, the most one add rewrites besides the new ids
CACHE_CHUNKS = 64  # decoded chunks kept in process: views of the bytes, no copy (a stale one: <= 2 MiB)
DEFAULT_PREFIX = "seen"

_LITTLE = sys.byteorder == "little"
if array("Q").itemsize != FINGERPRINT_BYTES:  # pragma: no cover - every supported platform
    raise ImportError("array('Q') is not 8 bytes on this platform")


def partition_prefix(kind: str, partition: int) -> str:
    """The prefix of one entity kind's table partition (`seen|call|3`)."""
    return f"{DEFAULT_PREFIX}|{kind}|{partition}"


def _part(s: str) -> bytes:
    b = s.encode("utf-8", "surrogatepass")
    return len(b).to_bytes(4, "little") + b


def fingerprint(kind: str, entity_key: str, event_id: str) -> int:
    """The 64-bit fingerprint of an event id within its entity (length-prefixed parts: no ambiguity)."""
    data = _part(kind) + _part(entity_key) + event_id.encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=FINGERPRINT_BYTES).digest(), "little")


def encode_chunk(fps: Sequence[int]) -> bytes:
    """Sorted fingerprints as the stored value: little-endian u64s."""
    arr = array("Q", fps)
    if not _LITTLE:  # pragma: no cover - big-endian hosts
        arr.byteswap()
    return arr.tobytes()


def decode_chunk(raw: bytes) -> Sequence[int]:
    """A stored chunk as a sequence of ints (a zero-copy view on little-endian hosts)."""
    if len(raw) % FINGERPRINT_BYTES:
        raise ValueError(f"a seen-ids chunk of {len(raw)} bytes is not a whole number of fingerprints")
    if _LITTLE:
        return memoryview(raw).cast("Q")
    arr = array("Q")  # pragma: no cover - big-endian hosts
    arr.frombytes(raw)  # pragma: no cover
    arr.byteswap()  # pragma: no cover
    return arr  # pragma: no cover


def month_of_day(day: str) -> str:
    """`day:YYYY-MM-DD` -> `month:YYYY-MM` (the day key is already local to the configured zone)."""
    return f"{MONTH_PREFIX}{day[len(DAY_PREFIX) : len(DAY_PREFIX) + 7]}"


class SeenIds:
    """Fingerprints of seen event ids by day bucket, in chunks, over any mapping of str -> bytes.

    Give each table partition its own `prefix` (e.g. `seen|call|3`) when several partitions share one
    mapping, as they do in a worker's Faust table: chunk keys must not collide across partitions.
    """

    def __init__(
        self,
        table: MutableMapping[str, bytes],
        tz: str = "UTC",
        *,
        prefix: str = DEFAULT_PREFIX,
        chunk_ids: int = CHUNK_IDS,
        cache_chunks: int = CACHE_CHUNKS,
    ) -> None:
        if chunk_ids < 1:
            raise ValueError("chunk_ids must be at least 1")
        self.table = table
        self.tz = tz
        self.prefix = prefix
        self.chunk_ids = chunk_ids
        self.cache_chunks = cache_chunks
        self._cache: dict[str, tuple[bytes, Sequence[int]]] = {}

    # ------------------------------------------------------------ keys and chunks
    def chunk_key(self, day: str, n: int) -> str:
        return f"{self.prefix}|{day}|{n}"

    def day_of(self, key: str) -> str | None:
        """The day bucket of one of our chunk keys; None for any other key."""
        head = f"{self.prefix}|"
        if not key.startswith(head):
            return None
        day, _, n = key[len(head) :].rpartition("|")
        if not day.startswith(DAY_PREFIX) or not n.isdigit():
            return None
        return day

    def _chunk(self, key: str) -> Sequence[int] | None:
        """The chunk stored under `key` now, decoded (cached while the mapping holds the same bytes)."""
        raw = self.table.get(key)
        if raw is None:
            return None
        hit = self._cache.get(key)
        if hit is not None and hit[0] is raw:  # the cache holds `raw`, so its identity is not reused
            return hit[1]
        chunk = decode_chunk(raw)
        if self.cache_chunks > 0:
            if len(self._cache) >= self.cache_chunks:
                del self._cache[next(iter(self._cache))]  # the oldest entry
            self._cache[key] = (raw, chunk)
        return chunk

    def _chunks(self, day: str) -> Iterator[Sequence[int]]:
        """The chunks of a day bucket, in order (numbered from 0 without gaps), read as needed."""
        head = f"{self.prefix}|{day}|"
        n = 0
        while (chunk := self._chunk(f"{head}{n}")) is not None:
            yield chunk
            n += 1

    # ------------------------------------------------------------ the API
    def contains(self, day: str, fp: int) -> bool:
        """Whether fingerprint `fp` was added to bucket `day`."""
        for chunk in self._chunks(day):
            i = bisect_left(chunk, fp)
            if i < len(chunk) and chunk[i] == fp:
                return True
        return False

    def add(self, day: str, fps: Iterable[int]) -> list[str]:
        """Add fingerprints to bucket `day`; return the chunk keys written.

        Only the open (last, not full) chunk is rewritten; the rest of the new ids fill new chunks.
        An id already in the open chunk is not stored twice, one in a full chunk may be: checking
        them would cost a search per id and chunk, for a case that only a repeated sweep (a crash
        between its writes) produces, and membership is the same either way.
        """
        if not day.startswith(DAY_PREFIX):
            raise ValueError(f"not a day key: {day!r}")
        n = 0
        last: Sequence[int] = ()
        for chunk in self._chunks(day):
            last = chunk
            n += 1
        ids = set(fps)
        if n and len(last) < self.chunk_ids:
            n -= 1  # reopen the last chunk
            if ids.issubset(last):
                return []
            ids.update(last)
        elif not ids:
            return []
        pending = sorted(ids)
        written: list[str] = []
        for start in range(0, len(pending), self.chunk_ids):
            key = self.chunk_key(day, n)
            self.table[key] = encode_chunk(pending[start : start + self.chunk_ids])
            self._cache.pop(key, None)
            written.append(key)
            n += 1
        return written

    def expired_keys(self, watermark_ms: int, cfg: KpiConfig) -> list[str]:
        """Chunk keys of buckets whose day's month is out of retention (the caller deletes them).

        The horizon is the month's retention, not the day's: an event still counts in its month after
        its day is gone, so a repeat of it must be recognised as long as the month is kept.
        """
        out: list[str] = []
        expired: dict[str, bool] = {}
        for key in list(self.table.keys()):
            day = self.day_of(key)
            if day is None:
                continue
            gone = expired.get(day)
            if gone is None:
                gone = expired[day] = is_expired(
                    month_of_day(day), watermark_ms, cfg.tz, cfg.retention_days, cfg.retention_months
                )
            if gone:
                out.append(key)
        return out

    def days(self) -> list[str]:
        """The day buckets held, sorted."""
        return sorted({d for k in list(self.table.keys()) if (d := self.day_of(k)) is not None})

    def count(self, day: str) -> int:
        """How many fingerprints bucket `day` stores (an id re-added after its chunk filled: twice)."""
        return sum(len(c) for c in self._chunks(day))

    def forget_cache(self) -> None:
        """Drop the decoded chunks kept in process (they are re-read from the mapping when needed)."""
        self._cache.clear()

    # ------------------------------------------------------------ events
    def seen(self, kind: str, entity_key: str, event: Event) -> bool:
        """Whether this event of this entity was added before (looked up in the bucket of its own day).

        Stage 1 asks this for nearly every live event, whose day bucket is empty (entities expire
        days later): an empty bucket answers before the fingerprint is hashed.
        """
        day = day_key(event.ts, self.tz)
        if self.table.get(self.chunk_key(day, 0)) is None:
            return False
        return self.contains(day, fingerprint(kind, entity_key, event.event_id))

    def add_entities(self, entities: Iterable[tuple[str, str, Iterable[Event]]]) -> list[str]:
        """Add the events of expired entities, (kind, entity key, events) each; one write per day touched.

        Give all the entities one sweep expires in one call: every day bucket is then rewritten once.
        """
        by_day: dict[str, list[int]] = {}
        for kind, entity_key, events in entities:
            for e in events:
                by_day.setdefault(day_key(e.ts, self.tz), []).append(
                    fingerprint(kind, entity_key, e.event_id)
                )
        written: list[str] = []
        for day in sorted(by_day):
            written.extend(self.add(day, by_day[day]))
        return written

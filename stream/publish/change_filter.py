"""Which records changed since they were last published (a digest per output key)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from stream.core import jsonbytes
from stream.sinks.base import Record


def content_digest(rec: Record) -> bytes:
    """A digest of the record without its time stamp: what decides whether it changed.

    A digest (16 bytes), not the content itself, is remembered per published key: with 5,000
    operators x 40 days that is 200,000 records, and keeping their content cost ~200 MB. The
    content is the record's JSON with sorted keys (orjson: 1 and 1.0, 0 and null stay apart), as
    every sink writes JSON; a `repr` of the sorted items cost 5x more, and a flush that republishes
    the shares of a 5,000-operator month digests 5,000 records.
    """
    text = jsonbytes.dumps_sorted({k: v for k, v in rec.items() if k != "updated_at"})
    return hashlib.blake2b(text, digest_size=16).digest()


class ChangeFilter:
    """Remembers the digest of every record of a live period published by a normal batch.

    Resyncs leave it alone. Rule: only the live periods' records (the current day and month, the
    rolling hour, live rows) are remembered. They are the ones built again and again unchanged;
    a past period's records are built when its counts changed (a late event), at a strategy switch
    or a start, when they changed or are written anyway. Remembering all of them held 200,000
    digests (18 MB) for 5,000 operators x 40 days for nothing (docs/benchmarks.md).
    """

    def __init__(self) -> None:
        self._published: dict[str, bytes] = {}

    def changed(self, key: str, rec: Record, *, remember: bool = True) -> bool:
        """True when `rec` differs from what was last published under `key`; remembered if asked.

        Not remembered (a period that is not live any more): always True, and any digest of it is
        dropped, so the next build of that key is published as it is.
        """
        if not remember:
            self._published.pop(key, None)
            return True
        content = content_digest(rec)
        if self._published.get(key) == content:
            return False
        self._published[key] = content
        return True

    def forget(self, keys: Iterable[str]) -> None:
        """Drop the digests of records that were retracted (their period left retention)."""
        for key in keys:
            self._published.pop(key, None)

    def clear(self) -> None:
        self._published = {}

    def __len__(self) -> int:
        return len(self._published)

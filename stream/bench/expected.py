"""The bench's correctness oracle: the Redis hashes the worker must publish, computed by the Engine."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

from schemas.parse import parse_event
from stream.core.keys import AggKey
from stream.sinks.redis_keys import OperatorKey, queue_or_center_key


def expected_redis(
    events: list[dict[str, Any]], *, scopes: tuple[str, ...] = ("op", "queue", "center")
) -> dict[str, dict[str, int]]:
    """Redis hash -> count fields the worker must have published once it processed every event."""
    from stream.core.config import KpiConfig
    from stream.core.engine import Engine
    from stream.core.eventtime import FromTheFuture, TooLate

    engine = Engine(KpiConfig())
    for i, e in enumerate(events):
        with contextlib.suppress(TooLate, FromTheFuture):
            engine.process(to_event(e), "file:0", i)
    out: dict[str, dict[str, int]] = {}
    for key, st in engine.aggs.items():
        scope, sid, pk = AggKey.decode(key)
        if scope not in scopes or not pk.startswith(("day:", "month:")) or not st.counts:
            continue
        if scope == "op":
            rkey = OperatorKey(sid, pk).encode()
        else:
            rkey = queue_or_center_key(sid if scope == "queue" else None, pk).encode()
        out[rkey] = {k: int(v) for k, v in st.counts.items()}
    return out


def to_event(e: dict[str, Any]) -> Any:

    return parse_event(json.dumps(e, separators=(",", ":")))


def redis_check(
    client: Any, expected: Mapping[str, Mapping[str, int]], limit: int = 1
) -> tuple[list[str], int]:
    """Up to `limit` expected hash fields that Redis does not hold (yet), and a digest of those hashes."""
    keys = list(expected)
    pipe = client.pipeline(transaction=False)
    for k in keys:
        pipe.hgetall(k)
    out: list[str] = []
    digest = 0
    for k, h in zip(keys, pipe.execute(), strict=True):
        digest = hash((digest, tuple(sorted(h.items()))))
        if len(out) >= limit:
            continue
        if not h:
            out.append(f"{k}: missing")
            continue
        for field_name, want in expected[k].items():
            got = h.get(field_name.encode())
            if got is None or float(got) != want:
                out.append(f"{k}.{field_name}: want {want}, got {got.decode() if got else None}")
                break
    return out, digest

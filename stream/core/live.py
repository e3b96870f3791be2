"""The live state of each queue, now: calls and chats waiting, the longest wait, e-mails, agents.

"Now" is event time (the watermark), so a replay shows the floor as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stream.core.aggregate import NOW, AggState
from stream.core.config import KpiConfig
from stream.core.contributions import AGENTS, LIVE, MAIL
from stream.core.keys import AggKey

LIVE_FIELDS: tuple[str, ...] = (
    "waiting",
    "longest_wait_s",
    "chats_waiting",
    "emails_open",
    "emails_overdue",
    "agents_available",
    "agents_busy",
    "agents_wrap_up",
    "agents_paused",
)


def live_state(aggs: Mapping[str, AggState], watermark_ms: int, cfg: KpiConfig) -> dict[str, dict[str, Any]]:
    """Per queue, now: calls and chats waiting, the longest wait, e-mails open and overdue, agents by state.

    `aggs` holds live aggregates already slid to the watermark (AggregateStore.slid). "Now" is event
    time: the newest event seen, so a replay shows the floor as it was.
    """
    out: dict[str, dict[str, Any]] = {}
    for key, st in aggs.items():
        scope, queue, pk = AggKey.decode(key)
        if pk != NOW or scope not in (LIVE, MAIL, AGENTS):
            continue
        row = out.setdefault(queue, dict.fromkeys(LIVE_FIELDS, 0))
        if scope == LIVE:
            row["waiting"] += st.counts.get("waiting", 0)
            row["chats_waiting"] += st.counts.get("chats_waiting", 0)
            oldest = next((ts for ts in st.times or () if (st.entries or {})[ts].get("waiting", 0) > 0), None)
            if oldest is not None:
                row["longest_wait_s"] = max(0, watermark_ms - oldest) // 1000
        elif scope == MAIL:
            row["emails_open"] += st.counts.get("emails_open", 0)
            due = watermark_ms - cfg.email_threshold_ms
            row["emails_overdue"] += sum(
                (st.entries or {})[ts].get("emails_open", 0) for ts in st.times or () if ts < due
            )
        else:
            for state in ("available", "busy", "wrap_up", "paused"):
                row[f"agents_{state}"] += st.counts.get(f"agents_{state}", 0)
    return out

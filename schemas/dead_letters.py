"""The `kpi.dead-letters` value of a rejected message (CONTRACT.md section 5)."""

from __future__ import annotations

from typing import Any, Final

from schemas.parse import REASONS
from schemas.timestamps import format_ts

__all__ = ["DEAD_LETTER_RAW_BYTES", "DEAD_LETTER_REASONS", "dead_letter"]

# Reasons a dead letter may carry: parse_event's, plus those the pipeline adds itself
# (agents/pipeline.py: an event older than the allowed lateness; a call with no call.offered).
DEAD_LETTER_REASONS: Final[tuple[str, ...]] = (*REASONS, "future", "too_late", "orphan")
DEAD_LETTER_RAW_BYTES: Final = 4096


def _cut_utf8(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    # `data` is valid UTF-8, so "ignore" only drops the character split at the cut.
    return data[:limit].decode("utf-8", "ignore")


def dead_letter(
    raw: bytes | str,
    reason: str,
    detail: str,
    source_topic: str,
    partition: int | None,
    offset: int | None,
    now_ms: int,
    field: str | None = None,
) -> dict[str, Any]:
    """The `kpi.dead-letters` value for a rejected message (CONTRACT.md section 5).

    `raw` is decoded as UTF-8 with invalid bytes replaced by U+FFFD and cut to at most 4096
    bytes of UTF-8 without splitting a character; `ts` is when it was dead-lettered (`now_ms`).
    """
    if isinstance(raw, str):
        text = raw.encode("utf-8", "surrogatepass")[: DEAD_LETTER_RAW_BYTES + 4].decode("utf-8", "replace")
    else:
        # A character is at most 4 bytes, so a prefix of limit + 4 bytes decodes the kept part
        # exactly as the whole message would.
        text = bytes(raw[: DEAD_LETTER_RAW_BYTES + 4]).decode("utf-8", "replace")
    return {
        "reason": reason,
        "source_topic": source_topic,
        "partition": partition,
        "offset": offset,
        "raw": _cut_utf8(text, DEAD_LETTER_RAW_BYTES),
        "ts": format_ts(now_ms),
        "detail": detail,
        "field": field,
    }

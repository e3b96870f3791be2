"""The public names of input-event validation, re-exported from the modules that define them.

A thin compatibility layer: `parse_event`, `dead_letter`, `format_ts`, ... keep their old import
path (`from schemas.events import parse_event`) while callers move to the modules by role. New
code imports from those modules directly:

- `schemas.parse`         `parse_event`, `REASONS`, `DEFAULT_MAX_BYTES` (the rules of section 1)
- `schemas.fields`        the contract's table of type-specific fields (`TYPE_FIELDS`, `FieldSpec`)
- `schemas.timestamps`    `parse_ts`, `format_ts` (the one RFC 3339 milliseconds formatter), bounds
- `schemas.json_decode`   raw bytes -> JSON object (fast orjson path and the strict decoder)
- `schemas.event_factory` the fast `Event` constructor
- `schemas.dead_letters`  `dead_letter`, `DEAD_LETTER_REASONS`, `DEAD_LETTER_RAW_BYTES` (section 5)
"""

from __future__ import annotations

from schemas.dead_letters import DEAD_LETTER_RAW_BYTES, DEAD_LETTER_REASONS, dead_letter
from schemas.fields import MAX_ID_LENGTH, TYPE_FIELDS, FieldSpec
from schemas.parse import DEFAULT_MAX_BYTES, REASONS, parse_event
from schemas.timestamps import MAX_TS_MS, format_ts, parse_ts

__all__ = [
    "DEAD_LETTER_RAW_BYTES",
    "DEAD_LETTER_REASONS",
    "DEFAULT_MAX_BYTES",
    "MAX_ID_LENGTH",
    "MAX_TS_MS",
    "REASONS",
    "TYPE_FIELDS",
    "FieldSpec",
    "dead_letter",
    "format_ts",
    "parse_event",
    "parse_ts",
]

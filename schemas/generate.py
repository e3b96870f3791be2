"""Generate the JSON Schema files in schemas/json/ from `schemas.fields.TYPE_FIELDS`.

    python -m schemas.generate            # (re)write the files
    python -m schemas.generate --check    # exit 1 if a committed file differs

The schemas are JSON Schema draft 2020-12 and self-contained (no external `$ref`). They say what
`parse_event` accepts, with two gaps a JSON Schema cannot express: the calendar (2026-02-30 matches
the timestamp and date patterns) together with the UTC range after an offset is applied, and
JSON-level rules (duplicate keys, lone surrogates). `parse_event` is the authority: whatever the
schema rejects, `parse_event` rejects too.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from schemas.dead_letters import DEAD_LETTER_RAW_BYTES, DEAD_LETTER_REASONS
from schemas.fields import (
    AMOUNT,
    BOOL,
    COUNT,
    DATE,
    ENUM,
    ID,
    ID_LIST,
    MAX_AMOUNT_EXCLUSIVE,
    MAX_COUNT,
    MAX_ID_LENGTH,
    TEXT,
    TYPE_FIELDS,
    FieldSpec,
)
from schemas.timestamps import MAX_TS_SECONDS_EXCLUSIVE
from stream.core.events import STREAM_OF_TYPE

DRAFT = "https://json-schema.org/draft/2020-12/schema"
JSON_DIR = Path(__file__).resolve().parent / "json"

_YEAR = "(19[7-9][0-9]|[2-9][0-9]{3})"
_DATE = f"{_YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_TIME = "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]+)?"
_OFFSET = "([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
TS_PATTERN = f"^{_DATE}[Tt]{_TIME}{_OFFSET}$"
DATE_PATTERN = f"^{_DATE}$"


def _id_schema(description: str, nullable: bool) -> dict[str, Any]:
    s: dict[str, Any] = {
        "type": ["string", "null"] if nullable else "string",
        "minLength": 1,
        "maxLength": MAX_ID_LENGTH,
    }
    if description:
        s["description"] = description
    return s


def ts_schema() -> dict[str, Any]:
    return {
        "description": (
            "Event time: an RFC 3339 string with an offset (fractional seconds truncated to "
            "milliseconds) or a number of seconds since the epoch."
        ),
        "anyOf": [
            {"type": "string", "format": "date-time", "pattern": TS_PATTERN},
            {"type": "number", "minimum": 0, "exclusiveMaximum": MAX_TS_SECONDS_EXCLUSIVE},
        ],
    }


def field_schema(spec: FieldSpec) -> dict[str, Any]:
    nullable = not spec.required  # null is the same as absent for an optional field
    kind = spec.kind
    s: dict[str, Any]
    if kind in (ID, TEXT):
        s = _id_schema(spec.description, nullable)
        if spec.reserved:
            s["not"] = {"enum": list(spec.reserved)}
        return s
    if kind == ENUM:
        s = {"enum": [*spec.choices, None] if nullable else list(spec.choices)}
    elif kind == BOOL:
        s = {"type": "boolean"}
    elif kind == DATE:
        s = {"type": "string", "format": "date", "pattern": DATE_PATTERN}
    elif kind == COUNT:
        s = {"type": "integer", "minimum": 0, "maximum": MAX_COUNT}
    elif kind == AMOUNT:
        s = {"type": "number", "minimum": 0, "exclusiveMaximum": MAX_AMOUNT_EXCLUSIVE}
    elif kind == ID_LIST:
        item = _id_schema("", False)
        if spec.reserved:
            item["not"] = {"enum": list(spec.reserved)}
        s = {"type": ["array", "null"] if nullable else "array", "items": item}
    else:  # pragma: no cover
        raise AssertionError(kind)
    if nullable and kind in (BOOL, DATE, COUNT, AMOUNT):
        s["type"] = [s["type"], "null"]
    if spec.description:
        s["description"] = spec.description
    return s


def event_type_schema(etype: str, standalone: bool = True) -> dict[str, Any]:
    specs = TYPE_FIELDS[etype]
    properties: dict[str, Any] = {
        "event_id": _id_schema("Unique per event: the idempotency key.", False),
        "type": {"const": etype},
        "ts": ts_schema(),
    }
    for spec in specs:
        properties[spec.name] = field_schema(spec)
    s: dict[str, Any] = {}
    if standalone:
        s["$schema"] = DRAFT
    s.update(
        {
            "title": etype,
            "description": (
                f"A {etype} event (CONTRACT.md section 1, topic events.{STREAM_OF_TYPE[etype]}). "
                "Fields not listed here are ignored (forward compatible); null equals absent."
            ),
            "type": "object",
            "required": ["event_id", "type", "ts", *(f.name for f in specs if f.required)],
            "properties": properties,
        }
    )
    if etype == "chat.message":
        s["if"] = {"required": ["sender"], "properties": {"sender": {"const": "operator"}}}
        s["then"] = {"required": ["operator_id"], "properties": {"operator_id": {"type": "string"}}}
    elif etype == "contact.disposition":
        s["anyOf"] = [
            {"required": [key], "properties": {key: {"type": "string"}}} for key in ("case_id", "customer_id")
        ]
    return s


def event_schema() -> dict[str, Any]:
    return {
        "$schema": DRAFT,
        "title": "kpistream input event",
        "description": "Any input event of CONTRACT.md section 1, selected by its type.",
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": list(TYPE_FIELDS)}},
        "oneOf": [{"$ref": f"#/$defs/{t}"} for t in TYPE_FIELDS],
        "$defs": {t: event_type_schema(t, standalone=False) for t in TYPE_FIELDS},
    }


def dead_letter_schema() -> dict[str, Any]:
    nullable_int = {"type": ["integer", "null"], "minimum": 0}
    return {
        "$schema": DRAFT,
        "title": "kpi.dead-letters value",
        "description": "A rejected input message (CONTRACT.md sections 1 and 5).",
        "type": "object",
        "required": ["reason", "source_topic", "partition", "offset", "raw", "ts", "detail", "field"],
        "properties": {
            "reason": {"enum": list(DEAD_LETTER_REASONS)},
            "source_topic": {"type": "string", "description": "The topic (or file) it came from."},
            "partition": {**nullable_int, "description": "Kafka partition; null for a file."},
            "offset": {**nullable_int, "description": "Kafka offset; null for a file."},
            "raw": {
                "type": "string",
                "description": (
                    f"The message as UTF-8 text (invalid bytes replaced by U+FFFD), cut to at most "
                    f"{DEAD_LETTER_RAW_BYTES} bytes of UTF-8 without splitting a character."
                ),
            },
            "ts": {
                "type": "string",
                "format": "date-time",
                "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
                "description": "When it was dead-lettered (RFC 3339, UTC, milliseconds).",
            },
            "detail": {"type": "string", "minLength": 1, "description": "A human explanation."},
            "field": {"type": ["string", "null"], "description": "The offending field, if any."},
        },
    }


def all_schemas() -> dict[str, dict[str, Any]]:
    """File name -> schema, for every file in schemas/json/."""
    out = {f"{t}.schema.json": event_type_schema(t) for t in TYPE_FIELDS}
    out["event.schema.json"] = event_schema()
    out["dead-letter.schema.json"] = dead_letter_schema()
    from schemas.outputs import output_schemas  # the output messages (hand-written)

    out.update(output_schemas())
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas.generate", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if a file differs")
    parser.add_argument("--out", type=Path, default=JSON_DIR, help="output directory (default schemas/json)")
    args = parser.parse_args(argv)
    out: Path = args.out
    stale = []
    for name, schema in all_schemas().items():
        path = out / name
        text = render(schema)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(name)
        if not args.check:
            out.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if args.check:
        for name in stale:
            print(f"out of date: {out / name}", file=sys.stderr)
        return 1 if stale else 0
    for name in stale:
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

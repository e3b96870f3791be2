"""Short, safe renderings of JSON values for the `detail` sentence of a rejected event."""

from __future__ import annotations

import json
from decimal import Decimal

__all__ = ["encodable", "json_type", "quote", "show"]


def json_type(v: object) -> str:
    """The JSON type name of a decoded value ("number", "array", ...), for messages."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | Decimal | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def quote(s: str) -> str:
    """A string quoted as JSON, shortened to 40 characters."""
    return json.dumps(s[:40] + ("..." if len(s) > 40 else ""))


def show(v: object) -> str:
    """A short rendering of a JSON value for a detail sentence."""
    if isinstance(v, str):
        return f"the string {quote(v)}"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v) if v.bit_length() < 128 else "a very large integer"
    if isinstance(v, Decimal | float):
        text = str(v)
        return text if len(text) <= 40 else text[:40] + "..."
    if isinstance(v, list | dict):
        return f"an {json_type(v)}"
    return f"a {json_type(v)}"


def encodable(s: str) -> bool:
    """False when `s` holds a lone surrogate (JSON can carry one; UTF-8 cannot)."""
    if s.isascii():
        return True
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True

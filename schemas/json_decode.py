"""Raw message -> JSON object: a fast orjson path for plain events, the strict standard decoder otherwise.

Strict means: UTF-8 only, no lone surrogates, no NaN/Infinity, no duplicate keys, numbers with a
fraction as `Decimal` (exact amounts), and a clear `InvalidEvent("invalid_json")` for anything else.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Final

import orjson as _orjson

from stream.errors import InvalidEvent

__all__ = ["fast_decode", "strict_decode"]


class _JsonRejected(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _JsonRejected(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise _JsonRejected(f"duplicate key {json.dumps(k[:40])} in a JSON object")
            seen.add(k)
    return d


_DECODER: Final = json.JSONDecoder(
    parse_float=Decimal, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates
)
_decode = _DECODER.decode
_orjson_loads: Final = _orjson.loads
_scan_once: Final[Any] = _DECODER.scan_once  # type: ignore[attr-defined]


def fast_decode(raw: bytes | str) -> dict[str, Any] | None:
    """The message as a dict when it is a plain event; None when `strict_decode` must look.

    orjson is ~3x faster than the standard decoder but differs from it where this module is
    strict: it keeps the last of duplicate keys, reads numbers with a fraction as floats, and
    has its own error messages. So its result is only used for a flat object of strings,
    integers, booleans, nulls and lists of strings, with no backslash anywhere in the message
    and exactly one `":` per key: without backslashes every `"` delimits a string, so each `":`
    closes a key, and a duplicate key would leave fewer keys than `":`. Everything else (errors
    included) goes through the strict decoder, which also gives the error message.
    """
    try:
        if ("\\" in raw) if type(raw) is str else (b"\\" in raw):
            return None
        obj = _orjson_loads(raw)
    except (_orjson.JSONDecodeError, TypeError):
        return None
    if type(obj) is not dict:
        return None
    for v in obj.values():
        t = type(v)
        if t is str or t is int or v is None or t is bool:
            continue
        if t is list and all(type(x) is str for x in v):
            continue
        return None
    marks = raw.count('":') if type(raw) is str else raw.count(b'":')  # type: ignore[arg-type]
    if marks != len(obj):
        return None
    return obj


def strict_decode(raw: bytes | str, max_bytes: int) -> Any:
    """The standard library's decoder with Decimal numbers and no duplicate keys or NaN."""
    if isinstance(raw, str):
        text = raw
        if text.isascii():
            size = len(text)
            encodable = True
        else:
            try:
                size = len(text.encode("utf-8"))
                encodable = True
            except UnicodeEncodeError:
                size = len(text.encode("utf-8", "surrogatepass"))
                encodable = False
        if size > max_bytes:
            raise InvalidEvent("too_large", f"message is {size} bytes; the limit is {max_bytes}")
        if not encodable:
            raise InvalidEvent("invalid_json", "message contains lone surrogates: not valid UTF-8 text")
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidEvent("invalid_json", f"message is not valid UTF-8 (byte {exc.start})") from None
        except AttributeError:
            raise TypeError(f"raw must be bytes or str, not {type(raw).__name__}") from None

    try:
        try:
            obj, end = _scan_once(text, 0)  # decode() minus its two whitespace regexes
        except StopIteration:
            obj, end = _decode(text), len(text)  # leading whitespace, or not JSON: decode() says why
        if end != len(text) and text[end:].strip(" \t\n\r"):
            raise json.JSONDecodeError("Extra data", text, end)
    except json.JSONDecodeError as exc:
        raise InvalidEvent("invalid_json", f"not valid JSON: {exc.msg} at character {exc.pos}") from None
    except RecursionError:
        raise InvalidEvent("invalid_json", "JSON nested too deeply") from None
    except ValueError as exc:  # _JsonRejected, or an integer beyond Python's digit limit
        raise InvalidEvent("invalid_json", f"not acceptable JSON: {exc}") from None
    return obj

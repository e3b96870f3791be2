"""HTTP ingest: `POST /api/v1/events` writes contract events to the input topics, as `produce` does.

For cloud telephony (webhooks) and anything else that speaks HTTP rather than Kafka. Rules:

- The body is `application/json` (one event, or an array of events) or JSON Lines
  (`application/x-ndjson`, `application/jsonl`): any other type is refused (415), which also keeps
  a browser form elsewhere from posting here with a user's credentials.
- A body over `web_max_body_bytes` is refused (413) before any of it is used.
- Every event is validated by `schemas.parse.parse_event`, the stream's own parser, with the
  stream's size limit, and sent *unchanged* (its own bytes) to the topic and key
  `stream.commands.produce.route` gives, as `kpistream produce` does.
- The answer lists every event, accepted or rejected with the reason (the dead-letter reasons of
  the stream): nothing is dropped silently. Accepted means written: the broker acknowledged it
  (acks=all) before the answer. 200 when all were accepted, 422 when some were not valid (the
  valid ones were written), 503 when some could not be written. Resending a whole body is
  harmless: an `event_id` counts once (CONTRACT.md section 1).
- Event-time checks (`future`, `too_late`) belong to the stream: an accepted event can still be a
  dead letter there, as it would be from `produce`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web as aioweb

from schemas.parse import parse_event
from stream.commands.produce import route
from stream.config import Settings
from stream.core.events import Event
from stream.errors import InvalidEvent

log = logging.getLogger(__name__)

INGEST_PATH = "/api/v1/events"
JSON_TYPES = frozenset({"application/json"})
LINES_TYPES = frozenset({"application/x-ndjson", "application/jsonl", "application/json-lines"})
#: How long the answer waits for the broker's acknowledgements of one request's events.
ACK_TIMEOUT_S = 30.0
READ_CHUNK = 65536

Send = Callable[[str, bytes | None, bytes], Awaitable[Awaitable[Any]]]


class BadBody(ValueError):
    """The body cannot be split into events at all (a broken array): 400, nothing is written."""


@dataclass(frozen=True, slots=True)
class Item:
    """One event of a request: where it was, its raw bytes, and its parse outcome."""

    index: int
    line: int | None
    raw: bytes
    event: Event | None = None
    reason: str | None = None
    detail: str | None = None
    field: str | None = None


def body_kind(content_type: str) -> str | None:
    """'json' or 'lines' from a Content-Type (parameters ignored); None when it is neither."""
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime in JSON_TYPES:
        return "json"
    if mime in LINES_TYPES:
        return "lines"
    return None


def split_body(body: bytes, kind: str) -> list[tuple[int | None, bytes]]:
    """The raw events of a body as (line number or None, bytes), each exactly as it was sent.

    JSON Lines: every non-blank line. JSON: an array gives its elements (their own text), anything
    else is one event (parse_event judges it). BadBody when an array cannot be split.
    """
    if kind == "lines":
        out: list[tuple[int | None, bytes]] = []
        for n, line in enumerate(body.split(b"\n"), 1):
            raw = line.rstrip(b"\r")
            if raw.strip():
                out.append((n, raw))
        return out
    stripped = body.strip()
    if not stripped.startswith(b"["):
        return [(None, stripped)] if stripped else []
    try:
        text = stripped.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadBody(f"the body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    return [(None, part.encode("utf-8")) for part in _array_elements(text)]


def _array_elements(text: str) -> list[str]:
    """The text of each element of a JSON array, in order (the elements are not judged here)."""
    decoder = json.JSONDecoder()
    parts: list[str] = []
    i = _skip_ws(text, 1)
    if i < len(text) and text[i] == "]":
        end = _skip_ws(text, i + 1)
        if end != len(text):
            raise BadBody(f"unexpected text after the array at character {end}")
        return parts
    while True:
        try:
            _, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            raise BadBody(f"the array is not JSON: {exc.msg} at character {exc.pos}") from None
        except RecursionError:
            raise BadBody(f"element {len(parts)} of the array is nested too deeply") from None
        parts.append(text[i:end])
        i = _skip_ws(text, end)
        if i < len(text) and text[i] == ",":
            i = _skip_ws(text, i + 1)
            continue
        if i < len(text) and text[i] == "]":
            rest = _skip_ws(text, i + 1)
            if rest != len(text):
                raise BadBody(f"unexpected text after the array at character {rest}")
            return parts
        raise BadBody(f"the array is not JSON: expected ',' or ']' at character {i}")


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def validate(parts: list[tuple[int | None, bytes]], max_bytes: int) -> list[Item]:
    """Every raw event through the stream's parser."""
    items: list[Item] = []
    for index, (line, raw) in enumerate(parts):
        try:
            items.append(Item(index, line, raw, event=parse_event(raw, max_bytes=max_bytes)))
        except InvalidEvent as exc:
            items.append(Item(index, line, raw, reason=exc.reason, detail=exc.detail, field=exc.field))
    return items


def _event_id_of(raw: bytes) -> str | None:
    """The event id of a rejected event when one can be read (to help the sender find it)."""
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    eid = obj.get("event_id") if isinstance(obj, dict) else None
    return eid if isinstance(eid, str) else None


def rejected_entry(item: Item) -> dict[str, Any]:
    entry: dict[str, Any] = {"index": item.index, "status": "rejected", "reason": item.reason}
    if item.line is not None:
        entry["line"] = item.line
    eid = item.event.event_id if item.event is not None else _event_id_of(item.raw)
    if eid is not None:
        entry["event_id"] = eid
    if item.field:
        entry["field"] = item.field
    entry["detail"] = item.detail
    return entry


async def produce_items(
    items: list[Item], topic_prefix: str, send: Send, timeout_s: float
) -> list[dict[str, Any]]:
    """Send every valid item; one answer entry per item, in order, once each send is acknowledged."""
    entries: list[dict[str, Any] | None] = [None] * len(items)
    pending: dict[int, asyncio.Future[Any]] = {}
    for item in items:
        if item.event is None:
            entries[item.index] = rejected_entry(item)
            continue
        topic, key = route(topic_prefix, item.event)
        try:
            pending[item.index] = asyncio.ensure_future(await send(topic, key, item.raw))
        except Exception as exc:  # the producer refused it: a failure to report, not to raise
            entries[item.index] = _failed(item, "produce_failed", f"{type(exc).__name__}: {exc}")
    if pending:
        await asyncio.wait(pending.values(), timeout=timeout_s)
    for index, fut in pending.items():
        item = items[index]
        if not fut.done():
            fut.cancel()
            entries[index] = _failed(item, "produce_timeout", f"no acknowledgement within {timeout_s:g} s")
        elif (failure := fut.exception()) is not None:
            entries[index] = _failed(item, "produce_failed", f"{type(failure).__name__}: {failure}")
        else:
            md = fut.result()
            assert item.event is not None
            entries[index] = {
                "index": index,
                **({"line": item.line} if item.line is not None else {}),
                "status": "accepted",
                "event_id": item.event.event_id,
                "topic": md.topic,
                "partition": md.partition,
                "offset": md.offset,
            }
    return [e for e in entries if e is not None]


def _failed(item: Item, reason: str, detail: str) -> dict[str, Any]:
    return rejected_entry(Item(item.index, item.line, item.raw, item.event, reason, detail))


def answer_status(entries: list[dict[str, Any]]) -> int:
    """200 all accepted; 503 when a write failed (retry later); 422 when some events were invalid."""
    reasons = {e.get("reason") for e in entries if e["status"] == "rejected"}
    if not reasons:
        return 200
    if reasons & {"produce_failed", "produce_timeout"}:
        return 503
    return 422


async def read_limited(request: aioweb.Request, limit: int) -> bytes | None:
    """The body, or None when it is longer than `limit` bytes (read no further than that)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(READ_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


def error(status: int, error: str, detail: str) -> aioweb.Response:
    return aioweb.json_response({"error": error, "detail": detail}, status=status)


def ingest_handler(settings: Settings, send: Send) -> Callable[[aioweb.Request], Awaitable[aioweb.Response]]:
    """The `POST /api/v1/events` handler over a producer's `send(topic, key, value) -> ack future`."""

    async def post_events(request: aioweb.Request) -> aioweb.Response:
        """Validate and write contract events; answer per event (agents/ingest.py)."""
        kind = body_kind(request.headers.get("Content-Type", ""))
        if kind is None:
            return error(
                415,
                "unsupported_media_type",
                "send application/json (an event or an array) or application/x-ndjson (JSON Lines)",
            )
        body = await read_limited(request, settings.web_max_body_bytes)
        if body is None:
            return error(413, "too_large", f"the body is larger than {settings.web_max_body_bytes} bytes")
        try:
            parts = split_body(body, kind)
        except BadBody as exc:
            return error(400, "invalid_json", str(exc))
        if not parts:
            return error(400, "no_events", "the body holds no event")
        items = validate(parts, settings.max_message_bytes)
        entries = await produce_items(items, settings.topic_prefix, send, ACK_TIMEOUT_S)
        accepted = sum(1 for e in entries if e["status"] == "accepted")
        if accepted < len(entries):
            log.warning("HTTP ingest: %d of %d events rejected", len(entries) - accepted, len(entries))
        body_out = {"accepted": accepted, "rejected": len(entries) - accepted, "events": entries}
        return aioweb.json_response(body_out, status=answer_status(entries))

    return post_events


def install_ingest(app: Any, settings: Settings) -> None:
    """Register `POST /api/v1/events` on the Faust app's web server, writing with the app's producer.

    The path's GET is the wallboard's event stream (agents/wallboard.py); aiohttp dispatches by
    method, so the POST route sits beside it. The app's producer has acks=all (agents/pipeline.py).
    """

    async def send(topic: str, key: bytes | None, value: bytes) -> Awaitable[Any]:
        fut: Awaitable[Any] = await app.producer.send(topic, key, value, None, None, None)
        return fut

    app.web.web_app.router.add_post(INGEST_PATH, ingest_handler(settings, send))

"""The OpenAPI 3.1 description of the worker's JSON API (served at /api/v1/openapi.json).

Written by hand, but the records inside the responses reuse the output messages' JSON Schemas
(schemas/outputs.py), so the API, the Kafka topics and their docs cannot drift apart.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from agents import payouts_api
from schemas.outputs import alert_schema, json_object, queue_kpis_schema, scorecard_schema
from stream.core.kpis import OPERATOR_KPIS
from stream.core.live import LIVE_FIELDS

PERIOD_KEY = "^(rolling|day:[0-9]{4}-[0-9]{2}-[0-9]{2}|month:[0-9]{4}-[0-9]{2})$"
COLOUR = {"enum": ["green", "amber", "red", None], "description": "null: the KPI is undefined."}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"oneOf": [schema, {"type": "null"}]}


def _record(schema: dict[str, Any]) -> dict[str, Any]:
    """An output message's JSON Schema as an OpenAPI 3.1 schema object (dialect keyword dropped)."""
    s = copy.deepcopy(schema)
    s.pop("$schema", None)
    return s


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "503": _json(_ref("Error"), "Redis cannot be reached: the page shows its last data as stale."),
}


def _get(
    op_id: str,
    summary: str,
    description: str,
    ok: dict[str, Any],
    *,
    parameters: list[dict[str, Any]] | None = None,
    errors: dict[str, Any] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": op_id,
        "summary": summary,
        "description": description,
        "responses": {"200": ok, **(errors or {})},
    }
    if parameters:
        op["parameters"] = parameters
    return {"get": op}


def _period_param(kinds: list[str], default: str) -> dict[str, Any]:
    return {
        "name": "period",
        "in": "query",
        "required": False,
        "schema": {"enum": kinds, "default": default},
        "description": "rolling: the last 60 minutes of event time; day: today; month: this month.",
    }


def _schemas() -> dict[str, Any]:
    ratio = {"type": ["number", "null"], "minimum": 0, "maximum": 1}
    band = json_object(
        {
            "green": {"type": "number"},
            "red": {"type": "number"},
            "direction": {"enum": ["higher_is_better", "lower_is_better"]},
        },
        "Green at or better than `green`, red worse than `red`, amber between.",
    )
    kpi_colours = json_object(dict.fromkeys(("sl", "lcr", "car", "answer_rate"), COLOUR))
    by_period = {"rolling": None, "day": None, "month": None}
    queue_row = json_object(
        {
            "scope": {"enum": ["queue", "center"]},
            "queue": {"type": "string", "minLength": 1},
            "bands": json_object(
                dict.fromkeys(("sl", "lcr", "car", "answer_rate", "longest_wait_s"), _ref("Band"))
            ),
            "periods": json_object(
                {k: _nullable(_ref("QueueKpis")) for k in by_period},
                "The published record of each period; null when nothing was published for it.",
            ),
            "status": json_object(
                {k: _nullable(kpi_colours) for k in by_period},
                "Colour of each KPI by period, from `bands`.",
            ),
        }
    )
    period_keys = json_object(
        {
            "rolling": {"const": "rolling"},
            "day": {"type": ["string", "null"], "pattern": "^day:[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
            "month": {"type": ["string", "null"], "pattern": "^month:[0-9]{4}-[0-9]{2}$"},
        },
        "The current periods: the newest day and month present in Redis (event time).",
    )
    entry = json_object(
        {
            "rank": {"type": "integer", "minimum": 1, "description": "Equal F share a rank."},
            "operator_id": {"type": "string", "minLength": 1},
            "f": {"type": "number", "description": "The score F of CONTRACT.md section 3."},
            "fund_share": {**ratio, "description": "Share of the period's bonus fund; null if the sum is 0."},
            "strategy": {"type": ["string", "null"]},
            "kpis": json_object(dict.fromkeys(OPERATOR_KPIS, ratio)),
            "presented": {"type": "integer", "description": "Calls presented to the operator."},
            "updated_at": {"type": ["string", "null"], "format": "date-time"},
        }
    )
    entry["properties"]["bonus"] = {"type": ["number", "null"], "description": "With KPISTREAM_FUND_AMOUNT."}
    live = json_object(
        {
            "queue": {"type": "string", "minLength": 1},
            **{k: {"type": "integer", "minimum": 0} for k in LIVE_FIELDS},
            "updated_at": {"type": ["string", "null"], "format": "date-time"},
        },
        "One queue's floor now (`kpi:live:queue:{queue}`); longest_wait_s is the oldest waiting call.",
    )
    return {
        "QueueKpis": _record(queue_kpis_schema()),
        "Scorecard": _record(scorecard_schema()),
        "Alert": _record(alert_schema()),
        "Band": band,
        "PeriodKeys": period_keys,
        "QueueRow": queue_row,
        "QueuesResponse": json_object(
            {
                "period_keys": _ref("PeriodKeys"),
                "center": _ref("QueueRow"),
                "queues": {"type": "array", "items": _ref("QueueRow")},
                "thresholds": json_object(
                    {
                        "sl_threshold_s": {"type": "number", "description": "T of the service level."},
                        "email_threshold_s": {
                            "type": "number",
                            "description": "An e-mail is late after this.",
                        },
                        "alert_min_offered": {"type": "integer", "description": "Calls needed for an alert."},
                    }
                ),
                "generated_at": {"type": "string", "format": "date-time"},
            }
        ),
        "LeaderboardEntry": entry,
        "LeaderboardResponse": json_object(
            {
                "period": {"enum": ["rolling", "day", "month"]},
                "period_key": {"type": ["string", "null"], "pattern": PERIOD_KEY},
                "count": {"type": "integer", "minimum": 0, "description": "Operators on the board."},
                "operators": {"type": "array", "items": _ref("LeaderboardEntry")},
            }
        ),
        "LiveQueue": live,
        "LiveResponse": json_object({"queues": {"type": "array", "items": _ref("LiveQueue")}}),
        "AlertsResponse": json_object(
            {"alerts": {"type": "array", "items": _ref("Alert"), "description": "Oldest first."}}
        ),
        "ScorecardResponse": json_object(
            {
                "period": {"enum": ["day", "month"]},
                "period_key": {"type": ["string", "null"]},
                "scorecard": _nullable(_ref("Scorecard")),
                "status": json_object(
                    dict.fromkeys(
                        (
                            "customer.fcr",
                            "finance.cost_per_order",
                            "operations.answer_rate",
                            "growth.attrition_month",
                            "growth.attrition_12m",
                        ),
                        COLOUR,
                    ),
                    "green: healthy, amber: watch, red: unhealthy, null: no target or no data.",
                ),
            }
        ),
        "PeriodsResponse": json_object(
            {
                "strategy": {"type": "object"},
                "watermark": {"type": "integer", "description": "Newest event time seen (ms)."},
                "periods": {"type": "object", "description": "As `kpistream report --format json`."},
            },
            "The workers' own tables, not Redis.",
            closed=False,
        ),
        "Error": json_object({"error": {"type": "string"}, "detail": {"type": "string"}}),
        "ClusterError": {
            "type": "object",
            "required": ["error", "detail"],
            "additionalProperties": False,
            "properties": {
                "error": {"enum": ["rebalancing", "peer_unavailable"]},
                "detail": {"type": "string"},
                "peer": {"type": "string", "description": "The canonical URL of the worker concerned."},
            },
        },
    }


@cache
def _document() -> dict[str, Any]:
    bad = {"400": _json(_ref("Error"), "A query parameter is out of range.")}
    paths: dict[str, Any] = {
        "/api/v1/queues": _get(
            "getQueues",
            "KPIs per queue and for the centre",
            "SL, LCR, CAR, answer rate, FCR, FAC, RT and their counts for the rolling hour, the current "
            "day and month (from `kpi:queue:*` and `kpi:center:*`), with the wallboard's colour bands.",
            _json(_ref("QueuesResponse"), "Every queue with a published record or a live state."),
            errors=_ERRORS,
        ),
        "/api/v1/leaderboard": _get(
            "getLeaderboard",
            "Operators ranked by F",
            "From `kpi:leaderboard:{period_key}` and each operator's `kpi:op:*` hash.",
            _json(_ref("LeaderboardResponse"), "Highest F first."),
            parameters=[
                _period_param(["rolling", "day", "month"], "rolling"),
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50},
                },
            ],
            errors={**bad, **_ERRORS},
        ),
        "/api/v1/live": _get(
            "getLive",
            "The floor now, per queue",
            "Every `kpi:live:queue:*` hash.",
            _json(_ref("LiveResponse"), "Sorted by queue."),
            errors=_ERRORS,
        ),
        "/api/v1/alerts": _get(
            "getAlerts",
            "Firing alerts",
            "Every alert in `kpi:alerts:active` (LCR or CAR above threshold over the rolling hour).",
            _json(_ref("AlertsResponse"), "Oldest first."),
            errors=_ERRORS,
        ),
        "/api/v1/scorecard": _get(
            "getScorecard",
            "Balanced scorecard",
            "`kpi:scorecard:{period_key}` of today or this month, with healthy/unhealthy colours.",
            _json(_ref("ScorecardResponse"), "scorecard is null before anything was published."),
            parameters=[_period_param(["day", "month"], "day")],
            errors={**bad, **_ERRORS},
        ),
        "/api/v1/periods": _get(
            "getPeriods",
            "The cluster's aggregates",
            "The JSON of `kpistream report` (plus `rolling`) over every worker's tables: this worker's "
            "partitions and its peers' (agents/cluster_view.py).",
            _json(_ref("PeriodsResponse"), "Every period the cluster holds."),
            errors={
                "503": _json(
                    _ref("ClusterError"),
                    "A rebalance, or a peer that did not answer (named): never a partial result.",
                )
            },
        ),
        "/api/v1/events": _get(
            "getEvents",
            "Live updates (server-sent events)",
            "Every message of the Redis channel `kpi:updates` as a `message` event (data: "
            '`{"key", "kind", "record"}`, kind operator, queue, center, scorecard, live or alert); '
            "a `: keep-alive` comment every 15 s; `event: stale` (data `{since, error}`) while Redis "
            "is unreachable and `event: fresh` when subscribed.",
            {
                "description": "An endless event stream.",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
        ),
        "/api/v1/openapi.json": _get(
            "getOpenapi",
            "This document",
            "OpenAPI 3.1.",
            _json({"type": "object"}, "The OpenAPI document."),
        ),
        "/wallboard": _get(
            "getWallboard",
            "The wallboard page",
            "A self-contained page for a TV; updates live from /api/v1/events.",
            {"description": "HTML.", "content": {"text/html": {"schema": {"type": "string"}}}},
        ),
    }
    paths["/api/v1/events"]["post"] = _ingest_operation()
    paths.update(payouts_api.openapi_paths())  # the month close (agents/payouts_api.py)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "kpistream worker API",
            "version": "1.0.0",
            "description": "Read-only JSON over the published truth in Redis (CONTRACT.md section 5), "
            "for wallboards and dashboards. Numbers are fractions (0.9 is 90 %); an undefined KPI is null.",
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": paths,
        "components": {"schemas": {**_schemas(), **_ingest_schemas()}, "securitySchemes": _SECURITY_SCHEMES},
        # With web auth on (docs/security.md) every path here needs one of these; `{}`: auth is off.
        "security": [{"bearer": []}, {"basic": []}, {"wallboardCookie": []}, {}],
    }


_SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "A token of the users file or a setting."},
    "basic": {"type": "http", "scheme": "basic", "description": "A password user of the users file."},
    "wallboardCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "kpistream_token",
        "description": "Set by GET /wallboard?token=TOKEN; GET requests only.",
    },
}


def _ingest_schemas() -> dict[str, Any]:
    entry = {
        "type": "object",
        "required": ["index", "status"],
        "properties": {
            "index": {"type": "integer", "minimum": 0, "description": "Position among the body's events."},
            "line": {"type": "integer", "minimum": 1, "description": "JSON Lines only: the line number."},
            "status": {"enum": ["accepted", "rejected"]},
            "event_id": {"type": "string"},
            "topic": {"type": "string"},
            "partition": {"type": "integer"},
            "offset": {"type": "integer"},
            "reason": {
                "type": "string",
                "description": "A dead-letter reason of the stream, or produce_failed / produce_timeout.",
            },
            "field": {"type": "string"},
            "detail": {"type": "string"},
        },
    }
    return {
        "IngestResponse": {
            "type": "object",
            "required": ["accepted", "rejected", "events"],
            "properties": {
                "accepted": {"type": "integer", "minimum": 0},
                "rejected": {"type": "integer", "minimum": 0},
                "events": {"type": "array", "items": entry},
            },
        }
    }


def _ingest_operation() -> dict[str, Any]:
    event_list = _json(_ref("IngestResponse"), "")
    return {
        "operationId": "postEvents",
        "summary": "Ingest contract events (HTTP)",
        "description": "One event or an array (application/json), or JSON Lines (application/x-ndjson). "
        "Each is validated as the stream validates it and written unchanged to its input topic with the "
        "contract's key; the answer lists every event, accepted (written and acknowledged) or rejected "
        "with its reason. Needs role ingest or admin (docs/importers.md).",
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        },
        "responses": {
            "200": {**event_list, "description": "Every event accepted."},
            "422": {**event_list, "description": "Some events invalid (the others were written)."},
            "503": {**event_list, "description": "Some events could not be written: send them again."},
            "400": _json(_ref("Error"), "The body cannot be split into events (a broken array)."),
            "413": _json(_ref("Error"), "The body is larger than web_max_body_bytes."),
            "415": _json(_ref("Error"), "Not application/json nor JSON Lines."),
        },
    }


def openapi_document() -> dict[str, Any]:
    """A fresh copy of the document (callers may change it)."""
    return copy.deepcopy(_document())


def response_schema(path: str, status: str = "200") -> dict[str, Any]:
    """The JSON schema of a path's response, with the document's components for `$ref`s (tests)."""
    doc = _document()
    schema = doc["paths"][path]["get"]["responses"][status]["content"]["application/json"]["schema"]
    return {**copy.deepcopy(schema), "components": copy.deepcopy(doc["components"])}

"""JSON Schemas of the output messages (CONTRACT.md sections 5 and 6), written by hand.

They describe what stream/core/outputs.py builds; tests validate built records against them.
`schemas.generate` writes them to schemas/json/ with the event schemas.
"""

from __future__ import annotations

from typing import Any

from stream.core.counts import OPERATOR_COUNT_FIELDS, QUEUE_COUNT_FIELDS
from stream.core.keys import CENTER_ID
from stream.core.kpis import OPERATOR_KPIS, QUEUE_KPIS

DRAFT = "https://json-schema.org/draft/2020-12/schema"
UTC_MS = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$"
PERIOD_KEY = "^(rolling|day:[0-9]{4}-[0-9]{2}-[0-9]{2}|month:[0-9]{4}-[0-9]{2})$"
AMOUNT_TEXT = "^[0-9]+(\\.[0-9]+)?$"
DAY_OR_MONTH_KEY = "^(day:[0-9]{4}-[0-9]{2}-[0-9]{2}|month:[0-9]{4}-[0-9]{2})$"


def _ts(description: str) -> dict[str, Any]:
    return {"type": "string", "format": "date-time", "pattern": UTC_MS, "description": description}


def _ratio(description: str = "") -> dict[str, Any]:
    s: dict[str, Any] = {"type": ["number", "null"], "minimum": 0, "maximum": 1}
    if description:
        s["description"] = description
    return s


def json_object(props: dict[str, Any], description: str = "", *, closed: bool = True) -> dict[str, Any]:
    s: dict[str, Any] = {"type": "object", "required": list(props), "properties": props}
    if closed:
        s["additionalProperties"] = False
    if description:
        s["description"] = description
    return s


def _counts(fields: tuple[str, ...]) -> dict[str, Any]:
    return json_object(
        {f: {"type": "integer"} for f in fields},
        "The counts behind the KPIs, every field present (zeros included).",
    )


_PERIOD = {"enum": ["rolling", "day", "month"], "description": "The kind of period."}
_PERIOD_KEY = {
    "type": "string",
    "pattern": PERIOD_KEY,
    "description": "rolling, day:YYYY-MM-DD or month:YYYY-MM.",
}
_UNDEFINED = "A KPI with a zero denominator is null."


def operator_score_schema() -> dict[str, Any]:
    props: dict[str, Any] = {
        "operator_id": {"type": "string", "minLength": 1},
        "period": _PERIOD,
        "period_key": _PERIOD_KEY,
        "period_start": {
            "type": ["string", "null"],
            "format": "date-time",
            "description": "First instant of the day or month in the configured zone; null for rolling.",
        },
        "strategy": {
            "type": "string",
            "minLength": 1,
            "description": "The strategy (weights) F was computed with.",
        },
        "kpis": json_object({k: _ratio() for k in OPERATOR_KPIS}, _UNDEFINED),
        "counts": _counts(OPERATOR_COUNT_FIELDS),
        "f": {"type": "number", "description": "F = K1*SL - K2*LCR + K3*FCR - K4*CAR + K5*FAC + K6*RT."},
        "fund_share": _ratio(
            "max(F, 0) over the sum for every active operator of the period; null if that is 0."
        ),
        "updated_at": _ts("When the record was computed (UTC)."),
    }
    s = json_object(props, "")
    s["properties"]["bonus"] = {
        "type": ["string", "null"],
        "pattern": AMOUNT_TEXT,
        "description": "This operator's exact amount of the month's fund, as a decimal string in the "
        'currency\'s minor unit ("1795.50"): fund_share x fund, rounded by largest remainder so the '
        "amounts of the period add up to the fund exactly. Present only in month periods that have a "
        "fund; null where fund_share is null.",
    }
    # Funds are per month (payroll pays months): day and rolling records never carry an amount.
    s["if"] = {"properties": {"period": {"enum": ["rolling", "day"]}}}
    s["then"] = {"not": {"required": ["bonus"]}}
    return {
        "$schema": DRAFT,
        "title": "kpi.operator-scores value",
        "description": "One operator's KPIs, F and fund share in one period (key: operator_id).",
        **{k: v for k, v in s.items() if k != "description"},
    }


def queue_kpis_schema() -> dict[str, Any]:
    props: dict[str, Any] = {
        "scope": {"enum": ["queue", "center"]},
        "queue": {"type": "string", "minLength": 1, "description": "The queue, or _center for the centre."},
        "period": _PERIOD,
        "period_key": _PERIOD_KEY,
        "kpis": json_object({k: _ratio() for k in QUEUE_KPIS}, _UNDEFINED),
        "counts": _counts(QUEUE_COUNT_FIELDS),
        "updated_at": _ts("When the record was computed (UTC)."),
    }
    s = json_object(props)
    s["if"] = {"properties": {"scope": {"const": "center"}}}
    s["then"] = {"properties": {"queue": {"const": CENTER_ID}}}
    return {
        "$schema": DRAFT,
        "title": "kpi.queue-kpis value",
        "description": "One queue's (or the centre's) KPIs in one period (key: queue, or _center).",
        **s,
    }


def scorecard_schema() -> dict[str, Any]:
    num = {"type": ["number", "null"]}
    count = {"type": ["integer", "null"]}
    healthy = {"type": ["boolean", "null"]}
    props: dict[str, Any] = {
        "period": {"enum": ["day", "month"]},
        "period_key": {"type": "string", "pattern": DAY_OR_MONTH_KEY},
        "period_start": {"type": "string", "format": "date-time"},
        "customer": json_object(
            {"fcr": _ratio(), "fcr_contacts": {"type": "integer"}, "fcr_resolved": {"type": "integer"}}
        ),
        "finance": json_object(
            {
                "cost": num,
                "orders": count,
                "orders_amount": num,
                "cost_per_order": num,
                "cost_per_order_value": num,
            }
        ),
        "operations": json_object(
            {"answer_rate": _ratio(), "offered": {"type": "integer"}, "answered": {"type": "integer"}}
        ),
        "growth": json_object(
            {
                "headcount_start": count,
                "headcount_end": count,
                "hires": {"type": "integer"},
                "leavers": {"type": "integer"},
                "leavers_month": {"type": "integer"},
                "attrition_month": num,
                "attrition_month_limit": {"type": "number"},
                "attrition_month_healthy": healthy,
                "leavers_12m": {"type": "integer"},
                "attrition_12m": num,
                "attrition_12m_limit": {"type": "number"},
                "attrition_12m_healthy": healthy,
            }
        ),
        "updated_at": _ts("When the record was computed (UTC)."),
    }
    return {
        "$schema": DRAFT,
        "title": "kpi.scorecard value",
        "description": "The balanced scorecard of one day or month (CONTRACT.md section 6; key: period_key).",
        **json_object(props),
    }


def alert_schema() -> dict[str, Any]:
    props: dict[str, Any] = {
        "alert_id": {"type": "string", "minLength": 1},
        "kpi": {"enum": ["lcr", "car"]},
        "scope": {"enum": ["queue", "center"]},
        "queue": {"type": "string", "minLength": 1, "description": "The queue, or _center for the centre."},
        "value": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "description": "The KPI over the rolling period.",
        },
        "threshold": {"type": "number", "minimum": 0, "maximum": 1},
        "status": {"enum": ["firing", "resolved"]},
        "since": {"type": "string", "format": "date-time", "description": "When the alert started firing."},
        "ts": {"type": "string", "format": "date-time", "description": "When this message was produced."},
    }
    return {
        "$schema": DRAFT,
        "title": "kpi.alerts value",
        "description": "An LCR or CAR alert firing or resolved (CONTRACT.md section 7; key: alert_id).",
        **json_object(props, closed=False),
    }


def output_schemas() -> dict[str, dict[str, Any]]:
    """File name -> schema of every output message."""
    return {
        "operator-score.schema.json": operator_score_schema(),
        "queue-kpis.schema.json": queue_kpis_schema(),
        "scorecard.schema.json": scorecard_schema(),
        "alert.schema.json": alert_schema(),
    }

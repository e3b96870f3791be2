"""Log lines as text or JSON (`log_format`): JSON is one object per line, for log shippers.

Every JSON line has `time` (UTC, ISO 8601 with milliseconds), `level`, `logger` and `message`, and
`exception` (the formatted traceback) when one is attached. Passwords in URLs are masked in both
formats' messages (`mask_secrets`), so a URL with credentials never reaches a log file.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from typing import Any

from stream.config import mask_secrets
from stream.core.timefmt import format_ts

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _created_ms(created: float) -> int:
    """A record's `created` (float seconds) in ms: rounded to the microsecond as datetime does, then cut."""
    frac, whole = math.modf(created)
    return int(whole) * 1000 + round(frac * 1_000_000) // 1000


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in messages and tracebacks are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": format_ts(_created_ms(record.created)),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_secrets(record.getMessage()),
        }
        if record.exc_info:
            line["exception"] = mask_secrets(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = mask_secrets(record.exc_text)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class MaskingTextFormatter(logging.Formatter):
    """The text format, with passwords in URLs masked."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record))


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else MaskingTextFormatter(TEXT_FORMAT)


def configure_logging(log_format: str, level: int) -> None:
    """The root logger writes `log_format` lines to stderr at `level` (replacing its handlers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def worker_logging_config(log_format: str, level: int) -> dict[str, Any] | None:
    """The dictConfig a Faust (mode) worker applies at start; None keeps its own (coloured) text."""
    if log_format != "json":
        return None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {
            "default": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
        },
        "root": {"level": level, "handlers": ["default"]},
    }

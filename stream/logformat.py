"""Log lines as text or JSON (`log_format`): JSON is one object per line, for log shippers.

Every JSON line has `time` (UTC, ISO 8601 with milliseconds), `level`, `logger` and `message`, and
`exception` (the formatted traceback) when one is attached. Passwords in URLs are masked in both
formats' messages (`mask_secrets`), so a URL with credentials never reaches a log file.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from stream.config import mask_secrets

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in messages and tracebacks are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        line: dict[str, Any] = {
            "time": stamp.replace("+00:00", "Z"),
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

"""One root exception for the product; every error carries the data needed to act on it."""

from __future__ import annotations


class KpiStreamError(Exception):
    """Root of every error raised by kpistream."""


class ConfigError(KpiStreamError):
    """A setting is missing or invalid; raised once, at start-up."""

    def __init__(self, setting: str, reason: str) -> None:
        super().__init__(f"setting {setting!r}: {reason}")
        self.setting = setting
        self.reason = reason


class InvalidEvent(KpiStreamError):
    """An input message that cannot be used: it goes to the dead letters with `reason`.

    `reason` is a short machine code (see docs/metrics.md, "Dead letters"); `field` names
    the offending field where there is one; `detail` is the human explanation.
    """

    def __init__(self, reason: str, detail: str, field: str | None = None) -> None:
        where = f" (field {field!r})" if field else ""
        super().__init__(f"{reason}{where}: {detail}")
        self.reason = reason
        self.detail = detail
        self.field = field


class StrategyError(KpiStreamError):
    """A strategy file or a strategy name is invalid."""


class ServiceError(KpiStreamError):
    """A local service (broker, Redis) could not be started or reached."""


class SinkError(KpiStreamError):
    """An output sink (Redis, Kafka) failed to write a batch; the publisher retries it."""

    def __init__(self, sink: str, reason: str) -> None:
        super().__init__(f"sink {sink!r}: {reason}")
        self.sink = sink
        self.reason = reason

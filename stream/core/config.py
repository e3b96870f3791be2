"""The KPI definitions' parameters (CONTRACT.md section 2 defaults), validated once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

T = TypeVar("T")


def kpi_setting(default: T, doc: str) -> T:
    """Declare a KpiConfig field with its one-line description (docs/settings.md is built from it).

    The same metadata as `stream.config.setting`, which this package cannot import.
    """
    return field(default=default, metadata={"doc": doc, "secret": False})


@dataclass(frozen=True, slots=True)
class KpiConfig:
    """Every threshold of the KPI definitions. All durations in integer milliseconds."""

    sl_threshold_ms: int = kpi_setting(
        20 * SECOND_MS, "Service-level threshold T: a call answered within this wait counts for SL."
    )
    sl_target: float = kpi_setting(
        0.80, "The service-level target (a fraction) the wallboard compares SL with."
    )
    chat_threshold_ms: int = kpi_setting(
        15 * SECOND_MS, "A chat response within this time of the customer's message is fast (FAC)."
    )
    email_threshold_ms: int = kpi_setting(
        180 * SECOND_MS, "An e-mail's first reply within this time of its receipt is on time (RT)."
    )
    short_abandon_ms: int = kpi_setting(
        0, "Abandons with a shorter wait are not offered calls (0: every abandon counts)."
    )
    fcr_window_ms: int = kpi_setting(
        7 * DAY_MS, "A contact of the same case within this time of the first one is a repeat (FCR)."
    )
    tz: str = kpi_setting("UTC", "Time zone of the day and month periods (set through the top-level tz).")
    rolling_ms: int = kpi_setting(HOUR_MS, "Length of the rolling period, up to the newest event time seen.")
    retention_days: int = kpi_setting(
        40, "Day periods kept; also the horizon of event_id idempotency (CONTRACT.md section 1)."
    )
    retention_months: int = kpi_setting(
        13, "Month periods kept; also the horizon of event_id idempotency (CONTRACT.md section 1)."
    )
    orphan_after_ms: int = kpi_setting(
        5 * MINUTE_MS,
        "A call with an outcome and no call.offered is reported as an orphan after this much event time.",
    )
    max_clock_skew_ms: int = kpi_setting(
        HOUR_MS,
        "An event more than this ahead of the processor's wall clock is a `future` dead letter "
        "(CONTRACT.md section 1).",
    )
    entity_grace_ms: int = kpi_setting(
        2 * DAY_MS,
        "How long a finished call, chat or e-mail's state is kept to absorb late or duplicate events.",
    )
    live_max_wait_ms: int = kpi_setting(
        4 * HOUR_MS,
        "A call or chat shown waiting longer than this is assumed finished (its outcome was never sent).",
    )
    lcr_threshold: float = kpi_setting(0.10, "An LCR alert fires above this fraction (rolling period).")
    car_threshold: float = kpi_setting(0.05, "A CAR alert fires above this fraction (rolling period).")
    alert_min_offered: int = kpi_setting(
        20, "An alert needs at least this many offered calls in the rolling period."
    )
    alert_margin: float = kpi_setting(
        0.0, "An alert resolves only at or below threshold minus this margin (hysteresis)."
    )
    alert_min_duration_ms: int = kpi_setting(0, "An alert fires only after its condition has held this long.")
    queue_thresholds: dict[str, dict[str, float]] = field(
        default_factory=dict,
        metadata={
            "doc": "Per-queue alert overrides, e.g. [kpi.queue_thresholds.sales] lcr = 0.2, car = 0.1, "
            "min_offered = 50 (TOML only).",
            "secret": False,
        },
    )

    def __post_init__(self) -> None:
        for name in (
            "sl_threshold_ms",
            "chat_threshold_ms",
            "email_threshold_ms",
            "short_abandon_ms",
            "fcr_window_ms",
            "orphan_after_ms",
            "max_clock_skew_ms",
            "entity_grace_ms",
            "live_max_wait_ms",
            "alert_min_duration_ms",
        ):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{name} must be a non-negative integer of milliseconds, got {v!r}")
        if self.rolling_ms <= 0:
            raise ValueError("rolling_ms must be positive")
        if self.retention_days < 1 or self.retention_months < 1:
            raise ValueError("retention_days and retention_months must be at least 1")
        if not 0.0 <= self.sl_target <= 1.0:
            raise ValueError("sl_target must be a fraction between 0 and 1")
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.tz!r}") from exc

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

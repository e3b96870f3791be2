"""The KPI definitions' parameters (CONTRACT.md section 2 defaults), validated once."""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True, slots=True)
class KpiConfig:
    """Every threshold of the KPI definitions. All durations in integer milliseconds."""

    sl_threshold_ms: int = 20 * SECOND_MS
    sl_target: float = 0.80
    chat_threshold_ms: int = 15 * SECOND_MS
    email_threshold_ms: int = 180 * SECOND_MS
    short_abandon_ms: int = 0
    fcr_window_ms: int = 7 * DAY_MS
    tz: str = "UTC"
    rolling_ms: int = HOUR_MS
    retention_days: int = 40
    retention_months: int = 13
    orphan_after_ms: int = 5 * MINUTE_MS
    # An event more than this ahead of the processor's wall clock is a `future` dead letter (CONTRACT s.1).
    max_clock_skew_ms: int = HOUR_MS
    # How long a finished call/chat/e-mail's state is kept to absorb late or duplicate events.
    entity_grace_ms: int = 2 * DAY_MS
    # A call or chat shown waiting longer than this is assumed finished (its outcome was never sent).
    live_max_wait_ms: int = 4 * HOUR_MS
    lcr_threshold: float = 0.10
    car_threshold: float = 0.05
    alert_min_offered: int = 20
    alert_margin: float = 0.0  # resolve only at or below threshold - margin (hysteresis)
    alert_min_duration_ms: int = 0  # fire only after the condition has held this long
    queue_thresholds: dict[str, dict[str, float]] = field(default_factory=dict)

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

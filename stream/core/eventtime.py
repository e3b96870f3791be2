"""Event time: the watermark, and the bounds an event's time must keep (CONTRACT.md section 1).

Rules:
- An event more than `max_clock_skew_ms` ahead of the processor's wall clock is a `future` dead
  letter: a phone with a wrong clock must not move event time.
- An event older than the retention of every period it would count in (its month), measured back
  from the watermark, is `too_late`.
- The watermark `value` is the newest accepted event time *vouched for by two events*: the
  second-newest distinct accepted event. No single event, however far ahead, moves it, so no single
  event can make the others too late, make retention delete a period or drop an entity's state. In
  a stream of real traffic it trails the newest event by the gap between two events (milliseconds).
- The rolling hour and the live view end at the `newest` event seen (CONTRACT.md section 4); the
  `future` bound keeps one wrong clock from moving them more than the allowed skew.
"""

from __future__ import annotations

from dataclasses import dataclass

from stream.core.config import KpiConfig
from stream.core.periods import is_expired, month_key
from stream.errors import InvalidEvent


class TooLate(InvalidEvent):
    """Every period the event would count in is out of retention; a dead letter `too_late`."""

    def __init__(self, detail: str) -> None:
        super().__init__("too_late", detail, "ts")


class FromTheFuture(InvalidEvent):
    """The event's time is beyond the wall clock plus the allowed skew; a dead letter `future`."""

    def __init__(self, detail: str) -> None:
        super().__init__("future", detail, "ts")


@dataclass(slots=True)
class Watermark:
    """Event time as far as it is known: see the module's rules. `value` is what everything reads."""

    newest: int = 0
    newest_id: str = ""
    value: int = 0

    def observe(self, ts: int, event_id: str) -> None:
        """An accepted event; a repeat of the newest event (same id) does not count twice."""
        if ts > self.newest:
            if event_id != self.newest_id:
                self.value = self.newest
            self.newest, self.newest_id = ts, event_id
        elif ts > self.value and event_id != self.newest_id:
            self.value = ts

    def advance(self, value: int, newest: int | None = None) -> None:
        """Take a watermark computed elsewhere (stage 1, another worker); it never goes back."""
        if value > self.value:
            self.value = value
        top = value if newest is None else max(value, newest)
        if top > self.newest:
            self.newest = top


def check_time(ts: int, watermark_ms: int, now_ms: int, cfg: KpiConfig) -> None:
    """Raise FromTheFuture or TooLate when the event's time is out of bounds (see the module)."""
    if ts > now_ms + cfg.max_clock_skew_ms:
        raise FromTheFuture(
            f"event time is more than {cfg.max_clock_skew_ms // 1000} s ahead of the processor's clock"
        )
    # An event at or after the watermark is in the watermark's month or later, which retention
    # always keeps (retention_months >= 1): the month test is for older events only.
    if ts < watermark_ms and is_expired(
        month_key(ts, cfg.tz), watermark_ms, cfg.tz, cfg.retention_days, cfg.retention_months
    ):
        raise TooLate(f"event time is older than the {cfg.retention_months}-month retention")

"""Operator scores remembered per live period, and when each period last republished every share."""

from __future__ import annotations

from stream.core.counts import Counts
from stream.core.outputs import ScoredOperator

SHARES_EVERY_FLUSH_UP_TO = 500  # operators in a period; see docs/outputs.md


class ScoreCache:
    """Scores of the periods that keep changing (current day, month, rolling).

    An older period is scored afresh when it changes (a late event), which is rare. Every operator's
    share moves when anyone's F does; with thousands of operators that would rewrite them all every
    flush. Above SHARES_EVERY_FLUSH_UP_TO operators, those whose own counts changed are published now
    and the others (only their share moved) every `share_interval_s`.
    """

    def __init__(self, share_interval_s: float) -> None:
        self.share_interval_s = share_interval_s
        self.caches: dict[str, dict[str, ScoredOperator]] = {}
        self.shares_at: dict[str, float] = {}  # period -> when all its operators were last published
        # period -> the counts of every operator of it as of the last build (see BatchBuilder)
        self.counts: dict[str, dict[str, Counts]] = {}

    def keep_only(self, live_periods: set[str]) -> None:
        """Forget the periods that are no longer live (the day or month turned)."""
        for pk in list(self.caches):
            if pk not in live_periods:
                del self.caches[pk]
                self.shares_at.pop(pk, None)
        for pk in [pk for pk in self.counts if pk not in live_periods]:
            del self.counts[pk]

    def cache_for(self, period_key: str, live_periods: set[str]) -> dict[str, ScoredOperator] | None:
        return self.caches.setdefault(period_key, {}) if period_key in live_periods else None

    def everyone(self, period_key: str, operators: int, t: float, *, cached: bool, forced: bool) -> bool:
        """Whether every operator of the period is published now (else only those whose counts changed)."""
        return (
            forced
            or not cached
            or operators <= SHARES_EVERY_FLUSH_UP_TO
            or t - self.shares_at.get(period_key, float("-inf")) >= self.share_interval_s
        )

    def counts_of(self, period_key: str) -> dict[str, Counts] | None:
        """The counts of every operator of a live period as of the last build; None if not kept."""
        return self.counts.get(period_key)

    def keep_counts(self, period_key: str, counts: dict[str, Counts]) -> None:
        self.counts[period_key] = counts

    def forget_counts(self) -> None:
        self.counts = {}

    def published_shares(self, period_key: str, t: float) -> None:
        self.shares_at[period_key] = t

    def clear(self) -> None:
        self.caches = {}
        self.shares_at = {}
        self.counts = {}

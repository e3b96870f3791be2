"""Operator scores remembered per live period, and when each period last republished every share."""

from __future__ import annotations

from collections.abc import Collection

from stream.core.counts import Counts
from stream.core.outputs import PeriodScores

SHARES_EVERY_FLUSH_UP_TO = 500  # operators in a period; see docs/outputs.md


class ScoreCache:
    """Scores of the periods that keep changing (current day, month, rolling).

    An older period is scored afresh when it changes (a late event), which is rare. Every operator's
    share moves when anyone's F does; with thousands of operators that would rewrite them all every
    flush. Above SHARES_EVERY_FLUSH_UP_TO operators, those whose own counts changed are published now
    and the others (only their share moved) in a later refresh (`everyone`, `quiet_refreshes`).
    """

    def __init__(self, share_interval_s: float) -> None:
        self.share_interval_s = share_interval_s
        self.caches: dict[str, PeriodScores] = {}
        self.shares_at: dict[str, float] = {}  # period -> when all its operators were last published
        # Periods published with only their changed operators since: others' shares are behind.
        self.behind: set[str] = set()
        # period -> the counts of every operator of it as of the last build (see BatchBuilder)
        self.counts: dict[str, dict[str, Counts]] = {}

    def keep_only(self, live_periods: set[str]) -> None:
        """Forget the periods that are no longer live (the day or month turned)."""
        for kept in (self.caches, self.shares_at, self.counts):
            for pk in [pk for pk in kept if pk not in live_periods]:
                del kept[pk]
        self.behind &= live_periods

    def cache_for(self, period_key: str, live_periods: set[str]) -> PeriodScores | None:
        if period_key not in live_periods:
            return None
        cache = self.caches.get(period_key)
        if cache is None:
            cache = self.caches[period_key] = PeriodScores()
        return cache

    def refresh_interval(self, operators: int) -> float:
        """How often a period that keeps changing republishes every share.

        Rule: share_interval_s per SHARES_EVERY_FLUSH_UP_TO operators, so a busy period costs about
        as many share-only records per second whatever its size (5,000 operators: every 100 s).
        """
        return self.share_interval_s * max(1.0, operators / SHARES_EVERY_FLUSH_UP_TO)

    def everyone(
        self, period_key: str, operators: int, t: float, *, cached: bool, forced: bool, quiet: bool = False
    ) -> bool:
        """Whether every operator of the period is published now (else only those whose counts changed).

        `quiet`: none of the period's operators changed since the last flush, so the stream leaves
        room for the share refresh after share_interval_s (see `quiet_refreshes`).
        """
        if forced or not cached or operators <= SHARES_EVERY_FLUSH_UP_TO:
            return True
        since = t - self.shares_at.get(period_key, float("-inf"))
        return since >= self.refresh_interval(operators) or (quiet and since >= self.share_interval_s)

    def quiet_refreshes(self, busy: Collection[str], t: float, live_periods: set[str]) -> list[str]:
        """The periods whose shares are behind, that nothing changed now and whose refresh is due.

        Rule: shares left behind by a busy period are republished once it is quiet for a flush and
        share_interval_s passed since its last refresh, and at once when it stops being live (the
        day or month turned: its final shares). Without this they stayed behind for good when the
        stream went quiet (a period is only built when one of its operators changed).
        """
        return sorted(
            pk
            for pk in self.behind
            if pk not in busy
            and (pk not in live_periods or t - self.shares_at.get(pk, float("-inf")) >= self.share_interval_s)
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
        self.behind.discard(period_key)

    def left_behind(self, period_key: str) -> None:
        """Only the changed operators of a period were published: the others' shares are behind."""
        self.behind.add(period_key)

    def clear(self) -> None:
        self.caches = {}
        self.shares_at = {}
        self.behind = set()
        self.counts = {}

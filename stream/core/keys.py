"""The keys of the computation's state, as types: one definition each, encoded and decoded here only.

Aggregates live under `scope|id|period_key` (the id may itself contain '|'; the scope and the period
key never do). `kpi.deltas` messages are keyed by their *route*: the aggregate they change
(`scope|id`), or, for operators, the period (`op@period_key`), so that every operator of a period is
aggregated by one partition and fund shares are taken over all of them (CONTRACT.md section 3).
Business facts take the centre's route: a scorecard needs both, so one worker holds both.
"""

from __future__ import annotations

from typing import NamedTuple

CENTER_ID = "_center"  # how the centre appears where a queue name is expected (Kafka key, labels)
BUSINESS_KEY = "business"  # the one key of the business facts (CONTRACT.md section 6)
OPERATOR_ROUTE_PREFIX = "op@"
# The route of the business facts: the centre aggregates' (scope `center`, id ""), so the
# worker that holds the centre's counts holds the business facts too and one worker builds each
# scorecard from both.
BUSINESS_ROUTE = "center|"
# The key of a watermark tick on `kpi.deltas` (stream/core/deltas.py): no aggregate's route.
TICK_ROUTE = "tick@"


class AggKey(NamedTuple):
    """One period aggregate: scope (op, queue, center, channel, live, mail, agents), id, period key."""

    scope: str
    sid: str
    period: str

    def encode(self) -> str:
        return f"{self.scope}|{self.sid}|{self.period}"

    @classmethod
    def decode(cls, key: str) -> AggKey:
        scope, rest = key.split("|", 1)
        sid, period = rest.rsplit("|", 1)
        return cls(scope, sid, period)


def agg_key(scope: str, sid: str, period: str) -> str:
    """`AggKey(scope, sid, period).encode()` without building the tuple (the hot path)."""
    return f"{scope}|{sid}|{period}"


def period_of(key: str) -> str:
    """The period key of an encoded aggregate key."""
    return key.rsplit("|", 1)[1]


def scope_of(key: str) -> str:
    """The scope of an encoded aggregate key."""
    return key.split("|", 1)[0]


def entity_agg(scope: str, sid: str) -> str:
    """`scope|id`: an aggregate without its period (the route of a non-operator delta)."""
    return f"{scope}|{sid}"


def has_period(key: str, period: str) -> bool:
    """Whether an encoded aggregate key is of `period` (False for a key without one, e.g. BUSINESS_KEY)."""
    return key.endswith(f"|{period}")


def split_entity_agg(route: str) -> tuple[str, str]:
    scope, sid = route.split("|", 1)
    return scope, sid


def operator_route(period: str) -> str:
    """The route of every operator delta of one period."""
    return f"{OPERATOR_ROUTE_PREFIX}{period}"


def route_period(route: str) -> str | None:
    """The period of an operator route; None for any other route."""
    if route.startswith(OPERATOR_ROUTE_PREFIX):
        return route[len(OPERATOR_ROUTE_PREFIX) :]
    return None


# The publisher's change-filter keys of the records that are not one aggregate each: an operator
# record uses its aggregate key (`agg_key("op", id, period)`), a queue or centre record likewise.
SCORECARD_PREFIX = "scorecard"
LIVE_ROW_PREFIX = "live"


def scorecard_key(period: str) -> str:
    """The change-filter key of the scorecard of one period."""
    return f"{SCORECARD_PREFIX}|{period}"


def live_row_key(queue: str) -> str:
    """The change-filter key of one queue's live row."""
    return f"{LIVE_ROW_PREFIX}|{queue}"


def alert_key(kpi: str, scope: str, sid: str) -> str:
    """The key of one alert's state: the KPI and the queue or centre it watches."""
    return f"{kpi}|{scope}|{sid}"


def alert_scope(key: str) -> tuple[str, str]:
    """The (scope, queue) an `alert_key` watches (a queue name may hold '|': it comes last)."""
    _, scope, sid = key.split("|", 2)
    return scope, sid

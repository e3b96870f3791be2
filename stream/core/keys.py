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

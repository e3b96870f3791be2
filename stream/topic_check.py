"""The cluster's topics compared with the plan (`stream.topics.topic_plan`): what is missing or wrong.

A worker in check mode (`topics_mode = "check"`) and `kpistream topics check` both refuse what
would make the worker fail or count wrong: a missing topic, another partition count (keys would
land in partitions the tables do not expect) or another cleanup policy (a compacted input would
lose events, a changelog that deletes would lose state). Fewer copies or another
`min.insync.replicas` than planned are reported as warnings: the operator may have chosen them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from stream.config import Settings
from stream.errors import KpiStreamError
from stream.topic_admin import TopicState, describe_topics, run_sync
from stream.topics import TopicSpec, cleanup_policy, topic_plan

CHECKED_CONFIGS: tuple[str, ...] = ("cleanup.policy", "min.insync.replicas")


class TopicDiff(NamedTuple):
    """The result of a comparison: `problems` refuse the start, `warnings` are only reported."""

    problems: list[str]
    warnings: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


class TopicsMismatch(KpiStreamError):
    """The cluster's topics do not match the plan; the message names every difference."""

    def __init__(self, bootstrap: str, problems: list[str]) -> None:
        super().__init__(
            f"topics on {bootstrap} do not match `kpistream topics plan` "
            f"({len(problems)} problem{'s' if len(problems) != 1 else ''}): "
            + "; ".join(problems)
            + " (a topic this principal may not DESCRIBE counts as missing; docs/topics.md)"
        )
        self.problems = problems


def _policies(value: str) -> frozenset[str]:
    return frozenset(p.strip() for p in value.split(",") if p.strip())


def compare(plan: Mapping[str, TopicSpec], found: Mapping[str, TopicState]) -> TopicDiff:
    """What differs between the planned topics and the cluster's (`found`: the existing ones)."""
    problems: list[str] = []
    warnings: list[str] = []
    missing = [name for name in plan if name not in found]
    if missing:
        problems.append("missing: " + ", ".join(missing))  # or not visible to this principal (DESCRIBE)
    for name, spec in plan.items():
        state = found.get(name)
        if state is None:
            continue
        if state.partitions != spec.partitions:
            problems.append(f"{name} has {state.partitions} partitions, needs {spec.partitions}")
        want_policy = cleanup_policy(spec)
        have_policy = state.config.get("cleanup.policy", "delete")
        if _policies(have_policy) != _policies(want_policy):
            problems.append(f"{name} has cleanup.policy={have_policy}, needs {want_policy}")
        if state.replication_factor < spec.replication_factor:
            warnings.append(
                f"{name} has {state.replication_factor} replicas, the plan has {spec.replication_factor}"
            )
        want_isr = spec.config.get("min.insync.replicas")
        have_isr = state.config.get("min.insync.replicas")
        if want_isr is not None and have_isr is not None and have_isr != want_isr:
            warnings.append(f"{name} has min.insync.replicas={have_isr}, the plan has {want_isr}")
    return TopicDiff(problems, warnings)


async def check_topics(settings: Settings, timeout: float = 30.0) -> TopicDiff:
    """Compare the cluster of `settings` with its plan (a topic this client cannot see is missing)."""
    plan = topic_plan(settings)
    found = await describe_topics(settings, plan, CHECKED_CONFIGS, timeout)
    return compare(plan, found)


def require_topics(settings: Settings, timeout: float = 30.0) -> TopicDiff:
    """`check_topics`, raising TopicsMismatch (one message naming every problem) when any differs."""
    diff = run_sync(check_topics(settings, timeout))
    if diff.problems:
        raise TopicsMismatch(settings.bootstrap_servers, diff.problems)
    return diff

"""`kpistream topics plan|create|check`: see, apply and verify the exact topic list of a worker.

For a shared cluster where the worker may not create topics (docs/topics.md): `plan` prints every
topic (name, partitions, replication, configs) and the ACLs of the worker's principal, `create`
creates the missing ones (an operator's credentials) and leaves existing ones as they are, `check`
compares the cluster with the plan. All three read `stream.topics.topic_plan`, as the worker does.
Exit codes: 0 as planned, 1 topics differ, 2 the settings or the broker failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import replace
from typing import Any

from stream.commands.worker import add_settings_args, settings_from_args
from stream.config import TOPICS_MODES, Settings
from stream.errors import KpiStreamError
from stream.topic_acls import acl_commands, worker_acls
from stream.topic_check import TopicDiff, check_topics
from stream.topics import cleanup_policy, consumer_groups, topic_plan, worker_access

DEFAULT_PRINCIPAL = "User:kpistream"
EXIT_DIFFERS = 1
EXIT_ERROR = 2


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "topics",
        help="plan, create or check the worker's topics (and its ACLs) on a shared cluster",
        description="Show the exact topics a worker uses and the ACLs of its principal (plan), "
        "create the missing ones (create), or compare the cluster with the plan (check).",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    plan = actions.add_parser("plan", help="every topic and its configs, and the worker's ACLs")
    plan.add_argument("--json", action="store_true", help="print JSON instead of tables")
    plan.add_argument(
        "--principal",
        default=DEFAULT_PRINCIPAL,
        help=f"the worker's Kafka principal (default {DEFAULT_PRINCIPAL})",
    )
    plan.add_argument(
        "--command-config",
        metavar="FILE",
        help="admin client properties for the printed kafka-acls.sh lines (a secured cluster)",
    )
    plan.add_argument(
        "--topics-mode",
        choices=TOPICS_MODES,
        help="the worker's topics_mode the ACLs are for (default: the setting, KPISTREAM_TOPICS_MODE)",
    )
    create = actions.add_parser(
        "create", help="create the missing topics; existing ones are left as they are"
    )
    check = actions.add_parser("check", help="compare the cluster with the plan; exit 1 on any difference")
    for a in (plan, create, check):
        add_settings_args(a)
    for a in (create, check):
        a.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the broker")
    plan.set_defaults(func=run_plan)
    create.set_defaults(func=run_create)
    check.set_defaults(func=run_check)


def _settings(args: argparse.Namespace) -> Settings:
    settings = settings_from_args(args)
    mode = getattr(args, "topics_mode", None)
    return replace(settings, topics_mode=mode) if mode else settings


def plan_topics(settings: Settings) -> list[dict[str, Any]]:
    """The plan as rows: one per topic, in the order the worker creates them."""
    access = worker_access(settings)
    rows: list[dict[str, Any]] = []
    for name, spec in topic_plan(settings).items():
        isr = spec.config.get("min.insync.replicas")
        other = {k: v for k, v in spec.config.items() if k not in ("cleanup.policy", "min.insync.replicas")}
        rows.append(
            {
                "name": name,
                "partitions": spec.partitions,
                "replication_factor": spec.replication_factor,
                "cleanup_policy": cleanup_policy(spec),
                "min_insync_replicas": int(isr) if isr is not None else None,
                "config": dict(other),
                "worker": sorted(access[name]),
            }
        )
    return rows


def plan_document(settings: Settings, principal: str, command_config: str | None = None) -> dict[str, Any]:
    """Everything `topics plan` prints: topics, consumer groups, ACLs and their kafka-acls.sh lines."""
    acls = worker_acls(settings)
    return {
        "bootstrap_servers": settings.bootstrap_servers,
        "topics_mode": settings.topics_mode,
        "topics": plan_topics(settings),
        "consumer_groups": list(consumer_groups(settings)),
        "principal": principal,
        "acls": [
            {
                "principal": principal,
                "permission": "ALLOW",
                "host": "*",
                "resource_type": acl.resource_type,
                "pattern_type": "LITERAL",
                "resource_name": acl.resource_name,
                "operation": acl.operation,
            }
            for acl in acls
        ],
        "acl_commands": acl_commands(acls, principal, settings.bootstrap_servers, command_config),
    }


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return out


def format_plan(doc: dict[str, Any]) -> str:
    """`topics plan` as text: the topic table, the consumer groups, then the kafka-acls.sh lines."""
    rows = [
        [
            t["name"],
            str(t["partitions"]),
            str(t["replication_factor"]),
            t["cleanup_policy"],
            "-" if t["min_insync_replicas"] is None else str(t["min_insync_replicas"]),
            ",".join(f"{k}={v}" for k, v in sorted(t["config"].items())) or "-",
            "+".join(t["worker"]),
        ]
        for t in doc["topics"]
    ]
    headers = [
        "topic",
        "partitions",
        "replication",
        "cleanup.policy",
        "min.insync.replicas",
        "other configs",
        "worker",
    ]
    lines = _table(headers, rows)
    lines += [
        "",
        f"consumer groups: {', '.join(doc['consumer_groups'])}",
        "",
        f"ACLs for {doc['principal']} (topics_mode={doc['topics_mode']}; literal resources, any host):",
        *doc["acl_commands"],
    ]
    return "\n".join(lines)


def run_plan(args: argparse.Namespace) -> int:
    try:
        settings = _settings(args)
    except KpiStreamError as exc:
        print(f"kpistream topics plan: {exc}", file=sys.stderr)
        return EXIT_ERROR
    doc = plan_document(settings, args.principal, args.command_config)
    print(json.dumps(doc, indent=2) if args.json else format_plan(doc))
    return 0


def _report(diff: TopicDiff, total: int) -> int:
    for warning in diff.warnings:
        print(f"warning: {warning}")
    if diff.problems:
        for problem in diff.problems:
            print(f"differs: {problem}")
        print(
            f"kpistream topics: the cluster does not match the plan ({len(diff.problems)} difference(s))",
            file=sys.stderr,
        )
        return EXIT_DIFFERS
    print(f"ok: all {total} topics of the plan exist with their partitions and cleanup policy")
    return 0


def run_create(args: argparse.Namespace) -> int:
    from stream.topic_admin import create_topics

    try:
        settings = _settings(args)
        plan = topic_plan(settings)
        created = set(asyncio.run(create_topics(settings, plan, timeout=args.timeout)))
        for name in plan:
            print(f"created {name}" if name in created else f"exists  {name} (left as it is)")
        diff = asyncio.run(check_topics(settings, args.timeout))
    except KpiStreamError as exc:
        print(f"kpistream topics create: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return _report(diff, len(plan))


def run_check(args: argparse.Namespace) -> int:
    try:
        settings = _settings(args)
        diff = asyncio.run(check_topics(settings, args.timeout))
    except KpiStreamError as exc:
        print(f"kpistream topics check: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return _report(diff, len(topic_plan(settings)))

"""The Kafka ACLs a worker's principal needs on a secured cluster, as `kafka-acls.sh` command lines.

Derived from `stream.topics` (the one topic list, and what the worker does with each topic):

- every topic: DESCRIBE (metadata, offsets); READ on what it consumes, WRITE on what it produces;
- the consumer group named after the app id: READ (join, heartbeat, commit; implies DESCRIBE);
- `topics_mode = "create"`: CREATE on each topic; `"check"`: DESCRIBE_CONFIGS on each topic
  (the check reads `cleanup.policy`) and no CREATE;
- IDEMPOTENT_WRITE on the cluster: the score topics' producer is idempotent (stream/sinks/kafka.py);
  brokers from 2.8 on also accept WRITE on any topic instead (KIP-679), older ones need it;
- no TRANSACTIONAL_ID: no producer is transactional (`processing_guarantee="at_least_once"`);
  exactly-once totals come from the core instead.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import NamedTuple

from stream.config import Settings
from stream.topics import READ, WRITE, consumer_groups, topic_plan, worker_access

# The name Kafka gives the one CLUSTER resource.
CLUSTER_NAME = "kafka-cluster"


class Acl(NamedTuple):
    """One ALLOW entry for the principal: an operation on a literal resource, from any host."""

    resource_type: str  # TOPIC, GROUP, CLUSTER
    resource_name: str
    operation: str  # Kafka's AclOperation name: READ, WRITE, DESCRIBE, CREATE, DESCRIBE_CONFIGS


def worker_acls(settings: Settings) -> list[Acl]:
    """Every ACL a worker with these settings needs, topics in plan order, then its groups."""
    access = worker_access(settings)
    acls: list[Acl] = []
    for name in topic_plan(settings):
        ops = ["DESCRIBE"]
        if READ in access[name]:
            ops.append("READ")
        if WRITE in access[name]:
            ops.append("WRITE")
        ops.append("CREATE" if settings.topics_mode == "create" else "DESCRIBE_CONFIGS")
        acls.extend(Acl("TOPIC", name, op) for op in ops)
    acls.extend(Acl("GROUP", group, "READ") for group in consumer_groups(settings))
    acls.append(Acl("CLUSTER", CLUSTER_NAME, "IDEMPOTENT_WRITE"))
    return acls


# kafka-acls.sh spells operations in CamelCase.
_CLI_OPERATION = {
    "READ": "Read",
    "WRITE": "Write",
    "DESCRIBE": "Describe",
    "CREATE": "Create",
    "DESCRIBE_CONFIGS": "DescribeConfigs",
    "IDEMPOTENT_WRITE": "IdempotentWrite",
}
_CLI_RESOURCE = {"TOPIC": "--topic", "GROUP": "--group"}


def acl_commands(
    acls: Sequence[Acl], principal: str, bootstrap: str, command_config: str | None = None
) -> list[str]:
    """`kafka-acls.sh --add` command lines granting `acls` to `principal`, one per set of operations.

    Resources that need the same operations share one line (kafka-acls.sh takes several
    `--topic`s); each line is ready to paste into a shell.
    """
    ops_of: dict[tuple[str, str], list[str]] = {}
    for acl in acls:
        ops_of.setdefault((acl.resource_type, acl.resource_name), []).append(acl.operation)
    groups: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for (rtype, name), operations in ops_of.items():
        groups.setdefault((rtype, tuple(operations)), []).append(name)
    base = ["kafka-acls.sh", "--bootstrap-server", bootstrap]
    if command_config:
        base += ["--command-config", command_config]
    base += ["--add", "--allow-principal", principal]
    lines: list[str] = []
    for (rtype, ops), names in groups.items():
        args = [*base]
        for op in ops:
            args += ["--operation", _CLI_OPERATION[op]]
        for name in names:
            args += ["--cluster"] if rtype == "CLUSTER" else [_CLI_RESOURCE[rtype], name]
        lines.append(shlex.join(args))
    return lines

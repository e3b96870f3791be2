"""`kpistream dev up|down|status`: a local broker and Redis in the background, loopback only.

`up` starts what is not already configured (KPISTREAM_BROKER / KPISTREAM_REDIS_URL set in the
environment mean "use that, start nothing"), records pids and URLs in `DATA_DIR/state.json`
and prints `export ...` lines, so `eval "$(kpistream dev up)"` configures the shell.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from stream.commands.dev_only import require_dev_packages
from stream.errors import ServiceError

DEFAULT_DATA_DIR = ".kpistream/dev"
STATE_FILE = "state.json"
ENV_FOR = {"broker": "KPISTREAM_BROKER", "redis": "KPISTREAM_REDIS_URL"}


def _process() -> Any:
    """stream.devenv.process, which only a source checkout has (the dev environment is not in the wheel)."""
    require_dev_packages("dev", "stream.devenv")
    from stream.devenv import process

    return process


def register(subparsers: Any) -> None:
    """Add `dev` and its sub-commands to the kpistream parser."""
    dev = subparsers.add_parser(
        "dev",
        help="start/stop a local broker and Redis for development",
        description=(
            "Run a local Kafka-compatible broker (Apache Kafka when Java 17+ is present, else Tansu) "
            "and Redis as background processes bound to 127.0.0.1."
        ),
    )
    dev_sub = dev.add_subparsers(dest="dev_command", metavar="ACTION")
    dev_sub.required = True

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--data-dir",
            default=DEFAULT_DATA_DIR,
            help=f"where data, logs and the state file live (default {DEFAULT_DATA_DIR})",
        )

    up = dev_sub.add_parser(
        "up",
        help="start the broker and Redis, print export lines",
        description=(
            "Start a broker and Redis in the background unless KPISTREAM_BROKER / KPISTREAM_REDIS_URL "
            'are set; print the settings as export lines (use: eval "$(kpistream dev up)").'
        ),
    )
    common(up)
    up.add_argument(
        "--broker",
        choices=["auto", "kafka", "tansu"],
        default="auto",
        help="auto (default): Apache Kafka when java -version >= 17, else Tansu",
    )
    up.add_argument(
        "--brokers",
        type=int,
        default=1,
        metavar="N",
        help=(
            "Apache Kafka brokers (default 1); 3 gives a KRaft cluster on loopback, every node broker "
            "and controller: use it with KPISTREAM_REPLICATION_FACTOR=3 KPISTREAM_MIN_INSYNC_REPLICAS=2"
        ),
    )
    up.add_argument("--timeout", type=float, default=120.0, help="seconds to wait per service")
    up.set_defaults(func=cmd_up)

    down = dev_sub.add_parser(
        "down", help="stop what `dev up` started", description="Stop what `up` started."
    )
    common(down)
    down.set_defaults(func=cmd_down)

    status = dev_sub.add_parser(
        "status",
        help="report what is running",
        description="Report the services `up` started; exit 0 when all are running, 3 otherwise.",
    )
    common(status)
    status.add_argument("--json", action="store_true", help="print the state as JSON")
    status.set_defaults(func=cmd_status)


# -- state --------------------------------------------------------------------------------------------
def _state_path(data_dir: Path) -> Path:
    return data_dir / STATE_FILE


def load_state(data_dir: Path) -> dict[str, dict[str, Any]]:
    """The recorded services (empty when `up` never ran or `down` cleaned up)."""
    try:
        data = json.loads(_state_path(data_dir).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_state(data_dir: Path, state: dict[str, dict[str, Any]]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = _state_path(data_dir).with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(_state_path(data_dir))


def entry_running(entry: dict[str, Any]) -> bool:
    """True when the recorded pid is alive and still the process we started (not a recycled pid).

    A cluster's entry lists its `nodes`: it runs when every node does.
    """
    nodes = entry.get("nodes")
    if isinstance(nodes, list) and nodes:
        return all(isinstance(n, dict) and entry_running(n) for n in nodes)
    pid = entry.get("pid")
    if not isinstance(pid, int) or not _process().pid_alive(pid):
        return False
    marker = str(entry.get("marker", ""))
    cmdline = _process().pid_cmdline(pid)
    return not cmdline or marker in cmdline


def _entry_of(svc: Any) -> dict[str, Any]:
    """What `down` and `status` need to find one started process again."""
    return {
        "pid": svc.pid,
        "port": svc.port,
        "url": svc.url,
        "data_dir": str(svc.data_dir),
        "log": str(svc.log_path),
        "marker": svc.marker,
    }


def _port_of(url: str) -> tuple[str, int] | None:
    try:
        hostport = url.split("://", 1)[-1].split("/", 1)[0].split(",")[0].split(";")[0]
        host, port = hostport.rsplit(":", 1)
        return host.rsplit("@", 1)[-1], int(port)
    except ValueError:
        return None


# -- commands -----------------------------------------------------------------------------------------
def _say(msg: str) -> None:
    print(msg, file=sys.stderr)


def cmd_up(args: argparse.Namespace) -> int:
    """Start the missing services, record them, print `export` lines on stdout."""
    from stream.devenv.kafka_cluster import KafkaCluster
    from stream.devenv.services import new_broker, new_cluster, new_redis, pick_broker_kind

    data_dir = Path(args.data_dir).resolve()
    state = load_state(data_dir)
    started: list[Any] = []
    exports: dict[str, str] = {}
    try:
        for service in ("broker", "redis"):
            env_name = ENV_FOR[service]
            external = os.environ.get(env_name)
            if external:
                _say(f"{service}: using {env_name} from the environment, starting nothing")
                exports[env_name] = external
                continue
            entry = state.get(service)
            if entry and entry_running(entry):
                _say(f"{service}: already running ({entry['kind']}, pid {entry['pid']}) at {entry['url']}")
                exports[env_name] = entry["url"]
                continue
            if service == "broker":
                brokers = getattr(args, "brokers", 1)
                if brokers < 1:
                    raise ServiceError("--brokers must be at least 1")
                broker_kind = pick_broker_kind("kafka" if brokers > 1 else args.broker)
                if brokers > 1 and args.broker == "tansu":
                    raise ServiceError("--brokers above 1 needs Apache Kafka (--broker kafka or auto)")
                kind: str = broker_kind
                svc: Any = (
                    new_cluster(data_dir / "kafka-cluster", brokers)
                    if brokers > 1
                    else new_broker(broker_kind, data_dir / kind)
                )
            else:
                kind = "redis"
                svc = new_redis(data_dir / "redis")
            if isinstance(svc, KafkaCluster):
                _say(f"{service}: starting a {len(svc.nodes)}-broker kafka cluster in {svc.data_dir} ...")
                svc.start(args.timeout)
                started.append(svc)
                state[service] = {
                    "kind": kind,
                    "brokers": len(svc.nodes),
                    "url": svc.url,
                    "data_dir": str(svc.data_dir),
                    "nodes": [_entry_of(node) for node in svc.nodes],
                }
                _save_state(data_dir, state)
                _say(f"{service}: kafka cluster running, pids {svc.pids}, {svc.url}")
                exports[env_name] = svc.url
                continue
            _say(f"{service}: starting {kind} (log {svc.log_path}) ...")
            svc.start(args.timeout)
            started.append(svc)
            state[service] = {"kind": kind, **_entry_of(svc)}
            _save_state(data_dir, state)
            _say(f"{service}: {kind} running, pid {svc.pid}, {svc.url}")
            exports[env_name] = svc.url
    except ServiceError as exc:
        for svc in started:
            svc.stop()
            state = {k: v for k, v in state.items() if v.get("url") != svc.url}
        _save_state(data_dir, state)
        _say(f"error: {exc}")
        return 1
    for name, value in exports.items():
        print(f"export {name}={value}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    """Stop every service recorded by `up` (SIGTERM, then SIGKILL) and forget it."""
    data_dir = Path(args.data_dir).resolve()
    state = load_state(data_dir)
    if not state:
        _say(f"nothing recorded in {_state_path(data_dir)}: nothing to stop")
        return 0
    for service, entry in state.items():
        for node in entry.get("nodes") or [entry]:
            if entry_running(node):
                _process().stop_pid(int(node["pid"]))
                _say(f"{service}: stopped {entry.get('kind')} (pid {node['pid']})")
            else:
                _say(f"{service}: {entry.get('kind')} (pid {node.get('pid')}) was not running")
    _state_path(data_dir).unlink(missing_ok=True)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Print each recorded service and whether it answers; exit 0 only when all do."""
    data_dir = Path(args.data_dir).resolve()
    state = load_state(data_dir)
    report: dict[str, dict[str, Any]] = {}
    for service, entry in state.items():
        urls = [str(n.get("url", "")) for n in entry.get("nodes") or [entry]]
        ports = [_port_of(u) for u in urls]
        alive = entry_running(entry) and all(hp is not None and _process().tcp_ready(*hp) for hp in ports)
        report[service] = {**entry, "running": alive}
    for service, env_name in ENV_FOR.items():
        if service not in report and os.environ.get(env_name):
            url = os.environ[env_name]
            hp = _port_of(url)
            report[service] = {
                "kind": "external",
                "url": url,
                "running": hp is not None and _process().tcp_ready(*hp),
            }
    if args.json:
        print(json.dumps(report, indent=2))
    elif not report:
        print(f"nothing running (no {_state_path(data_dir)})")
    else:
        for service, entry in report.items():
            word = "running" if entry["running"] else "NOT running"
            pid = f" pid {entry['pid']}" if "pid" in entry else ""
            if "nodes" in entry:
                pids = " ".join(str(n.get("pid")) for n in entry["nodes"])
                pid = f" {len(entry['nodes'])} brokers, pids {pids}"
            print(f"{service}: {entry['kind']}{pid} {entry['url']} {word}")
    return 0 if report and all(e["running"] for e in report.values()) else 3


def main(argv: list[str] | None = None) -> int:
    """`python -m stream.commands.dev up|down|status`: the same commands without the full CLI."""
    parser = argparse.ArgumentParser(prog="python -m stream.commands.dev")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    register(sub)
    args = parser.parse_args(["dev", *(sys.argv[1:] if argv is None else argv)])
    rc: int = args.func(args)
    return rc


if __name__ == "__main__":
    sys.exit(main())

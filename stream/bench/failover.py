"""Failover time: from a worker's SIGKILL until the survivor's Redis records equal `report` again.

Two workers share the group (4 partitions, one Apache Kafka broker, one Redis). A run:

1. both workers ready and the group stable with 2 members; the first 85 % of a simulated day
   produced, and Redis equal to `kpistream report` over it (so nothing is pending anywhere);
2. t0: SIGKILL one worker and at once produce the remaining 15 % (every partition gets events;
   in this process, ~0.3 s, so no interpreter start-up is in the figure);
3. poll Redis (and the group) until Redis equals `report` over all the events: failover = t - t0.

Beside it, the same step without a kill (`baseline`: produce to Redis with both workers alive),
and the group's view: when the coordinator had removed the dead member (`group_s`, the session
timeout at work) and when the survivor logged its recovery done (`recovered_s`). Their gaps say
where the time goes. Figures and method: docs/benchmarks.md, "Failover".

    python -m stream.bench.failover --runs 3 --standbys 0,1 --json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stream.commands.produce import produce_file
from stream.config import load_settings
from stream.core.outputs import decimal_string
from stream.devenv.kafka import KafkaBroker
from stream.devenv.process import free_port
from stream.devenv.redis import RedisServer
from stream.devtools.worker_process import WorkerFailed, WorkerProcess
from stream.errors import KpiStreamError
from stream.simulator import SimConfig, generate, iter_jsonl
from stream.sinks.redis_keys import CenterKey, LeaderboardKey, OperatorKey, QueueKey, ScorecardKey

REPO = Path(__file__).resolve().parents[2]
PARTITIONS = 4
SPLIT = 0.85  # produced before the kill; the rest right after it
TIMEOUT_S = 180.0  # a run that is not current by then counts as failed (and says what differs)
# The survivor's log line that ends a recovery: its streams run again (Faust's Recovery, at INFO).
_RECOVERY_DONE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\].*Recovery\]: Worker ready")


class FailoverError(KpiStreamError):
    """A run could not be measured (a worker died, a service failed, a timeout before the kill)."""


def say(msg: str) -> None:
    print(f"[failover {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ workers
class Worker(WorkerProcess):
    """A worker of this checkout (WorkerProcess); adds when its recovery was logged done."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        super().__init__(env, log_path, cwd=REPO)

    def wait_ready(self, timeout: float = 120.0, poll_s: float = 0.2) -> None:
        try:
            super().wait_ready(timeout, poll_s)
        except WorkerFailed as exc:
            raise FailoverError(f"{exc}:\n{exc.log_tail}") from None

    def recovered_after(self, t0_wall: float) -> float | None:
        """Seconds from `t0_wall` (time.time) to the first recovery done logged after it."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return None
        for line in lines:
            m = _RECOVERY_DONE.match(line)
            if m is None:
                continue
            t = time.mktime(time.strptime(m.group(1)[:19], "%Y-%m-%d %H:%M:%S")) + int(m.group(1)[20:]) / 1000
            if t >= t0_wall:
                return t - t0_wall
        return None


# ------------------------------------------------------------------------------------------ checks
def redis_mismatches(client: Any, report: Mapping[str, Any]) -> list[str]:
    """Every day/month hash (operators, queues, centre, scorecard) and leaderboard unlike the report.

    All of Redis is read in one pipelined round trip: a poll takes milliseconds, not one round
    trip per key, so the time it is taken at is the time Redis was in.
    """
    wants: list[tuple[str, dict[str, Any]]] = []
    boards: list[tuple[str, dict[str, Any]]] = []
    for pk, p in report["periods"].items():
        for op, row in p["operators"].items():
            wants.append((OperatorKey(op, pk).encode(), {**row["kpis"], **row["counts"], "f": row["f"]}))
        for q, row in p["queues"].items():
            wants.append((QueueKey(q, pk).encode(), {**row["kpis"], **row["counts"]}))
        wants.append((CenterKey(pk).encode(), {**p["center"]["kpis"], **p["center"]["counts"]}))
        card = {f"{d}.{k}": v for d, figs in p["scorecard"].items() for k, v in figs.items()}
        wants.append((ScorecardKey(pk).encode(), card))
        boards.append((pk, {op: row["f"] for op, row in p["operators"].items()}))
    pipe = client.pipeline(transaction=False)
    for key, _ in wants:
        pipe.hgetall(key)
    for pk, _ in boards:
        pipe.zrange(LeaderboardKey(pk).encode(), 0, -1, withscores=True)
    replies = pipe.execute()
    bad: list[str] = []
    for (key, want), got in zip(wants, replies[: len(wants)], strict=True):
        for name, v in want.items():
            if got.get(name) != decimal_string(v):
                bad.append(f"{key} {name}: redis {got.get(name)!r} != report {decimal_string(v)!r}")
                break
    for (pk, board), got in zip(boards, replies[len(wants) :], strict=True):
        if dict(got) != board:
            bad.append(f"leaderboard {pk} differs")
    return bad


def _kpistream(env: Mapping[str, str], *args: str) -> str:
    """Run a kpistream command of this checkout; its stdout, or FailoverError with its stderr."""
    out = subprocess.run(
        [sys.executable, "-m", "stream.cli", *args],
        env=dict(env),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if out.returncode != 0:
        raise FailoverError(f"{args[0]} failed: {out.stderr[-2000:]}")
    return out.stdout


def report_of(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(_kpistream(env, "report", "--events", str(path)))
    return result


def produce(path: Path, env: Mapping[str, str]) -> None:
    _kpistream(env, "produce", "--events", str(path), "--quiet")


async def _group(bootstrap: str, group: str) -> tuple[str, int]:
    """(state, members) of a consumer group, as its coordinator sees it."""
    from stream import kafka_clients

    admin = kafka_clients.admin(bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
        g = response.to_object()["groups"][0]
        return str(g["state"]), len(g["members"])
    finally:
        await admin.close()


def group_state(bootstrap: str, group: str) -> tuple[str, int]:
    try:
        return asyncio.run(_group(bootstrap, group))
    except Exception as exc:  # the coordinator may be busy or moving: the caller polls again
        return f"error {type(exc).__name__}", -1


# ------------------------------------------------------------------------------------------ a run
@dataclass
class Run:
    """One measured kill (or the no-kill baseline) and where its time went."""

    standbys: int
    session_timeout_s: float
    store: str
    killed: bool
    current_s: float | None = None  # t0 -> Redis equal to the report (None: not within TIMEOUT_S)
    group_s: float | None = None  # t0 -> group stable with the survivor alone
    recovered_s: float | None = None  # t0 -> survivor's recovery done, its streams running (log)
    differences: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "standbys": self.standbys,
            "session_timeout_s": self.session_timeout_s,
            "store": self.store,
            "killed": self.killed,
            "current_s": _r(self.current_s),
            "group_s": _r(self.group_s),
            "recovered_s": _r(self.recovered_s),
            "differences": self.differences[:5],
        }


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


@dataclass(frozen=True)
class Services:
    bootstrap: str
    broker_url: str
    redis_host: str
    redis_port: int


@contextlib.contextmanager
def services(workdir: Path) -> Iterator[Services]:
    """One Apache Kafka broker and one Redis for all runs (each run has its own topics and db)."""
    with contextlib.ExitStack() as stack:
        broker = KafkaBroker(workdir / "kafka")
        stack.callback(broker.stop)
        broker.start(timeout=180)
        redis = RedisServer(workdir / "redis")
        stack.callback(redis.stop)
        redis.start(timeout=30)
        say(f"services up: {broker.url}, {redis.url}")
        yield Services(broker.bootstrap, broker.url, redis.host, redis.port)


def measure(
    svc: Services,
    workdir: Path,
    files: tuple[Path, Path, Path],
    standbys: int,
    session_s: float,
    kill: bool,
    store: str = "memory://",
) -> Run:
    """One run on fresh topics, group and Redis db: see the module docstring."""
    import redis

    first, second, whole = files
    tag = uuid.uuid4().hex[:8]
    rundir = workdir / f"run-{tag}"
    rundir.mkdir()
    base = {k: v for k, v in os.environ.items() if not k.startswith("KPISTREAM_")}
    base.update(
        KPISTREAM_BROKER=svc.broker_url,
        KPISTREAM_REDIS_URL=f"redis://{svc.redis_host}:{svc.redis_port}/1",
        KPISTREAM_APP_ID=f"failover-{tag}",
        KPISTREAM_TOPIC_PREFIX=f"f{tag}.",
        KPISTREAM_PARTITIONS=str(PARTITIONS),
        KPISTREAM_TABLE_STANDBY_REPLICAS=str(standbys),
        KPISTREAM_SESSION_TIMEOUT_S=str(session_s),
        KPISTREAM_STORE=store,
        PYTHONUNBUFFERED="1",
    )
    client = redis.Redis(host=svc.redis_host, port=svc.redis_port, db=1, decode_responses=True)
    client.flushdb()
    workers = [
        Worker(
            {**base, "KPISTREAM_WEB_PORT": str(free_port()), "KPISTREAM_DATA_DIR": str(rundir / f"w{i}")},
            rundir / f"w{i}.log",
        )
        for i in range(2)
    ]
    run = Run(standbys, session_s, store, kill)
    try:
        for w in workers:
            w.spawn()
        for w in workers:
            w.wait_ready()
        _wait(lambda: group_state(svc.bootstrap, base["KPISTREAM_APP_ID"]) == ("Stable", 2), 60, "group of 2")
        produce(first, base)
        report_first = report_of(first, base)
        _wait(lambda: not redis_mismatches(client, report_first), 120, "Redis equal before the kill")
        report_all = report_of(whole, base)
        victim, survivor = workers
        t0, t0_wall = time.monotonic(), time.time()
        if kill:
            victim.kill()
        # In-process (no interpreter start-up in the figure): the events keep coming at once.
        asyncio.run(produce_file(load_settings(env=base), second, progress=False))
        deadline = t0 + TIMEOUT_S
        while time.monotonic() < deadline:
            group = base["KPISTREAM_APP_ID"]
            if kill and run.group_s is None and group_state(svc.bootstrap, group) == ("Stable", 1):
                run.group_s = time.monotonic() - t0
            bad = redis_mismatches(client, report_all)
            if not bad:
                run.current_s = time.monotonic() - t0
                break
            run.differences = bad
            time.sleep(0.2)
        if run.current_s is not None:
            run.differences = []
        if kill:
            run.recovered_s = survivor.recovered_after(t0_wall)
        if not survivor.alive():
            raise FailoverError(f"the survivor died:\n{survivor.log_tail()}")
    finally:
        for w in workers:
            w.stop()
        client.close()
    return run


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise FailoverError(f"timed out waiting for {what}")


def sim_files(workdir: Path) -> tuple[Path, Path, Path]:
    """A simulated centre's day (duplicates included), split before and after the kill."""
    lines = list(iter_jsonl(generate(SimConfig(seed=23, hours=3, duplicate_prob=0.02))))
    cut = int(len(lines) * SPLIT)
    paths = (workdir / "first.jsonl", workdir / "second.jsonl", workdir / "all.jsonl")
    for path, part in zip(paths, (lines[:cut], lines[cut:], lines), strict=True):
        path.write_text("\n".join(part) + "\n")
    return paths


def summary(runs: list[Run]) -> dict[str, Any]:
    """Median, min and max of each figure per (standbys, session timeout, killed)."""
    out: dict[str, Any] = {}
    groups: dict[tuple[int, float, str, bool], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.standbys, r.session_timeout_s, r.store, r.killed), []).append(r)
    for (standbys, session_s, store, killed), rs in groups.items():
        what = "kill" if killed else "baseline"
        name = f"{what} store={store} standbys={standbys} session={session_s:g}s"
        entry: dict[str, Any] = {"runs": len(rs), "failed": sum(r.current_s is None for r in rs)}
        for fig in ("current_s", "group_s", "recovered_s"):
            xs = [x for r in rs if (x := getattr(r, fig)) is not None]
            if xs:
                entry[fig] = {"median": _r(statistics.median(xs)), "min": _r(min(xs)), "max": _r(max(xs))}
        out[name] = entry
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stream.bench.failover", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--runs", type=int, default=3, help="kills per configuration (default 3)")
    parser.add_argument("--standbys", default="0,1", help="table_standby_replicas values (default 0,1)")
    parser.add_argument(
        "--session-timeouts",
        default="",
        help="session timeouts in seconds to compare (default: the settings' default only)",
    )
    parser.add_argument(
        "--stores", default="memory://", help="table stores to compare (default memory://; also rocksdb://)"
    )
    parser.add_argument("--baseline-runs", type=int, default=1, help="runs without a kill (default 1)")
    parser.add_argument("--json", action="store_true", help="print the runs and the summary as JSON")
    parser.add_argument(
        "--workdir", help="keep services' and workers' files and logs here (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    from stream.config import Settings

    standbys = [int(x) for x in args.standbys.split(",") if x.strip()]
    stores = [x.strip() for x in args.stores.split(",") if x.strip()]
    sessions = [float(x) for x in args.session_timeouts.split(",") if x.strip()] or [
        Settings().session_timeout_s
    ]
    runs: list[Run] = []
    with contextlib.ExitStack() as stack:
        if args.workdir:
            workdir = Path(args.workdir).resolve()
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kpistream-failover-")))
        files = sim_files(workdir)
        with services(workdir) as svc:
            for session_s in sessions:
                for store in stores:
                    for _ in range(args.baseline_runs):
                        runs.append(measure(svc, workdir, files, 0, session_s, False, store))
                        say(f"baseline: {runs[-1].to_json()}")
                    for n in standbys:
                        if n and store.startswith("rocksdb"):
                            say(f"skipped: {store} with standbys (refused by Settings, docs/benchmarks.md)")
                            continue
                        for _ in range(args.runs):
                            runs.append(measure(svc, workdir, files, n, session_s, True, store))
                            say(f"kill: {runs[-1].to_json()}")
    figures = summary(runs)
    if args.json:
        print(json.dumps({"runs": [r.to_json() for r in runs], "summary": figures}, indent=2))
    else:
        for name, entry in figures.items():
            print(name, json.dumps(entry))
    return 0


if __name__ == "__main__":
    sys.exit(main())

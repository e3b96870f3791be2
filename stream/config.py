"""Settings: environment, then a TOML file, then flags (weakest to strongest), validated once.

`Settings` is frozen; secrets (passwords in URLs) are masked by `redacted()` and in `repr`.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from stream.core.config import KpiConfig
from stream.errors import ConfigError

ENV_PREFIX = "KPISTREAM_"
# `topics_mode`: the worker creates its missing topics, or only checks them (docs/topics.md).
TOPICS_MODES: tuple[str, ...] = ("create", "check")
# `allocator`: the worker's memory allocator (stream/allocator.py).
ALLOCATORS: tuple[str, ...] = ("auto", "jemalloc", "python")
LOG_FORMATS = ("text", "json")
#: What `redis_key_prefix` may contain: no SCAN glob characters, no spaces (stream/sinks/redis_keys.py).
KEY_PREFIX_CHARS = re.compile(r"^[A-Za-z0-9_.:{}-]*$")

_SECRET_IN_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/]*):(?P<pw>[^@/]*)@", re.I)


def mask_secrets(text: str) -> str:
    """Hide the password part of any URL in `text`."""
    return _SECRET_IN_URL.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)


def setting(default: Any, doc: str, *, secret: bool = False) -> Any:
    """Declare a Settings field with its one-line description (docs/settings.md is built from it).

    `secret=True` fields (passwords, tokens) are never printed: `redacted()` shows `***`.
    """
    return field(default=default, metadata={"doc": doc, "secret": secret})


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a worker or a command needs; built by `load_settings`."""

    broker: str = setting(
        "kafka://127.0.0.1:9092",
        "The Kafka bootstrap servers: kafka://HOST:PORT, several joined by `;`.",
    )
    redis_url: str = setting(
        "redis://127.0.0.1:6379/0",
        "The Redis of the wallboard and the live keys: redis://, rediss:// (TLS) or unix://; "
        "a password in the URL is masked in every log line.",
    )
    tz: str = setting("UTC", "IANA time zone of the day and month periods (CONTRACT.md section 4).")
    strategies: str = setting(
        "", "The strategies file (TOML: weights K1..K6, teams, funds); empty: the built-in default only."
    )
    app_id: str = setting(
        "kpistream",
        "The Faust application id: the consumer group and the prefix of the table changelog topics.",
    )
    partitions: int = setting(4, "Partitions of the keyed topics and tables kpistream creates.")
    web_host: str = setting(
        "127.0.0.1", "Address the worker's web server (API, wallboard, /metrics) binds to."
    )
    web_port: int = setting(6066, "Port of /healthz, /readyz, /metrics, /wallboard and /api/v1/.")
    data_dir: str = setting(
        ".kpistream", "Where the worker keeps local state (the RocksDB tables under worker-APP_ID/)."
    )
    store: str = setting(
        "memory://",
        "Table store: memory:// (rebuilt from the changelogs at start) or rocksdb:// (on disk "
        "under data_dir; docs/architecture.md).",
    )
    rocksdb_write_buffer_mb: float = setting(
        2.0,
        "With rocksdb://: the memtable size of each table partition's RocksDB, two at most (Faust's "
        "default, 64 MB x 3 per partition, held 260 MB at 5,000 operators x 40 days; "
        "docs/benchmarks.md).",
    )
    rocksdb_memtables_mb: float = setting(
        16.0,
        "With rocksdb://: the cap of all the worker's RocksDB memtables together (one write buffer "
        "manager; a database whose memtable would pass it is flushed to disk; "
        "agents/rocksdb_memory.py).",
    )
    rocksdb_block_cache_mb: float = setting(
        16.0,
        "With rocksdb://: one block cache (data, index and filter blocks) shared by all the "
        "worker's RocksDB databases (Faust's default: 2 GB for each table partition).",
    )
    max_message_bytes: int = setting(
        65536, "An input message larger than this is a dead letter (reason too_large)."
    )
    flush_interval_s: float = setting(
        1.0, "The publisher writes changed KPIs to Redis, Kafka and Prometheus at most this often."
    )
    share_interval_s: float = setting(
        10.0,
        "In a period of more than 500 operators, those whose only change is their fund share are "
        "republished this often per 500 operators while the period keeps changing, and this long "
        "after the last refresh once it is quiet (at least flush_interval_s; docs/outputs.md).",
    )
    faust_sensors: bool = setting(
        False,
        "Faust's own per-message Prometheus sensors (faust_* metrics); off by default: they cost "
        "work on every message and caused latency spikes (docs/outputs.md).",
    )
    batch_size: int = setting(2000, "At most this many queued messages are handled as one batch.")
    batch_linger_s: float = setting(
        0.1, "A batch not yet full waits this long for more messages, 0 to 1 s (agents/batching.py)."
    )
    aggregate_batch_bytes: int = setting(
        4_194_304,
        "The aggregating agent's batch stops growing at this many bytes of delta messages (it takes "
        "at least one): a backlog is applied in bounded steps (agents/batching.py).",
    )
    producer_backlog_max: int = setting(
        5000,
        "The agents take no new batch while more table changelog records than this wait to be "
        "sent (bounds the memory they hold; agents/batching.py).",
    )
    memory_trim_interval_s: float = setting(
        10.0,
        "How often the worker gives the C allocator's free memory back to the system (glibc "
        "malloc_trim; 0: never; stream/memory_trim.py).",
    )
    allocator: str = setting(
        "auto",
        "The worker's memory allocator: auto (jemalloc when the system has libjemalloc.so.2, else "
        "Python's), jemalloc (do not start without it) or python (stream/allocator.py).",
    )
    gc_full_interval_s: float = setting(
        300.0,
        "Seconds between the worker's full passes of Python's cyclic garbage collector, which "
        "otherwise walk every object of the state many times a minute under load (0: Python's "
        "own schedule; stream/gc_schedule.py).",
    )
    rebalance_timeout_s: float = setting(
        3.0, "How long the consumer group waits for members to rejoin during a rebalance."
    )
    session_timeout_s: float = setting(
        6.0,
        "How long the group waits for a silent (crashed) worker before moving its partitions: most "
        "of the failover time (docs/benchmarks.md, 'Failover': 30 s gave ~34 s, 10 s ~14 s, 6 s "
        "~8-9 s). 6 s is the broker's usual minimum (group.min.session.timeout.ms) and what every "
        "test runs with. Heartbeats go from Faust's consumer thread, not the event loop, so a loop "
        "stall does not expire the session (kpistream_event_loop_stall_max_seconds); a process "
        "paused or starved for 6 s does. Raise it on hosts or networks that pause longer.",
    )
    topic_prefix: str = setting(
        "", "Prefix of every topic name kpistream uses (several deployments on one cluster)."
    )
    replication_factor: int = setting(
        1,
        "Copies of every topic and table changelog kpistream creates: 1 fits the one-broker dev "
        "setup, 3 a production cluster. Existing topics are never altered.",
    )
    min_insync_replicas: int = setting(
        0,
        "The topics' min.insync.replicas; 0 leaves the broker's default. With 3 replicas use 2: a "
        "write is acknowledged by two brokers, so one broker can stop without losing or refusing data.",
    )
    table_standby_replicas: int = setting(
        0,
        "Warm copies of each table partition on other workers (Faust standbys): a worker that takes "
        "over a partition after a crash starts from its copy instead of reading the whole "
        "changelog. Refused with rocksdb:// (lost counts at failover, docs/benchmarks.md).",
    )
    fund_amount: str = setting(
        "",
        "The bonus fund of every month the strategies file gives none, e.g. 10000.00; empty: no "
        "amounts, only shares.",
    )
    # Kubernetes (deploy/helm): how peers reach this worker when it binds 0.0.0.0.
    web_advertised_url: str = setting(
        "",
        "The URL other workers use to reach this one's API (the cluster-wide /api/v1/periods asks "
        "every worker for its partitions), e.g. http://POD.SERVICE:6066; empty: "
        "http://WEB_HOST:WEB_PORT, which is wrong when web_host is 0.0.0.0 and there are several workers.",
    )
    # Operations: Redis as ops run it and the operator's view (docs/security.md "Redis", docs/metrics.md).
    redis_ssl_cafile: str = setting(
        "", "CA file that signed the Redis server's certificate (with a rediss:// URL); empty: the system CAs"
    )
    redis_key_prefix: str = setting(
        "", "prefix of every Redis key and channel of this deployment (one Redis, several centres)"
    )
    log_format: str = setting("text", "log lines as `text` or `json` (one JSON object per line)")
    # Month close (issue #14 item 5; agents/payouts_api.py)
    payouts_check_interval_s: float = setting(
        60.0, "how often a closed month is checked for late events (corrections); 0 = only when closing again"
    )
    # Topics on a shared cluster (docs/topics.md)
    topics_mode: str = setting(
        "create",
        "create: the worker creates its missing topics; check: it creates none and refuses to start "
        "unless every topic of `kpistream topics plan` exists with its partitions and cleanup policy",
    )
    # -- Kafka security (docs/security.md, "Kafka"); the clients are built by stream/kafka_clients.py
    kafka_security_protocol: str = setting(
        "PLAINTEXT", "how clients talk to Kafka: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    kafka_sasl_mechanism: str = setting(
        "SCRAM-SHA-512", "SASL mechanism with SASL_*: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
    )
    kafka_sasl_username: str = setting("", "SASL user name (with SASL_SSL or SASL_PLAINTEXT)")
    kafka_sasl_password: str = setting("", "SASL password (with SASL_SSL or SASL_PLAINTEXT)", secret=True)
    kafka_ssl_cafile: str = setting(
        "", "PEM file of the CA(s) that signed the brokers' certificates; empty: the system's CAs"
    )
    kafka_ssl_certfile: str = setting("", "PEM client certificate for mutual TLS (optional)")
    kafka_ssl_keyfile: str = setting("", "PEM private key of the client certificate (optional)")
    kafka_ssl_key_password: str = setting("", "password of an encrypted client key", secret=True)
    kafka_ssl_check_hostname: bool = setting(
        True, "the broker's certificate must name the host connected to (turn off only for IP-only test rigs)"
    )
    # Web port: authentication, TLS and HTTP ingest (agents/web_auth.py, agents/ingest.py, docs/security.md)
    web_auth_file: str = setting(
        "", "TOML file of web users ([[users]] name, role, token_sha256 and/or password_hash); on when set"
    )
    web_viewer_token: str = setting(
        "", "a bearer token with role viewer (read the wallboard and API)", secret=True
    )
    web_admin_token: str = setting("", "a bearer token with role admin (every request)", secret=True)
    web_ingest_token: str = setting(
        "", "a bearer token with role ingest (POST /api/v1/events only)", secret=True
    )
    web_peer_token: str = setting(
        "",
        "the token workers send each other for /api/v1/local/aggregates (same on every worker)",
        secret=True,
    )
    web_auth_metrics: bool = setting(False, "with auth on, /metrics needs role viewer too (default: open)")
    web_tls_certfile: str = setting("", "PEM certificate (chain) of the web port: HTTPS when set")
    web_tls_keyfile: str = setting("", "PEM private key of web_tls_certfile (if not in the same file)")
    web_tls_cafile: str = setting(
        "", "CA file workers check each other's web certificates with (default: system CAs)"
    )
    web_max_body_bytes: int = setting(
        1_048_576, "largest request body POST /api/v1/events accepts (413 beyond)"
    )
    kpi: KpiConfig = field(default_factory=KpiConfig)

    @property
    def uses_rocksdb(self) -> bool:
        """The tables are Faust's RocksDB store (on disk) rather than memory."""
        return self.store.startswith("rocksdb")

    def __post_init__(self) -> None:
        if not self.broker.startswith(("kafka://", "aiokafka://")):
            raise ConfigError("broker", f"expected kafka://HOST:PORT, got {mask_secrets(self.broker)!r}")
        if not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("redis_url", "expected redis://HOST:PORT/DB")
        if self.partitions < 1:
            raise ConfigError("partitions", "must be at least 1")
        if self.max_message_bytes < 64:
            raise ConfigError("max_message_bytes", "must be at least 64")
        if self.flush_interval_s <= 0:
            raise ConfigError("flush_interval_s", "must be positive")
        if self.store.split("://", 1)[0] not in ("memory", "rocksdb"):
            raise ConfigError("store", "must be memory:// or rocksdb:// (docs/architecture.md)")
        if not 0 <= self.batch_linger_s <= 1:
            raise ConfigError("batch_linger_s", "must be between 0 and 1 second")
        for name in ("rocksdb_write_buffer_mb", "rocksdb_memtables_mb", "rocksdb_block_cache_mb"):
            if getattr(self, name) < 1:
                raise ConfigError(name, "must be at least 1 (MB)")
        if self.memory_trim_interval_s < 0:
            raise ConfigError("memory_trim_interval_s", "must be 0 (never) or positive")
        if self.allocator not in ALLOCATORS:
            raise ConfigError("allocator", f"must be one of {', '.join(ALLOCATORS)}, got {self.allocator!r}")
        if self.gc_full_interval_s < 0:
            raise ConfigError("gc_full_interval_s", "must be 0 (Python's schedule) or positive")
        if self.aggregate_batch_bytes < 1024:
            raise ConfigError("aggregate_batch_bytes", "must be at least 1024")
        if self.producer_backlog_max < 100:
            raise ConfigError("producer_backlog_max", "must be at least 100 (Faust's own buffer limit)")
        if self.share_interval_s < self.flush_interval_s:
            raise ConfigError("share_interval_s", "must be at least flush_interval_s")
        if self.replication_factor < 1:
            raise ConfigError("replication_factor", "must be at least 1")
        if not 0 <= self.min_insync_replicas <= self.replication_factor:
            raise ConfigError(
                "min_insync_replicas",
                f"must be between 0 (broker default) and replication_factor ({self.replication_factor})",
            )
        if self.table_standby_replicas < 0:
            raise ConfigError("table_standby_replicas", "must be 0 or more")
        if self.table_standby_replicas and self.uses_rocksdb:
            # Rule: no standbys with RocksDB; Faust's RocksDB standbys lose counts at failover.
            raise ConfigError(
                "table_standby_replicas",
                "not with rocksdb:// (lost counts at failover, docs/benchmarks.md 'Failover'); "
                "use 0 or the memory store",
            )
        # Operations (Redis, logs).
        if self.redis_ssl_cafile and not self.redis_url.startswith("rediss://"):
            raise ConfigError("redis_ssl_cafile", "needs a rediss:// redis_url (TLS)")
        if not KEY_PREFIX_CHARS.match(self.redis_key_prefix):
            raise ConfigError("redis_key_prefix", "may use letters, digits and _.:{}- only")
        if self.log_format not in LOG_FORMATS:
            raise ConfigError("log_format", f"must be one of {', '.join(LOG_FORMATS)}")
        if self.web_advertised_url and not self.web_advertised_url.startswith(("http://", "https://")):
            raise ConfigError("web_advertised_url", "expected http://HOST:PORT or https://HOST:PORT")
        # web port: authentication, TLS and HTTP ingest
        if self.web_tls_keyfile and not self.web_tls_certfile:
            raise ConfigError("web_tls_keyfile", "needs web_tls_certfile")
        if self.web_max_body_bytes < self.max_message_bytes:
            raise ConfigError("web_max_body_bytes", "must be at least max_message_bytes (one event)")
        if self.kpi.tz != self.tz:
            object.__setattr__(self, "kpi", replace(self.kpi, tz=self.tz))
        # Month close
        if self.payouts_check_interval_s < 0:
            raise ConfigError("payouts_check_interval_s", "must be 0 (off) or more")
        # -- Kafka security: one check here, so no client finds a half-configured setup later.
        from stream.kafka_clients import validate_kafka_security

        for name in ("kafka_security_protocol", "kafka_sasl_mechanism"):
            object.__setattr__(self, name, str(getattr(self, name)).strip().upper())
        validate_kafka_security(self)
        # Topics on a shared cluster
        if self.topics_mode not in TOPICS_MODES:
            raise ConfigError(
                "topics_mode", f"must be one of {', '.join(TOPICS_MODES)}, got {self.topics_mode!r}"
            )

    @property
    def bootstrap_servers(self) -> str:
        """host:port list for aiokafka."""
        return self.broker.split("://", 1)[1].replace(";", ",")

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def redacted(self) -> dict[str, Any]:
        """A printable view with secrets masked."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.metadata.get("secret") and v:
                out[f.name] = "***"
            else:
                out[f.name] = mask_secrets(v) if isinstance(v, str) else v
        return out

    def __repr__(self) -> str:
        return f"Settings({self.redacted()!r})"


_KPI_FIELDS = {f.name: f for f in fields(KpiConfig)}
_TOP_FIELDS = {f.name: f for f in fields(Settings) if f.name != "kpi"}


def _coerce(name: str, value: Any, like: Any) -> Any:
    try:
        if isinstance(like, bool):
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if isinstance(like, int):
            return int(value)
        if isinstance(like, float):
            return float(value)
        if isinstance(like, dict):
            return dict(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(name, f"cannot read {value!r}: {exc}") from exc


def _apply(
    values: dict[str, Any], kpi: dict[str, Any], source: Mapping[str, Any], *, strict: bool = True
) -> None:
    defaults = Settings()
    kdefaults = KpiConfig()
    for key, value in source.items():
        if value is None:
            continue
        k = key.lower().replace("-", "_")
        if k in _TOP_FIELDS:
            values[k] = _coerce(k, value, getattr(defaults, k))
        elif k in _KPI_FIELDS:
            kpi[k] = _coerce(k, value, getattr(kdefaults, k))
        elif k == "kpi" and isinstance(value, Mapping):
            _apply(values, kpi, value, strict=strict)
        elif strict:
            raise ConfigError(key, "unknown setting")


def load_settings(
    env: Mapping[str, str] | None = None,
    toml_path: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build settings from env (KPISTREAM_*), then the TOML file, then explicit overrides (flags)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    kpi: dict[str, Any] = {}
    env_values = {k[len(ENV_PREFIX) :]: v for k, v in env.items() if k.startswith(ENV_PREFIX)}
    # Other tools share the prefix (KPISTREAM_CACHE, KPISTREAM_CONFIG): unknown variables are ignored,
    # while an unknown key in a settings file or a flag is an error.
    _apply(values, kpi, env_values, strict=False)
    path = toml_path or env.get("KPISTREAM_CONFIG")
    if path:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError("config", f"cannot read {p}: {exc}") from exc
        _apply(values, kpi, data)
    if overrides:
        _apply(values, kpi, overrides)
    try:
        tz = values.get("tz", "UTC")
        return Settings(**values, kpi=KpiConfig(**{**kpi, "tz": tz}))
    except ValueError as exc:
        raise ConfigError("kpi", str(exc)) from exc

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

    broker: str = "kafka://127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/0"
    tz: str = "UTC"
    strategies: str = ""
    app_id: str = "kpistream"
    partitions: int = 4
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    data_dir: str = ".kpistream"
    store: str = "memory://"
    max_message_bytes: int = 65536
    flush_interval_s: float = 1.0
    share_interval_s: float = 10.0  # operators whose only change is their fund share: at most this often
    # Faust's own per-message Prometheus sensors (faust_* metrics): off by default, they cost work on
    # every message and caused latency spikes (docs/outputs.md).
    faust_sensors: bool = False
    batch_size: int = 2000  # at most this many queued messages are handled as one batch
    batch_linger_s: float = 0.1  # a batch not yet full waits this long for more (see agents/batching.py)
    rebalance_timeout_s: float = 3.0
    # How long the group waits for a silent (crashed) worker before moving its partitions: most of
    # the failover time (docs/benchmarks.md, "Failover": 30 s gave ~34 s, 10 s ~14 s, 6 s ~9-10 s
    # idle). 6 s is the broker's usual minimum (group.min.session.timeout.ms) and what every test
    # runs with. The heartbeats go from Faust's consumer thread, not the worker's event loop, so a
    # stall of the loop does not expire the session (kpistream_event_loop_stall_max_seconds: the
    # longest measured, far below 6 s); a process paused or starved for 6 s does. Raise it on
    # networks or hosts that pause longer (Kafka's Java client defaults to 45 s).
    session_timeout_s: float = 6.0
    topic_prefix: str = ""
    # Copies of every topic and table changelog kpistream creates (1 fits the one-broker dev setup;
    # 3 on a production cluster). Existing topics are never altered.
    replication_factor: int = 1
    # The topics' `min.insync.replicas`; 0 leaves the broker's default. With 3 replicas use 2: a
    # write is acknowledged by two brokers, so one broker can stop without losing or refusing data.
    min_insync_replicas: int = 0
    # Warm copies of each table partition on other workers (Faust standbys): a worker that takes
    # over a partition after a crash starts from its copy instead of reading the whole changelog.
    table_standby_replicas: int = 0
    fund_amount: str = ""
    kpi: KpiConfig = field(default_factory=KpiConfig)

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
        if self.table_standby_replicas and self.store.startswith("rocksdb"):
            # Faust's RocksDB standbys lost counts at failover in 4 of 6 measured kills.
            raise ConfigError(
                "table_standby_replicas",
                "not with rocksdb:// (lost counts at failover, docs/benchmarks.md 'Failover'); "
                "use 0 or the memory store",
            )
        if self.kpi.tz != self.tz:
            object.__setattr__(self, "kpi", replace(self.kpi, tz=self.tz))

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

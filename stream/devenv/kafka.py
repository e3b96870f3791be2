"""A real Apache Kafka broker (KRaft, single node) for tests and the embedded default.

The broker jars come from Maven Central through `kafka-pom.xml` (Kafka 3.9.1 + reload4j) and are
cached in `$KPISTREAM_CACHE` or `<repo>/.cache/kafka`, so only the first start needs Maven and
the network. Needs Java 17+. The broker binds 127.0.0.1 only, on free ports, with
`auto.create.topics.enable=false` (every topic is created explicitly, see `topics.py`).
Data lives in `data_dir/data`: stopping or killing and starting again keeps it.

With `security=BrokerSecurity(pki, users)` the client listener is SASL_SSL (the certificate of
`stream.devenv.tls`, users with SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN, the SCRAM ones written by
`kafka-storage format --add-scram`), as on a managed cluster; the broker talks to itself on a
separate PLAINTEXT listener. `client_env(user)` gives the KPISTREAM_* settings of a client.

    with KafkaBroker(tmp_path) as kafka:
        create_topics_sync(kafka.bootstrap, {"calls": (4, {})})

Scripts: `python -m stream.devenv.kafka start|stop|status --data-dir DIR [--sasl-ssl]`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import os
import re
import secrets
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from stream.config import Settings, load_settings
from stream.devenv.process import BrokerProcess, free_port, log_tail, pid_alive, stop_pid
from stream.devenv.tls import Pki
from stream.errors import ServiceError
from stream.topic_admin import metadata_ready_sync

KAFKA_VERSION = "3.9.1"
POM_PATH = Path(__file__).with_name("kafka-pom.xml")
MIN_JAVA = 17

_LOG4J = """\
log4j.rootLogger=WARN, stdout
log4j.logger.kafka.server.BrokerServer=INFO
log4j.logger.kafka.server.ControllerServer=INFO
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
"""


def cache_dir() -> Path:
    """Where the broker jars are cached: `$KPISTREAM_CACHE`, else `<repo>/.cache/kafka`.

    Outside a source checkout (an installed wheel) it falls back to `~/.cache/kpistream/kafka`.
    """
    env = os.environ.get("KPISTREAM_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").is_file() and os.access(repo, os.W_OK):
        return repo / ".cache" / "kafka"
    return Path.home() / ".cache" / "kpistream" / "kafka"


def java_major(java: str = "java") -> int | None:
    """Major version reported by `java -version` (8 for 1.8), or None without a usable Java."""
    exe = shutil.which(java)
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if m is None:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


def libs_dir() -> Path:
    return cache_dir() / "libs"


def libs_ready() -> bool:
    """True when the jars were fetched completely before (no Maven needed)."""
    return (libs_dir() / ".complete").is_file()


def kafka_available() -> bool:
    """True when this machine can run the Apache Kafka broker: Java 17+ and jars or Maven."""
    major = java_major()
    return major is not None and major >= MIN_JAVA and (libs_ready() or shutil.which("mvn") is not None)


def ensure_libs() -> Path:
    """Fetch the Kafka jars into the cache once (Maven, ~10 s), safely across processes."""
    target = libs_dir()
    if libs_ready():
        return target
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / ".lock"):
        if libs_ready():
            return target
        mvn = shutil.which("mvn")
        if mvn is None:
            raise ServiceError(
                f"Apache Kafka jars are not cached in {target} and Maven (mvn) is not installed; "
                "install maven, or use the Tansu broker (kpistream dev up --broker tansu)"
            )
        tmp = root / f"libs.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        cmd = [
            mvn, "-q", "-B", "-f", str(POM_PATH), "dependency:copy-dependencies",
            f"-DoutputDirectory={tmp}", "-DincludeScope=runtime",
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=900)
        if proc.returncode != 0 or not any(tmp.glob(f"kafka_2.13-{KAFKA_VERSION}.jar")):
            shutil.rmtree(tmp, ignore_errors=True)
            out = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
            raise ServiceError(f"cannot fetch Kafka jars with Maven (exit {proc.returncode}):\n{out}")
        (tmp / ".complete").write_text(KAFKA_VERSION + "\n")
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    return target


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _new_cluster_id() -> str:
    """A Kafka cluster id: a random UUID in URL-safe base64, never starting with '-'."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


# The SASL mechanisms of a secured broker; SCRAM users are stored in the cluster metadata.
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
_USER_OR_PASSWORD = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class BrokerSecurity:
    """A SASL_SSL client listener: the server certificate of `pki` and `users` (name -> password)."""

    pki: Pki
    users: Mapping[str, str]

    def __post_init__(self) -> None:
        if not self.users:
            raise ServiceError("a secured broker needs at least one user")
        for name, password in self.users.items():
            if not (_USER_OR_PASSWORD.match(name) and _USER_OR_PASSWORD.match(password)):
                # They go into a JAAS line and a --add-scram argument unquoted.
                raise ServiceError("test users and passwords: letters, digits, '_', '.', '-' only")


class KafkaBroker(BrokerProcess):
    """One Apache Kafka process in KRaft combined mode (broker + controller), loopback only.

    Alone by default; a node of a cluster (`kafka_cluster.KafkaCluster`) with `node_id`,
    `quorum_voters`, the shared `cluster_id` and the cluster's `replication` for internal topics.
    """

    name = "kafka"

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        port: int | None = None,
        controller_port: int | None = None,
        heap: str = "512m",
        *,
        node_id: int = 1,
        quorum_voters: str | None = None,
        cluster_id: str | None = None,
        replication: int = 1,
        security: BrokerSecurity | None = None,
    ) -> None:
        super().__init__(data_dir, port)
        self.security = security
        self.internal_port = 0  # the broker's own PLAINTEXT listener when the client one is secured
        self.controller_port: int = controller_port or 0
        self.heap = heap
        self.node_id = node_id
        self.quorum_voters = quorum_voters
        self.cluster_id = cluster_id
        self.replication = replication

    @property
    def properties_path(self) -> Path:
        return self.data_dir / "server.properties"

    def _prepare(self) -> None:
        libs = ensure_libs()
        java = shutil.which("java")
        major = java_major()
        if java is None or major is None or major < MIN_JAVA:
            raise ServiceError(f"Apache Kafka needs Java {MIN_JAVA}+ on PATH (found {major or 'none'})")
        if not self.controller_port:
            self.controller_port = free_port(self.host)
            while self.controller_port == self.port:
                self.controller_port = free_port(self.host)
        if self.security is not None and not self.internal_port:
            self.internal_port = free_port(self.host)
            while self.internal_port in (self.port, self.controller_port):
                self.internal_port = free_port(self.host)
        log_dir = self.data_dir / "data"
        (self.data_dir / "log4j.properties").write_text(_LOG4J)
        self.properties_path.write_text(self._properties(log_dir))
        if (log_dir / "meta.properties").is_file():
            return  # formatted before: keep the data
        id_file = self.data_dir / "cluster.id"
        if not id_file.is_file():
            id_file.write_text(self.cluster_id or _new_cluster_id())
        cmd = [
            java, *self._jvm_opts(), "-cp", f"{libs}/*", "kafka.tools.StorageTool", "format",
            "-t", id_file.read_text().strip(), "-c", str(self.properties_path), "--ignore-formatted",
            *self._scram_args(),
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False, timeout=120)
        if proc.returncode != 0:
            raise ServiceError(f"kafka storage format failed (exit {proc.returncode}):\n{self.tail()}")

    def _scram_args(self) -> list[str]:
        """`--add-scram` for every user and SCRAM mechanism (KRaft keeps them in its metadata log)."""
        if self.security is None:
            return []
        return [
            arg
            for name, password in self.security.users.items()
            for mech in SCRAM_MECHANISMS
            for arg in ("--add-scram", f"{mech}=[name={name},password={password}]")
        ]

    def _jvm_opts(self) -> list[str]:
        return [
            "-Xms128m",
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{self.data_dir / 'log4j.properties'}",
        ]

    def _properties(self, log_dir: Path) -> str:
        h, p, c = self.host, self.port, self.controller_port
        rf = self.replication
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.quorum_voters or f"{self.node_id}@{h}:{c}",
            "listeners": f"PLAINTEXT://{h}:{p},CONTROLLER://{h}:{c}",
            "advertised.listeners": f"PLAINTEXT://{h}:{p}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(log_dir),
            "num.partitions": "1",
            "default.replication.factor": str(rf),
            # kpistream's topics state their own min.insync.replicas (KPISTREAM_MIN_INSYNC_REPLICAS).
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": str(rf),
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": str(rf),
            "transaction.state.log.min.isr": str(min(rf, 2)),
            "transaction.state.log.num.partitions": "10",
            "group.initial.rebalance.delay.ms": "0",
            # short broker session: after a crash the restarted broker must wait out the old one
            "broker.heartbeat.interval.ms": "500",
            "broker.session.timeout.ms": "3000",
            "auto.create.topics.enable": "false",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "log.retention.hours": "168",
        }
        if self.security is not None:
            props.update(self._secured_properties())
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def _secured_properties(self) -> dict[str, str]:
        """Clients on SASL_SSL at `port`; the broker itself on PLAINTEXT at `internal_port`."""
        assert self.security is not None
        h, p, i, c = self.host, self.port, self.internal_port, self.controller_port
        plain_users = " ".join(f'user_{n}="{pw}"' for n, pw in self.security.users.items())
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        return {
            "listeners": f"SASL_SSL://{h}:{p},INTERNAL://{h}:{i},CONTROLLER://{h}:{c}",
            "advertised.listeners": f"SASL_SSL://{h}:{p},INTERNAL://{h}:{i}",
            "inter.broker.listener.name": "INTERNAL",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,SASL_SSL:SASL_SSL",
            "sasl.enabled.mechanisms": ",".join(("PLAIN", *SCRAM_MECHANISMS)),
            "listener.name.sasl_ssl.plain.sasl.jaas.config": (
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};"
            ),
            "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": scram,
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram,
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.security.pki.server_keystore),
            "ssl.client.auth": "none",
        }

    def client_env(
        self, user: str | None = None, password: str | None = None, mechanism: str = "SCRAM-SHA-512"
    ) -> dict[str, str]:
        """The KPISTREAM_* settings of a client of this broker (as `user`, the first one by default)."""
        env = {"KPISTREAM_BROKER": self.url}
        if self.security is None:
            return env
        name = user or next(iter(self.security.users))
        env.update(
            KPISTREAM_KAFKA_SECURITY_PROTOCOL="SASL_SSL",
            KPISTREAM_KAFKA_SASL_MECHANISM=mechanism,
            KPISTREAM_KAFKA_SASL_USERNAME=name,
            KPISTREAM_KAFKA_SASL_PASSWORD=password if password is not None else self.security.users[name],
            KPISTREAM_KAFKA_SSL_CAFILE=str(self.security.pki.ca_cert),
        )
        return env

    def client_settings(self, user: str | None = None) -> Settings:
        """Settings (broker and Kafka security only) of a client of this broker."""
        return load_settings(env=self.client_env(user))

    def _command(self) -> Sequence[str]:
        java = shutil.which("java") or "java"
        return [java, *self._jvm_opts(), "-cp", f"{libs_dir()}/*", "kafka.Kafka", str(self.properties_path)]

    def _probe(self) -> bool:
        # Through the client listener, TLS and login included: ready means ready for clients.
        target = self.client_settings() if self.security is not None else self.bootstrap
        return metadata_ready_sync(target, timeout=5.0)


# -- python -m stream.devenv.kafka start|stop|status ------------------------------------------------
def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stream.devenv.kafka", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--data-dir", default=".kpistream/kafka", help="broker data and log directory")
    parser.add_argument("--port", type=int, default=None, help="PLAINTEXT port (default: a free one)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for readiness")
    parser.add_argument(
        "--sasl-ssl",
        action="store_true",
        help="a SASL_SSL client listener with a test CA (DATA_DIR/pki) and the user 'kpistream' with a "
        "random password; the client settings are written to DATA_DIR/client.env",
    )
    args = parser.parse_args(argv)
    data_dir = Path(args.data_dir).resolve()
    pid_file, url_file = data_dir / "kafka.pid", data_dir / "kafka.url"
    pid = int(pid_file.read_text()) if pid_file.is_file() else None
    running = pid is not None and pid_alive(pid)
    if args.action == "start":
        if running:
            print(url_file.read_text().strip())
            return 0
        try:
            broker = KafkaBroker(data_dir, port=args.port, security=_dev_security(data_dir, args.sasl_ssl))
            broker.start(args.timeout)
        except ServiceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        pid_file.write_text(str(broker.pid))
        url_file.write_text(broker.url)
        print(broker.url)
        if broker.security is not None:
            env_file = data_dir / "client.env"
            env_file.touch(mode=0o600)
            env_file.write_text("".join(f"{k}={v}\n" for k, v in broker.client_env().items()))
            print(f"client settings (with the password): {env_file}")
        return 0
    if args.action == "stop":
        if running and pid is not None:
            stop_pid(pid)
        pid_file.unlink(missing_ok=True)
        return 0
    if running:
        print(f"running pid {pid} {url_file.read_text().strip()}")
        return 0
    print("not running")
    tail = log_tail(data_dir / "kafka.log", 5) if (data_dir / "kafka.log").exists() else ""
    if tail:
        print(tail)
    return 3


def _dev_security(data_dir: Path, secured: bool) -> BrokerSecurity | None:
    """The test CA and user of `start --sasl-ssl`, made once and kept in `data_dir`."""
    if not secured:
        return None
    from stream.devenv.tls import make_pki

    pki_dir, password_file = data_dir / "pki", data_dir / "pki" / "kpistream.password"
    if password_file.is_file():
        pki = Pki(
            pki_dir / "ca.pem", pki_dir / "ca-key.pem", pki_dir / "server.pem", pki_dir / "server-key.pem"
        )
    else:
        pki = make_pki(pki_dir)
        password_file.touch(mode=0o600)
        password_file.write_text(secrets.token_urlsafe(18))
    return BrokerSecurity(pki, {"kpistream": password_file.read_text().strip()})


if __name__ == "__main__":
    sys.exit(_main())

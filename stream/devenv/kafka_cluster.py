"""A cluster of Apache Kafka brokers on loopback (KRaft, every node a broker and a controller).

Combined nodes keep the dev cluster at N processes: with 3 nodes the controller quorum and the
data both survive one stopped node (a quorum of 2 of 3 voters; topics with 3 replicas and
`min.insync.replicas=2`). Production separates controllers; a test of broker failure does not
need that. The nodes share one cluster id and the voter list, and start together: no node is
ready until a quorum of controllers is up. Each node keeps its data in `data_dir/node-N`.

    with KafkaCluster(tmp_path, brokers=3) as cluster:
        cluster.nodes[0].kill()      # a broker crash; cluster.nodes[0].start() brings it back
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Self

from stream.devenv.kafka import KafkaBroker, _new_cluster_id
from stream.devenv.process import LOOPBACK, StartStopContext, free_port
from stream.errors import ServiceError
from stream.topic_admin import run_sync


def _free_ports(n: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        port = free_port(LOOPBACK)
        if port not in ports:
            ports.append(port)
    return ports


class KafkaCluster(StartStopContext):
    """`brokers` Apache Kafka nodes in KRaft combined mode; start, stop, and the client URL."""

    def __init__(self, data_dir: str | os.PathLike[str], brokers: int = 3, heap: str = "384m") -> None:
        if brokers < 1:
            raise ServiceError("a cluster needs at least 1 broker")
        self.data_dir = Path(data_dir).resolve()
        id_file = self.data_dir / "cluster.id"
        if id_file.is_file():  # restarted: the same ports and cluster as before
            cluster_id = id_file.read_text().strip()
            ports = [int(x) for x in (self.data_dir / "ports").read_text().split()]
        else:
            cluster_id = _new_cluster_id()
            ports = _free_ports(2 * brokers)
        self.cluster_id = cluster_id
        voters = ",".join(f"{i + 1}@{LOOPBACK}:{ports[brokers + i]}" for i in range(brokers))
        self.nodes = [
            KafkaBroker(
                self.data_dir / f"node-{i + 1}",
                port=ports[i],
                controller_port=ports[brokers + i],
                heap=heap,
                node_id=i + 1,
                quorum_voters=voters,
                cluster_id=cluster_id,
                replication=min(brokers, 3),
            )
            for i in range(brokers)
        ]
        self._ports = ports

    @property
    def bootstrap(self) -> str:
        """Every node, for aiokafka's bootstrap_servers: clients find the cluster through any of them."""
        return ",".join(n.bootstrap for n in self.nodes)

    @property
    def url(self) -> str:
        """The KPISTREAM_BROKER form (`kafka://h:p1;h:p2;h:p3`)."""
        return "kafka://" + ";".join(n.bootstrap for n in self.nodes)

    @property
    def pids(self) -> list[int | None]:
        return [n.pid for n in self.nodes]

    def start(self, timeout: float = 180.0) -> Self:
        """Start every node that is not running and wait until all are brokers of the cluster."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "cluster.id").write_text(self.cluster_id)
        (self.data_dir / "ports").write_text(" ".join(map(str, self._ports)))
        deadline = time.monotonic() + timeout
        try:
            for node in self.nodes:
                node.spawn()
            for node in self.nodes:
                node.wait_ready(max(1.0, deadline - time.monotonic()))
            self.wait_brokers(len(self.nodes), max(1.0, deadline - time.monotonic()))
        except ServiceError:
            self.stop()
            raise
        return self

    def wait_brokers(self, n: int, timeout: float = 60.0) -> None:
        """Block until the cluster's metadata lists `n` live brokers (a restarted node rejoined)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.live_brokers() >= n:
                return
            time.sleep(0.3)
        raise ServiceError(f"kafka cluster: fewer than {n} brokers registered after {timeout:.0f}s")

    def live_brokers(self) -> int:
        """How many brokers the cluster's metadata lists now (0 when no node answers)."""
        from stream import kafka_clients

        async def count() -> int:
            client = kafka_clients.client(self.bootstrap, request_timeout_ms=5000)
            try:
                await client.bootstrap()
                return len(client.cluster.brokers())
            finally:
                await client.close()

        try:
            return run_sync(count())
        except Exception:
            return 0

    def stop(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL); safe to call twice."""
        for node in self.nodes:
            node.stop()

    def __repr__(self) -> str:
        return f"KafkaCluster(url={self.url!r}, pids={self.pids}, data_dir={str(self.data_dir)!r})"

"""A Redis Cluster on loopback for the tests: three masters (and replicas if asked)
from the same redis-server binary as the embedded Redis. Test harness, not product:
`dnc serve` never starts a Cluster."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import redis

from registry.embedded import EmbeddedRedisError, RedisProcess, free_port

CLUSTER_SLOTS = 16384
_SLOTS_PER_COMMAND = 2048
# Redis 6.2 talks cluster bus on the client port + 10000; both must be free.
_CLUSTER_BUS_OFFSET = 10000


def free_cluster_port() -> int:
    """A free loopback port whose cluster bus port (+10000) is free too."""
    while True:
        port = free_port()
        if port + _CLUSTER_BUS_OFFSET > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + _CLUSTER_BUS_OFFSET))
            except OSError:
                continue
        return port


class EmbeddedCluster:
    """A Redis Cluster of `masters` redis-server processes on loopback; a context manager.

    The same binary as the embedded Redis, for the tests and benchmarks that must
    prove every command stays on one slot. Slots are split evenly, the nodes meet,
    and `start` returns once every node says `cluster_state:ok`. No replicas unless
    asked for: a killed node then takes its slots down with it, which is what
    fail-closed tests want. With `replicas`, each master gets that many, and the
    Cluster fails over to one when its master stops answering for `node_timeout_ms`.
    """

    def __init__(
        self,
        data_dir: Path,
        masters: int = 3,
        *,
        replicas: int = 0,
        durable: bool = False,
        node_timeout_ms: int = 5000,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.masters = masters
        self.replicas = replicas  # of each master
        self.durable = durable
        self.node_timeout_ms = node_timeout_ms  # how long until the others call a node failed
        self.nodes: list[RedisProcess] = []
        self.url = ""
        self.password: str | None = None

    def start(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        try:
            for i in range(self.masters * (1 + self.replicas)):
                directory = self.data_dir / f"node{i}"
                node = RedisProcess(
                    directory,
                    durable=self.durable,
                    tcp=True,
                    choose_port=free_cluster_port,
                    extra=[
                        "--cluster-enabled", "yes",
                        "--cluster-config-file", str(directory / "nodes.conf"),
                        "--cluster-node-timeout", str(self.node_timeout_ms),
                    ],
                )  # fmt: skip
                self.nodes.append(node)
                node.start(max(deadline - time.monotonic(), 1.0))
            self._form()
            self._wait_ok(deadline)
        except BaseException:
            self.kill()
            raise
        self.url = "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)
        return self.url

    def clients(self) -> list[redis.Redis]:
        """One plain client per node (close them), for what a cluster client cannot do."""
        return [
            redis.Redis(host="127.0.0.1", port=node.port, password=self.password)
            for node in self.nodes
        ]

    def protect(self, password: str) -> str:
        """Every node asks for `password` from now on (replicas give it to their masters);
        returns the URL with it."""
        clients = self.clients()
        try:
            for client in clients:
                client.config_set("masterauth", password)
                client.config_set("requirepass", password)
        finally:
            for client in clients:
                client.close()
        self.password = password
        self.url = self.url.replace("redis+cluster://", f"redis+cluster://:{password}@")
        return self.url

    def _form(self) -> None:
        clients = self.clients()
        try:
            for i, client in enumerate(clients[: self.masters]):
                low = i * CLUSTER_SLOTS // self.masters
                high = (i + 1) * CLUSTER_SLOTS // self.masters
                for start in range(low, high, _SLOTS_PER_COMMAND):
                    slots = range(start, min(start + _SLOTS_PER_COMMAND, high))
                    client.execute_command("CLUSTER ADDSLOTS", *slots)
                # Distinct epochs up front, as redis-cli --cluster create does: no collisions.
                client.execute_command("CLUSTER SET-CONFIG-EPOCH", i + 1)
            for i, client in enumerate(clients[self.masters :], start=self.masters):
                client.execute_command("CLUSTER SET-CONFIG-EPOCH", i + 1)
            for node in self.nodes[1:]:
                clients[0].execute_command("CLUSTER MEET", "127.0.0.1", node.port)
            # Replica k of master m is node masters + m * replicas + k.
            for i, client in enumerate(clients[self.masters :]):
                master = clients[i // self.replicas].execute_command("CLUSTER MYID")
                self._replicate(client, master.decode() if isinstance(master, bytes) else master)
        finally:
            for client in clients:
                client.close()

    def _replicate(self, client: redis.Redis, master: str, timeout: float = 10.0) -> None:
        """CLUSTER REPLICATE, once the node has heard of its master through the MEETs."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.execute_command("CLUSTER REPLICATE", master)
                return
            except redis.ResponseError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _wait_ok(self, deadline: float) -> None:
        clients = self.clients()
        try:
            while True:
                infos = [client.cluster("INFO") for client in clients]
                links = [c.info("replication") for c in clients[self.masters :]]
                if all(
                    info["cluster_state"] == "ok"
                    and int(info["cluster_known_nodes"]) == len(self.nodes)
                    and int(info["cluster_slots_assigned"]) == CLUSTER_SLOTS
                    for info in infos
                ) and all(link.get("master_link_status") == "up" for link in links):
                    return
                if time.monotonic() > deadline:
                    raise EmbeddedRedisError(f"the Redis Cluster did not form: {infos}")
                time.sleep(0.05)
        finally:
            for client in clients:
                client.close()

    def flush(self) -> None:
        """Empty every master (their replicas follow), as the tests do between tests."""
        clients = self.clients()
        try:
            for client in clients:
                if client.info("replication")["role"] == "master":
                    client.flushall()
        finally:
            for client in clients:
                client.close()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def kill(self) -> None:
        for node in self.nodes:
            node.kill()

    def __enter__(self) -> EmbeddedCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

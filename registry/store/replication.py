"""Writes acknowledged only once replicas hold them: DNC_WAIT_REPLICAS.

Redis replication is asynchronous: a replica promoted after its master died may
lack the master's last writes, and a registration acknowledged among them would
be lost. With DNC_WAIT_REPLICAS=N a request that may have written is answered
only once N replicas hold every write the master had applied when it finished
(the API's `Replicated` middleware, registry/api/app.py), and `dnc load` reports
a load only once they hold all of it.

A master has one replication stream and a replica acknowledges an offset in it,
so one barrier after the writes covers all of them, whichever connection made
them: a write that moves the stream's offset (a PUBLISH on one node; on a
Cluster, whose PUBLISH travels the cluster bus instead, a counter on the node
that a script sends to the replicas only) and then, on the same connection,
WAIT, which waits for that offset. Neither is written to the append-only file,
so a barrier costs no fsync. A Cluster has a stream per master: every master
gets its barrier, at once. Fewer replicas within DNC_WAIT_REPLICAS_MS raise
NotReplicated: the writes stay on the master, unacknowledged, and the client
retries as after any 503.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster
from redis.exceptions import RedisError

from registry.store.connect import ANSWER_TIMEOUT, node_client

# A channel nobody subscribes to: publishing on it only moves the replication offset.
BARRIER_CHANNEL = "dnc:{dnc}:replication-barrier"
# KEYS: a counter on the node. Sent to the replicas, never to the append-only file.
BARRIER_SCRIPT = """
redis.set_repl(redis.REPL_SLAVE)
return redis.call('INCR', KEYS[1])
"""


class NotReplicated(RedisError):
    """Fewer replicas than DNC_WAIT_REPLICAS acknowledged the writes in time."""

    def __init__(self, acknowledged: int, wanted: int, timeout_ms: int) -> None:
        super().__init__(
            f"{acknowledged} of the {wanted} replica(s) DNC_WAIT_REPLICAS asks for "
            f"acknowledged the write within {timeout_ms} ms"
        )


def _barrier_key(cluster: Any, node_name: str) -> str:
    """A counter key in a slot that `node_name` serves."""
    for tag in range(100_000):
        key = f"dnc:barrier:{{{tag}}}"
        node = cluster.get_node_from_key(key)
        if node is not None and node.name == node_name:
            return key
    raise RedisError(f"no slot of Cluster node {node_name} found for a replication barrier")


def _check(acknowledged: int, replicas: int, timeout_ms: int) -> None:
    if acknowledged < replicas:
        raise NotReplicated(acknowledged, replicas, timeout_ms)


class Replication:
    """The barrier of one API worker: `wait()` after a request's writes."""

    def __init__(self, client: Any, replicas: int, timeout_ms: int) -> None:
        self.client = client
        self.replicas = replicas
        self.timeout_ms = timeout_ms
        # A Cluster's masters, each reached by a plain connection of its own.
        self._nodes: dict[str, tuple[aioredis.Redis, str]] = {}

    async def wait(self) -> None:
        """Return once enough replicas hold every write applied so far; else raise."""
        try:
            async with asyncio.timeout(self.timeout_ms / 1000 + ANSWER_TIMEOUT):
                if isinstance(self.client, AsyncRedisCluster):
                    await self._cluster()
                else:
                    await self._barrier(self.client, None)
        except TimeoutError:
            raise NotReplicated(0, self.replicas, self.timeout_ms) from None

    async def _barrier(self, client: Any, key: str | None) -> None:
        pipe = client.pipeline(transaction=False)
        if key is None:
            pipe.publish(BARRIER_CHANNEL, b"")
        else:
            pipe.eval(BARRIER_SCRIPT, 1, key)
        pipe.execute_command("WAIT", self.replicas, self.timeout_ms)
        _, acknowledged = await pipe.execute()
        _check(acknowledged, self.replicas, self.timeout_ms)

    async def _cluster(self) -> None:
        await self.client.initialize()
        primaries = self.client.get_primaries()
        try:
            await asyncio.gather(*(self._barrier(*self._node(n)) for n in primaries))
        except RedisError:
            await self.aclose()  # slots may have moved: found again next time
            raise

    def _node(self, node: Any) -> tuple[aioredis.Redis, str]:
        found = self._nodes.get(node.name)
        if found is None:
            client = node_client(node, socket_timeout=self.timeout_ms / 1000 + ANSWER_TIMEOUT)
            found = self._nodes[node.name] = (client, _barrier_key(self.client, node.name))
        return found

    async def aclose(self) -> None:
        nodes, self._nodes = self._nodes, {}
        for client, _ in nodes.values():
            await client.aclose()


def replicated_sync(client: Any, replicas: int, timeout_ms: int) -> None:
    """Replication.wait for a synchronous client (the CLI's), on one node or a Cluster."""
    if not isinstance(client, RedisCluster):
        pipe = client.pipeline(transaction=False)
        pipe.publish(BARRIER_CHANNEL, b"")
        pipe.execute_command("WAIT", replicas, timeout_ms)
        _check(pipe.execute()[1], replicas, timeout_ms)
        return
    for node in client.get_primaries():
        # The Cluster client's own client of the node: its credentials and TLS.
        pipe = client.get_redis_connection(node).pipeline(transaction=False)
        pipe.eval(BARRIER_SCRIPT, 1, _barrier_key(client, node.name))
        pipe.execute_command("WAIT", replicas, timeout_ms)
        _check(pipe.execute()[1], replicas, timeout_ms)

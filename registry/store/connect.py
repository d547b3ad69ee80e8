"""Redis clients from DNC_REDIS_URL: single node, TLS, unix socket or Cluster."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import TimeoutError as RedisTimeoutError

CLUSTER_SCHEME = "redis+cluster://"
# Bounded waits: a dead Redis must turn into a 503 quickly, not a hung request.
CONNECT_TIMEOUT = 2.0
REPLY_TIMEOUT = 30.0  # bulk replies (a scrub's confirmations, a bucket's DUMP) take a while
# A look-up's round or a readiness PING that Redis leaves unanswered this long (a hung or
# stopped server, which still accepts connections) is a 503 then, not after REPLY_TIMEOUT.
ANSWER_TIMEOUT = 2.0
# A worker's connections to one Redis node. Past this, requests queue for a free
# connection (up to POOL_WAIT seconds) instead of failing: a burst is not an outage.
POOL_SIZE = 64
POOL_WAIT = 10.0
# redis-py's async Cluster client cannot queue for a connection: past its cap a command
# fails at once (MaxConnectionsError, a 503). So its cap is Redis' own default maxclients,
# and a burst opens what it needs.
CLUSTER_POOL_SIZE = 10_000
# redis-py retries a command that meets a down node or CLUSTERDOWN ten times with growing
# pauses: seconds before a look-up's 503, and no failover completes that fast anyway
# (cluster-node-timeout is 15 s by default). Two retries still ride out a moved slot.
CLUSTER_RETRIES = 2


class RedisURLError(ValueError):
    """DNC_REDIS_URL is not a URL the registry can connect to."""


def _cluster_nodes(url: str) -> list[tuple[str, int]]:
    nodes = []
    for part in url[len(CLUSTER_SCHEME) :].split("/")[0].split(","):
        host, _, port = part.rpartition(":")
        if not host or not port.isdigit():
            raise RedisURLError(f"cluster node {part!r} in DNC_REDIS_URL is not host:port")
        nodes.append((host.strip("[]"), int(port)))
    return nodes


def _check(url: str) -> None:
    scheme = urlsplit(url).scheme
    if scheme not in ("redis", "rediss", "unix"):
        raise RedisURLError(
            f"DNC_REDIS_URL scheme {scheme!r} is not redis, rediss, unix or redis+cluster"
        )


def sync_client(url: str) -> redis.Redis | RedisCluster:
    if url.startswith(CLUSTER_SCHEME):
        nodes = [ClusterNode(h, p) for h, p in _cluster_nodes(url)]
        return RedisCluster(
            startup_nodes=nodes,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=REPLY_TIMEOUT,
        )  # type: ignore[abstract]
    _check(url)
    return redis.Redis.from_url(
        url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=REPLY_TIMEOUT
    )


def async_client(url: str) -> aioredis.Redis | AsyncRedisCluster:
    if url.startswith(CLUSTER_SCHEME):
        nodes = [AsyncClusterNode(h, p) for h, p in _cluster_nodes(url)]
        return AsyncRedisCluster(
            startup_nodes=nodes,
            max_connections=CLUSTER_POOL_SIZE,
            retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), CLUSTER_RETRIES),
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=REPLY_TIMEOUT,
        )
    _check(url)
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=POOL_SIZE,
        timeout=POOL_WAIT,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=REPLY_TIMEOUT,
    )
    return aioredis.Redis.from_pool(pool)  # the client owns the pool and closes it


@contextlib.asynccontextmanager
async def answered(what: str) -> AsyncIterator[None]:
    """Small commands (a key check, a rate limit, one number) inside: unanswered for
    ANSWER_TIMEOUT, they raise redis-py's TimeoutError, a 503, not after REPLY_TIMEOUT."""
    try:
        async with asyncio.timeout(ANSWER_TIMEOUT):
            yield
    except TimeoutError:
        raise RedisTimeoutError(f"Redis did not answer {what} in {ANSWER_TIMEOUT:g} s") from None


async def ping(client: aioredis.Redis | AsyncRedisCluster) -> None:
    """PING every primary. redis-py sends a Cluster's PING to one node, yet a Cluster
    missing any master cannot answer for that master's slots: it is not ready."""
    async with answered("a PING"):
        if isinstance(client, AsyncRedisCluster):
            await client.ping(target_nodes=AsyncRedisCluster.PRIMARIES)
        else:
            await client.ping()

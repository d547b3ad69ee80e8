"""Redis clients from DNC_REDIS_URL: single node, TLS, unix socket, Sentinel or Cluster."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio as aioredis
import redis.utils
from redis.asyncio.client import Pipeline as AsyncPipeline
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import ClusterPipeline as AsyncClusterPipeline
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import MasterNotFoundError as AsyncMasterNotFoundError
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry as SyncRetry
from redis.sentinel import MasterNotFoundError, Sentinel

# redis+cluster://[[user]:password@]host:port[,host:port...]: the nodes to start from;
# rediss+cluster:// over TLS. The credentials hold for every node.
# redis-py looks its own version up in the installed packages' metadata for every
# connection it opens (about 2 ms of CPU, on the event loop as a pool grows): once will do.
redis.utils.get_lib_version = functools.cache(redis.utils.get_lib_version)


def _but_timeouts(errors: tuple[type[Exception], ...]) -> Any:
    return tuple(error for error in errors if error is not RedisTimeoutError)


# A Cluster node that leaves a command unanswered for its whole timeout (stopped, hung) is
# not asked again. redis-py retries a timeout as it retries a refused connection: each
# retry waits the full REPLY_TIMEOUT again, after a re-read of the slots, so one command to
# a stopped master took 90 s to fail in the API and `dnc export` seven minutes (an audit
# found both). A refused or broken connection, CLUSTERDOWN and an uncovered slot are still
# retried (a failover, a moved slot). Set on the classes: the pipelines read the lists
# from there, not from their client.
RedisCluster.ERRORS_ALLOW_RETRY = _but_timeouts(RedisCluster.ERRORS_ALLOW_RETRY)
AsyncRedisCluster.ERRORS_ALLOW_RETRY = _but_timeouts(AsyncRedisCluster.ERRORS_ALLOW_RETRY)
ClusterPipeline.ERRORS_ALLOW_RETRY = _but_timeouts(ClusterPipeline.ERRORS_ALLOW_RETRY)

CLUSTER_SCHEME = "redis+cluster://"
TLS_CLUSTER_SCHEME = "rediss+cluster://"
# redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db]: the master
# that these Sentinels name, followed through failovers.
SENTINEL_SCHEME = "redis+sentinel://"
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


def _nodes(hosts: str, what: str) -> list[tuple[str, int]]:
    nodes = []
    for part in hosts.split(","):
        host, _, port = part.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise RedisURLError(f"{what} {part!r} in DNC_REDIS_URL is not host:port")
        nodes.append((host.strip("[]"), int(port)))
    return nodes


def clustered(url: str) -> bool:
    return url.startswith((CLUSTER_SCHEME, TLS_CLUSTER_SCHEME))


def _cluster_parts(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """The start-up nodes and the connection options of a redis+cluster:// URL."""
    tls = url.startswith(TLS_CLUSTER_SCHEME)
    rest = url[len(TLS_CLUSTER_SCHEME if tls else CLUSTER_SCHEME) :]
    if "?" in rest or "#" in rest or rest.rstrip("/").count("/"):
        raise RedisURLError(
            "DNC_REDIS_URL: a redis+cluster URL takes no path or query (a Cluster has one "
            "database): redis+cluster://[[user]:password@]host:port[,host:port...]"
        )
    userinfo, at, hosts = rest.rstrip("/").rpartition("@")
    options: dict[str, Any] = {"ssl": True} if tls else {}
    if at:
        username, _, password = userinfo.partition(":")
        options["username"] = unquote(username) or None
        options["password"] = unquote(password) or None
    return _nodes(hosts, "cluster node"), options


def _sentinel_parts(url: str) -> tuple[list[tuple[str, int]], str, dict[str, Any]]:
    """The Sentinels, the service name and the master's connection options of a
    redis+sentinel:// URL."""
    if "?" in url or "#" in url:
        raise RedisURLError(
            "DNC_REDIS_URL: a redis+sentinel URL takes no query; the database goes in the "
            "path, redis+sentinel://host:26379/SERVICE/DB"
        )
    location, _, path = url[len(SENTINEL_SCHEME) :].partition("/")
    userinfo, at, hosts = location.rpartition("@")
    service, _, db = path.partition("/")
    if not service:
        raise RedisURLError(
            "DNC_REDIS_URL names no Sentinel service: redis+sentinel://host:26379/SERVICE[/db]"
        )
    if db and not db.isdigit():
        raise RedisURLError(f"database {db!r} in DNC_REDIS_URL is not a number")
    options: dict[str, Any] = {"db": int(db or 0)}
    if at:
        username, _, password = userinfo.partition(":")
        options["username"] = unquote(username) or None
        options["password"] = unquote(password) or None
    return _nodes(hosts, "Sentinel"), unquote(service), options


def _check(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise RedisURLError(
            f"DNC_REDIS_URL scheme {parts.scheme!r} is not redis, rediss, unix, redis+sentinel "
            "or redis+cluster (rediss+cluster)"
        )
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError as exc:
        raise RedisURLError(f"DNC_REDIS_URL: {exc}") from None
    database = parts.path.strip("/")
    if parts.scheme != "unix" and database and not database.isdigit():
        raise RedisURLError(f"database {database!r} in DNC_REDIS_URL is not a number")


def _named(sentinel: Any, service: str, exc: Exception) -> MasterNotFoundError:
    """redis-py's MasterNotFoundError names every Sentinel client's repr: one line instead."""
    addresses = ", ".join(
        f"{c.connection_pool.connection_kwargs.get('host')}:"
        f"{c.connection_pool.connection_kwargs.get('port')}"
        for c in sentinel.sentinels
    )
    if isinstance(exc, ResponseError):
        return MasterNotFoundError(f"{addresses} is not a Sentinel (it answered: {exc})")
    return MasterNotFoundError(f"no Sentinel at {addresses} names a master for {service!r}")


class _Sentinel(Sentinel):
    def discover_master(self, service_name: str) -> Any:
        try:
            return super().discover_master(service_name)
        except (MasterNotFoundError, ResponseError) as exc:
            raise _named(self, service_name, exc) from None


class _AsyncSentinel(AsyncSentinel):
    async def discover_master(self, service_name: str) -> Any:
        try:
            return await super().discover_master(service_name)
        except (AsyncMasterNotFoundError, ResponseError) as exc:
            raise _named(self, service_name, exc) from None


# Sentinels are asked for the master's address on every new connection; one that does not
# answer in this long is skipped for the next.
_SENTINEL_OPTIONS = {"socket_connect_timeout": CONNECT_TIMEOUT, "socket_timeout": ANSWER_TIMEOUT}


class _SentinelRedis(redis.Redis):
    """The master a Sentinel names; closing it closes the clients of the Sentinels too."""

    manager: Sentinel | None = None

    def close(self) -> None:
        super().close()
        for client in self.manager.sentinels if self.manager else ():
            client.close()


class _AsyncSentinelRedis(aioredis.Redis):
    """_SentinelRedis for asyncio."""

    manager: AsyncSentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        for client in self.manager.sentinels if self.manager else ():
            await client.aclose()


def _sentinel_client(url: str, manager: type, redis_class: type) -> Any:
    """The master that a redis+sentinel URL's Sentinels name, for either client kind."""
    sentinels, service, options = _sentinel_parts(url)
    sentinel = manager(sentinels, sentinel_kwargs=_SENTINEL_OPTIONS)
    client = sentinel.master_for(
        service,
        redis_class=redis_class,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=REPLY_TIMEOUT,
        **options,
    )
    client.manager = sentinel
    return client


def sync_client(url: str) -> redis.Redis | RedisCluster:
    if clustered(url):
        found, options = _cluster_parts(url)
        return RedisCluster(
            startup_nodes=[ClusterNode(h, p) for h, p in found],
            retry=SyncRetry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), CLUSTER_RETRIES),
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=REPLY_TIMEOUT,
            **options,
        )  # type: ignore[abstract]
    if url.startswith(SENTINEL_SCHEME):
        return _sentinel_client(url, _Sentinel, _SentinelRedis)  # type: ignore[no-any-return]
    _check(url)
    return redis.Redis.from_url(
        url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=REPLY_TIMEOUT
    )


# What redis-py's asyncio clients raise when a connection is torn down under a command
# (a node killed, stopped or restarted mid-request): uvloop's RuntimeError "the handler
# is closed", or an AttributeError on a writer already gone (redis-py#3546). They are a
# lost connection, raised as one so that they answer 503 as any other, not 500.
_TORN = (RuntimeError, AttributeError)


def _torn(exc: Exception) -> bool:
    """Whether `exc` is one of those, by its words: any other RuntimeError or
    AttributeError is a bug, and stays one (a 500 with its traceback)."""
    text = str(exc)
    if isinstance(exc, AttributeError):
        return text.startswith("'NoneType' object has no attribute")
    return "handler is closed" in text or "closed=True" in text


async def _guarded(command: Awaitable[Any]) -> Any:
    """`command`'s result; a torn connection's error raised as a lost connection."""
    try:
        return await command
    except _TORN as exc:
        if not _torn(exc):
            raise
        raise RedisConnectionError(f"a connection to Redis broke mid-command ({exc})") from exc


class _AsyncPipeline(AsyncPipeline):
    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        return await _guarded(super().execute(raise_on_error))


class _AsyncRedis(aioredis.Redis):
    async def execute_command(self, *args: Any, **options: Any) -> Any:
        return await _guarded(super().execute_command(*args, **options))

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Any:
        return _AsyncPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )


class _AsyncClusterPipeline(AsyncClusterPipeline):
    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> Any:
        return await _guarded(super().execute(raise_on_error, allow_redirections))


class _AsyncCluster(AsyncRedisCluster):
    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        return await _guarded(super().execute_command(*args, **kwargs))

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        super().pipeline(transaction, shard_hint)  # its checks of the arguments
        return _AsyncClusterPipeline(self, transaction)  # type: ignore[abstract]


def async_client(url: str) -> aioredis.Redis | AsyncRedisCluster:
    if clustered(url):
        found, options = _cluster_parts(url)
        return _AsyncCluster(
            startup_nodes=[AsyncClusterNode(h, p) for h, p in found],
            max_connections=CLUSTER_POOL_SIZE,
            retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), CLUSTER_RETRIES),
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=REPLY_TIMEOUT,
            **options,
        )
    if url.startswith(SENTINEL_SCHEME):
        return _sentinel_client(url, _AsyncSentinel, _AsyncSentinelRedis)  # type: ignore[no-any-return]
    _check(url)
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=POOL_SIZE,
        timeout=POOL_WAIT,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=REPLY_TIMEOUT,
    )
    return _AsyncRedis.from_pool(pool)  # the client owns the pool and closes it


def node_client(node: AsyncClusterNode, socket_timeout: float) -> aioredis.Redis:
    """A client of one Cluster node alone, with the Cluster URL's credentials and TLS, whose
    torn connections are lost connections (a 503) as the Cluster client's are."""
    options = node.connection_kwargs
    return _AsyncRedis(
        host=node.host,
        port=int(node.port),
        username=options.get("username"),
        password=options.get("password"),
        ssl=issubclass(node.connection_class, aioredis.SSLConnection),
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=socket_timeout,
    )


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

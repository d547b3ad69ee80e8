"""What the registry needs from Redis' own settings, applied when it connects."""

from __future__ import annotations

import logging
import secrets
from typing import Any

import redis
from redis.cluster import RedisCluster

from registry.store import keys

log = logging.getLogger("dnc.store")

# A bucket holds up to 2^16 numbers; an intset keeps them at 2 bytes each. Past
# set-max-intset-entries (default 512) Redis converts a set to a hash table at
# about 40 bytes a member, so the registry raises the limit to a bucket's size.
INTSET_ENTRIES = 65536


def _servers(client: Any) -> list[Any]:
    """Every server that holds buckets: the one Redis, or each node of a Cluster
    (redis-py would send a Cluster's CONFIG GET and CONFIG SET to one node only)."""
    if isinstance(client, RedisCluster):
        return [client.get_redis_connection(node) for node in client.get_nodes()]
    return [client]


# How a server says CONFIG is not for this client: renamed away or unknown on a managed
# service, refused by an ACL, or a setting protected there.
_FORBIDDEN_WORDS = ("command", "config", "perm", "denied", "not allowed", "protected")


def tune(client: Any) -> bool:
    """Raise set-max-intset-entries; False where CONFIG is forbidden (managed services)."""
    try:
        for server in _servers(client):
            try:
                current = server.config_get("set-max-intset-entries")
                values = current.values() if isinstance(current, dict) else [current]
                if not all(int(v) >= INTSET_ENTRIES for v in values if v is not None):
                    server.config_set("set-max-intset-entries", INTSET_ENTRIES)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                # Which one: a Cluster node that does not answer is one of several.
                kwargs = server.connection_pool.connection_kwargs
                where = kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
                if where == "None:None":  # a Sentinel's master: the message names the Sentinels
                    raise
                raise type(exc)(f"{where}: {exc}") from exc
        return True
    except redis.ResponseError as exc:
        text = str(exc).lower()
        if not any(word in text for word in _FORBIDDEN_WORDS):
            raise  # not a refusal of CONFIG (a database index out of range, say): say that
        log.warning(
            "cannot CONFIG SET set-max-intset-entries %d (%s): large buckets will use "
            "about 20x the memory; set it in the server's configuration",
            INTSET_ENTRIES,
            exc,
        )
        return False


def ensure_registry(client: Any) -> bool:
    """The registry's marker (keys.EPOCH) on a Redis that holds none: True when this made
    it, a new registry. Only deliberate starts call it (`dnc serve` before its workers,
    `dnc load`); a worker never does: on a Redis that lost the registry it would make an
    empty one in its place and answer every registered number callable."""
    return bool(client.set(keys.EPOCH, secrets.token_hex(8), nx=True))

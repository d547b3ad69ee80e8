"""Writes acknowledged only once replicas hold them: DNC_WAIT_REPLICAS.

Redis replication is asynchronous: a replica promoted after its master died may
lack the master's last writes, and a registration acknowledged among them would
be lost. With DNC_WAIT_REPLICAS=N a request that may have written is answered
only once N replicas hold every write the master had applied when it finished
(the API's `Replicated` middleware, registry/api/app.py), and `dnc load` reports
a load only once they hold all of it.

A master has one replication stream and a replica acknowledges an offset in it,
so one barrier after the writes covers all of them, whichever connection made
them: a PUBLISH (replicated, but never written to the append-only file, so no
fsync) and then, on the same connection, WAIT, which waits for the PUBLISH's
offset. Fewer replicas within DNC_WAIT_REPLICAS_MS raise NotReplicated: the
writes stay on the master, unacknowledged, and the client retries as after any 503.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.exceptions import RedisError

from registry.store.connect import ANSWER_TIMEOUT

# A channel nobody subscribes to: publishing on it only moves the replication offset.
BARRIER_CHANNEL = "dnc:{dnc}:replication-barrier"


class NotReplicated(RedisError):
    """Fewer replicas than DNC_WAIT_REPLICAS acknowledged the writes in time."""

    def __init__(self, acknowledged: int, wanted: int, timeout_ms: int) -> None:
        super().__init__(
            f"{acknowledged} of the {wanted} replica(s) DNC_WAIT_REPLICAS asks for "
            f"acknowledged the write within {timeout_ms} ms"
        )


async def replicated(redis: Any, replicas: int, timeout_ms: int) -> None:
    """Return once `replicas` replicas hold every write `redis` had applied; else raise."""
    pipe = redis.pipeline(transaction=False)
    pipe.publish(BARRIER_CHANNEL, b"")
    pipe.execute_command("WAIT", replicas, timeout_ms)
    try:
        async with asyncio.timeout(timeout_ms / 1000 + ANSWER_TIMEOUT):
            _, acknowledged = await pipe.execute()
    except TimeoutError:
        raise NotReplicated(0, replicas, timeout_ms) from None
    if acknowledged < replicas:
        raise NotReplicated(acknowledged, replicas, timeout_ms)


def replicated_sync(redis: Any, replicas: int, timeout_ms: int) -> None:
    """`replicated` for a synchronous client (the CLI's)."""
    pipe = redis.pipeline(transaction=False)
    pipe.publish(BARRIER_CHANNEL, b"")
    pipe.execute_command("WAIT", replicas, timeout_ms)
    _, acknowledged = pipe.execute()
    if acknowledged < replicas:
        raise NotReplicated(acknowledged, replicas, timeout_ms)

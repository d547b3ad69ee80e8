"""Connections from DNC_REDIS_URL (CONTRACT section 4): one redis-server or a Redis Cluster."""

from __future__ import annotations

import asyncio

import pytest

from registry.store import connect

pytestmark = pytest.mark.cluster  # every test on one redis-server and on a Redis Cluster


def test_a_burst_waits_for_connections_instead_of_failing(redis_url: str) -> None:
    """More commands at once than a worker keeps connections: they queue, none fails."""
    burst = 8 * connect.POOL_SIZE

    async def scenario() -> list[bytes]:
        client = connect.async_client(redis_url)
        try:
            await client.set("dnc:{dnc}:probe", "here")
            return await asyncio.gather(*(client.get("dnc:{dnc}:probe") for _ in range(burst)))
        finally:
            await client.aclose()

    assert asyncio.run(scenario()) == [b"here"] * burst


def test_ping_reaches_every_primary(redis_url: str) -> None:
    async def scenario() -> None:
        client = connect.async_client(redis_url)
        try:
            await connect.ping(client)
        finally:
            await client.aclose()

    asyncio.run(scenario())

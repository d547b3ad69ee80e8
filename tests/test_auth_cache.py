"""The per-worker key cache (registry/api/auth.py): one read of a key for its concurrent
askers, a key in use read again before it expires, and no revoked key brought back."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis

from registry.api.auth import Authenticator
from registry.store.connect import async_client
from registry.store.operators import Operator, OperatorStore


def calls(client: redis.Redis, command: str) -> int:
    stats: dict[str, Any] = client.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


async def with_key(redis_url: str, ttl: float, test: Any) -> None:
    client = async_client(redis_url)
    try:
        store = OperatorStore(client, 153)
        operator, key = await store.create("acme", "operator", [], None)
        await test(Authenticator(store, None, ttl), store, operator, f"Bearer {key}")
    finally:
        await client.aclose()


def test_concurrent_askers_of_one_key_share_one_read(redis_url: str) -> None:
    counter = redis.Redis.from_url(redis_url)

    async def test(auth: Authenticator, _: Any, operator: Operator, header: str) -> None:
        before = calls(counter, "hgetall")
        found = await asyncio.gather(*(auth.resolve(header) for _ in range(50)))
        assert {o.id for o in found} == {operator.id}
        assert calls(counter, "hgetall") == before + 1
        assert auth.cached(header) == operator

    asyncio.run(with_key(redis_url, 5.0, test))
    counter.close()


def test_a_key_in_use_is_read_again_before_it_expires(redis_url: str) -> None:
    async def test(auth: Authenticator, store: Any, operator: Operator, header: str) -> None:
        await auth.resolve(header)
        first = auth._cache[header][1]
        await asyncio.sleep(0.75)  # a quarter of its time left
        assert auth.cached(header) == operator  # answered from the entry, and read again
        reading = auth._reading[header]
        await reading
        assert auth._cache[header][1] > first  # renewed: it does not expire under use
        # A key revoked meanwhile is dropped by the read that finds it gone.
        await store.revoke(operator.id)
        await asyncio.sleep(max(0.0, auth._cache[header][1] - 0.2 - time.monotonic()))
        assert auth.cached(header) == operator
        await auth._reading[header]
        assert auth.cached(header) is None
        assert header not in auth._cache

    asyncio.run(with_key(redis_url, 1.0, test))


def test_a_read_begun_before_a_revocation_here_caches_nothing(redis_url: str) -> None:
    async def test(auth: Authenticator, store: Any, operator: Operator, header: str) -> None:
        reading = auth._read(header, header.removeprefix("Bearer "))
        auth.forget(operator.id)  # the account revoked by this worker, mid-read
        assert await reading == operator  # the read saw it still active...
        assert auth.cached(header) is None  # ...and left nothing behind

    asyncio.run(with_key(redis_url, 5.0, test))

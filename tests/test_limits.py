"""Rate-limit counters: counted in Redis for every worker, kept out of the append-only file."""

from __future__ import annotations

import asyncio
from pathlib import Path

from registry.embedded import RedisProcess
from registry.store import limits
from registry.store.connect import async_client


def test_counters_are_shared_and_expire_but_never_wait_for_the_disk(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path / "redis", durable=True)  # appendfsync always
    server.start()

    async def count() -> list[limits.Hit]:
        one, two = async_client(server.url), async_client(server.url)  # two workers
        try:
            key = limits.operator_key("acme")
            hits = [await limits.hit(client, key, 3, 60_000) for client in (one, two, one, two)]
            assert 0 < await one.pttl(key) <= 60_000
            return hits
        finally:
            await one.aclose()
            await two.aclose()

    try:
        hits = asyncio.run(count())
        assert [h.count for h in hits] == [1, 2, 3, 4]
        assert [h.allowed for h in hits] == [True, True, True, False]
        assert 1 <= hits[-1].retry_after <= 60
        # Not in the AOF: a counted request waits for no fsync.
        aof = (tmp_path / "redis" / "appendonly.aof").read_bytes()
        assert b"op:acme" not in aof
    finally:
        server.stop()

"""Goal 6, and what SCALE.md needs of it: a worker's start, and the part that grows.

A worker's start is Python's own start and imports, the app, and the build of its
Bloom filter from every bucket. Only the build grows with the registry, so it is
also timed alone, in this process, through the registry's own RegisteredFilter:
a difference of two starts would be lost in their noise at small scales.
"""

from __future__ import annotations

import asyncio
import time

from benchmarks import servers
from registry.bloom import RegisteredFilter
from registry.config import Settings
from registry.store import connect
from registry.store.registrations import RegistrationStore


def worker_starts(redis_url: str, runs: int) -> list[float]:
    """Seconds from `dnc serve`'s start to its first 200 from /readyz, `runs` times."""
    starts = []
    for _ in range(runs):
        with servers.dnc_serve(redis_url, 1) as api:
            starts.append(api.ready_seconds)
    return starts


def bloom_builds(redis_url: str, runs: int) -> list[float]:
    """Seconds RegisteredFilter.build() takes against the registry, `runs` times."""
    return asyncio.run(_builds(redis_url, runs))


async def _builds(redis_url: str, runs: int) -> list[float]:
    redis = connect.async_client(redis_url)
    store = RegistrationStore(redis, Settings().retention_days)
    times = []
    try:
        for _ in range(runs):
            bloom = RegisteredFilter(store)
            started = time.perf_counter()
            await bloom.build()
            times.append(time.perf_counter() - started)
    finally:
        await redis.aclose()
    return times

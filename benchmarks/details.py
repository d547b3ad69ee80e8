"""What a number registered one at a time costs in Redis: the figure SCALE.md needs that no
goal measures.

A bulk-loaded number is a set member (2 B). One registered through the API, SMS or
the web pages also gets an entry in its bucket's details hash and its own change
stream entry, kept DNC_RETENTION_DAYS. This registers every number of the world's
fullest buckets again, one by one, through the registry's own RegistrationStore (as
a carrier's PUT does), and reads MEMORY USAGE of those buckets' hashes and of the
stream. It leaves those buckets with details, so it runs after every other figure
taken on the same Redis.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np

from registry.config import Settings
from registry.rules import parse_preferences
from registry.store import connect, keys
from registry.store.registrations import RegistrationStore

BUCKETS = 2
CONCURRENCY = 64
# What the PUT route stores as the source: the carrier's operator id (op_ + 12 hex digits).
SOURCE = "op_0123456789ab:carrier"


def measure(url: str, client: Any, registry: np.ndarray) -> dict[str, Any]:
    buckets, counts = np.unique(registry >> keys.BUCKET_BITS, return_counts=True)
    chosen = buckets[np.argsort(counts, kind="stable")[-BUCKETS:]].tolist()
    numbers = registry[np.isin(registry >> keys.BUCKET_BITS, chosen)]
    stream_before = int(client.memory_usage(keys.CHANGES, samples=0) or 0)
    entries_before = int(client.xlen(keys.CHANGES))
    started = time.perf_counter()
    asyncio.run(_register(url, numbers.tolist()))
    seconds = time.perf_counter() - started
    hashes = [keys.details(bucket) for bucket in chosen]
    encodings = {_text(client.object("encoding", key)) for key in hashes}
    details = sum(int(client.memory_usage(key, samples=0) or 0) for key in hashes)
    # Past this many fields a hash leaves its compact encoding (ziplist, listpack in Redis 7)
    # for a hash table: a bucket of 250M's density holds thousands.
    limits = client.config_get("hash-max-*-entries")
    return {
        "compact_limit": int(next(iter(limits.values()))),
        "registrations": len(numbers),
        "buckets": len(chosen),
        "details_bytes": details,
        "details_encoding": ", ".join(sorted(encodings)),
        "stream_bytes": int(client.memory_usage(keys.CHANGES, samples=0) or 0) - stream_before,
        "stream_entries": int(client.xlen(keys.CHANGES)) - entries_before,
        "seconds": seconds,
    }


async def _register(url: str, numbers: list[int]) -> None:
    redis = connect.async_client(url)
    store = RegistrationStore(redis, Settings().retention_days)
    prefs = parse_preferences(None, None)
    now = int(time.time())
    try:
        for start in range(0, len(numbers), CONCURRENCY):
            group = numbers[start : start + CONCURRENCY]
            await asyncio.gather(*(store.register(n, prefs, SOURCE, now) for n in group))
    finally:
        await redis.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

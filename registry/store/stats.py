"""Registry-wide figures for administrators, read without walking any number.

The exact count of registered numbers is the sum of SCARD over the bucket
sets: O(1) each, and at 10 million numbers about 12,800 buckets, sent packed
in one round trip per node (store/resp.py), so it works on a Redis Cluster,
where a bucket's set lives in its own slot.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from registry.store import keys, resp

_NO_MEMBERS = np.zeros(0, dtype=np.int64)
_CHUNK = 20_000


async def registered(redis: Any) -> int:
    buckets = [int(b) for b in await redis.smembers(keys.BUCKETS)]
    total = 0
    for start in range(0, len(buckets), _CHUNK):
        calls = [
            (b"SCARD", keys.numbers_set(b), _NO_MEMBERS) for b in buckets[start : start + _CHUNK]
        ]
        total += sum(int(n) for n in await resp.run_async(redis, calls))
    return total


async def version(redis: Any) -> int:
    return int(await redis.get(keys.VERSION) or 0)


async def operators(redis: Any) -> dict[str, int]:
    """Active accounts by role (a revoked account leaves the set of operators)."""
    ids = [i.decode() for i in await redis.smembers(keys.OPERATORS)]
    if not ids:
        return {}
    pipe = redis.pipeline(transaction=False)
    for operator_id in ids:
        pipe.hget(keys.operator(operator_id), "role")
    roles = await pipe.execute()
    return dict(Counter(r.decode() for r in roles if r is not None))

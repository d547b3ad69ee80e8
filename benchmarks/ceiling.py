"""The Redis ceiling of issue 3: a list's membership straight from redis-py, no HTTP.

The numbers arrive already as int64 E.164 digits, are grouped by bucket on the
project's own keys (registry.store.keys) and asked with one `SMISMEMBER` per
bucket, pipelined. This is what asking Redis about every number costs at best
from Python; the API's Bloom filter exists to beat it by not asking about most.
"""

from __future__ import annotations

import time
from itertools import chain
from typing import Any

import numpy as np

from registry.store import keys

# One pipeline carries about this many members (replies of 1-2 bytes each).
MEMBERS_PER_ROUND_TRIP = 131_072


def membership(client: Any, numbers: np.ndarray) -> np.ndarray:
    """Boolean array aligned with `numbers`: which are in their bucket's set."""
    buckets, members = keys.split(numbers)
    order = np.argsort(buckets, kind="stable")
    buckets, members = buckets[order], members[order]
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    ends = np.r_[starts[1:], len(buckets)]
    found = np.empty(len(numbers), dtype=bool)
    group_start = 0
    pipe = client.pipeline(transaction=False)
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        pipe.smismember(keys.numbers_set(int(buckets[start])), members[start:end].tolist())
        if end - group_start >= MEMBERS_PER_ROUND_TRIP or end == len(buckets):
            replies = pipe.execute()
            found[group_start:end] = np.fromiter(
                chain.from_iterable(replies), dtype=bool, count=end - group_start
            )
            group_start = end
            pipe = client.pipeline(transaction=False)
    result = np.empty(len(numbers), dtype=bool)
    result[order] = found
    return result


def time_membership(client: Any, numbers: np.ndarray) -> tuple[float, np.ndarray]:
    """Seconds for the whole list, and the answer (to check against the world's truth)."""
    started = time.perf_counter()
    found = membership(client, numbers)
    return time.perf_counter() - started, found

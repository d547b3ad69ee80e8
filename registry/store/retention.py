"""The registry's streams kept DNC_RETENTION_DAYS and no longer, writes or no writes.

Each write to the change stream or the audit trail trims it (`XADD MINID ~`), but
only approximately (whole radix-tree nodes), and not at all while nothing is
written: a registry that goes quiet would keep its last changes and audit entries
past the retention for good. Every worker trims both exactly once an hour
(`XTRIM MINID`, a few milliseconds on an already trimmed stream); several doing it
is harmless.
"""

from __future__ import annotations

import time
from typing import Any

from registry.store import keys

EVERY_SECONDS = 3600.0
STREAMS = (keys.CHANGES, keys.AUDIT)


def cutoff_id(retention_days: int, now: float | None = None) -> str:
    """The first stream id still inside the retention."""
    now_ms = int((time.time() if now is None else now) * 1000)
    return f"{max(0, now_ms - retention_days * 86_400_000)}-0"


async def trim(redis: Any, retention_days: int) -> int:
    """Drop every entry of the streams older than the retention; returns how many."""
    minid = cutoff_id(retention_days)
    dropped = 0
    for stream in STREAMS:
        dropped += int(await redis.xtrim(stream, minid=minid, approximate=False))
    return dropped

"""Scrub receipts: what was scrubbed, by whom, against which registry version."""

from __future__ import annotations

import time
from typing import Any

import orjson

from registry.store import days, keys


class ReceiptStore:
    def __init__(self, redis: Any, retention_days: int) -> None:
        self.redis = redis
        self.retention_days = retention_days

    async def put(self, receipt: dict[str, Any], now: float | None = None) -> None:
        """Store a receipt for the retention, and count it in its day's counter."""
        today = days.day(time.time() if now is None else now)
        counter = keys.receipts_on(today)
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(
            keys.receipt(receipt["receipt_id"]),
            orjson.dumps(receipt),
            ex=self.retention_days * 86400,
        )
        pipe.incr(counter)
        pipe.expireat(counter, days.expires(today, self.retention_days))
        await pipe.execute()

    async def kept(self, now: float | None = None) -> int:
        """Receipts still kept, near enough: the day counters that have not expired (a
        day's receipts go over that day, its counter at its end)."""
        found = days.kept(time.time() if now is None else now, self.retention_days)
        counts = await self.redis.mget([keys.receipts_on(d) for d in found])
        return sum(int(c) for c in counts if c is not None)

    async def get(self, receipt_id: str) -> dict[str, Any] | None:
        raw = await self.redis.get(keys.receipt(receipt_id))
        return orjson.loads(raw) if raw else None

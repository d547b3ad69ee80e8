"""Scrub receipts: what was scrubbed, by whom, against which registry version."""

from __future__ import annotations

from typing import Any

import orjson

from registry.store import keys


class ReceiptStore:
    def __init__(self, redis: Any, retention_days: int) -> None:
        self.redis = redis
        self.retention_days = retention_days

    async def put(self, receipt: dict[str, Any]) -> None:
        await self.redis.set(
            keys.receipt(receipt["receipt_id"]),
            orjson.dumps(receipt),
            ex=self.retention_days * 86400,
        )

    async def get(self, receipt_id: str) -> dict[str, Any] | None:
        raw = await self.redis.get(keys.receipt(receipt_id))
        return orjson.loads(raw) if raw else None

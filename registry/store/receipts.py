"""Scrub receipts: what was scrubbed, by whom, against which registry version."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson
from redis.exceptions import TimeoutError as RedisTimeoutError

from registry.store import days, keys, timeline

# How long a receipt's write may take. A Redis that answers later (hung, then resumed)
# must not store a receipt for a scrub that was cut off meanwhile (CONTRACT section 6).
WRITE_WINDOW_MS = 5_000

# KEYS: the receipt, its write token. ARGV: the receipt's JSON, seconds to keep it.
# The token was set WRITE_WINDOW_MS to live in a round trip that completed: past that
# window the writer has given up, and this refuses to store what it was told to.
PUT_SCRIPT = """
if redis.call('DEL', KEYS[2]) == 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""


class ReceiptNotStored(RedisTimeoutError):
    """The receipt's write reached Redis too late; nothing was stored (a 503, as any
    Redis that does not answer in time)."""


class ReceiptStore:
    def __init__(
        self, redis: Any, retention_days: int, write_window_ms: int = WRITE_WINDOW_MS
    ) -> None:
        self.redis = redis
        self.retention_days = retention_days
        self.write_window_ms = write_window_ms
        self._before_write: Callable[[], None] | None = None  # tests stop Redis here
        # A receipt listed only once this old: by then it is stored or never will be (its
        # write's window is over), and every entry older has been indexed, whichever
        # worker's clock stamped it. So a listing's cursor never passes one still to come.
        self.settle_seconds = 2 * write_window_ms / 1000

    async def put(self, receipt: dict[str, Any], now: float | None = None) -> None:
        """Store a receipt for the retention, and count it in its day's counter.

        Either the receipt is stored and this returns, or this raises and the receipt is
        never stored, not even by a Redis that resumes after the writer gave up: its
        write token expires in Redis's own clock when the writer's wait does in its own.
        """
        now = time.time() if now is None else now
        today = days.day(now)
        counter = keys.receipts_on(today)
        index = keys.receipts_of(receipt["operator"])
        retention = self.retention_days * 86400
        key = keys.receipt(receipt["receipt_id"])
        token = f"{key}:writing"
        window = self.write_window_ms / 1000
        try:
            # The counter first: a day counted one receipt too many is harmless, and the
            # write below must be the last thing that can fail.
            async with asyncio.timeout(window):
                pipe = self.redis.pipeline(transaction=False)
                pipe.incr(counter)
                pipe.expireat(counter, days.expires(today, self.retention_days))
                # Listed before it is stored: a listing skips an entry with no receipt.
                pipe.zadd(index, {timeline.entry(now, receipt["receipt_id"]): 0})
                pipe.zremrangebylex(index, "-", f"({timeline.entry(now - retention, '')}")
                pipe.expire(index, retention)
                pipe.set(token, 1, px=self.write_window_ms)
                await pipe.execute()
            if self._before_write is not None:
                self._before_write()
            # The token was set before that reply came: it expires no later than this wait.
            async with asyncio.timeout(window):
                stored = await self.redis.eval(
                    PUT_SCRIPT, 2, key, token, orjson.dumps(receipt), self.retention_days * 86400
                )
        except TimeoutError:
            raise RedisTimeoutError(f"Redis did not store the receipt in {window:g} s") from None
        if not stored:
            raise ReceiptNotStored(f"the receipt's write reached Redis after {window:g} s")

    async def kept(self, now: float | None = None) -> int:
        """Receipts still kept, near enough: the day counters that have not expired (a
        day's receipts go over that day, its counter at its end)."""
        found = days.kept(time.time() if now is None else now, self.retention_days)
        counts = await self.redis.mget([keys.receipts_on(d) for d in found])
        return sum(int(c) for c in counts if c is not None)

    async def of_operator(
        self, operator_id: str, after: str | None, limit: int, now: float | None = None
    ) -> tuple[list[dict[str, Any]], str | None, bool]:
        """The operator's receipts still kept and settled (`settle_seconds` old), oldest
        first, after cursor `after` (an index entry; None: from the oldest): up to `limit`
        receipts, the cursor to go on from (`after` again when there was nothing new),
        and whether more follow."""
        now = time.time() if now is None else now
        entries, more = await timeline.page(
            self.redis,
            keys.receipts_of(operator_id),
            after,
            now - self.retention_days * 86400,
            now - self.settle_seconds,
            limit,
        )
        pipe = self.redis.pipeline(transaction=False)
        for receipt_id in timeline.ids(entries):
            pipe.get(keys.receipt(receipt_id))
        stored = await pipe.execute() if entries else []
        found = [orjson.loads(raw) for raw in stored if raw]  # cut-off scrubs stored none
        return found, entries[-1] if entries else after, more

    async def get(self, receipt_id: str) -> dict[str, Any] | None:
        raw = await self.redis.get(keys.receipt(receipt_id))
        return orjson.loads(raw) if raw else None

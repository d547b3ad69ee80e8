"""Request rate limits: a fixed-window counter per client in Redis, shared by every worker.

A window opens with a caller's first request and lasts `window_ms`; the counter
and its expiry are set in one script, so a crash between the two can never
leave a counter without an expiry (a client blocked for good). Each counter key
carries its own hash tag, so in Redis Cluster the counters spread over the slots
and none of them lands on the slot of the registry-wide `{dnc}` keys.

Counters live in memory only: the script tells Redis not to propagate its writes
to the append-only file or to replicas (`redis.set_repl`). Under
`appendfsync always` a propagated count would make every request of a limited
account wait for an fsync (about 3 ms against 0.3 ms a hit, measured on the
embedded Redis); a restart or a failover merely opens new windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from registry.store.connect import answered

# KEYS: counter. ARGV: window in ms. Returns the count in this window and the ms it has left.
HIT_SCRIPT = """
redis.set_repl(redis.REPL_NONE)
local count = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {count, left}
"""

# KEYS: counter. Takes back one count of a window still open.
REFUND_SCRIPT = """
redis.set_repl(redis.REPL_NONE)
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
return 1
"""


def status_check_key(client: str) -> str:
    """The counter of one client address's public status checks."""
    return f"dnc:limit:{{status:{client}}}"


def operator_key(operator_id: str) -> str:
    """The counter of one operator account's requests."""
    return f"dnc:limit:{{op:{operator_id}}}"


@dataclass(frozen=True)
class Hit:
    count: int  # requests in the current window, this one included
    limit: int
    left_ms: int  # until the window ends

    @property
    def allowed(self) -> bool:
        return self.count <= self.limit

    @property
    def retry_after(self) -> int:
        """Whole seconds until the window ends, for a Retry-After header (at least 1)."""
        return max(1, -(-self.left_ms // 1000))


async def hit(redis: Any, key: str, limit: int, window_ms: int) -> Hit:
    """Count one request against `key`; one round trip."""
    async with answered("a rate limit"):
        count, left = await redis.eval(HIT_SCRIPT, 1, key, window_ms)
    return Hit(int(count), limit, int(left))


async def refund(redis: Any, key: str) -> None:
    """Take back one request counted against `key` (one that did nothing it limits)."""
    async with answered("a rate limit"):
        await redis.eval(REFUND_SCRIPT, 1, key)

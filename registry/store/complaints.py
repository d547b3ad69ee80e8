"""Complaints in Redis: one record each, and per-day counts for the reports.

A record (`dnc:cmp:{id}`, JSON) is written with its expiry in one SET ... EX, so
it is kept DNC_RETENTION_DAYS and not a second longer. The reports never read
records: each complaint also adds one to the counter of the UTC day it arrived
and to its caller's score in that day's sorted set of its channel. Those day
keys expire DNC_RETENTION_DAYS after the end of their day, so a count drops a
complaint at most one day after its record is gone, without a sweeper and
without a second copy of anything personal (callers are senders, not subscribers).
All day keys share the tag {dnc}: one script writes them and one reads a report,
on a single node and on a Redis Cluster alike.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from registry.store import days, keys

# A call that showed no caller (registry.complaints.WITHHELD): counted, never ranked.
WITHHELD = "withheld"

CHANNELS = ("voice", "sms")

# KEYS: day counter, caller-day set of the channel, caller-day set of complaints the
# sender was liable for. ARGV: caller, expire-at (epoch seconds), 1 if liable.
COUNT_SCRIPT = """
redis.call('INCR', KEYS[1])
redis.call('EXPIREAT', KEYS[1], ARGV[2])
redis.call('ZINCRBY', KEYS[2], 1, ARGV[1])
redis.call('EXPIREAT', KEYS[2], ARGV[2])
if ARGV[3] == '1' then
  redis.call('ZINCRBY', KEYS[3], 1, ARGV[1])
  redis.call('EXPIREAT', KEYS[3], ARGV[2])
end
return 1
"""

# KEYS: scratch voice, sms, liable and all, then ARGV[1] voice day keys, as many sms day
# keys, as many liable day keys. ARGV: how many days, top, the withheld caller. Returns
# {distinct callers, withheld voice, withheld sms, caller, -total, voice, sms, liable,
# caller, ...}, most complaints first, ties by caller; the withheld caller is no caller.
REPORT_SCRIPT = """
local days = tonumber(ARGV[1])
local function union(dest, first, last)
  redis.call('DEL', dest)
  local i = first
  while i <= last do
    local j = math.min(i + 999, last)
    local args = {dest, j - i + 2, dest}
    for k = i, j do args[#args + 1] = KEYS[k] end
    redis.call('ZUNIONSTORE', unpack(args))
    i = j + 1
  end
end
union(KEYS[1], 5, 4 + days)
union(KEYS[2], 5 + days, 4 + 2 * days)
union(KEYS[3], 5 + 2 * days, 4 + 3 * days)
-- Negated totals: ascending order is then most complaints first, ties by caller ascending.
redis.call('ZUNIONSTORE', KEYS[4], 2, KEYS[1], KEYS[2], 'WEIGHTS', -1, -1)
local withheld_voice = redis.call('ZSCORE', KEYS[1], ARGV[3]) or '0'
local withheld_sms = redis.call('ZSCORE', KEYS[2], ARGV[3]) or '0'
redis.call('ZREM', KEYS[4], ARGV[3])
local top = redis.call('ZRANGE', KEYS[4], 0, tonumber(ARGV[2]) - 1, 'WITHSCORES')
local out = {redis.call('ZCARD', KEYS[4]), withheld_voice, withheld_sms}
for i = 1, #top, 2 do
  out[#out + 1] = top[i]
  out[#out + 1] = top[i + 1]
  out[#out + 1] = redis.call('ZSCORE', KEYS[1], top[i]) or '0'
  out[#out + 1] = redis.call('ZSCORE', KEYS[2], top[i]) or '0'
  out[#out + 1] = redis.call('ZSCORE', KEYS[3], top[i]) or '0'
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return out
"""


@dataclass(frozen=True)
class Complaint:
    number: int
    caller: str
    occurred_at: float
    channel: str
    category: int | None
    text: str | None
    registered_at_time: bool
    within_grace: bool


@dataclass(frozen=True)
class CallerCount:
    caller: str
    complaints: int
    voice: int
    sms: int
    liable: int  # registered at the time, on a blocked channel, past the grace


# The caller-day sets of complaints the sender was liable for, beside the channels' own.
LIABLE = "liable"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class ComplaintStore:
    def __init__(self, redis: Any, retention_days: int) -> None:
        self.redis = redis
        self.retention_days = retention_days

    def _days(self, now: float) -> list[str]:
        return days.kept(now, self.retention_days)

    async def add(self, complaint: Complaint, now: float | None = None) -> str:
        """Store a complaint (the record first: it is the evidence), then count it."""
        now = time.time() if now is None else now
        complaint_id = "cmp_" + secrets.token_hex(8)
        record = {
            "complaint_id": complaint_id,
            "received_at": _iso(now),
            "number": f"+{complaint.number}",
            "caller": complaint.caller,
            "occurred_at": _iso(complaint.occurred_at),
            "channel": complaint.channel,
            "category": complaint.category,
            "text": complaint.text,
            "registered_at_time": complaint.registered_at_time,
            "within_grace": complaint.within_grace,
        }
        retention = self.retention_days * 86400
        await self.redis.set(keys.complaint(complaint_id), orjson.dumps(record), ex=retention)
        received = days.day(now)
        await self.redis.eval(
            COUNT_SCRIPT,
            3,
            keys.complaints_on(received),
            keys.callers_on(complaint.channel, received),
            keys.callers_on(LIABLE, received),
            complaint.caller,
            days.expires(received, self.retention_days),
            int(complaint.registered_at_time and not complaint.within_grace),
        )
        return complaint_id

    async def get(self, complaint_id: str) -> dict[str, Any] | None:
        raw = await self.redis.get(keys.complaint(complaint_id))
        return orjson.loads(raw) if raw else None

    async def kept(self, now: float | None = None) -> int:
        """Complaints still counted: the sum of the day counters that have not expired."""
        days = self._days(time.time() if now is None else now)
        counts = await self.redis.mget([keys.complaints_on(d) for d in days])
        return sum(int(c) for c in counts if c is not None)

    async def top_callers(
        self, top: int, now: float | None = None
    ) -> tuple[int, list[CallerCount], CallerCount]:
        """(distinct callers, the `top` callers most complained about, the complaints about
        calls that showed no caller) over the kept days."""
        days = self._days(time.time() if now is None else now)
        scratch = f"dnc:{{dnc}}:cmp:report:{secrets.token_hex(6)}"
        day_keys = [keys.callers_on(c, d) for c in (*CHANNELS, LIABLE) for d in days]
        reply = await self.redis.eval(
            REPORT_SCRIPT,
            4 + len(day_keys),
            f"{scratch}:voice",
            f"{scratch}:sms",
            f"{scratch}:liable",
            f"{scratch}:all",
            *day_keys,
            len(days),
            top,
            WITHHELD,
        )
        distinct, rest = int(reply[0]), reply[3:]
        voice, sms = int(float(reply[1])), int(float(reply[2]))
        withheld = CallerCount(WITHHELD, voice + sms, voice, sms, 0)
        callers = [
            CallerCount(
                rest[i].decode() if isinstance(rest[i], bytes) else rest[i],
                -int(float(rest[i + 1])),
                int(float(rest[i + 2])),
                int(float(rest[i + 3])),
                int(float(rest[i + 4])),
            )
            for i in range(0, len(rest), 5)
        ]
        return distinct, callers, withheld

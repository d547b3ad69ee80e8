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

A complaint is counted under its caller and the account that had declared the caller
when it came (`caller|op_…`, `caller|` for none): a caller handed to another account
later does not take its complaints along, and the report names the sender of the calls
complained about, not whoever holds the number now.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from registry.store import days, keys, timeline

# A call that showed no caller (registry.complaints.WITHHELD): counted, never ranked,
# never anyone's (its member in the day sets is the word alone).
WITHHELD = "withheld"
# Between the caller and the account in a day set's member: in no caller, E.164, short
# code, sender id nor 【signature】 (registry.complaints.caller), nor in an account id.
SENDER_SEPARATOR = "|"

CHANNELS = ("voice", "sms")

# KEYS: day counter, caller-day set of the channel, caller-day set of complaints the
# sender was liable for, the open queue, and the index of the operator that declared the
# caller, if one did. ARGV: caller, expire-at (epoch seconds), 1 if liable, the
# complaint's queue entry, the entry before which records have expired, the retention in
# seconds (an index outlives its newest entry by no more), ":" and the complaint's id.
COUNT_SCRIPT = """
redis.call('INCR', KEYS[1])
redis.call('EXPIREAT', KEYS[1], ARGV[2])
redis.call('ZINCRBY', KEYS[2], 1, ARGV[1])
redis.call('EXPIREAT', KEYS[2], ARGV[2])
if ARGV[3] == '1' then
  redis.call('ZINCRBY', KEYS[3], 1, ARGV[1])
  redis.call('EXPIREAT', KEYS[3], ARGV[2])
end
-- The queue's entry is stamped with the record's receipt (the dequeue finds it from that);
-- an operator's with Redis' own clock, here, so that entries go in in stamp order and a
-- listing's cursor never passes one still to be written, however long the request took.
local now = redis.call('TIME')
local stamped = string.format('%015d', now[1] * 1000 + math.floor(now[2] / 1000)) .. ARGV[7]
for i = 4, #KEYS do
  redis.call('ZADD', KEYS[i], 0, i == 4 and ARGV[4] or stamped)
  redis.call('ZREMRANGEBYLEX', KEYS[i], '-', '(' .. ARGV[5])
  redis.call('EXPIRE', KEYS[i], ARGV[6])
end
return 1
"""

# KEYS: the open queue. ARGV: the range of the second the complaint was received in, and
# ":" and its id, which ends its entry.
DEQUEUE_SCRIPT = """
for _, entry in ipairs(redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], ARGV[2])) do
  if string.sub(entry, -string.len(ARGV[3])) == ARGV[3] then
    redis.call('ZREM', KEYS[1], entry)
  end
end
return 1
"""

# KEYS: a complaint's record. ARGV: the record as read, the record resolved, the retention
# in seconds. Written only if nobody changed it since it was read, and kept the retention
# from now: how a complaint was dealt with is a record that ends then (resolved on day 150
# of its 153, it would otherwise go three days later).
RESOLVE_SCRIPT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""


def member(caller: str, operator: str | None) -> str:
    """A complaint's member in the day sets: its caller and the account that had declared
    it then, if any; the withheld caller alone."""
    if caller == WITHHELD:
        return WITHHELD
    return f"{caller}{SENDER_SEPARATOR}{operator or ''}"


# KEYS: scratch voice, sms, liable and all, the callers index, then ARGV[1] voice day
# keys, as many sms day keys, as many liable day keys. ARGV: how many days, top, the
# withheld caller. Returns {distinct callers, withheld voice, withheld sms, member,
# -total, voice, sms, liable, member, ...}, most complaints first, ties by member
# (caller, then account); the withheld caller is no caller. A member counted before
# complaints kept their sender (a caller alone) is the caller's and the account's that
# declares it now, as reports then had it.
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
union(KEYS[1], 6, 5 + days)
union(KEYS[2], 6 + days, 5 + 2 * days)
union(KEYS[3], 6 + 2 * days, 5 + 3 * days)
-- Negated totals: ascending order is then most complaints first, ties by member ascending.
redis.call('ZUNIONSTORE', KEYS[4], 2, KEYS[1], KEYS[2], 'WEIGHTS', -1, -1)
local withheld_voice = redis.call('ZSCORE', KEYS[1], ARGV[3]) or '0'
local withheld_sms = redis.call('ZSCORE', KEYS[2], ARGV[3]) or '0'
redis.call('ZREM', KEYS[4], ARGV[3])
local callers = {}
local distinct = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  local bar = string.find(m, '|', 1, true)
  if not bar then
    local owner = redis.call('HGET', KEYS[5], m)
    local sender = m .. '|' .. (owner or '')
    for k = 1, 4 do
      local score = redis.call('ZSCORE', KEYS[k], m)
      if score then
        redis.call('ZINCRBY', KEYS[k], score, sender)
        redis.call('ZREM', KEYS[k], m)
      end
    end
    bar = string.len(m) + 1
  end
  local caller = string.sub(m, 1, bar - 1)
  if not callers[caller] then
    callers[caller] = true
    distinct = distinct + 1
  end
end
local top = redis.call('ZRANGE', KEYS[4], 0, tonumber(ARGV[2]) - 1, 'WITHSCORES')
local out = {distinct, withheld_voice, withheld_sms}
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
    operator: str | None  # the account that had declared the caller when complained about
    complaints: int
    voice: int
    sms: int
    liable: int  # registered at the time, on a blocked channel, past the grace


# The caller-day sets of complaints the sender was liable for, beside the channels' own.
LIABLE = "liable"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# A complaint's handling: open from its receipt until an administrator resolves it.
OPEN, RESOLVED = "open", "resolved"
QUEUE_CURSOR = re.compile(r"[0-9]{15}:cmp_[0-9a-f]{16}")


_ID = re.compile(r"cmp_[0-9a-f]{16}")


def is_complaint_id(text: str) -> bool:
    """The shape of the ids `add` gives: anything else names no complaint."""
    return _ID.fullmatch(text) is not None


def _record(raw: bytes | str) -> dict[str, Any]:
    record: dict[str, Any] = orjson.loads(raw)
    record.setdefault("status", OPEN)  # kept from before complaints had a status
    return record


# A complaint is in an operator's list once this old. Its entry is written after its
# record, stamped with the time the worker read before: by then every entry older has been
# written, whichever worker's clock stamped it, so the list's cursor passes none to come.
SETTLE_SECONDS = 10.0


class ComplaintStore:
    def __init__(self, redis: Any, retention_days: int) -> None:
        self.redis = redis
        self.retention_days = retention_days
        self.settle_seconds = SETTLE_SECONDS

    def _days(self, now: float) -> list[str]:
        return days.kept(now, self.retention_days)

    async def add(
        self, complaint: Complaint, now: float | None = None, owner: str | None = None
    ) -> str:
        """Store a complaint (the record first: it is the evidence), then count it, queue
        it, and list it for `owner`, the operator that declared its caller."""
        # One integer of milliseconds: the record's second is the queue entry's own.
        ms = int((time.time() if now is None else now) * 1000)
        now = ms / 1000
        complaint_id = "cmp_" + secrets.token_hex(8)
        record = {
            "complaint_id": complaint_id,
            "received_at": _iso(ms // 1000),
            "number": f"+{complaint.number}",
            "caller": complaint.caller,
            "occurred_at": _iso(complaint.occurred_at),
            "channel": complaint.channel,
            "category": complaint.category,
            "text": complaint.text,
            "registered_at_time": complaint.registered_at_time,
            "within_grace": complaint.within_grace,
            # The sender: the account that had declared the caller when the complaint came
            # (None: none had), whoever declares it later.
            "operator": owner,
            "status": OPEN,
        }
        retention = self.retention_days * 86400
        key = keys.complaint(complaint_id)
        await self.redis.set(key, orjson.dumps(record), ex=retention)
        received = days.day(now)
        indexes = [keys.complaints_open()]
        if owner is not None:
            indexes.append(keys.complaints_of(owner))
        try:
            await self._count(complaint, owner, received, indexes, now, complaint_id, retention)
        except BaseException:
            # Not counted nor queued: not kept either, so the complainant's 503 (or a
            # cancelled request) means "send it again", and no record waits unseen.
            with contextlib.suppress(Exception):
                await self.redis.delete(key)
            raise
        return complaint_id

    async def _count(
        self,
        complaint: Complaint,
        owner: str | None,
        received: str,
        indexes: list[str],
        now: float,
        complaint_id: str,
        retention: int,
    ) -> None:
        await self.redis.eval(
            COUNT_SCRIPT,
            3 + len(indexes),
            keys.complaints_on(received),
            keys.callers_on(complaint.channel, received),
            keys.callers_on(LIABLE, received),
            *indexes,
            member(complaint.caller, owner),
            days.expires(received, self.retention_days),
            int(complaint.registered_at_time and not complaint.within_grace),
            timeline.entry(now, complaint_id),
            timeline.entry(now - retention, ""),
            retention,
            f":{complaint_id}",
        )

    async def get(self, complaint_id: str) -> dict[str, Any] | None:
        raw = await self.redis.get(keys.complaint(complaint_id))
        return _record(raw) if raw else None

    async def resolve(
        self, complaint_id: str, outcome: str, reply: str | None, by: str, now: float | None = None
    ) -> tuple[dict[str, Any], bool] | None:
        """Close a kept complaint with `outcome` (and what the complainant is told): the
        record and True, or the record as it stands and False when it was closed already;
        None when no such complaint is kept. A complaint is resolved once."""
        now = time.time() if now is None else now
        key = keys.complaint(complaint_id)
        for _ in range(10):  # another change between the read and the write: read again
            raw = await self.redis.get(key)
            if raw is None:
                return None
            record = _record(raw)
            if record["status"] != OPEN:
                await self._dequeue(record)  # a resolution cut off before its dequeue
                return record, False
            record |= {"status": RESOLVED, "resolved_at": _iso(now), "outcome": outcome}
            record |= {"reply": reply, "resolved_by": by}
            resolved = orjson.dumps(record)
            retention = self.retention_days * 86400
            if await self.redis.eval(RESOLVE_SCRIPT, 1, key, raw, resolved, retention):
                await self._dequeue(record)
                return record, True
        raise RuntimeError(f"complaint {complaint_id} kept changing while being resolved")

    async def _dequeue(self, record: dict[str, Any]) -> None:
        # The record keeps its receipt to the second, the queue to the millisecond.
        second = int(_epoch(record["received_at"]))
        await self.redis.eval(
            DEQUEUE_SCRIPT,
            1,
            keys.complaints_open(),
            f"[{timeline.entry(second, '')}",
            f"({timeline.entry(second + 1, '')}",
            f":{record['complaint_id']}",
        )

    async def open_queue(
        self, after: str | None, limit: int, now: float | None = None
    ) -> tuple[list[dict[str, Any]], str | None, int]:
        """Complaints not yet resolved, oldest first, after cursor `after` (a queue entry;
        None: from the oldest): up to `limit` records, the cursor to go on from (None at
        the end), and how many are open in all."""
        now = time.time() if now is None else now
        queue = keys.complaints_open()
        total = await self.open_count(now)
        entries, more = await timeline.page(self.redis, queue, after, 0, now + 86400, limit)
        found, gone = [], []
        for entry, record in zip(entries, await self._records(entries), strict=True):
            if record is None or record["status"] != OPEN:
                gone.append(entry)  # expired, or resolved by a write cut off before its dequeue
            else:
                found.append(record)
        if gone:
            await self.redis.zrem(queue, *gone)
        return found, entries[-1] if more else None, total - len(gone)

    async def of_operator(
        self, operator_id: str, after: str | None, limit: int, now: float | None = None
    ) -> tuple[list[dict[str, Any]], str | None, bool]:
        """The complaints still kept that named a caller the operator had declared, oldest
        first, settled (SETTLE_SECONDS old), after cursor `after` (None: from the oldest):
        up to `limit` records, the cursor to go on from (`after` again when there was
        nothing new), and whether more follow. As ReceiptStore.of_operator."""
        now = time.time() if now is None else now
        oldest = now - self.retention_days * 86400
        key = keys.complaints_of(operator_id)
        entries, more = await timeline.page(
            self.redis, key, after, oldest, now - self.settle_seconds, limit
        )
        found = [record for record in await self._records(entries) if record is not None]
        return found, entries[-1] if entries else after, more

    async def _records(self, entries: list[str]) -> list[dict[str, Any] | None]:
        """The record of each index entry, None for one expired."""
        if not entries:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for complaint_id in timeline.ids(entries):
            pipe.get(keys.complaint(complaint_id))
        return [_record(raw) if raw else None for raw in await pipe.execute()]

    async def open_count(self, now: float | None = None) -> int:
        """Complaints received and not resolved while kept (near enough: one whose
        resolution was cut off before its dequeue counts until a listing sees it)."""
        queue = keys.complaints_open()
        pipe = self.redis.pipeline(transaction=False)
        pipe.zremrangebylex(queue, "-", f"({self._oldest(time.time() if now is None else now)}")
        pipe.zcard(queue)
        _, total = await pipe.execute()
        return int(total)

    async def queue_unqueued(self, now: float | None = None) -> int:
        """Once for a registry: queue the complaints kept from before complaints had a
        status (they read as open), found from their `complaint.received` audit entries.
        Returns how many."""
        if await self.redis.exists(keys.COMPLAINTS_QUEUED):
            return 0
        now = time.time() if now is None else now
        cursor = f"{max(0, int((now - self.retention_days * 86400) * 1000))}-0"
        queued = 0
        while True:
            rows = await self.redis.xrange(keys.AUDIT, min=cursor, max="+", count=1000)
            ids = [
                fields[b"complaint"].decode()
                for _, fields in rows
                if fields.get(b"action") == b"complaint.received" and b"complaint" in fields
            ]
            pipe = self.redis.pipeline(transaction=False)
            for complaint_id in ids:
                pipe.get(keys.complaint(complaint_id))
            found = await pipe.execute() if ids else []
            records = [orjson.loads(raw) for raw in found if raw]
            entries = {
                timeline.entry(_epoch(record["received_at"]), record["complaint_id"]): 0
                for record in records
                if "status" not in record  # written before complaints had one
            }
            if entries:
                await self.redis.zadd(keys.complaints_open(), entries)
                queued += len(entries)
            if len(rows) < 1000:
                break
            last = rows[-1][0]
            cursor = f"({last.decode() if isinstance(last, bytes) else last}"
        await self.redis.set(keys.COMPLAINTS_QUEUED, str(queued))
        return queued

    def _oldest(self, now: float) -> str:
        return timeline.entry(now - self.retention_days * 86400, "")

    async def kept(self, now: float | None = None) -> int:
        """Complaints still counted: the sum of the day counters that have not expired."""
        days = self._days(time.time() if now is None else now)
        counts = await self.redis.mget([keys.complaints_on(d) for d in days])
        return sum(int(c) for c in counts if c is not None)

    async def top_callers(
        self, top: int, now: float | None = None
    ) -> tuple[int, list[CallerCount], CallerCount]:
        """(distinct callers, the `top` (caller, account) pairs most complained about, the
        complaints about calls that showed no caller) over the kept days."""
        days = self._days(time.time() if now is None else now)
        scratch = f"dnc:{{dnc}}:cmp:report:{secrets.token_hex(6)}"
        day_keys = [keys.callers_on(c, d) for c in (*CHANNELS, LIABLE) for d in days]
        reply = await self.redis.eval(
            REPORT_SCRIPT,
            5 + len(day_keys),
            f"{scratch}:voice",
            f"{scratch}:sms",
            f"{scratch}:liable",
            f"{scratch}:all",
            keys.CALLERS,
            *day_keys,
            len(days),
            top,
            WITHHELD,
        )
        distinct, rest = int(reply[0]), reply[3:]
        voice, sms = int(float(reply[1])), int(float(reply[2]))
        withheld = CallerCount(WITHHELD, None, voice + sms, voice, sms, 0)
        senders = [
            (rest[i].decode() if isinstance(rest[i], bytes) else rest[i]).split(SENDER_SEPARATOR, 1)
            for i in range(0, len(rest), 5)
        ]
        callers = [
            CallerCount(
                senders[i // 5][0],
                senders[i // 5][1] or None,
                -int(float(rest[i + 1])),
                int(float(rest[i + 2])),
                int(float(rest[i + 3])),
                int(float(rest[i + 4])),
            )
            for i in range(0, len(rest), 5)
        ]
        return distinct, callers, withheld

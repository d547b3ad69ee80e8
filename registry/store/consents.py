"""Operator consents in Redis: recording, withdrawing, and checking them in batches.

Each operator's consents live under its own hash tag, so they share one Redis
Cluster slot and one script updates them atomically:

- `keys.consents(op)`: the index look-ups and scrubs read, a sorted set with
  a number's E.164 digits as member and the consent's `expires_at` as score
  (`+inf` when it has none). A consent is live while its score is after now.
  Every write drops the entries that ended; the set itself expires
  DNC_RETENTION_DAYS after its last end date, and has no TTL while it holds a
  consent without one.
- `keys.consent(op, id)`: the record with its evidence. No TTL while it is live
  without an end date; it expires DNC_RETENTION_DAYS after it ends (withdrawn,
  superseded by a newer consent from the same number, or past `expires_at`:
  that EXPIREAT is set when it is recorded).
- `keys.current_consent(op, number)`: the id of the latest consent from the
  number, with the record's TTL, so a withdrawal finds its record.
- `keys.consent_scopes(op)`: the scope of each consent limited to some channels or
  categories (registry.rules.parse_scope), by number; a live consent without an entry covers
  every channel and category. It lives as long as the index.

Nothing here is cached: a recorded consent counts from the next request on, in
every worker.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from registry.store import codes, keys
from registry.store.registrations import parse_details

_COMMON = """
local function live(score, now)
  return score and (score == 'inf' or tonumber(score) > tonumber(now))
end
-- Drop ended entries from the index; keep it, and the scopes beside it, as long as
-- its last end date needs.
local function tidy(index, scopes, now, retention)
  -- Their scopes too: an operator holding a consent with no end date keeps the scopes
  -- hash for good, and an expired number in it would be kept past the retention.
  local ended = redis.call('ZRANGEBYSCORE', index, '-inf', now)
  for i = 1, #ended, 1000 do
    redis.call('HDEL', scopes, unpack(ended, i, math.min(i + 999, #ended)))
  end
  redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
  local top = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
  if #top == 0 then
    redis.call('EXPIRE', scopes, retention)
    return
  end
  if top[2] == 'inf' then
    redis.call('PERSIST', index)
    redis.call('PERSIST', scopes)
  else
    redis.call('EXPIREAT', index, tonumber(top[2]) + retention)
    redis.call('EXPIREAT', scopes, tonumber(top[2]) + retention)
  end
end
"""

# KEYS: index, current id, new record, current record (the new one's key if none), scopes,
# the opt-outs' times, and as the release before kept them. ARGV: number, current id (''
# if none), new id, now, expires_at ('' if none), evidence JSON, retention seconds,
# operator, scope ('' for every channel and category), when the evidence was given (unix
# ms; '' if not said).
# 1 recorded, 2 recorded and the live consent it replaced marked superseded, 0 the
# current id changed meanwhile (read it again), or {the opt-out's ms} when an opt-out
# ended the operator's consent at or after the evidence was given, or the evidence says
# not when: the opt-out is the later word, and nothing is written.
RECORD_SCRIPT = (
    _COMMON
    + """
-- Or in the hash of the release before (dnc:coo:, same slot) while it is kept. Undated
-- evidence cannot show it was given after the opt-out: refused too.
local opted_out = redis.call('ZSCORE', KEYS[6], ARGV[1])
if not opted_out then opted_out = redis.call('HGET', KEYS[7], ARGV[1]) end
if opted_out and (ARGV[10] == '' or tonumber(opted_out) >= tonumber(ARGV[10])) then
  return {opted_out}
end
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[2] then return 0 end
local now, retention = tonumber(ARGV[4]), tonumber(ARGV[7])
local superseded = 0
if ARGV[2] ~= '' and live(redis.call('ZSCORE', KEYS[1], ARGV[1]), now) then
  redis.call('HSET', KEYS[4], 'ended_at', ARGV[4], 'ended', 'superseded')
  redis.call('EXPIRE', KEYS[4], retention)
  superseded = 1
end
redis.call('HSET', KEYS[3], 'consent_id', ARGV[3], 'number', ARGV[1], 'operator', ARGV[8],
           'recorded_at', ARGV[4], 'evidence', ARGV[6])
if ARGV[9] ~= '' then
  redis.call('HSET', KEYS[3], 'scope', ARGV[9])
  redis.call('HSET', KEYS[5], ARGV[1], ARGV[9])
else
  redis.call('HDEL', KEYS[5], ARGV[1])
end
if ARGV[5] ~= '' then
  local until_ = tonumber(ARGV[5]) + retention
  redis.call('HSET', KEYS[3], 'expires_at', ARGV[5])
  redis.call('EXPIREAT', KEYS[3], until_)
  redis.call('SET', KEYS[2], ARGV[3], 'EXAT', until_)
  redis.call('ZADD', KEYS[1], ARGV[5], ARGV[1])
else
  redis.call('SET', KEYS[2], ARGV[3])
  redis.call('ZADD', KEYS[1], '+inf', ARGV[1])
end
tidy(KEYS[1], KEYS[5], ARGV[4], retention)
return 1 + superseded
"""
)

# KEYS: index, current id, record, scopes. ARGV: number, its id, now, retention seconds, who.
# 1 withdrawn, 0 no live consent, -1 the current id changed meanwhile (read it again).
WITHDRAW_SCRIPT = (
    _COMMON
    + """
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[2] then return -1 end
if not live(redis.call('ZSCORE', KEYS[1], ARGV[1]), ARGV[3]) then return 0 end
-- The record first: a Redis refusing writes (OOM) stops a script at its first write,
-- so a consent is never ended without its record saying so.
redis.call('HSET', KEYS[3], 'ended_at', ARGV[3], 'ended', 'withdrawn', 'withdrawn_by', ARGV[5])
redis.call('EXPIRE', KEYS[3], ARGV[4])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
redis.call('HDEL', KEYS[4], ARGV[1])
tidy(KEYS[1], KEYS[4], ARGV[3], tonumber(ARGV[4]))
if KEYS[5] then
  -- An opt-out's: kept with the ending, so a recording that follows sees it at once;
  -- each for the retention, not as long as the operator's opt-outs keep coming.
  redis.call('ZADD', KEYS[5], ARGV[6], ARGV[1])
  local oldest = tonumber(ARGV[6]) - tonumber(ARGV[4]) * 1000
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', '(' .. string.format('%d', oldest))
  redis.call('EXPIRE', KEYS[5], ARGV[4])
end
return 1
"""
)

# KEYS: the number's opt-out time (keys.number_opted_out), its bucket's set. ARGV: the
# time (unix ms), the member, retention seconds. Kept while the number is registered (an
# opt-out is a registration; a deregistration gives it its retention), else only the
# retention: one that a deregistration overtook must not stay for ever.
OPTED_OUT_SCRIPT = """
redis.call('SET', KEYS[1], ARGV[1])
if redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 0 then
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
end
"""

# KEYS: the number's consent holders. ARGV: operator, its consent's expires_at ('inf'
# for none; '' to take the operator out), retention seconds. The hash lives while a
# consent in it can be live or its record is kept past its expires_at: no TTL while one
# has no end date, else the retention past the last expires_at.
HOLDERS_SCRIPT = """
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
local last = 0
for _, until_ in ipairs(redis.call('HVALS', KEYS[1])) do
  if until_ == 'inf' then redis.call('PERSIST', KEYS[1]) return 1 end
  last = math.max(last, tonumber(until_))
end
if last > 0 then redis.call('EXPIREAT', KEYS[1], last + tonumber(ARGV[3])) end
return 1
"""

# KEYS: the number's kept consents. ARGV: `operator consent_id`, until when its record is
# kept ('+inf' while it has no end; '' to take it out), now. Entries past their time go;
# the set lives as long as its last.
KEEP_SCRIPT = """
if ARGV[2] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if #top == 0 then return 0 end
if top[2] == 'inf' then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('EXPIREAT', KEYS[1], math.ceil(tonumber(top[2])))
end
return 1
"""

# A scrub batch reads the operator's whole live set when it is at most this big (or the
# batch's size, if larger); past that it asks about the batch's numbers one by one.
FETCH_ALL = 4096


class PredatesOptOut(Exception):
    """The evidence was given before the subscriber's opt-out (`opted_out_at`, unix
    seconds: the number's registration, or an opt-out that ended consents from it), or
    says not when and the opt-out ended the operator's own consent: the opt-out is the
    later word."""

    def __init__(self, opted_out_at: float) -> None:
        super().__init__(opted_out_at)
        self.opted_out_at = opted_out_at


@dataclass(frozen=True)
class Consent:
    consent_id: str
    number: int
    recorded_at: int
    expires_at: int | None
    supersedes: str | None = None  # the live consent from the number it replaced


def new_id() -> str:
    return "cns_" + secrets.token_hex(10)


def live(score: Any, now: float) -> bool:
    """A score read from the index (bytes, float or None) means a live consent."""
    return score is not None and float(score) > now


def scope_of(score: Any, scope: Any, now: float) -> int:
    """The scope of a consent from its index score and its scopes entry (None: every
    channel and category); 0 when it is not live."""
    if not live(score, now):
        return 0
    return codes.EVERYTHING if scope is None else int(scope)


class ConsentStore:
    def __init__(self, redis: Any, retention_days: int) -> None:
        self.redis = redis
        self.retention_seconds = retention_days * 86400

    async def record(
        self,
        operator_id: str,
        number: int,
        evidence: str,
        expires_at: int | None,
        scope: int = codes.EVERYTHING,
        given_at: float | None = None,
    ) -> Consent:
        """Store a consent (replacing a live one from the same number, which ends now),
        for the channels and categories of `scope` (registry.rules.parse_scope).

        PredatesOptOut, and nothing stored, when the subscriber opted out at or after
        `given_at` (unix seconds, when the evidence says the consent was given): an
        opt-out (a registration, an opt-out text) ended every consent from it then (for
        any operator), or ended this operator's (checked in the
        script that stores it, so an opt-out that lands at any moment of the recording
        is either seen there or ends the consent it stored). Evidence without
        `given_at` is taken as given now, except against an opt-out that ended this
        operator's own consent: it cannot say it came after that."""
        started_ms = int(time.time() * 1000)
        given_ms = None if given_at is None else int(given_at * 1000)
        # Its holder first, so an opt-out that reads the holders finds every consent stored.
        await self._hold(operator_id, number, "inf" if expires_at is None else str(expires_at))
        before = await self.opted_out_ms(number)
        if given_ms is not None and before >= given_ms:
            await self._unhold(operator_id, number)
            raise PredatesOptOut(before / 1000)
        digits = str(number)
        current_key = keys.current_consent(operator_id, digits)
        consent_id = new_id()
        new_key = keys.consent(operator_id, consent_id)
        # Listed under the number before it is stored, as its holder is.
        kept_until = math.inf if expires_at is None else expires_at + self.retention_seconds
        await self._keep(number, operator_id, consent_id, kept_until)
        while True:
            now = int(time.time())
            current = await self.redis.get(current_key)
            current_id = current.decode() if current else ""
            done = await self.redis.eval(
                RECORD_SCRIPT,
                7,
                keys.consents(operator_id),
                current_key,
                new_key,
                keys.consent(operator_id, current_id) if current_id else new_key,
                keys.consent_scopes(operator_id),
                keys.consents_opted_out(operator_id),
                keys.consents_opted_out_before(operator_id),
                digits,
                current_id,
                consent_id,
                now,
                "" if expires_at is None else expires_at,
                evidence,
                self.retention_seconds,
                operator_id,
                "" if scope == codes.EVERYTHING else scope,
                "" if given_ms is None else given_ms,
            )
            if isinstance(done, list):
                await self._unhold(operator_id, number)
                # Its expiry again from the ones it still lists: this one, kept forever
                # (no end), had taken it away.
                await self._keep(number, operator_id, consent_id, None)
                raise PredatesOptOut(int(done[0]) / 1000)
            if done:
                break
        supersedes = current_id if done == 2 else None
        if supersedes:
            await self._keep(number, operator_id, supersedes, now + self.retention_seconds)
        # Again after: a withdrawal racing this one may have just taken it out.
        await self._hold(operator_id, number, "inf" if expires_at is None else str(expires_at))
        # An opt-out that landed meanwhile may have read the holders before this consent
        # was stored, and ended nothing: it ends it here, as it would have.
        after = await self.opted_out_ms(number)
        if after > before and after >= (started_ms if given_ms is None else given_ms):
            await self.withdraw(operator_id, number, "opt_out:while_recorded", opted_out_ms=after)
            raise PredatesOptOut(after / 1000)
        return Consent(consent_id, number, now, expires_at, supersedes)

    async def opted_out_ms(self, number: int) -> int:
        """When (unix ms) the subscriber last opted out of calls from everyone: the last
        opt-out that ended consents from the number (`end_for_opt_out`: a registration by
        any way in, an opt-out text; kept while the number is registered, and the
        retention after), and no earlier than the start of the registration that stands
        (each is an opt-out; one from before the opt-out's time was kept has only its
        start to say so); 0 for none known (a bulk-loaded number's start is unknown)."""
        bucket, member = keys.bucket_of(number), keys.member_of(number)
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(keys.number_opted_out(number))
        pipe.sismember(keys.numbers_set(bucket), member)
        pipe.hget(keys.details(bucket), member)
        opted_out, registered, details = await pipe.execute()
        since = int(opted_out) if opted_out else 0
        if registered and details:
            began = parse_details(number, details).registered_at
            since = max(since, (began or 0) * 1000)
        return since

    async def withdraw(
        self,
        operator_id: str,
        number: int,
        who: str,
        opted_out_ms: int | None = None,
    ) -> tuple[str, int] | None:
        """End the operator's live consent from `number`: (its id, when), or None if none.
        `opted_out_ms`: the subscriber's opt-out ends it, its time kept (`dnc:coo:{op}`,
        which RECORD_SCRIPT checks) in the same script."""
        digits = str(number)
        current_key = keys.current_consent(operator_id, digits)
        opted_out = [keys.consents_opted_out(operator_id)] if opted_out_ms is not None else []
        while True:
            now = int(time.time())
            current = await self.redis.get(current_key)
            if current is None:
                await self._unhold(operator_id, number)
                return None
            consent_id = current.decode()
            done = await self.redis.eval(
                WITHDRAW_SCRIPT,
                4 + len(opted_out),
                keys.consents(operator_id),
                current_key,
                keys.consent(operator_id, consent_id),
                keys.consent_scopes(operator_id),
                *opted_out,
                digits,
                consent_id,
                now,
                self.retention_seconds,
                who,
                "" if opted_out_ms is None else opted_out_ms,
            )
            if done >= 0:
                if done:  # one past its expires_at stays listed while its record is kept
                    await self._unhold(operator_id, number)
                    await self._keep(number, operator_id, consent_id, now + self.retention_seconds)
                return (consent_id, now) if done else None

    async def end_for_opt_out(self, number: int, who: str) -> list[tuple[str, str]]:
        """Withdraw every operator's live consent from `number`, all recorded before now:
        the subscriber's opt-out is the later word. Returns (operator, consent id) of each.

        Each operator whose consent it ended gets the opt-out's time kept
        (`dnc:coo:{op}`): evidence of that consent recorded again cannot undo the opt-out."""
        at_ms = int(time.time() * 1000)
        # Before the holders are read: a consent being recorded meanwhile either sees it
        # or is among them (ConsentStore.record).
        await self.redis.eval(
            OPTED_OUT_SCRIPT,
            2,
            keys.number_opted_out(number),
            keys.numbers_set(keys.bucket_of(number)),
            at_ms,
            keys.member_of(number),
            self.retention_seconds,
        )
        holders = await self.redis.hkeys(keys.consent_holders(number))
        ended = []
        for raw in holders:
            operator_id = raw.decode()
            withdrawn = await self.withdraw(operator_id, number, who, opted_out_ms=at_ms)
            if withdrawn is not None:
                ended.append((operator_id, withdrawn[0]))
        return ended

    async def holders(self, number: int) -> list[str]:
        """The operators that may hold a live consent from `number`, by id."""
        return sorted(raw.decode() for raw in await self.redis.hkeys(keys.consent_holders(number)))

    async def index_holders(self, operator_ids: list[str]) -> int:
        """Enter the live consents of `operator_ids` in their numbers' holders (consents
        recorded before the holders were kept); returns how many."""
        count = 0
        now = math.floor(time.time())
        for operator_id in operator_ids:
            found = await self.redis.zrange(
                keys.consents(operator_id), f"({now}", "+inf", byscore=True, withscores=True
            )
            for raw, score in found:
                until = "inf" if math.isinf(score) else str(int(score))
                await self._hold(operator_id, int(raw), until)
                count += 1
        return count

    async def kept(self, number: int) -> list[tuple[str, str]]:
        """(operator, consent id) of each consent record from `number` still kept, live or
        ended, as listed since this index was kept; oldest entry first."""
        found = await self.redis.zrangebyscore(
            keys.consents_kept(number), f"({math.floor(time.time())}", "+inf"
        )
        pairs = (raw.decode().split(" ", 1) for raw in found)
        return [(operator_id, consent_id) for operator_id, consent_id in pairs]

    async def _keep(
        self, number: int, operator_id: str, consent_id: str, until: float | None
    ) -> None:
        """List the consent under its number until `until` (None: no longer at all), and
        let the index live as long as the last one it lists."""
        if until is None:
            score: str | int = ""
        else:
            score = "+inf" if math.isinf(until) else math.ceil(until)
        await self.redis.eval(
            KEEP_SCRIPT,
            1,
            keys.consents_kept(number),
            f"{operator_id} {consent_id}",
            score,
            math.floor(time.time()),
        )

    async def _hold(self, operator_id: str, number: int, until: str) -> None:
        await self.redis.eval(
            HOLDERS_SCRIPT,
            1,
            keys.consent_holders(number),
            operator_id,
            until,
            self.retention_seconds,
        )

    async def _unhold(self, operator_id: str, number: int) -> None:
        """Take the operator out of the number's holders, unless a consent recorded
        meanwhile is live (it is then put back, with its own end)."""
        await self._hold(operator_id, number, "")
        score = await self.redis.zscore(keys.consents(operator_id), str(number))
        if live(score, time.time()):
            await self._hold(operator_id, number, "inf" if math.isinf(score) else str(int(score)))

    async def end_all(self, operator_id: str, who: str) -> list[tuple[int, str]]:
        """Withdraw every live consent of an operator being revoked, so each record (and
        its evidence) is kept DNC_RETENTION_DAYS from now and then goes, like any ended
        consent. Returns (number, consent id) of each that was live."""
        return await self.end_outside(operator_id, (), who)

    async def end_outside(
        self, operator_id: str, prefixes: Sequence[str], who: str
    ) -> list[tuple[int, str]]:
        """Withdraw the operator's live consents from numbers outside `prefixes` (all of
        them when there are none): an operator that gave up a prefix can no longer
        look its numbers up, so its consents there end as on revocation, rather than stay
        live, out of its reach, until the prefix comes back. Returns (number, consent id)
        of each that was live."""
        found = await self.redis.zrange(
            keys.consents(operator_id), f"({math.floor(time.time())}", "+inf", byscore=True
        )
        numbers = np.array([int(raw) for raw in found], dtype=np.int64)
        if prefixes and len(numbers):
            numbers = numbers[~keys.in_prefixes(numbers, prefixes)]
        ended = []
        for number in numbers.tolist():
            withdrawn = await self.withdraw(operator_id, number, who)
            if withdrawn is not None:
                ended.append((number, withdrawn[0]))
        return ended

    async def current(self, operator_id: str, number: int) -> dict[str, Any] | None:
        """The operator's current consent from `number` (live, or past its `expires_at`
        and kept for the retention), as stored; None when there is none or it was
        withdrawn or superseded."""
        current = await self.redis.get(keys.current_consent(operator_id, str(number)))
        if current is None:
            return None
        fields = await self.redis.hgetall(keys.consent(operator_id, current.decode()))
        if not fields:
            return None
        record = {k.decode(): v.decode() for k, v in fields.items()}
        if "ended" in record:
            return None
        return record

    async def by_id(self, operator_id: str, consent_id: str) -> dict[str, str] | None:
        """A consent's record as kept, whatever became of it (live, expired, withdrawn,
        superseded); None once its retention has passed, or when there is none."""
        if not consent_id.startswith("cns_") or len(consent_id) > 64:
            return None
        fields = await self.redis.hgetall(keys.consent(operator_id, consent_id))
        return {k.decode(): v.decode() for k, v in fields.items()} if fields else None

    async def scope(self, operator_id: str, number: int) -> int:
        """The scope of the operator's live consent from `number` as Redis says now
        (registry.rules.parse_scope); 0 when it holds none."""
        digits = str(number)
        pipe = self.redis.pipeline(transaction=False)
        pipe.zscore(keys.consents(operator_id), digits)
        pipe.hget(keys.consent_scopes(operator_id), digits)
        score, scope = await pipe.execute()
        return scope_of(score, scope, time.time())

    async def scopes(self, operator_id: str, numbers: np.ndarray) -> np.ndarray:
        """The scope of the operator's live consent from each of `numbers` (int64
        digits), 0 where it holds none.

        One round trip when the operator has few live consents (none, usually): all
        of them, matched here. Only with more than that are the numbers sent to Redis.
        A second reads the scopes of the numbers held, if any.
        """
        out = np.zeros(len(numbers), dtype=np.int16)
        if len(numbers) == 0:
            return out
        key = keys.consents(operator_id)
        now = time.time()
        enough = max(FETCH_ALL, len(numbers))
        found = await self.redis.zrange(
            key, f"({math.floor(now)}", "+inf", byscore=True, offset=0, num=enough + 1
        )
        if len(found) <= enough:
            if not found:
                return out
            # Scores are whole seconds: after floor(now) is after now.
            held = np.isin(numbers, np.array([int(n) for n in found], dtype=np.int64))
        else:
            scores = await self.redis.zmscore(key, [str(n) for n in numbers.tolist()])
            held = np.array([live(s, now) for s in scores], dtype=bool)
        at = np.flatnonzero(held)
        if len(at):
            limited = await self.redis.hmget(
                keys.consent_scopes(operator_id), [str(n) for n in numbers[at].tolist()]
            )
            out[at] = [codes.EVERYTHING if s is None else int(s) for s in limited]
        return out

"""Pending subscriber requests: a registration or deregistration waiting for its code.

A request is a hash that lives `ttl` seconds: the kind, the number, the
preferences asked for, a try counter and the SHA-256 of the code salted with
the request id (never the code itself). Next to it an outcome key, without the
number, outlives the request by OUTCOME_DAYS so that a late confirmation learns
why its request is gone (`expired`, `void` after too many wrong codes, `used`)
instead of a bare "not found".

Tries are counted in Redis before the code is compared, one script per try, so
every worker shares the count and concurrent guesses cannot get past the limit.
A right code claims the request for CLAIM_SECONDS, and the request ends (`used`) only
once what it asked for is written: a confirmation whose write failed (Redis down, a
replica not reached) leaves the request open to the next try with the same code, once
the claim is let go or has lapsed, instead of answering `used` for a registration that
was never stored. Whichever confirmation claims it first wins; the others meanwhile are
told it is `busy`, and `used` once it ended, so a code works once.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from registry.store import keys
from registry.store.codes import Preferences

REGISTRATION = "registration"
DEREGISTRATION = "deregistration"
# After this many tries without the right code a request is void.
MAX_TRIES = 5
# How long an outcome (expired, void, used) is remembered after the request itself ends.
OUTCOME_DAYS = 1
# How long a right code holds its request while the confirmation writes: past it, a
# confirmation that died half way (its worker gone) no longer blocks the next try.
CLAIM_SECONDS = 30
# secrets.token_urlsafe(16): 22 characters of a 128-bit random value.
_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{22}")

# KEYS: request, outcome. ARGV: kind, number, channels, allowed, code hash, ttl, outcome ttl.
OPEN_SCRIPT = """
redis.call('HSET', KEYS[1], 'kind', ARGV[1], 'number', ARGV[2], 'channels', ARGV[3],
           'allowed', ARGV[4], 'code', ARGV[5], 'tries', 0)
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('SET', KEYS[2], ARGV[1] .. ':expired', 'EX', ARGV[7])
return 1
"""

# KEYS: request, outcome. ARGV: kind, max tries, now (ms).
# Returns {'open', tries, code hash, number, channels, allowed}, {'ended', outcome},
# {'busy'} (a right code is being confirmed: no try is counted) or {'unknown'}.
TRY_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  local ended = redis.call('GET', KEYS[2])
  if ended then return {'ended', ended} end
  return {'unknown'}
end
local found = redis.call('HMGET', KEYS[1], 'kind', 'code', 'number', 'channels', 'allowed',
                         'claimed')
if found[1] ~= ARGV[1] then return {'unknown'} end
if found[6] and tonumber(found[6]) > tonumber(ARGV[3]) then return {'busy'} end
local tries = redis.call('HINCRBY', KEYS[1], 'tries', 1)
if tries > tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], ARGV[1] .. ':void', 'KEEPTTL')
  return {'ended', ARGV[1] .. ':void'}
end
return {'open', tries, found[2], found[3], found[4], found[5]}
"""

# KEYS: request. ARGV: now (ms), claimed until (ms). Claims an open request that nobody
# else holds: 1; else 'busy', or false when it is gone (ended meanwhile).
CLAIM_SCRIPT = """
local claimed = redis.call('HGET', KEYS[1], 'claimed')
if claimed == false and redis.call('EXISTS', KEYS[1]) == 0 then return false end
if claimed and tonumber(claimed) > tonumber(ARGV[1]) then return 'busy' end
redis.call('HSET', KEYS[1], 'claimed', ARGV[2])
return 1
"""

# KEYS: request. ARGV: claimed until (ms). Lets go of this confirmation's own claim.
RELEASE_SCRIPT = """
if redis.call('HGET', KEYS[1], 'claimed') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'claimed')
end
return 1
"""

# KEYS: request, outcome. ARGV: kind, outcome. Ends the request if it is still open.
# The outcome is written before the request goes: a Redis refusing writes (OOM) stops
# a script at its first write, and leaves the request open rather than lost.
END_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.call('GET', KEYS[2]) or false
end
redis.call('SET', KEYS[2], ARGV[1] .. ':' .. ARGV[2], 'KEEPTTL')
redis.call('DEL', KEYS[1])
return 1
"""


def client_limit_key(address: str) -> str:
    """The counter of codes one client address asked for (registry/store/limits.py)."""
    return f"dnc:limit:{{code:{address}}}"


def number_limit_key(number: int) -> str:
    """The counter of codes sent to one number, registrations and deregistrations alike."""
    return f"dnc:limit:{{code:+{number}}}"


def number_day_limit_key(number: int) -> str:
    """number_limit_key's counter over a day."""
    return f"dnc:limit:{{code-day:+{number}}}"


def new_code() -> str:
    """Six random digits, leading zeros kept."""
    return f"{secrets.randbelow(1_000_000):06d}"


def code_hash(request_id: str, code: str) -> str:
    return hashlib.sha256(f"{request_id}:{code}".encode()).hexdigest()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class PendingRequest:
    id: str
    kind: str
    number: int
    preferences: Preferences
    # Set on a confirmed request: the end of its claim (ms), which `confirming` lets go of.
    claimed_until: int = 0


@dataclass(frozen=True)
class Attempt:
    """The outcome of one confirmation.

    `outcome` is `confirmed` (then `request` is set, claimed: write what it asked for
    within `RequestStore.confirming`), `wrong_code`, `unknown`, `busy` (another
    confirmation holds it right now), or why the request ended: `expired`, `void`, `used`.
    """

    outcome: str
    request: PendingRequest | None = None
    tries_left: int = 0


class RequestStore:
    def __init__(self, redis: Any, ttl_seconds: int) -> None:
        self.redis = redis
        self.ttl = ttl_seconds

    async def open(self, kind: str, number: int, prefs: Preferences) -> tuple[PendingRequest, str]:
        """A new request and its code; only the code's hash is stored."""
        request_id = secrets.token_urlsafe(16)
        code = new_code()
        await self.redis.eval(
            OPEN_SCRIPT,
            2,
            keys.pending_request(request_id),
            keys.request_outcome(request_id),
            kind,
            number,
            prefs.channels,
            prefs.allow_categories,
            code_hash(request_id, code),
            self.ttl,
            self.ttl + OUTCOME_DAYS * 86400,
        )
        return PendingRequest(request_id, kind, number, prefs), code

    async def discard(self, request_id: str) -> None:
        """Forget a request whose code never went out: nobody can confirm it."""
        await self.redis.delete(keys.pending_request(request_id), keys.request_outcome(request_id))

    async def _end(self, request_id: str, kind: str, outcome: str) -> str | None:
        """End an open request with `outcome`; None if it was, else how it had already ended."""
        ended = await self.redis.eval(
            END_SCRIPT,
            2,
            keys.pending_request(request_id),
            keys.request_outcome(request_id),
            kind,
            outcome,
        )
        if ended == 1:
            return None
        return _text(ended).partition(":")[2] if ended else "expired"

    async def confirm(self, request_id: str, kind: str, code: str) -> Attempt:
        """Try `code` against the request; a right code claims the request (once)."""
        if not _REQUEST_ID.fullmatch(request_id):
            return Attempt("unknown")
        now = int(time.time() * 1000)
        reply = await self.redis.eval(
            TRY_SCRIPT,
            2,
            keys.pending_request(request_id),
            keys.request_outcome(request_id),
            kind,
            MAX_TRIES,
            now,
        )
        state = _text(reply[0])
        if state in ("unknown", "busy"):
            return Attempt(state)
        if state == "ended":
            ended_kind, _, outcome = _text(reply[1]).partition(":")
            return Attempt(outcome if ended_kind == kind else "unknown")
        tries, stored, number, channels, allowed = reply[1:]
        tries_left = MAX_TRIES - int(tries)
        if not hmac.compare_digest(_text(stored), code_hash(request_id, code)):
            if tries_left <= 0:
                await self._end(request_id, kind, "void")
            return Attempt("wrong_code", tries_left=tries_left)
        until = now + CLAIM_SECONDS * 1000
        request_key = keys.pending_request(request_id)
        claimed = await self.redis.eval(CLAIM_SCRIPT, 1, request_key, now, until)
        if claimed is None:  # a concurrent confirmation ended it meanwhile
            return Attempt(await self._ended(request_id, kind))
        if claimed != 1:
            return Attempt("busy")
        prefs = Preferences(int(channels), int(allowed))
        return Attempt("confirmed", PendingRequest(request_id, kind, int(number), prefs, until))

    async def _ended(self, request_id: str, kind: str) -> str:
        outcome = await self.redis.get(keys.request_outcome(request_id))
        if outcome is None:
            return "expired"
        ended_kind, _, why = _text(outcome).partition(":")
        return why if ended_kind == kind else "unknown"

    @contextlib.asynccontextmanager
    async def confirming(self, request: PendingRequest) -> AsyncIterator[None]:
        """Write what a confirmed request asked for inside: the request ends (`used`) once
        the block has run, and is let go of, open to the next try, if it raised."""
        try:
            yield
        except BaseException:
            # Best effort: a Redis that is down cannot take the claim back, which then
            # lapses after CLAIM_SECONDS.
            with contextlib.suppress(Exception):
                await self.redis.eval(
                    RELEASE_SCRIPT, 1, keys.pending_request(request.id), request.claimed_until
                )
            raise
        await self._end(request.id, request.kind, "used")

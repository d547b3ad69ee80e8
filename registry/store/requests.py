"""Pending subscriber requests: a registration or deregistration waiting for its code.

A request is a hash that lives `ttl` seconds: the kind, the number, the
preferences asked for, a try counter and the SHA-256 of the code salted with
the request id (never the code itself). Next to it an outcome key, without the
number, outlives the request by OUTCOME_DAYS so that a late confirmation learns
why its request is gone (`expired`, `void` after too many wrong codes, `used`)
instead of a bare "not found".

Tries are counted in Redis before the code is compared, one script per try, so
every worker shares the count and concurrent guesses cannot get past the limit.
A right code takes the request in one more script that deletes it: whichever
confirmation deletes it first wins, so a code works once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
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

# KEYS: request, outcome. ARGV: kind, max tries.
# Returns {'open', tries, code hash, number, channels, allowed}, {'ended', outcome} or {'unknown'}.
TRY_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  local ended = redis.call('GET', KEYS[2])
  if ended then return {'ended', ended} end
  return {'unknown'}
end
local found = redis.call('HMGET', KEYS[1], 'kind', 'code', 'number', 'channels', 'allowed')
if found[1] ~= ARGV[1] then return {'unknown'} end
local tries = redis.call('HINCRBY', KEYS[1], 'tries', 1)
if tries > tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], ARGV[1] .. ':void', 'KEEPTTL')
  return {'ended', ARGV[1] .. ':void'}
end
return {'open', tries, found[2], found[3], found[4], found[5]}
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


@dataclass(frozen=True)
class Attempt:
    """The outcome of one confirmation.

    `outcome` is `confirmed` (then `request` is set), `wrong_code`, `unknown`, or
    why the request ended: `expired`, `void`, `used`.
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
        """Try `code` against the request; a right code takes the request (once)."""
        if not _REQUEST_ID.fullmatch(request_id):
            return Attempt("unknown")
        reply = await self.redis.eval(
            TRY_SCRIPT,
            2,
            keys.pending_request(request_id),
            keys.request_outcome(request_id),
            kind,
            MAX_TRIES,
        )
        state = _text(reply[0])
        if state == "unknown":
            return Attempt("unknown")
        if state == "ended":
            ended_kind, _, outcome = _text(reply[1]).partition(":")
            return Attempt(outcome if ended_kind == kind else "unknown")
        tries, stored, number, channels, allowed = reply[1:]
        tries_left = MAX_TRIES - int(tries)
        if not hmac.compare_digest(_text(stored), code_hash(request_id, code)):
            if tries_left <= 0:
                await self._end(request_id, kind, "void")
            return Attempt("wrong_code", tries_left=tries_left)
        ended = await self._end(request_id, kind, "used")
        if ended is not None:  # a concurrent confirmation got there first
            return Attempt(ended)
        prefs = Preferences(int(channels), int(allowed))
        return Attempt("confirmed", PendingRequest(request_id, kind, int(number), prefs))

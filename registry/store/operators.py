"""Operator accounts and their API keys; keys are stored only as SHA-256 hashes."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from redis.exceptions import TimeoutError as RedisTimeoutError

from registry.store import keys

ROLES = ("operator", "carrier", "admin")


def key_hash(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key() -> str:
    return "dnc_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Operator:
    id: str
    name: str
    role: str
    prefixes: tuple[str, ...] = ()
    rate_limit: int | None = None  # requests a second; None: unlimited

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


# KEYS: the callers index. ARGV: operator, its callers. Claims every caller for the
# operator, or none: returns the first caller another operator holds, else ''.
CLAIM_SCRIPT = """
for i = 2, #ARGV do
  local owner = redis.call('HGET', KEYS[1], ARGV[i])
  if owner and owner ~= ARGV[1] then return ARGV[i] end
end
for i = 2, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], ARGV[1]) end
return ''
"""

# Keeping of the callers index: every caller the operator holds in it and `keep` does not
# list is let go of. Read from the index itself, not from the account's record, so a
# change or a revocation cut off half way leaves nothing held for good: the next one frees
# it. (One pass over the index: callers are thousands, and accounts change rarely.)
_LET_GO = """
local function let_go(index, operator, keep)
  local held = redis.call('HGETALL', index)
  for i = 1, #held, 2 do
    if held[i + 1] == operator and not keep[held[i]] then redis.call('HDEL', index, held[i]) end
  end
end
"""

# KEYS: the callers index. ARGV: operator. Lets go of every caller it holds.
RELEASE_SCRIPT = (
    _LET_GO
    + """
let_go(KEYS[1], ARGV[1], {})
return 1
"""
)

# KEYS: the callers index. ARGV: operator, its callers now. One step: claims them all, or
# none (returns the first another operator holds), and only then lets go of the others.
SWAP_SCRIPT = (
    _LET_GO
    + """
local keep = {}
for i = 2, #ARGV do
  local owner = redis.call('HGET', KEYS[1], ARGV[i])
  if owner and owner ~= ARGV[1] then return ARGV[i] end
  keep[ARGV[i]] = true
end
for i = 2, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], ARGV[1]) end
let_go(KEYS[1], ARGV[1], keep)
return ''
"""
)


class AdminPrefixes(ValueError):
    """Prefixes asked for an admin-role account, which reaches every number."""


class AccountBusy(RuntimeError):
    """Another change to the account is under way: its callers are read, claimed and
    written in steps, so two at once could leave the record and the index apart."""


# How long a change may hold an account: its steps take milliseconds, and a change is cut
# off (a 503) well before this, whatever Redis does; a worker that died holding it frees it
# this long after.
CHANGE_HOLD_MS = 120_000
CHANGE_LIMIT_SECONDS = 60.0

# KEYS: an account's change token. ARGV: the token. Frees it if it is still this one's.
FREE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class CallerTaken(ValueError):
    """A caller another active operator declared."""

    def __init__(self, caller: str) -> None:
        super().__init__(caller)
        self.caller = caller


class OperatorStore:
    def __init__(self, redis: Any, retention_days: int) -> None:
        self.redis = redis
        self.retention_days = retention_days

    async def create(
        self,
        name: str,
        role: str,
        prefixes: list[str],
        rate_limit: int | None,
        callers: list[str] | None = None,
    ) -> tuple[Operator, str]:
        """A new account with its key. `callers` (the numbers, short codes, sender ids and
        signatures it calls and texts from, as complaints name them) are claimed first:
        one another active operator declared raises CallerTaken, and nothing is created."""
        operator = Operator("op_" + secrets.token_hex(6), name, role, tuple(prefixes), rate_limit)
        callers = callers or []
        if callers:
            taken = await self.redis.eval(CLAIM_SCRIPT, 1, keys.CALLERS, operator.id, *callers)
            if taken:
                raise CallerTaken(taken.decode() if isinstance(taken, bytes) else taken)
        try:
            return await self._write_new(operator, prefixes, callers, rate_limit)
        except BaseException:
            if callers:  # no account to hold them: free for the next one at once
                with contextlib.suppress(Exception):
                    await self.redis.eval(RELEASE_SCRIPT, 1, keys.CALLERS, operator.id)
            raise

    async def _write_new(
        self, operator: Operator, prefixes: list[str], callers: list[str], rate_limit: int | None
    ) -> tuple[Operator, str]:
        name, role = operator.name, operator.role
        api_key = new_api_key()
        digest = key_hash(api_key)
        now = int(time.time())
        term = _term(now, prefixes or None, callers, rate_limit)
        await self.redis.hset(
            keys.operator(operator.id),
            mapping={
                "name": name,
                "role": role,
                "prefixes": ",".join(prefixes),
                "callers": ",".join(callers),
                "rate_limit": "" if rate_limit is None else str(rate_limit),
                "created_at": str(now),
                "key_hash": digest,
                "terms": orjson.dumps([term]),
            },
        )
        await self.redis.set(keys.api_key(digest), operator.id)
        await self.redis.sadd(keys.OPERATORS, operator.id)
        return operator, api_key

    async def get(self, operator_id: str) -> Operator | None:
        return _active(operator_id, await self.redis.hgetall(keys.operator(operator_id)))

    async def record(self, operator_id: str) -> dict[str, Any] | None:
        """An account as kept, revoked ones included for the retention: its stored fields
        (never the key's hash), None when there is none."""
        fields = await self.redis.hgetall(keys.operator(operator_id))
        return _record(operator_id, fields, self._oldest()) if fields else None

    def _oldest(self, now: float | None = None) -> int:
        """The end before which an account's past terms are no longer kept."""
        return int((time.time() if now is None else now) - self.retention_days * 86400)

    async def active(self) -> list[dict[str, Any]]:
        """Every active account's record, oldest first."""
        ids = sorted(raw.decode() for raw in await self.redis.smembers(keys.OPERATORS))
        pipe = self.redis.pipeline(transaction=False)
        for operator_id in ids:
            pipe.hgetall(keys.operator(operator_id))
        found = [
            _record(operator_id, fields, self._oldest())
            for operator_id, fields in zip(ids, await pipe.execute(), strict=True)
            if fields and b"revoked_at" not in fields
        ]
        return sorted(found, key=lambda r: (r["created_at"], r["operator_id"]))

    async def by_key(self, api_key: str) -> Operator | None:
        digest = key_hash(api_key)
        operator_id = await self.redis.get(keys.api_key(digest))
        if operator_id is None:
            return None
        fields = await self.redis.hgetall(keys.operator(operator_id.decode()))
        # The account's key now: a replaced key whose index entry a crash left behind (see
        # replace_key) opens nothing.
        if fields.get(b"key_hash") != digest.encode():
            return None
        return _active(operator_id.decode(), fields)

    async def replace_key(self, operator_id: str) -> str | None:
        """A new key for an active account, and its old key refused from now on (by other
        workers once their cache's ttl has passed). The account keeps its id, so its
        consents, callers, receipts and complaints stay its own. None when there is no
        active account."""
        async with self._changing(operator_id):
            fields = await self.redis.hgetall(keys.operator(operator_id))
            if not fields or b"revoked_at" in fields:
                return None
            api_key = new_api_key()
            digest = key_hash(api_key)
            # New entry, then the account's hash, then the old entry: cut off anywhere, the
            # old key works until the hash changes and never after (by_key compares).
            await self.redis.set(keys.api_key(digest), operator_id)
            await self.redis.hset(keys.operator(operator_id), "key_hash", digest)
            await self.redis.delete(keys.api_key(fields[b"key_hash"].decode()))
            return api_key

    async def revoke(self, operator_id: str) -> dict[str, Any] | None:
        """Revoke an account; its record stays DNC_RETENTION_DAYS so past scrubs keep a
        sender. The record as it stood before (what the account held until now), None when
        there is no active account."""
        async with self._changing(operator_id):
            return await self._revoke(operator_id)

    async def _revoke(self, operator_id: str) -> dict[str, Any] | None:
        fields = await self.redis.hgetall(keys.operator(operator_id))
        if not fields:
            return None
        if b"revoked_at" in fields:
            # A revocation cut off before it let go of the callers: they go now.
            await self.redis.eval(RELEASE_SCRIPT, 1, keys.CALLERS, operator_id)
            return None
        await self.redis.delete(keys.api_key(fields[b"key_hash"].decode()))
        now = int(time.time())
        # Its last terms end with it, and are kept the retention with the record.
        terms = _ended(_terms(fields), now, self._oldest(now))
        await self.redis.hset(
            keys.operator(operator_id),
            mapping={"revoked_at": str(now), "terms": orjson.dumps(terms)},
        )
        await self.redis.expire(keys.operator(operator_id), self.retention_days * 86400)
        await self.redis.srem(keys.OPERATORS, operator_id)
        await self.redis.eval(RELEASE_SCRIPT, 1, keys.CALLERS, operator_id)
        return _record(operator_id, fields, self._oldest(now))

    @contextlib.asynccontextmanager
    async def _changing(self, operator_id: str) -> AsyncIterator[None]:
        """One change to an account at a time (AccountBusy for a second)."""
        token = secrets.token_hex(8)
        key = keys.operator_changing(operator_id)
        if not await self.redis.set(key, token, nx=True, px=CHANGE_HOLD_MS):
            raise AccountBusy(operator_id)
        try:
            async with asyncio.timeout(CHANGE_LIMIT_SECONDS):
                yield
        except TimeoutError:
            raise RedisTimeoutError(
                f"a change to operator {operator_id} took over {CHANGE_LIMIT_SECONDS:g} s"
            ) from None
        finally:
            await self.redis.eval(FREE_SCRIPT, 1, key, token)

    async def change(
        self, operator_id: str, changes: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Change an active account's `callers` (the new list: ones another active
        operator declared raise CallerTaken, and nothing changes), `rate_limit` (None:
        none) and `prefixes` (None: every number). Its record before and after (what it
        held until now is part of the record to keep), or None when there is no active
        account."""
        async with self._changing(operator_id):
            return await self._change(operator_id, changes)

    async def _change(
        self, operator_id: str, changes: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        key = keys.operator(operator_id)
        fields = await self.redis.hgetall(key)
        if not fields or b"revoked_at" in fields:
            return None
        update: dict[str, str] = {}
        if "callers" in changes:
            new = list(changes["callers"])
            taken = await self.redis.eval(SWAP_SCRIPT, 1, keys.CALLERS, operator_id, *new)
            if taken:
                raise CallerTaken(taken.decode() if isinstance(taken, bytes) else taken)
            update["callers"] = ",".join(new)
        if "rate_limit" in changes:
            rate = changes["rate_limit"]
            update["rate_limit"] = "" if rate is None else str(rate)
        if "prefixes" in changes:
            if changes["prefixes"] and fields[b"role"] == b"admin":
                raise AdminPrefixes(operator_id)
            update["prefixes"] = ",".join(changes["prefixes"] or [])
        before = _record(operator_id, fields, self._oldest())
        if update:
            now = int(time.time())
            terms = _terms(fields)
            current = _term(now, before["prefixes"], before["callers"], before["rate_limit"])
            current.update({name: changes[name] for name in TERMS if name in changes})
            if any(terms[-1][name] != current[name] for name in TERMS):
                # The terms in force end now and the new ones begin: a subscription that
                # ended stays on the account's record the retention after its end.
                terms = [*_ended(terms, now, self._oldest(now)), current]
                update["terms"] = orjson.dumps(terms).decode()
            await self.redis.hset(key, mapping=update)
        after = await self.record(operator_id)
        return (before, after) if after is not None else None

    async def owners(self, callers: list[str]) -> list[str | None]:
        """The active operator that declared each caller, if any."""
        if not callers:
            return []
        found = await self.redis.hmget(keys.CALLERS, callers)
        return [None if owner is None else owner.decode() for owner in found]

    async def admin_key_matches(self, api_key: str) -> bool:
        stored = await self.redis.get(keys.ADMIN_KEY_HASH)
        return stored is not None and secrets.compare_digest(stored.decode(), key_hash(api_key))

    async def create_admin_key(self) -> str | None:
        """A generated administrator key on first start; None when one exists already."""
        api_key = new_api_key()
        created = await self.redis.set(keys.ADMIN_KEY_HASH, key_hash(api_key), nx=True)
        return api_key if created else None


# How the audit trail writes an account's terms: every field a string, and no value that
# could be read two ways (an empty string was once both "every number" and "none").
EVERY_NUMBER = "all"
NOTHING = "none"
TERMS = ("prefixes", "callers", "rate_limit")


def audited(name: str, value: object) -> str:
    """One of an account's terms as the audit trail writes it: a list comma-separated,
    prefixes None as `all` (every number), no callers or no rate limit as `none`."""
    if value is None:
        return EVERY_NUMBER if name == "prefixes" else NOTHING
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) or NOTHING
    return str(value)


def audited_terms(record: dict[str, Any]) -> dict[str, str]:
    """An account's prefixes, callers and rate limit (a record as `record` gives it) as
    the audit trail writes them: what it was subscribed to and sent from. Callers are the
    account's own numbers and sender ids, no subscriber's."""
    return {name: audited(name, record.get(name)) for name in TERMS}


def _active(operator_id: str, fields: dict[bytes, bytes]) -> Operator | None:
    """The account these stored fields describe, None when none or revoked."""
    if not fields or b"revoked_at" in fields:
        return None
    prefixes = fields.get(b"prefixes", b"").decode()
    rate = fields.get(b"rate_limit", b"").decode()
    return Operator(
        operator_id,
        fields[b"name"].decode(),
        fields[b"role"].decode(),
        tuple(p for p in prefixes.split(",") if p),
        int(rate) if rate else None,
    )


def _term(since: int | None, prefixes: Any, callers: Any, rate_limit: int | None) -> dict[str, Any]:
    """One period of an account's terms: what it was subscribed to (`prefixes`, None for
    every number) and sent from, and its rate limit, `from` since `until` (None: still
    in force)."""
    prefixes = None if prefixes is None else list(prefixes)
    return {"from": since, "until": None, "prefixes": prefixes, "callers": list(callers),
            "rate_limit": rate_limit}  # fmt: skip


def _terms(fields: dict[bytes, bytes]) -> list[dict[str, Any]]:
    """The periods of an account's terms as stored, oldest first. An account from before
    they were kept has one, its terms now, since a time unknown (`from` None)."""
    if b"terms" in fields:
        terms: list[dict[str, Any]] = orjson.loads(fields[b"terms"])
        return terms
    text = {name.decode(): value.decode() for name, value in fields.items()}
    rate = text.get("rate_limit", "")
    term = _term(
        None,
        [p for p in text.get("prefixes", "").split(",") if p] or None,
        [c for c in text.get("callers", "").split(",") if c],
        int(rate) if rate else None,
    )
    if text.get("revoked_at"):
        term["until"] = int(text["revoked_at"])
    return [term]


def _ended(terms: list[dict[str, Any]], now: int, oldest: int) -> list[dict[str, Any]]:
    """The periods with the one in force ended `now`, and none that ended before
    `oldest` (past the retention)."""
    ended = [{**t, "until": now} if t["until"] is None else t for t in terms]
    return [t for t in ended if t["until"] >= oldest]


def _record(operator_id: str, fields: dict[bytes, bytes], oldest: int) -> dict[str, Any]:
    text = {name.decode(): value.decode() for name, value in fields.items()}
    rate = text.get("rate_limit", "")
    return {
        "operator_id": operator_id,
        "name": text.get("name", ""),
        "role": text.get("role", ""),
        # null: every number, as POST and PATCH take it (an empty list is refused there).
        "prefixes": [p for p in text.get("prefixes", "").split(",") if p] or None,
        "callers": [c for c in text.get("callers", "").split(",") if c],
        "rate_limit": int(rate) if rate else None,
        "created_at": int(text.get("created_at") or 0),
        "revoked_at": int(text["revoked_at"]) if text.get("revoked_at") else None,
        # Every period of its terms whose end is still kept, the one in force last.
        "terms": [t for t in _terms(fields) if t["until"] is None or t["until"] >= oldest],
    }

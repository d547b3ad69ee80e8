"""API keys to operators: `Authorization: Bearer KEY`, roles, and a short per-worker cache."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from registry.api.errors import ApiError
from registry.api.limits import check_operator
from registry.store.connect import answered
from registry.store.operators import Operator, OperatorStore

ADMIN = Operator("admin", "administrator", "admin")


# RFC 6750: a 401 names the scheme it wants.
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="dnc-registry"'}


class Authenticator:
    """Resolves keys; a found key is cached `ttl` seconds, so a revocation takes that long.

    A key in use is read again in the background once its entry has a quarter of its
    time left, while the entry still answers: a busy key never expires under load, which
    would send every request that arrives until the read lands to Redis at once (every
    `ttl` seconds, tens of milliseconds of stall at tens of thousands of look-ups a
    second). Concurrent reads of one key are one read, shared.
    """

    def __init__(self, operators: OperatorStore, admin_key: str | None, ttl: float) -> None:
        self.operators = operators
        self.admin_key = admin_key
        self.ttl = ttl
        # Keyed by the whole header value as sent: a repeat caller costs one dict look-up,
        # not a parse and a hash (single look-ups, benchmarks/RESULTS.md goal 5).
        self._cache: dict[str, tuple[Operator, float]] = {}
        self._reading: dict[str, asyncio.Task[Operator | None]] = {}
        self._forgotten = 0  # forget() calls: a read begun before one is not cached

    def cached(self, authorization: str) -> Operator | None:
        """The operator this header resolved to within the last `ttl` seconds, if any."""
        found = self._cache.get(authorization)
        if found is None:
            return None
        left = found[1] - time.monotonic()
        if left <= 0:
            return None
        if left < self.ttl / 4 and authorization not in self._reading:
            self._read(authorization, _key_of(authorization))
        return found[0]

    async def resolve(self, authorization: str | None) -> Operator:
        if authorization is not None:
            cached = self.cached(authorization)
            if cached is not None:
                return cached
        if not authorization:
            raise ApiError(
                401,
                "missing_key",
                "send your API key as 'Authorization: Bearer KEY'",
                headers=CHALLENGE,
            )
        api_key = _key_of(authorization)
        if not api_key:
            raise ApiError(
                401,
                "missing_key",
                "the Authorization header must be 'Bearer KEY'",
                headers=CHALLENGE,
            )
        if self.admin_key is not None and secrets.compare_digest(
            api_key.encode("utf-8", "surrogateescape"),
            self.admin_key.encode("utf-8", "surrogateescape"),
        ):
            return ADMIN
        operator = await asyncio.shield(self._read(authorization, api_key))
        if operator is None:
            raise ApiError(
                401,
                "unknown_key",
                "this API key is not known or was revoked",
                headers={"WWW-Authenticate": 'Bearer realm="dnc-registry", error="invalid_token"'},
            )
        return operator

    def _read(self, authorization: str, api_key: str) -> asyncio.Task[Operator | None]:
        """The read of `api_key` in Redis under way for this header, or a new one; it
        caches what it finds (and drops the header's entry if the key is gone)."""
        reading = self._reading.get(authorization)
        if reading is None:
            look_up = self._look_up(authorization, api_key, self._forgotten)
            reading = asyncio.get_running_loop().create_task(look_up)
            self._reading[authorization] = reading
            reading.add_done_callback(self._read_done)
        return reading

    async def _look_up(self, authorization: str, api_key: str, forgotten: int) -> Operator | None:
        started = time.monotonic()
        try:
            async with answered("a key check"):
                operator = await self.operators.by_key(api_key)
                if operator is None and await self.operators.admin_key_matches(api_key):
                    operator = ADMIN
        finally:
            del self._reading[authorization]
        if operator is None:
            self._cache.pop(authorization, None)
        elif forgotten == self._forgotten:
            if len(self._cache) > 10_000:
                self._cache.clear()
            # From the read's start: a revocation after it takes at most `ttl` here.
            self._cache[authorization] = (operator, started + self.ttl)
        return operator

    @staticmethod
    def _read_done(task: asyncio.Task[Operator | None]) -> None:
        # A background read's failure is its waiters' (a 503); one nobody waited for
        # leaves the entry to expire as before, and is not logged as never retrieved.
        if not task.cancelled():
            task.exception()

    def forget(self, operator_id: str) -> None:
        """Drop a revoked operator at once in this worker (others wait out the ttl)."""
        self._forgotten += 1
        self._cache = {k: v for k, v in self._cache.items() if v[0].id != operator_id}


def _key_of(authorization: str) -> str:
    """The key in a `Bearer KEY` header, "" if it holds none."""
    scheme, _, api_key = authorization.partition(" ")
    api_key = api_key.strip()
    if scheme.lower() != "bearer" or not api_key:
        return ""
    # Header values arrive decoded as Latin-1 (HTTP's bytes, one char each); a key is
    # UTF-8 text, as DNC_ADMIN_KEY is. compare_digest takes str of ASCII only: bytes.
    raw = api_key.encode("latin-1", "replace")
    # Bytes that are no UTF-8 stay as they came: no key has them, a 401 below.
    with contextlib.suppress(UnicodeDecodeError):
        api_key = raw.decode("utf-8")
    return api_key


def require(*roles: str) -> Callable[[Request], Awaitable[Operator]]:
    """A dependency that admits the given roles, and administrators everywhere.

    It also counts the request against the account's `rate_limit`, if it has one.
    """

    async def dependency(request: Request) -> Operator:
        auth: Authenticator = request.app.state.services.auth
        operator = await auth.resolve(request.headers.get("authorization"))
        if not operator.is_admin and operator.role not in roles:
            raise ApiError(
                403,
                "forbidden",
                f"this endpoint is for the {' or '.join(roles)} role; your key is {operator.role}",
            )
        await check_operator(request, operator)
        return operator

    return dependency


# The caller's account, for route signatures: `operator: OperatorKey`.
OperatorKey = Annotated[Operator, Depends(require("operator"))]
CarrierKey = Annotated[Operator, Depends(require("carrier"))]
AdminKey = Annotated[Operator, Depends(require("admin"))]

"""API keys to operators: `Authorization: Bearer KEY`, roles, and a short per-worker cache."""

from __future__ import annotations

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
    """Resolves keys; a found key is cached `ttl` seconds, so a revocation takes that long."""

    def __init__(self, operators: OperatorStore, admin_key: str | None, ttl: float) -> None:
        self.operators = operators
        self.admin_key = admin_key
        self.ttl = ttl
        # Keyed by the whole header value as sent: a repeat caller costs one dict look-up,
        # not a parse and a hash (single look-ups, benchmarks/RESULTS.md goal 5).
        self._cache: dict[str, tuple[Operator, float]] = {}

    def cached(self, authorization: str) -> Operator | None:
        """The operator this header resolved to within the last `ttl` seconds, if any."""
        found = self._cache.get(authorization)
        return found[0] if found is not None and found[1] > time.monotonic() else None

    async def resolve(self, authorization: str | None) -> Operator:
        if authorization is not None:
            cached = self._cache.get(authorization)
            if cached is not None and cached[1] > time.monotonic():
                return cached[0]
        if not authorization:
            raise ApiError(
                401,
                "missing_key",
                "send your API key as 'Authorization: Bearer KEY'",
                headers=CHALLENGE,
            )
        scheme, _, api_key = authorization.partition(" ")
        api_key = api_key.strip()
        if scheme.lower() != "bearer" or not api_key:
            raise ApiError(
                401,
                "missing_key",
                "the Authorization header must be 'Bearer KEY'",
                headers=CHALLENGE,
            )
        # Header values arrive decoded as Latin-1 (HTTP's bytes, one char each); a key is
        # UTF-8 text, as DNC_ADMIN_KEY is. compare_digest takes str of ASCII only: bytes.
        raw = api_key.encode("latin-1", "replace")
        # Bytes that are no UTF-8 stay as they came: no key has them, a 401 below.
        with contextlib.suppress(UnicodeDecodeError):
            api_key = raw.decode("utf-8")
        if self.admin_key is not None and secrets.compare_digest(
            api_key.encode("utf-8", "surrogateescape"),
            self.admin_key.encode("utf-8", "surrogateescape"),
        ):
            return ADMIN
        async with answered("a key check"):
            operator = await self.operators.by_key(api_key)
            if operator is None and await self.operators.admin_key_matches(api_key):
                operator = ADMIN
        if operator is None:
            self._cache.pop(authorization, None)
            raise ApiError(
                401,
                "unknown_key",
                "this API key is not known or was revoked",
                headers={"WWW-Authenticate": 'Bearer realm="dnc-registry", error="invalid_token"'},
            )
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[authorization] = (operator, time.monotonic() + self.ttl)
        return operator

    def forget(self, operator_id: str) -> None:
        """Drop a revoked operator at once in this worker (others wait out the ttl)."""
        self._cache = {k: v for k, v in self._cache.items() if v[0].id != operator_id}


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

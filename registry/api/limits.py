"""Rate limits at the edge: the public status check per client, operator keys per account.

Both are fixed windows counted in Redis (registry.store.limits), so every
worker and every process on the same Redis shares them. Over the limit is a
`429 rate_limited` with `Retry-After`: the seconds until the window ends.
"""

from __future__ import annotations

import functools
import ipaddress

from fastapi import Request

from registry.api.errors import ApiError
from registry.store import limits
from registry.store.operators import Operator

STATUS_WINDOW_MS = 60_000
OPERATOR_WINDOW_MS = 1_000


def client_address(request: Request) -> str:
    """The client a per-address limit counts: the address uvicorn resolved (the direct
    peer's, or the one a proxy named in DNC_TRUSTED_PROXIES put in X-Forwarded-For;
    anyone else's is ignored), an IPv6 one as its /64. One subscriber line or host holds
    a whole /64, so counting its addresses one by one would let it enumerate the registry."""
    host = request.client.host if request.client else "unknown"
    return limit_client(host)


@functools.lru_cache(maxsize=4096)
def limit_client(host: str) -> str:
    """`host` as client_address counts it: IPv4 as it is, IPv6 as its /64 (an IPv4-mapped
    one as its IPv4), anything else (a unix socket's name) as it is."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])  # no zone index
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def rate_limited(hit: limits.Hit, message: str, window_seconds: int, **details: object) -> ApiError:
    """The 429 of every limit: the limit, its window and when to retry, in details and in
    Retry-After."""
    return ApiError(
        429,
        "rate_limited",
        message,
        {
            "limit": hit.limit,
            **details,
            "window_seconds": window_seconds,
            "retry_after": hit.retry_after,
        },
        headers={"Retry-After": str(hit.retry_after)},
    )


async def check_status_client(request: Request) -> None:
    """Count one public status check of this client; a 429 past the per-minute limit."""
    services = request.app.state.services
    limit = services.settings.status_checks_per_minute
    address = client_address(request)
    hit = await limits.hit(
        services.redis, limits.status_check_key(address), limit, STATUS_WINDOW_MS
    )
    if not hit.allowed:
        raise rate_limited(
            hit,
            f"at most {limit} status checks a minute from one address; "
            f"retry in {hit.retry_after} s (operators scrub lists with an API key)",
            STATUS_WINDOW_MS // 1000,
        )


async def check_operator(request: Request, operator: Operator) -> None:
    """Count one request of a rate-limited account; accounts without a limit cost nothing."""
    if operator.rate_limit is None:
        return
    redis = request.app.state.services.redis
    key = limits.operator_key(operator.id)
    hit = await limits.hit(redis, key, operator.rate_limit, OPERATOR_WINDOW_MS)
    if not hit.allowed:
        raise rate_limited(
            hit,
            f"this key is limited to {operator.rate_limit} requests a second; "
            f"retry in {hit.retry_after} s",
            OPERATOR_WINDOW_MS // 1000,
        )

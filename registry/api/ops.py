"""Operations endpoints: liveness, readiness, metrics."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from registry.api.errors import error_response, registry_lost
from registry.api.responses import JSON
from registry.store import connect, keys

if TYPE_CHECKING:
    from registry.api.app import Services

log = logging.getLogger("dnc.api")
router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process lives (says nothing of Redis)."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSON:
    """Ready when Redis answers and this worker's Bloom filter is loaded."""
    services = request.app.state.services
    try:
        await connect.ping(services.redis)
    except Exception:  # noqa: BLE001 - any failure to answer is "not ready"
        return error_response(503, "redis_unavailable", "the registry store does not answer")
    if services.bloom.lost:
        err = registry_lost()
        return error_response(err.status, err.code, err.message, headers=err.headers)
    if not services.bloom.ready:
        return error_response(503, "loading", "the Bloom filter is still being built")
    return JSON({"status": "ready", "registry_version": services.bloom.version})


def refresh(services: Services) -> None:
    """Copy what other parts count into the worker's metrics."""
    bloom = services.bloom.bloom
    values = services.metrics.values
    values["dnc_registry_version"] = services.bloom.version
    values["dnc_bloom_numbers"] = bloom.count if bloom else 0
    values["dnc_bloom_ready"] = 1 if bloom else 0
    values["dnc_lookup_round_trips_total"] = services.lookups.rounds
    values["dnc_lookup_catch_ups_total"] = services.lookups.catch_ups


async def publish(services: Services) -> None:
    """This worker's samples where the other workers' scrapes read them."""
    refresh(services)
    metrics = services.metrics
    async with connect.answered("a metrics update"):
        await services.redis.hset(keys.METRICS, metrics.id, metrics.published())


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> PlainTextResponse:
    """Every live worker's counters: this one's now, the others' as last published."""
    services = request.app.state.services
    refresh(services)
    others: dict[Any, bytes] = {}
    try:
        async with connect.answered("a metrics read"):
            others = await services.redis.hgetall(keys.METRICS)
            stale = services.metrics.stale(others)
            if stale:
                await services.redis.hdel(keys.METRICS, *stale)
    except Exception as exc:  # noqa: BLE001 - Redis away: this worker's own counters
        log.warning("metrics of the other workers not read: %s", exc)
    return PlainTextResponse(
        services.metrics.render(others), media_type="text/plain; version=0.0.4; charset=utf-8"
    )

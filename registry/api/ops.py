"""Operations endpoints: liveness, readiness, metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from registry.api.errors import error_response
from registry.api.responses import JSON
from registry.store import connect

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
    if not services.bloom.ready:
        return error_response(503, "loading", "the Bloom filter is still being built")
    return JSON({"status": "ready", "registry_version": services.bloom.version})


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> PlainTextResponse:
    services = request.app.state.services
    bloom = services.bloom.bloom
    services.metrics.gauges["dnc_registry_version"] = services.bloom.version
    services.metrics.gauges["dnc_bloom_numbers"] = bloom.count if bloom else 0
    services.metrics.gauges["dnc_bloom_ready"] = 1 if bloom else 0
    lookups = services.lookups
    services.metrics.totals["dnc_lookup_round_trips_total"] = (
        "Redis round trips made for single look-ups (each shared by the look-ups waiting).",
        lookups.rounds,
    )
    services.metrics.totals["dnc_lookup_catch_ups_total"] = (
        "Look-up round trips that found the registry changed and caught the Bloom filter up.",
        lookups.catch_ups,
    )
    return PlainTextResponse(
        services.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )

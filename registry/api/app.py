"""The app factory and the services each worker shares across requests."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, Request

from registry import embedded, fastnumbers
from registry.api import (
    admin,
    carrier,
    complaints,
    errors,
    forms,
    middleware,
    openapi,
    operator,
    ops,
    pages,
    scrub,
    subscriber,
)
from registry.api import consents as consents_api
from registry.api.auth import ADMIN, Authenticator
from registry.api.lookup import LookupRoute
from registry.api.responses import JSON
from registry.bloom import RegisteredFilter
from registry.config import Settings, load_settings
from registry.freshness import Lookups
from registry.metrics import Metrics
from registry.notifier import Notifier, build_notifier
from registry.scrub import Scrubber
from registry.store import keys, retention
from registry.store.audit import AuditLog
from registry.store.complaints import ComplaintStore
from registry.store.connect import answered, async_client
from registry.store.consents import ConsentStore
from registry.store.operators import OperatorStore
from registry.store.receipts import ReceiptStore
from registry.store.registrations import RegistrationStore
from registry.store.replication import Replication

log = logging.getLogger("dnc.api")
# How often a worker pulls the change stream on its own, between requests.
FOLLOW_INTERVAL = 1.0
# Bodies other than a scrub's: room for an SMS text of 10,000 characters even when every
# one is an emoji escaped as a JSON surrogate pair (12 bytes), and the envelope.
SMALL_BODY_BYTES = 128 * 1024


@dataclass
class Services:
    settings: Settings
    redis: Any
    registrations: RegistrationStore
    operators: OperatorStore
    receipts: ReceiptStore
    bloom: RegisteredFilter
    lookups: Lookups
    scrubber: Scrubber
    auth: Authenticator
    metrics: Metrics
    audit: AuditLog
    notifier: Notifier
    replication: Replication | None  # with DNC_WAIT_REPLICAS


def build_services(settings: Settings) -> Services:
    if settings.redis_url is None:
        raise ValueError("the API needs DNC_REDIS_URL; `dnc serve` sets it for the embedded Redis")
    redis = async_client(settings.redis_url)
    registrations = RegistrationStore(redis, settings.retention_days)
    operators = OperatorStore(redis, settings.retention_days)
    bloom = RegisteredFilter(registrations)
    return Services(
        settings=settings,
        redis=redis,
        registrations=registrations,
        operators=operators,
        receipts=ReceiptStore(redis, settings.retention_days),
        bloom=bloom,
        lookups=Lookups(bloom),
        scrubber=Scrubber(registrations, bloom),
        auth=Authenticator(operators, settings.admin_key, settings.auth_cache_seconds),
        metrics=Metrics(),
        audit=AuditLog(redis, settings.retention_days),
        notifier=build_notifier(settings.notifier),
        replication=(
            Replication(redis, settings.wait_replicas, settings.wait_replicas_ms)
            if settings.wait_replicas
            else None
        ),
    )


async def _index_consent_holders(services: Services) -> None:
    """Once for a registry: enter consents recorded before their numbers' holders were
    kept, so a subscriber's opt-out ends them too (registry/api/consents.py)."""
    if await services.redis.exists(keys.CONSENT_HOLDERS_INDEXED):
        return
    ids = sorted(raw.decode() for raw in await services.redis.smembers(keys.OPERATORS))
    store = ConsentStore(services.redis, services.settings.retention_days)
    count = await store.index_holders([*ids, ADMIN.id])
    await services.redis.set(keys.CONSENT_HOLDERS_INDEXED, str(count))


async def _follow(services: Services) -> None:
    """Build the Bloom filter (retrying while Redis is away), then keep it current."""
    while not services.bloom.ready:
        try:
            await services.bloom.build()
        except Exception as exc:  # noqa: BLE001 - any failure here means "try again soon"
            errors.log_failure(log, "bloom filter not built yet", exc)
            await asyncio.sleep(0.5)
    # Everything alive now (modules, metadata, the number machines) lives as long as the
    # worker: out of the collector's sight, so its full passes stop walking it under load.
    gc.collect()
    gc.freeze()
    try:
        await _index_consent_holders(services)
    except Exception as exc:  # noqa: BLE001 - the next worker to start tries again
        errors.log_failure(log, "consents recorded before this version not indexed yet", exc)
    try:
        await ComplaintStore(services.redis, services.settings.retention_days).queue_unqueued()
    except Exception as exc:  # noqa: BLE001 - the next worker to start tries again
        errors.log_failure(log, "complaints kept from before the queue not queued yet", exc)
    trimmed_at = -retention.EVERY_SECONDS  # the first turn trims, whatever the clock's zero
    while True:
        await asyncio.sleep(FOLLOW_INTERVAL)
        try:
            await services.bloom.catch_up()
        except Exception as exc:  # noqa: BLE001 - followed again on the next turn
            errors.log_failure(log, "change stream not followed", exc)
        if time.monotonic() - trimmed_at >= retention.EVERY_SECONDS:
            try:
                await retention.trim(services.redis, services.settings.retention_days)
                trimmed_at = time.monotonic()
            except Exception as exc:  # noqa: BLE001 - tried again on the next turn
                errors.log_failure(log, "streams not trimmed to the retention", exc)
        try:
            await ops.publish(services)  # for the other workers' /metrics
        except Exception as exc:  # noqa: BLE001
            log.debug("metrics not published: %s", exc)


def create_app(settings: Settings | None = None, fast_lookups: bool = True) -> LookupRoute:
    """The worker's ASGI app: FastAPI behind the look-up route (registry/api/lookup.py).

    Without `fast_lookups`, FastAPI's documented route answers look-ups too.
    """
    settings = settings or load_settings()
    services = build_services(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The number machines of the default region, built before the first scrub needs them.
        await asyncio.to_thread(fastnumbers.warm, settings.default_region)
        follower = asyncio.create_task(_follow(services))
        try:
            yield
        finally:
            # Python 3.11's wait_for (inside redis-py's calls) can swallow a cancel that
            # lands as the call completes, and the follower would then run on forever:
            # cancel it until it has stopped.
            while not follower.done():
                follower.cancel()
                await asyncio.wait({follower}, timeout=0.1)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                follower.result()
            services.lookups.close()
            await services.notifier.aclose()
            if services.replication is not None:
                await services.replication.aclose()
            with contextlib.suppress(Exception):  # a stopped worker leaves the others' scrapes
                async with answered("a metrics removal"):
                    await services.redis.hdel(keys.METRICS, services.metrics.id)
            await services.redis.aclose()

    app = FastAPI(
        title="dnc-registry",
        version="0.1.0",
        summary="National do-not-call registry: registrations, look-ups and bulk scrubs.",
        default_response_class=JSON,
        lifespan=lifespan,
        # /docs is served by registry/api/pages.py from local files; ReDoc only from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = services
    errors.install(app, not_found_page=forms.not_found_page)
    forms.install(app)  # a form that cannot be read is answered with a page
    openapi.install(app)
    routers = [
        ops,
        admin,
        carrier,
        subscriber,
        operator,
        scrub,
        complaints,
        pages,
        forms,
        consents_api,
    ]
    # What reads or writes the registry is a 503 while this worker finds it gone from
    # Redis; health, metrics and the pages are not (the forms reach the API's routes).
    guarded = {admin, carrier, subscriber, operator, scrub, complaints, consents_api}
    for module in routers:
        dependencies = [Depends(_registry_present)] if module in guarded else []
        app.include_router(module.router, dependencies=dependencies)
    # The last added runs first: responses are counted under the method the client sent.
    if services.replication is not None:
        app.add_middleware(middleware.Replicated, replication=services.replication)
    app.add_middleware(middleware.SmallBodies, limit=SMALL_BODY_BYTES, large=(scrub.PATH,))
    app.add_middleware(middleware.SameSiteWrites)
    app.add_middleware(middleware.SingleParameters)
    app.add_middleware(middleware.HeadAsGet)
    app.add_middleware(middleware.CountResponses, metrics=services.metrics)
    return LookupRoute(app, services, enabled=fast_lookups)


async def _registry_present(request: Request) -> None:
    """A worker that found the registry gone (a Redis restarted without its files,
    flushed, or an empty one at the URL) answers nothing from it, and takes no write it
    would lose when the data is restored: the public status check would call every
    registered number unregistered, and a registration would vanish."""
    if request.app.state.services.bloom.lost:
        raise errors.registry_lost()


def create_app_from_env() -> LookupRoute:
    """The factory uvicorn's workers call: every worker reads the same environment."""
    supervisor = multiprocessing.parent_process()
    if supervisor is not None:
        # A worker must not outlive a supervisor killed outright, holding the port.
        embedded.die_with_parent()
        if os.getppid() != supervisor.pid:
            raise SystemExit("the uvicorn supervisor is gone")
    return create_app(load_settings())

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

import orjson
from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry import embedded, fastnumbers
from registry.api import (
    admin,
    carrier,
    complaints,
    errors,
    forms,
    openapi,
    operator,
    ops,
    pages,
    params,
    scrub,
    subscriber,
)
from registry.api import consents as consents_api
from registry.api.auth import ADMIN, Authenticator
from registry.api.lookup import LookupRoute
from registry.api.responses import JSON
from registry.api.scrub import read_body
from registry.bloom import RegisteredFilter
from registry.config import Settings, load_settings
from registry.freshness import Lookups
from registry.metrics import Metrics
from registry.notifier import Notifier, build_notifier
from registry.scrub import Scrubber
from registry.store import keys, retention
from registry.store.audit import AuditLog
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


class CountResponses:
    """Pure ASGI middleware: counts answers by method and status for /metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = False

        async def counting_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                self.metrics.requests[(scope["method"], message["status"])] += 1
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        except Exception:
            # Answered 500 by Starlette's outermost middleware, outside this one.
            if not started:
                self.metrics.requests[(scope["method"], 500)] += 1
            raise


class HeadAsGet:
    """Pure ASGI middleware: HEAD answered as GET without the body (RFC 9110 section 9.3.2).

    FastAPI routes only the methods a route declares, so every GET route gets its HEAD
    here: the GET's status and headers, Content-Length included. Only the inner app sees
    GET; the server still sees HEAD (uvicorn sends no body for it either way), and so do
    the metrics.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                if b"content-length" not in names and b"transfer-encoding" not in names:
                    # The GET is streamed, and the server adds this header to it alone.
                    headers = [*message.get("headers", []), (b"transfer-encoding", b"chunked")]
                    message = {**message, "headers": headers}
                await send(message)
            elif not message.get("more_body", False):
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await self.app({**scope, "method": "GET"}, receive, headers_only)


class SingleParameters:
    """Pure ASGI middleware: a query string that names a parameter twice, or a request that
    sends Authorization or Content-Type twice, is a 400 (registry/api/params.py), for
    every route; the look-up route checks both too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                if scope.get("query_string"):
                    params.query(scope["query_string"])
                params.single_headers(scope["headers"])
            except errors.ApiError as exc:
                answer = errors.error_response(exc.status, exc.code, exc.message, exc.details)
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)


class Replicated:
    """Pure ASGI middleware: with DNC_WAIT_REPLICAS, a request that may have written (any
    method but GET, HEAD and OPTIONS) is answered below 400 only once that many replicas
    hold every write before its answer (registry/store/replication.py); else 503
    `not_replicated`, its writes on the master but not acknowledged.

    Two kinds of POST wait for nothing here. The web forms (registry/api/forms.py)
    write nothing themselves: each of their API requests passes here on its own, and
    a page that shows its 503 is sent as is. A scrub is a read whose one write is its
    receipt: scrubs go on while a replica is away (a failover may lose the receipt).
    """

    def __init__(self, app: ASGIApp, replication: Replication) -> None:
        self.app = app
        self.replication = replication

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in ("GET", "HEAD", "OPTIONS")
            or scope["path"].startswith(forms.PREFIX)
            or scope["path"] == scrub.PATH
        ):
            await self.app(scope, receive, send)
            return
        refused = False

        async def once_replicated(message: Message) -> None:
            nonlocal refused
            if refused:
                return  # the rest of an answer replaced by the 503
            if message["type"] == "http.response.start" and message["status"] < 400:
                try:
                    await self.replication.wait()
                except Exception as exc:  # noqa: BLE001 - unacknowledged either way
                    refused = True
                    errors.log_failure(log, "write not acknowledged", exc)
                    answer = errors.not_replicated()
                    await answer(scope, receive, send)
                    return
            await send(message)

        await self.app(scope, receive, once_replicated)


def _says_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            kind = value.split(b";")[0].strip().lower()
            return kind == b"application/json" or kind.endswith(b"+json")
    return False


def _is_json_object(body: bytes) -> bool:
    if body.lstrip()[:1] != b"{":
        return False
    try:
        return isinstance(orjson.loads(body), dict)
    except orjson.JSONDecodeError:
        return False


class SameSiteWrites:
    """Pure ASGI middleware: a write (any method but GET, HEAD and OPTIONS) from a page on
    another site is `403 cross_site_request`, before it does anything.

    The public writes need no key: a page anywhere could otherwise have its visitors'
    browsers ask for code texts to any number (using up its codes for the hour) or file
    complaints against a competitor's caller id, a `text/plain` fetch needing no CORS
    preflight. A write with a key is no such risk (a browser sends `Authorization` across
    sites only after a preflight, which this server never grants), and is refused the same
    way, so there is one rule. The subscriber page's own calls are same-origin.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] not in ("GET", "HEAD", "OPTIONS")
            # The forms refuse such posts themselves, with a page a person can read.
            and not scope["path"].startswith(forms.PREFIX)
            and pages.cross_site(Headers(scope=scope))
        ):
            answer = errors.error_response(
                403,
                "cross_site_request",
                "the registry takes no writes from pages on other sites; call the API from "
                "your own server, or use the registry's own pages",
            )
            await answer(scope, receive, send)
            return
        await self.app(scope, receive, send)


class SmallBodies:
    """Pure ASGI middleware: a request body of at most `limit` bytes (413 beyond), except on
    the `large` paths, whose handlers set their own limits (the scrub's 64 and 128 MiB).

    FastAPI reads a body in full before any handler could refuse it; this stops reading at
    the limit. The body read is handed on as one message. Every such endpoint takes JSON,
    and a body that is a JSON object is read as one whatever its Content-Type says (curl's
    `-d` sends a form type unless told otherwise); anything else FastAPI refuses with 415.
    """

    def __init__(self, app: ASGIApp, limit: int, large: tuple[str, ...]) -> None:
        self.app = app
        self.limit = limit
        self.large = large

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        if scope["path"].removeprefix(scope.get("root_path", "")) in self.large:
            await self.app(scope, receive, send)
            return
        try:
            body = await read_body(
                Request(scope, receive),
                self.limit,
                "only POST /v1/scrub takes bodies this large; send the documented fields only",
            )
        except errors.ApiError as exc:
            answer = errors.error_response(exc.status, exc.code, exc.message, exc.details)
            await answer(scope, receive, send)
            return
        except ClientDisconnect:
            return
        try:
            params.single_keys(body)
        except errors.ApiError as exc:
            answer = errors.error_response(exc.status, exc.code, exc.message, exc.details)
            await answer(scope, receive, send)
            return
        if not _says_json(scope) and _is_json_object(body):  # parsed once, by FastAPI, if JSON
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        pending = [{"type": "http.request", "body": body, "more_body": False}]

        async def replay() -> Message:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)


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
    for module in routers:
        app.include_router(module.router)
    # The last added runs first: responses are counted under the method the client sent.
    if services.replication is not None:
        app.add_middleware(Replicated, replication=services.replication)
    app.add_middleware(SmallBodies, limit=SMALL_BODY_BYTES, large=(scrub.PATH,))
    app.add_middleware(SameSiteWrites)
    app.add_middleware(SingleParameters)
    app.add_middleware(HeadAsGet)
    app.add_middleware(CountResponses, metrics=services.metrics)
    return LookupRoute(app, services, enabled=fast_lookups)


def create_app_from_env() -> LookupRoute:
    """The factory uvicorn's workers call: every worker reads the same environment."""
    supervisor = multiprocessing.parent_process()
    if supervisor is not None:
        # A worker must not outlive a supervisor killed outright, holding the port.
        embedded.die_with_parent()
        if os.getppid() != supervisor.pid:
            raise SystemExit("the uvicorn supervisor is gone")
    return create_app(load_settings())

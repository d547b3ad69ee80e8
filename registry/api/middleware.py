"""The app's pure ASGI middlewares: what every request passes through before a route.

Counting answers for /metrics, HEAD as GET, one value per query parameter and
header, writes acknowledged by replicas, no writes from other sites' pages, and
bodies read only up to their limit.
"""

from __future__ import annotations

import logging

import orjson
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry.api import errors, forms, pages, params, scrub
from registry.api.scrub import BOM, read_body
from registry.metrics import Metrics
from registry.store.replication import Replication

log = logging.getLogger("dnc.api")


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
        body = body.removeprefix(BOM)  # ignored, as RFC 8259 allows and the scrub does
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

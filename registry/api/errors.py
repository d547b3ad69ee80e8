"""One error type per failure the caller can act on, mapped to HTTP in one place.

Every error answers `{"error": {"code", "message", "details"}}`.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from redis.exceptions import (
    ClusterError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Match

from registry.api.responses import JSON
from registry.store.registrations import RegistryLost

log = logging.getLogger("dnc.api")
# What nginx logs for a request whose client closed the connection before the answer.
CLIENT_CLOSED_REQUEST = 499

# Redis up, but refusing writes (or everything) until a disk, a replica, memory or a
# failover recovers: unavailable, as if unreachable. redis-py names some of these by
# class; the rest, and every refusal met inside a script ("Error running script ...
# -NOREPLICAS ..."), only by the code in the message.
_REFUSED_CLASSES = (ReadOnlyError, OutOfMemoryError, TryAgainError)
_REFUSED_CODES = re.compile(
    r"(?:^|-)(?:NOREPLICAS|MISCONF|OOM|READONLY|MASTERDOWN|TRYAGAIN|LOADING|BUSY|CLUSTERDOWN)\b"
)


# A DNC_REDIS_URL naming a database the server does not have: unusable until fixed.
_MISCONFIGURED = re.compile(r"DB index is out of range")


def refused(exc: ResponseError) -> bool:
    """Whether Redis refused for a while or for its configuration (503), rather than for
    a bug of ours (500)."""
    text = str(exc)
    return (
        isinstance(exc, _REFUSED_CLASSES)
        or _REFUSED_CODES.search(text) is not None
        or _MISCONFIGURED.search(text) is not None
    )


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers


class AnswerCutOff(Exception):
    """A streamed answer that cannot be completed: its connection is closed without the
    last chunk, so the client never takes a partial answer for a whole one.

    Raised from inside the stream with the cause already logged in a line; the
    outermost app (registry/api/lookup.py) swallows it, and the server closes the
    connection of an answer left unfinished, with no traceback.
    """


@contextlib.asynccontextmanager
async def cut_off_if_redis_fails(what: str) -> AsyncIterator[None]:
    """Inside a streamed answer: a Redis failure cuts `what` off (AnswerCutOff)."""
    try:
        yield
    except RedisError as exc:
        log.warning("%s cut off: Redis failed mid-stream: %s", what, exc)
        raise AnswerCutOff(what) from exc


def log_failure(logger: logging.Logger, what: str, exc: BaseException) -> None:
    """A failure a worker rides out (it retries, or answers 503): a warning when Redis
    failed, which happens; with its traceback when anything else did, which is a bug."""
    if isinstance(exc, RedisError):
        logger.warning("%s: %s", what, exc)
    else:
        logger.error("%s (a bug): %s", what, exc, exc_info=exc)


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSON:
    return JSON(error_body(code, message, details), status_code=status, headers=headers)


_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method some route takes on this path (Starlette's 405 names the first route's
    only); HEAD wherever GET is, as the HeadAsGet middleware answers it."""
    methods = {
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in app.router.routes
        )
    }
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def not_replicated_error() -> ApiError:
    """A write the replicas did not acknowledge in time (DNC_WAIT_REPLICAS)."""
    return ApiError(
        503,
        "not_replicated",
        "the registry could not confirm this change on its backup servers in time, so it "
        "is not acknowledged; try again in a moment",
        headers={"Retry-After": "1"},
    )


def not_replicated() -> JSON:
    err = not_replicated_error()
    return error_response(err.status, err.code, err.message, headers=err.headers)


def unavailable() -> ApiError:
    return ApiError(
        503,
        "redis_unavailable",
        "the registry store cannot be reached; retry later",
        headers={"Retry-After": "1"},
    )


def registry_lost() -> ApiError:
    return ApiError(
        503,
        "registry_lost",
        "Redis answers without the registry it held; restore its data, or restart the API "
        "if the registry was emptied on purpose",
        headers={"Retry-After": "1"},
    )


_HTTP_CODES = {
    # FastAPI's own 400, for a body it cannot decode (not UTF-8, nested too deep).
    400: ("invalid_json", "the body is not JSON that can be read; send UTF-8 JSON"),
    404: ("not_found", "no such path; see /docs for the API"),
    405: ("method_not_allowed", "this path does not accept that method; see /docs"),
}


def _unparsed_body(exc: RequestValidationError) -> bool:
    """FastAPI parses a body as JSON only when its Content-Type says JSON; any other body
    reaches validation as raw bytes, and fails there as a whole. (Bytes that were parsed
    and are not JSON fail as `json_invalid`: a 400.)"""
    return any(
        tuple(e.get("loc", ()))[:1] == ("body",)
        and isinstance(e.get("input"), bytes)
        and e.get("type") != "json_invalid"
        for e in exc.errors()
    )


def _not_json(request: Request) -> JSON:
    sent = request.headers.get("content-type")
    said = f"Content-Type {sent[:64]!r}" if sent else "no Content-Type"
    return error_response(
        415,
        "unsupported_media_type",
        f"the body came with {said}; send it as JSON with Content-Type: application/json",
        {"content_type": sent},
    )


def install(app: FastAPI, not_found_page: Callable[[], Response] | None = None) -> None:
    """The contract's error shape for every error; `not_found_page`, when given, answers
    a browser's 404 outside the API (an `Accept` naming `text/html`) instead."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSON:
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError) -> JSON:
        if _unparsed_body(exc):
            return _not_json(request)
        problems = [
            {"where": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")}
            for e in exc.errors()
        ]
        first = problems[0] if problems else {"where": "body", "problem": "is not valid"}
        message = f"{first['where']}: {first['problem']}"
        # Bytes that are not JSON at all: the same code as the scrub's own parser gives,
        # and where the parser stopped (FastAPI's loc is the body and the character).
        broken = [e for e in exc.errors() if e.get("type") == "json_invalid"]
        if broken:
            where = tuple(broken[0].get("loc", ()))[1:2]
            why = str((broken[0].get("ctx") or {}).get("error") or "it cannot be read")
            at = f" at character {where[0]}" if where else ""
            message = f"the body is not JSON{at}: {why}; send UTF-8 JSON"
        code = "invalid_json" if broken else "invalid_request"
        return error_response(400, code, message, {"problems": problems})

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if (
            exc.status_code == 404
            and not_found_page is not None
            and request.method in ("GET", "HEAD")
            and not request.url.path.startswith(("/v1/", "/assets/"))
            and "text/html" in request.headers.get("accept", "")
        ):
            return not_found_page()
        code, message = _HTTP_CODES.get(exc.status_code, ("http_error", str(exc.detail)))
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(app, request))
        return error_response(exc.status_code, code, message, headers=headers)

    # ClusterError: CLUSTERDOWN / MASTERDOWN, a Cluster that lost a master refuses every slot.
    unreachable = (RedisConnectionError, RedisTimeoutError, RedisClusterException, ClusterError)
    for redis_error in unreachable:

        @app.exception_handler(redis_error)
        async def redis_down(_: Request, exc: Exception) -> JSON:
            log.warning("redis unavailable: %s", exc)
            err = unavailable()
            return error_response(err.status, err.code, err.message, headers=err.headers)

    @app.exception_handler(RegistryLost)  # before RedisConnectionError, its base
    async def lost(_: Request, exc: Exception) -> JSON:
        err = registry_lost()
        return error_response(err.status, err.code, err.message, headers=err.headers)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, _: ClientDisconnect) -> Response:
        # A cancelled upload or a dropped network: nobody to answer and nothing of ours
        # failed. Counted under nginx's 499, not as a 500 that would page someone.
        log.warning(
            "%s %s: the client left before its body was read", request.method, request.url.path
        )
        return Response(status_code=CLIENT_CLOSED_REQUEST)

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> JSON:
        if isinstance(exc, AnswerCutOff):  # logged where it happened; the answer had begun
            return error_response(500, "internal_error", "the answer was cut off")
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "internal_error", "the registry failed; this is our bug")

    @app.exception_handler(ResponseError)
    async def redis_refused(request: Request, exc: ResponseError) -> JSON:
        if not refused(exc):
            return await internal(request, exc)
        log.warning("redis refused: %s", exc)
        err = unavailable()
        return error_response(err.status, err.code, err.message, headers=err.headers)

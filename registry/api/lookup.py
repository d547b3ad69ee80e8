"""`GET /v1/numbers/{number}` answered in front of FastAPI: single look-ups under load.

FastAPI's routing, dependency solving and parameter conversion cost more than a
look-up itself (benchmarks/RESULTS.md, goal 5). This pure ASGI app answers that
one route and hands every other request, and every other method on the path,
to the FastAPI app. The route in registry/api/operator.py stays the documented
one, and this one answers exactly as it does (tests/test_lookup_fast.py holds
them to each other): the same key check, the same parameters parsed in the same
order, and every error through the FastAPI app's own exception handlers.

What it does differently is ask Redis less: concurrent look-ups share their
round trips, a number the Bloom filter rules out is not confirmed, and the
operator's consent from a number is read in the round that confirms it
(registry/freshness.py).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING
from urllib.parse import unquote

import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from registry import numbers as nums
from registry import rules
from registry.api import errors, params
from registry.api.auth import require
from registry.api.errors import AnswerCutOff

if TYPE_CHECKING:
    from registry.api.app import Services
    from registry.freshness import Found
    from registry.store.operators import Operator

# LookupRoute.quick's answer: None, a body, or (number, operator id, channel, category).
Quick = tuple[int, str, int, int | None] | bytes | None

PATH = "/v1/numbers/"
ROLE = "operator"
_NUMBER = b'{"number":"+'


class LookupRoute:
    """The worker's ASGI app: look-ups answered here, everything else by `app`.

    `state` is the FastAPI app's, so `app.state.services` reads the same through both.
    Not `enabled`, it hands look-ups to FastAPI too (the tests compare the two).
    """

    def __init__(self, app: FastAPI, services: Services, enabled: bool = True) -> None:
        self.app = app
        self.state = app.state
        self.enabled = enabled
        self.services = services
        self.lookups = services.lookups
        self.auth = services.auth
        self.counts = services.metrics.requests
        self._operator_key = require(ROLE)
        default = services.settings.default_region
        self._no_query = (params.channel(None), params.category(None), params.region(None, default))
        self.answered_in_protocol = 0  # look-ups registry/api/protocol.py took on itself
        self._verdicts: dict[tuple[bool, int, int, bool, int, int | None], bytes] = {}
        self._starts: dict[int, Message] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = scope.get("raw_path") or b""
            if b"%2" in raw and (b"%2F" in raw or b"%2f" in raw) and not scope.get("root_path"):
                scope = _slash_kept_in_its_segment(scope, raw)
            if scope["path"].endswith("/") and scope["path"] != "/":
                scope = _without_trailing_slash(scope)
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or not self.enabled
            or scope.get("root_path")
        ):
            await self._hand_on(scope, receive, send)
            return
        path: str = scope["path"]
        number = path[len(PATH) :]
        # The FastAPI route's pattern: one non-empty path segment after the prefix.
        if not path.startswith(PATH) or not number or "/" in number:
            await self._hand_on(scope, receive, send)
            return
        try:
            body = await self._look_up(scope, number)
        except Exception as exc:  # noqa: BLE001 - answered by the app's handlers
            await self.fail(scope, receive, send, exc)
            return
        self.counts["GET", 200] += 1
        await send(self._start(len(body)))
        await send({"type": "http.response.body", "body": body})

    async def _hand_on(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except AnswerCutOff:
            # Logged where it happened. The server closes a connection whose answer was
            # left unfinished: the client sees no last chunk, and no traceback is logged.
            return

    async def _look_up(self, scope: Scope, number: str) -> bytes:
        """The answer's body, or an exception for the app's handlers; as operator.lookup."""
        if self.services.bloom.lost:  # before the key, which went with the registry
            raise errors.registry_lost()
        raw = scope["query_string"]
        # Before the key, as the app's SingleParameters middleware checks it.
        query = params.query(raw) if raw else None
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is not None:  # as the app's SingleParameters middleware
                    params.single_headers(scope["headers"])
                authorization = value.decode("latin-1")
        operator = authorization and self.auth.cached(authorization)
        if not operator:
            operator = await self.auth.resolve(authorization)
        if operator.rate_limit is not None or (operator.role != ROLE and not operator.is_admin):
            # The role's 403 and the rate limit's 429 come from the dependency FastAPI runs.
            scope["app"] = self.app
            operator = await self._operator_key(Request(scope))
        target = self._target(query, number, operator)
        if isinstance(target, bytes):
            return target
        value, channel, category = target
        found = await self.lookups.registration(value, operator.id)
        return self.body(value, found, channel, category)

    def _target(
        self, query: dict[str, str] | None, number: str, operator: Operator
    ) -> tuple[int, int, int | None] | bytes:
        """The number to look up and the channel and category asked, or the body of an
        invalid number's answer; raises what the app answers (a wrong parameter, a
        number outside the operator's prefixes)."""
        if query is not None:
            channel = params.channel(query.get("channel"))
            category = params.category(query.get("category"))
            region = params.region(query.get("region"), self.services.settings.default_region)
        else:
            channel, category, region = self._no_query
        value, reason = nums.normalize(number, region)
        if reason is not None:
            return orjson.dumps({"number": None, "status": "invalid", "reason": reason})
        if operator.prefixes:
            params.check_prefix(operator, value)
        return value, channel, category

    def quick(self, number: str, raw_query: bytes, authorization: str | None) -> Quick:
        """What `_look_up` would do first, with nothing to wait for: for the HTTP
        protocol, which answers a look-up without the ASGI cycle (registry/api/protocol.py).

        None: hand the request to the app (any error, a key not in the cache, a rate
        limit or another role's key: the app answers those as it does any other);
        bytes: the answer's body (an invalid number); else what to look up.
        """
        if self.services.bloom.lost:
            return None
        operator = authorization and self.auth.cached(authorization)
        if not operator or operator.rate_limit is not None:
            return None
        if operator.role != ROLE and not operator.is_admin:
            return None
        try:
            target = self._target(params.query(raw_query) if raw_query else None, number, operator)
        except Exception:  # noqa: BLE001 - the app answers it, in the contract's shape
            return None
        if isinstance(target, bytes):
            return target
        value, channel, category = target
        return value, operator.id, channel, category

    def body(self, value: int, found: Found, channel: int, category: int | None) -> bytes:
        """The answer's body for `value`, as the registry has it (`found`)."""
        registered, channels, allowed, held = found
        consent = bool(held) and rules.covers(held, channel, category)
        key = (registered, channels, allowed, consent, channel, category)
        verdict = self._verdicts.get(key) or self._decide(*key)
        return _NUMBER + str(value).encode() + verdict

    def _decide(
        self,
        registered: bool,
        channels: int,
        allowed: int,
        consent: bool,
        channel: int,
        category: int | None,
    ) -> bytes:
        """rules.decide_one, remembered, as the end of the answer after the number's digits.

        Its answers depend on these few small values only.
        """
        prefs = rules.Preferences(channels, allowed)
        status, why = rules.decide_one(registered, prefs, consent, channel, category)
        # orjson's own encoding of the answer, cut after the number's "+" (digits need no escape).
        answer = orjson.dumps({"number": "+", "status": status, "reason": why})
        verdict = answer[len(_NUMBER) :]
        if len(self._verdicts) < 10_000:
            self._verdicts[registered, channels, allowed, consent, channel, category] = verdict
        return verdict

    def _start(self, length: int) -> Message:
        """The headers FastAPI's JSON response sends, built once for each body length."""
        start = self._starts.get(length)
        if start is None:
            start = {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(length).encode()),
                    (b"content-type", b"application/json"),
                ],
            }
            if len(self._starts) < 1000:
                self._starts[length] = start
        return start

    async def fail(self, scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
        """Answer as the FastAPI app would: its handler for the nearest class of `exc`.

        The handler for Exception is the app's 500, which Starlette sends and then
        raises again for the server to log; so does this.
        """
        handlers = self.app.exception_handlers
        cls = next((c for c in type(exc).__mro__ if c in handlers), None)
        if cls is None:
            raise exc
        response = handlers[cls](Request(scope, receive), exc)
        if inspect.isawaitable(response):
            response = await response

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.counts["GET", message["status"]] += 1
            await send(message)

        await response(scope, receive, counted)
        if cls is Exception:
            raise exc


def _slash_kept_in_its_segment(scope: Scope, raw: bytes) -> Scope:
    """A `/` sent as %2F stays inside its path segment: `/v1/numbers/030%2F12345678` is the
    number `030/12345678` (as Germans write one), not a path one segment too long.

    The server decodes it to a `/` like any other, so it becomes U+FF0F, the full-width
    solidus: punctuation to phonenumbers as `/` is, so the number reads the same."""
    segments = raw.decode("ascii", "replace").split("/")
    path = "/".join(unquote(segment).replace("/", "\uff0f") for segment in segments)
    return {**scope, "path": path}


def _without_trailing_slash(scope: Scope) -> Scope:
    """`/v1/scrub/` answered as `/v1/scrub`, not redirected: a client that does not follow
    a 307 (curl, httpx) would get an empty answer, and a scrub's body sent twice."""
    path = scope["path"].rstrip("/") or "/"
    raw = scope.get("raw_path")
    changed = {**scope, "path": path}
    if raw is not None:
        changed["raw_path"] = raw.rstrip(b"/") or b"/"
    return changed

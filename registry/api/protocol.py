"""uvicorn's HTTP/1.1 protocol (httptools), its own errors in the contract's shape, and
bounds on what a client may hold a worker with.

A request uvicorn cannot parse (a space in the path, bytes that are not HTTP)
never reaches the app: uvicorn answers it a plain-text 400 itself. CONTRACT
section 6 gives every error one JSON shape, so this subclass answers those in it.

uvicorn sets no bound on a request's header section, and its parser gathers a long
header by appending to it piece by piece: one 800 MB header froze a worker for ten
minutes, and four of 200 MB stopped both workers, before a key was ever checked. Here
headers past MAX_HEADER_BYTES are a 431, headers not complete MAX_HEADER_SECONDS after
they began are a 408, and a body that stops arriving for MAX_BODY_IDLE_SECONDS ends
its connection (the route sees the client gone: a 499). The clocks are one sweep a
worker every SWEEP_SECONDS over its connections, not a timer a request: a request pays
a few additions and comparisons as its bytes arrive.

A plain look-up (`GET /v1/numbers/{n}` with a key the worker checked in the last
seconds, `_look_up_here`) is answered here, without the ASGI cycle: uvicorn's scope,
task, and receive and send calls cost a worker more than the look-up's own work
(benchmarks/RESULTS.md, goal 5). The look-up route's checks run as the head completes,
the request joins the route's shared Redis round, and the round writes the answer,
the same bytes the route's would be. Every other request, and every error, takes
uvicorn's own path to the app, as the bare app of goal 5 does.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import orjson
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from registry.api.errors import error_body
from registry.api.lookup import PATH, LookupRoute

if TYPE_CHECKING:
    from registry.freshness import Found

# nginx's large_client_header_buffers allow 4 x 8 KiB; browsers send a few KiB.
MAX_HEADER_BYTES = 64 * 1024
MAX_HEADER_SECONDS = 30.0
MAX_BODY_IDLE_SECONDS = 60.0
SWEEP_SECONDS = 5.0


class Protocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_bytes = 0  # of the request head being read
        self._tail = b""  # the last bytes of the head's last read, while it goes on
        self._received = 0  # every byte of the connection, for the idle-body sweep
        self._mark: tuple[Any, bool, int] | None = None  # what the last sweep saw
        self._stalled = 0.0  # seconds without progress, as sweeps saw it
        self._route: LookupRoute | None = None  # look-ups answered here (`_look_up_here`)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._route = _route_in(self)
        state = self.server_state  # one a server: its connections, swept once
        if not getattr(state, "dnc_swept", False):
            state.dnc_swept = True  # type: ignore[attr-defined]
            self.loop.call_later(SWEEP_SECONDS, _sweep, self.loop, self.connections)

    def data_received(self, data: bytes) -> None:
        self._received += len(data)
        cycle = self.cycle  # uvicorn makes a new one as each request's head completes
        if cycle is not None and cycle.more_body:  # a body being read
            super().data_received(data)
            return
        before = self._header_bytes
        self._header_bytes += len(data)
        if self._header_bytes > MAX_HEADER_BYTES and not self._head_ends_in_bound(data, before):
            if not self.transport.is_closing():
                self._refuse(
                    431,
                    "request_header_fields_too_large",
                    f"the request's headers are over {MAX_HEADER_BYTES // 1024} KiB",
                )
            return
        super().data_received(data)
        if self.cycle is not cycle:
            self._header_bytes = 0  # the head completed (and what follows it is a body)
        else:
            # The head goes on: its end may straddle this read and the next (reads of a
            # byte or two included).
            self._tail = (self._tail + data)[-3:] if before else data[-3:]

    def _head_ends_in_bound(self, data: bytes, before: int) -> bool:
        """Whether the head that began `before` bytes ago ends in `data` within the bound.

        Only a read that takes the count past the bound asks: what follows a head's
        end (a body, the next request) is not the head's. A request pipelined behind
        another is counted from the first read after the one its head began in: the
        bound holds for it within that one read (at most 256 KiB).
        """
        tail = self._tail if before else b""
        room = MAX_HEADER_BYTES - before + len(tail)  # where the head's end must be found
        return (tail + data).find(b"\r\n\r\n", 0, room) >= 0

    # Look-ups answered here.

    def on_headers_complete(self) -> None:
        route = self._route
        if (
            route is not None
            and self.url.startswith(_PATH)
            and route.enabled
            and (self.cycle is None or self.cycle.response_complete)
            and self._look_up_here(route)
        ):
            return
        super().on_headers_complete()

    def _look_up_here(self, route: LookupRoute) -> bool:
        """Answer this request as `route` would, without the ASGI cycle, if it is a plain
        look-up (False: not taken, uvicorn goes on as for any request).

        Plain: a GET on HTTP/1.1 that keeps its connection, with no body, one key that
        the worker resolved in the last seconds, no percent-encoding or trailing slash,
        and nothing else outstanding on the connection (pipelined requests are answered
        in order by uvicorn's own cycles). The route's quick check declines the rest:
        whatever it would answer with an error (the app answers those, from the start).
        """
        parser = self.parser
        if (
            parser.get_method() != b"GET"
            or parser.get_http_version() != "1.1"
            or not parser.should_keep_alive()
        ):
            return False
        url = self.url
        if b"%" in url or b"#" in url:
            return False
        path, _, raw_query = url.partition(b"?")
        number = path[len(_PATH) :]
        if not number or b"/" in number or not number.isascii():
            return False
        authorization = None
        for name, value in self.headers:
            if name == b"authorization":
                if authorization is not None:
                    return False
                authorization = value
            elif name in _NOT_HERE:
                return False
        quick = route.quick(
            number.decode("ascii"),
            raw_query,
            None if authorization is None else authorization.decode("latin-1"),
        )
        if quick is None:
            return False
        route.answered_in_protocol += 1
        answer = self.cycle = _Answer(self, url)  # type: ignore[assignment]
        if isinstance(quick, bytes):
            # Not from inside the parser: a response completed there would arm the
            # keep-alive timer while a request pipelined behind it is still to be read,
            # and the timer would close the connection under that request.
            self.loop.call_soon(self._respond, answer, quick)
            return True
        answer.number, operator_id, answer.channel, answer.category = quick
        route.lookups.ask(answer.number, operator_id, answer, self.loop)
        return True

    def _respond(self, answer: _Answer, body: bytes) -> None:
        """Write `answer`'s 200 as uvicorn writes the route's (the same head, byte for byte)."""
        answer.response_complete = True
        route = self._route
        assert route is not None
        route.counts["GET", 200] += 1
        transport = self.transport
        if not transport.is_closing():
            state = self.server_state
            # uvicorn replaces its default headers (the date) every second.
            heads: tuple[list[tuple[bytes, bytes]], dict[tuple[int, bool], bytes]] | None
            heads = getattr(state, "dnc_heads", None)
            if heads is None or heads[0] is not state.default_headers:
                fresh: dict[tuple[int, bool], bytes] = {}
                heads = state.dnc_heads = (state.default_headers, fresh)  # type: ignore[attr-defined]
            key = (len(body), answer.keep_alive)
            head = heads[1].get(key)
            if head is None:
                head = heads[1][key] = _head(state.default_headers, *key)
            transport.write(head + body)
            if not answer.keep_alive:  # the server shuts down
                transport.close()
        self.on_response_complete()

    def _found(self, answer: _Answer, found: Found) -> None:
        route = self._route
        assert route is not None
        self._respond(answer, route.body(answer.number, found, answer.channel, answer.category))

    def _failed(self, answer: _Answer, exc: BaseException) -> None:
        """The app's answer for `exc`, through an ASGI cycle as any other request's."""
        answer.response_complete = True
        route = self._route
        assert route is not None
        if self.transport.is_closing():
            self.on_response_complete()
            return
        path, _, query = answer.url.partition(b"?")
        scope: dict[str, Any] = answer.scope
        scope.update(method="GET", path=path.decode("ascii"), raw_path=path, query_string=query)
        cycle = RequestResponseCycle(
            scope=scope,  # type: ignore[arg-type]
            transport=self.transport,
            flow=self.flow,
            logger=self.logger,
            access_logger=self.access_logger,
            access_log=self.access_log,
            default_headers=self.server_state.default_headers,
            message_event=asyncio.Event(),
            expect_100_continue=False,
            keep_alive=answer.keep_alive,
            on_response=self.on_response_complete,
        )
        cycle.more_body = False
        if self.cycle is answer:  # else a pipelined request waits for this one's answer
            self.cycle = cycle

        async def fail(scope: Scope, receive: Receive, send: Send) -> None:
            await route.fail(scope, receive, send, exc)  # type: ignore[arg-type]

        self._start_asgi_task(cycle, fail)  # type: ignore[arg-type]

    def send_400_response(self, msg: str) -> None:
        self._refuse(
            400,
            "invalid_http",
            f"the request is not HTTP/1.1 the server can read ({msg.rstrip('.')}); "
            "percent-encode spaces and other special characters in the path",
        )

    def _refuse(self, status: int, code: str, message: str) -> None:
        body = orjson.dumps(error_body(code, message))
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content += [
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n",
            b"\r\n",
            body,
        ]
        self.transport.write(b"".join(content))
        self.transport.close()

    def _check_progress(self, elapsed: float) -> None:
        """One sweep's look: a head begun (or a connection that sent nothing yet) and
        not complete, or a body expected and not arriving, with no progress since the
        last sweep, has stalled `elapsed` more. A head's progress is its completion: a
        client trickling one byte at a time gets no more time than one sending none."""
        if self.transport is None or self.transport.is_closing():
            return
        cycle = self.cycle
        reading_body = cycle is not None and cycle.more_body and not cycle.response_complete
        reading_head = not reading_body and (self._header_bytes > 0 or self._received == 0)
        if reading_body and self.flow.read_paused:  # the app is behind, not the client
            reading_body = False
        if not (reading_head or reading_body):
            self._mark, self._stalled = None, 0.0
            return
        mark = (cycle, reading_head, 0 if reading_head else self._received)
        last = self._mark
        same = last is not None and last[0] is mark[0] and last[1:] == mark[1:]
        self._mark = mark
        self._stalled = self._stalled + elapsed if same else 0.0
        if reading_head and self._stalled >= MAX_HEADER_SECONDS:
            self._refuse(
                408,
                "request_timeout",
                f"the request's headers did not arrive within {MAX_HEADER_SECONDS:g} s",
            )
        elif reading_body and self._stalled >= MAX_BODY_IDLE_SECONDS:
            self.transport.close()  # the route is told the client left


_PATH = PATH.encode()
# Headers a look-up answered here may not have: a body, a 100-continue, an upgrade.
_NOT_HERE = frozenset((b"content-length", b"transfer-encoding", b"expect", b"upgrade"))


class _NoEvent:
    """uvicorn sets its cycle's event when a body or a disconnect arrives: no one waits."""

    @staticmethod
    def set() -> None:
        return None


class _Answer:
    """A look-up the protocol answers itself: in place of uvicorn's cycle as the
    connection's current request, and the asker its Redis round answers
    (registry/freshness.py), which writes the answer the moment the round has it:
    no task, no ASGI messages."""

    __slots__ = (
        "protocol",
        "url",
        "scope",
        "number",
        "channel",
        "category",
        "keep_alive",
        "more_body",
        "response_complete",
        "disconnected",
    )
    message_event = _NoEvent()

    def __init__(self, protocol: Protocol, url: bytes) -> None:
        self.protocol = protocol
        self.url = url
        self.scope: dict[str, Any] = protocol.scope  # type: ignore[assignment] # uvicorn's, begun for this request: for an error's cycle
        self.number = 0
        self.channel = 0
        self.category: int | None = None
        self.keep_alive = True  # uvicorn's shutdown clears it
        self.more_body = False  # a look-up answered here has no body (uvicorn sets it too)
        self.response_complete = False
        self.disconnected = False  # uvicorn sets it when the client goes

    def done(self) -> bool:
        return self.response_complete or self.disconnected

    def set_result(self, found: Found, /) -> None:
        if not self.done():
            self._settle(self.protocol._found, found)

    def set_exception(self, exception: BaseException, /) -> None:
        if not self.done():
            self._settle(self.protocol._failed, exception)

    def cancel(self) -> bool:
        """The round will never come (the loop is closing): the connection ends."""
        if self.done():
            return False
        self.response_complete = True
        self.protocol.transport.close()
        return True

    def _settle(self, how: Any, what: Any) -> None:
        # Called inside the round that answers every asker: this one's failure is its own.
        try:
            how(self, what)
        except Exception:  # noqa: BLE001 - logged; the client sees its connection end
            self.protocol.logger.exception("a look-up's answer could not be written")
            self.response_complete = True
            self.protocol.transport.close()


def _head(default_headers: list[tuple[bytes, bytes]], length: int, keep_alive: bool) -> bytes:
    """The head uvicorn writes for the route's 200 of `length` bytes (LookupRoute._start)."""
    content = [STATUS_LINE[200]]
    for name, value in default_headers:
        content += [name.lower(), b": ", value, b"\r\n"]
    content += [b"content-length: %d\r\n" % length, b"content-type: application/json\r\n"]
    if not keep_alive:
        content.append(b"connection: close\r\n")
    content.append(b"\r\n")
    return b"".join(content)


def _route_in(protocol: HttpToolsProtocol) -> LookupRoute | None:
    """The look-up route the server's app is (inside uvicorn's middleware), if look-ups
    may be answered here: not behind a root path, a concurrency limit or an access log
    (uvicorn's setting, as dnc serve has it off), which the route's ASGI cycle would go
    through."""
    config = protocol.config
    if config.root_path or config.limit_concurrency is not None or config.access_log:
        return None
    app: Any = protocol.app
    for _ in range(8):
        if isinstance(app, LookupRoute):
            return app
        app = getattr(app, "app", None)
    return None


def _sweep(loop: asyncio.AbstractEventLoop, connections: set[Any]) -> None:
    for connection in list(connections):
        if isinstance(connection, Protocol):
            connection._check_progress(SWEEP_SECONDS)
    loop.call_later(SWEEP_SECONDS, _sweep, loop, connections)

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
a few additions and comparisons as its bytes arrive. Everything a well-formed request
does then takes uvicorn's own path, as the bare app of goal 5 does.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from registry.api.errors import error_body

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

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
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


def _sweep(loop: asyncio.AbstractEventLoop, connections: set[Any]) -> None:
    for connection in list(connections):
        if isinstance(connection, Protocol):
            connection._check_progress(SWEEP_SECONDS)
    loop.call_later(SWEEP_SECONDS, _sweep, loop, connections)

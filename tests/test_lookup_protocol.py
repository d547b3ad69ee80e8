"""Look-ups answered in the HTTP protocol (registry/api/protocol.py), without the ASGI cycle.

Two real uvicorn servers on one Redis: `fast` with dnc serve's protocol, which answers
a plain look-up itself, and `plain` with uvicorn's own httptools protocol, where every
look-up goes through the ASGI route (registry/api/lookup.py, itself held to FastAPI's
route in tests/test_lookup_fast.py). Their answers must be the same bytes, whatever
the request, its neighbours on the connection, Redis or the server's shutdown do.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import uvicorn
from conftest import ADMIN_KEY, live_app, new_registry
from test_lookup_fast import NUMBERS, QUERIES, World, bearer, make_world, new_key, register

from registry.api import create_app
from registry.api.lookup import LookupRoute
from registry.api.protocol import Protocol
from registry.config import Settings
from registry.store import keys

pytestmark = pytest.mark.cluster


@dataclass
class Served:
    url: str
    route: LookupRoute
    server: uvicorn.Server

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def taken(self) -> int:
        """Look-ups the protocol answered itself."""
        return self.route.answered_in_protocol


@contextlib.contextmanager
def serve(settings: Settings, http: Any, **options: Any) -> Iterator[Served]:
    assert settings.redis_url is not None
    new_registry(settings.redis_url)
    route = create_app(settings)
    with live_app(route, http, **options) as (url, server):
        yield Served(url, route, server)


@dataclass
class Wire:
    fast: Served  # dnc serve's protocol
    plain: Served  # uvicorn's: the ASGI route answers


@pytest.fixture
def wire(settings: Settings) -> Iterator[Wire]:
    with serve(settings, Protocol) as fast, serve(settings, "httptools") as plain:
        yield Wire(fast, plain)


@pytest.fixture
def world(wire: Wire, redis_url: str, tmp_path: Path) -> World:
    with httpx.Client(base_url=wire.plain.url, timeout=30) as client:
        return make_world(client, redis_url, tmp_path)


class Connection:
    """One keep-alive connection, raw: the answers' bytes as the server wrote them."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buffer = b""

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buffer = None, b""

    def send(self, data: bytes) -> None:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(data)

    def _fill(self) -> None:
        assert self.sock is not None
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError(self.buffer)
        self.buffer += chunk

    def answer(self, head_only: bool = False) -> bytes:
        """The next answer, the date made `-`; the connection is closed after one that
        says so."""
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        length = re.search(rb"\r\ncontent-length: (\d+)", head, re.IGNORECASE)
        size = 0 if head_only or length is None else int(length[1])
        while len(self.buffer) < size:
            self._fill()
        body, self.buffer = self.buffer[:size], self.buffer[size:]
        if re.search(rb"\r\nconnection: close", head, re.IGNORECASE):
            assert self.buffer == b""
            self.close()
        return re.sub(rb"\r\ndate: [^\r]*", b"\r\ndate: -", head) + b"\r\n\r\n" + body


def request(
    path: str,
    headers: list[tuple[str, str]] | None = None,
    method: str = "GET",
    version: str = "1.1",
    body: bytes = b"",
) -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: dnc"]
    lines += [f"{name}: {value}" for name, value in headers or []]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def exchange(conn: Connection, data: bytes, head_only: bool = False) -> bytes:
    conn.send(data)
    return conn.answer(head_only)


def look_up(number: str, query: str = "") -> str:
    return f"/v1/numbers/{number}" + (f"?{query}" if query else "")


def assert_same_answers(wire: Wire, requests: list[bytes], head_only: bool = False) -> list[bytes]:
    """Each request sent on one connection to each server, in turn: the same bytes back."""
    answers = []
    with Connection(wire.fast.port) as fast, Connection(wire.plain.port) as plain:
        for data in requests:
            got = exchange(fast, data, head_only)
            expected = exchange(plain, data, head_only)
            assert got == expected, data
            answers.append(got)
    return answers


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_look_ups_answered_here_are_the_routes_bytes(wire: Wire, world: World) -> None:
    requests = [
        request(look_up(n, q), bearer(world.operator))
        for n, q in itertools.product(NUMBERS, QUERIES)
    ]
    for key, number, query in itertools.product(
        [world.prefixed, world.carrier, world.revoked, ADMIN_KEY, "dnc_not-a-key"],
        NUMBERS[:16],
        ["", "channel=sms", "channel=sms&category=2", "category=3", "region=CN", "channel=fax"],
    ):
        requests.append(request(look_up(number, query), bearer(key)))
    taken = wire.fast.taken()
    started = time.monotonic()
    answers = assert_same_answers(wire, requests)
    seconds = time.monotonic() - started
    assert {status_of(a) for a in answers} == {200, 400, 401, 403, 404}
    assert b'"reason":"consent"' in b"".join(answers)
    # The protocol answered every 200 whose path needs no decoding or trimming, but a
    # key's first look-up (and one every auth_cache_seconds after) and the admin's
    # environment key, which the app checks each time; every error went through the app.
    paths = [data.split(b" ")[1].partition(b"?")[0] for data in requests]
    plain = [
        data
        for data, path, got in zip(requests, paths, answers, strict=True)
        if status_of(got) == 200 and b"%" not in path and not path.endswith(b"/")
    ]
    ours = len([data for data in plain if ADMIN_KEY.encode() not in data])
    keys_first_seen = 2 * (1 + int(seconds / 2.0))  # operator and prefixed, each window
    assert ours - keys_first_seen <= wire.fast.taken() - taken <= ours
    assert ours > 300
    assert wire.plain.taken() == 0


def test_what_the_protocol_leaves_to_the_app_is_answered_as_before(
    wire: Wire, world: World
) -> None:
    key = bearer(world.operator)
    number = look_up("+12125550003")
    assert_same_answers(wire, [request(number, key)])  # the key is cached in both
    taken = wire.fast.taken()
    requests = [
        request(number, key, method="POST"),
        request(number, key, method="DELETE"),
        request(number, key, version="1.0"),
        request(number, [*key, ("Connection", "close")]),
        request(number, [*key, ("Content-Length", "4")], body=b"body"),
        request(number, [*key, ("Transfer-Encoding", "chunked")], body=b"0\r\n\r\n"),
        request(number, [*key, ("Expect", "100-continue"), ("Content-Length", "0")]),
        request(number, [*key, ("Upgrade", "h2c"), ("Connection", "Upgrade")]),
        request(number, [*key, *bearer("dnc_not-a-key")]),
        request(number + "/", key),
        request("/v1/numbers/%2B12125550003", key),
        request("/v1/numbers/+12125550003#here", key),
        request("/v1/numbers/", key),
        request("/v1/numbers", key),
        request("/healthz"),
    ]
    for data in requests:
        assert_same_answers(wire, [data])
    assert_same_answers(wire, [request(number, key, method="HEAD")], head_only=True)
    assert wire.fast.taken() == taken


def test_pipelined_requests_are_answered_in_order(wire: Wire, world: World) -> None:
    key = bearer(world.operator)
    batch = [
        request(look_up("+12125550001"), key),
        request("/healthz"),
        request(look_up("+12125559999"), bearer("dnc_not-a-key")),
        request(look_up("+12125550002", "channel=sms"), key),
        request(look_up("abc"), key),
        request(look_up("%2B12125550003"), key),
        request(look_up("+12125550100"), key),
        request(look_up("+12125559999"), key),
    ]
    assert_same_answers(wire, [request(look_up("+12125559999"), key)])  # keys cached
    for server in (wire.fast, wire.plain):
        with Connection(server.port) as conn:
            conn.send(b"".join(batch))
            got = [conn.answer() for _ in batch]
        if server is wire.fast:
            fast = got
    assert fast == got
    assert [status_of(a) for a in fast] == [200, 200, 401, 200, 200, 200, 200, 200]
    assert b'"reason":"consent"' in b"".join(fast)


def test_a_look_up_reads_what_was_just_written_through_the_other_server(
    wire: Wire, world: World
) -> None:
    key = bearer(world.operator)
    with Connection(wire.fast.port) as conn, httpx.Client(base_url=wire.plain.url) as writer:
        exchange(conn, request(look_up("+12125550001"), key))
        taken = wire.fast.taken()
        for n in range(10):
            number = f"+1212555{n + 60:04d}"
            assert b'"status":"callable"' in exchange(conn, request(look_up(number), key))
            register(writer, world.carrier, number)
            assert b'"status":"blocked"' in exchange(conn, request(look_up(number), key))
        assert wire.fast.taken() == taken + 20


@contextlib.contextmanager
def redis_asleep(redis_url: str, seconds: float) -> Iterator[None]:
    """Redis answers nothing for `seconds` (DEBUG SLEEP from another connection)."""
    client = redis.Redis.from_url(redis_url)
    sleeper = threading.Thread(target=client.execute_command, args=("DEBUG", "SLEEP", seconds))
    sleeper.start()
    time.sleep(0.1)  # the sleep has begun
    try:
        yield
    finally:
        sleeper.join()
        client.close()


@pytest.mark.single_node
def test_a_look_up_waiting_on_redis_keeps_its_place_and_its_client_may_leave(
    wire: Wire, world: World, redis_url: str
) -> None:
    key = bearer(world.operator)
    first, then = request(look_up("+12125550001"), key), request(look_up("+12125559999"), key)
    expected = assert_same_answers(wire, [first, then])
    taken = wire.fast.taken()
    with Connection(wire.fast.port) as gone, Connection(wire.fast.port) as waiting:
        with redis_asleep(redis_url, 1.0):
            gone.send(first)
            waiting.send(first)  # answered in the protocol once Redis is back...
            time.sleep(0.1)
            waiting.send(then + request("/healthz"))  # ...and these after it, by the app
            time.sleep(0.1)
            gone.close()
        assert [waiting.answer(), waiting.answer()] == expected
        assert status_of(waiting.answer()) == 200
    assert wire.fast.taken() == taken + 2  # the two firsts; what came behind, the app's
    assert_same_answers(wire, [first, then])


@pytest.mark.single_node
def test_a_shutdown_answers_the_look_up_waiting_and_closes(
    wire: Wire, world: World, redis_url: str
) -> None:
    key = bearer(world.operator)
    ask = request(look_up("+12125550001"), key)
    (expected,) = assert_same_answers(wire, [ask])
    taken = wire.fast.taken()
    with Connection(wire.fast.port) as conn:
        with redis_asleep(redis_url, 1.0):
            conn.send(ask)
            time.sleep(0.1)
            wire.fast.server.should_exit = True
        got = conn.answer()
        assert conn.sock is None  # closed after its answer
    assert got == expected.replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n", 1)
    assert wire.fast.taken() == taken + 1


def test_a_round_that_fails_is_the_apps_error(wire: Wire, world: World, redis_client: Any) -> None:
    """A damaged record fails its own look-up with the app's 500, counted for metrics."""
    key = bearer(world.operator)
    number = 12125550001
    assert_same_answers(wire, [request(look_up(f"+{number}"), key)])
    redis_client.hset(keys.details(keys.bucket_of(number)), keys.member_of(number), "junk")
    taken = wire.fast.taken()
    # The server closes a connection after a 500: one connection each.
    (failed,) = assert_same_answers(wire, [request(look_up(f"+{number}"), key)])
    (fine,) = assert_same_answers(wire, [request(look_up("+12125550002"), key)])
    assert status_of(failed) == 500 and b'"code":"internal_error"' in failed
    assert status_of(fine) == 200
    # Both taken by the protocol; the 500 was answered by the app's handlers.
    assert wire.fast.taken() == taken + 2
    metrics = httpx.get(wire.fast.url + "/metrics").text.splitlines()
    served = [line for line in metrics if line.startswith("dnc_http_requests_total")]
    assert any('status="500"' in line and line.endswith(" 1") for line in served), served


@pytest.mark.single_node
def test_a_request_behind_an_answer_given_at_once_keeps_its_connection(
    settings: Settings, redis_url: str
) -> None:
    """An invalid number is answered without Redis; a request pipelined behind it that
    waits on Redis longer than the keep-alive timeout still gets its answer."""
    with (
        serve(settings, Protocol, timeout_keep_alive=1) as fast,
        httpx.Client(base_url=fast.url) as client,
    ):
        key = bearer(new_key(client))
        invalid, waiting = request(look_up("abc"), key), request(look_up("%2B12125550001"), key)
        with Connection(fast.port) as conn:
            exchange(conn, request(look_up("+12125550001"), key))  # the key is cached
            taken = fast.taken()
            with redis_asleep(redis_url, 1.6):
                conn.send(invalid + waiting)
                assert b'"status":"invalid"' in conn.answer()
                assert b'"status":"callable"' in conn.answer()
            assert fast.taken() == taken + 1

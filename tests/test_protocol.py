"""registry/api/protocol.py on a real uvicorn: what a client may hold a worker with.

A header section past its bound is a 431 at once; a head or a body that stops coming is
cut off; well-formed requests, slow or large, are served as before."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from conftest import ADMIN, live_server

from registry.api import protocol
from registry.api.protocol import Protocol
from registry.config import Settings


@contextlib.contextmanager
def served(settings: Settings) -> Iterator[int]:
    """The app behind a real uvicorn with dnc serve's protocol; yields its port."""
    with live_server(settings, http=Protocol) as url:
        yield int(url.rsplit(":", 1)[1])


def answer_of(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body


def error_code(body: bytes) -> str:
    return str(json.loads(body)["error"]["code"])


@pytest.fixture
def port(settings: Settings) -> Iterator[int]:
    with served(settings) as port:
        yield port


@pytest.mark.parametrize("size", [300 * 1024, 8 * 1024 * 1024])
def test_headers_past_the_bound_are_a_431_at_once(port: int, size: int) -> None:
    """Before, a header of hundreds of MB held a worker for minutes, key or no key."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Junk: ")
        with contextlib.suppress(ConnectionError):  # refused before it was all sent
            for _ in range(size // 65536):
                sock.sendall(b"A" * 65536)
            sock.sendall(b"\r\n\r\n")
        head, body = answer_of(sock)
    assert head.startswith(b"HTTP/1.1 431"), head
    assert error_code(body) == "request_header_fields_too_large"
    assert time.monotonic() - started < 5
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200


def head_of(size: int, close: bool = True) -> bytes:
    """A GET /healthz head of exactly `size` bytes, its end included."""
    start = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    if close:
        start += b"Connection: close\r\n"
    start += b"X-Junk: "
    return start + b"A" * (size - len(start) - 4) + b"\r\n\r\n"


def statuses(port: int, *reads: bytes) -> list[int]:
    """The statuses answered to `reads`, each sent on its own (the server may still read
    two as one: the answers must be the same either way)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with contextlib.suppress(ConnectionError):
            for i, read in enumerate(reads):
                if i:
                    time.sleep(0.05)
                sock.sendall(read)
        head, body = answer_of(sock)
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", head + body)]


BOUND = protocol.MAX_HEADER_BYTES


@pytest.mark.parametrize("over", [1, 3, 2000, 40_000, 65_000])
def test_a_head_past_the_bound_in_one_read_is_a_431(port: int, over: int) -> None:
    """Before, a head that ended in the read that took it past the bound was served: up
    to one read (64 KiB here, 256 KiB at most) more than the bound said."""
    assert statuses(port, head_of(BOUND + over)) == [431]


def test_the_bound_is_exact_however_the_head_is_read(port: int) -> None:
    head = head_of(BOUND)
    assert statuses(port, head) == [200]
    assert statuses(port, head[:-3], head[-3:-1], head[-1:]) == [200]
    over = head_of(BOUND + 1)
    assert statuses(port, over[:-2], over[-2:-1], over[-1:]) == [431]
    assert statuses(port, over[:-1], over[-1:]) == [431]
    # A head at the bound whose end straddles two reads, the second carrying the next
    # request: what follows a head is not the head's.
    first = head_of(BOUND, close=False)
    assert statuses(port, first[:-2], first[-2:] + head_of(60_000)) == [200, 200]
    assert statuses(port, first[:-1], first[-1:] + head_of(BOUND - 10)) == [200, 200]


def test_headers_within_the_bound_and_bodies_of_any_size_are_served(port: int) -> None:
    big_cookie = "c=" + "x" * (protocol.MAX_HEADER_BYTES - 2048)  # a large but fair head
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        assert client.get("/healthz", headers={"Cookie": big_cookie}).status_code == 200
        # A scrub body far past the head's bound, arriving in one go: not a head.
        numbers = "".join(f"+1212555{i:04d}\n" for i in range(10_000)).encode()
        operator = client.post(
            "/v1/operators", json={"name": "o", "role": "operator"}, headers=ADMIN
        ).json()["api_key"]
        scrub = client.post(
            "/v1/scrub",
            content=numbers,
            headers={"Authorization": f"Bearer {operator}", "Content-Type": "text/plain"},
        )
        assert scrub.status_code == 200, scrub.text
        assert scrub.text.count("\n") == 10_001
        # Many requests on one connection: the head's count starts again with each.
        for _ in range(200):
            assert client.get("/healthz", headers={"X-Pad": "p" * 1000}).status_code == 200


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protocol, "SWEEP_SECONDS", 0.1)
    monkeypatch.setattr(protocol, "MAX_HEADER_SECONDS", 1.0)
    monkeypatch.setattr(protocol, "MAX_BODY_IDLE_SECONDS", 1.0)


def test_a_head_that_never_completes_is_a_408(quick: None, settings: Settings) -> None:
    """Slowloris: a byte now and then, or nothing at all, held a connection for ever."""
    with served(settings) as port:
        trickle = socket.create_connection(("127.0.0.1", port), timeout=10)
        silent = socket.create_connection(("127.0.0.1", port), timeout=10)
        with trickle, silent:
            trickle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            trickle.settimeout(0.3)
            head = b""
            while not head and time.monotonic() - started < 6:
                with contextlib.suppress(TimeoutError, ConnectionError):
                    trickle.sendall(b"X-A: b\r\n")  # progress of a kind, never the end
                with contextlib.suppress(TimeoutError):
                    head = trickle.recv(65536)
            assert head.startswith(b"HTTP/1.1 408"), head
            assert 0.9 < time.monotonic() - started < 6
            silent.settimeout(6)
            assert answer_of(silent)[0].startswith(b"HTTP/1.1 408")
        # A fair request on a fresh connection is served as ever.
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200


def test_a_body_that_stops_coming_ends_its_connection(quick: None, settings: Settings) -> None:
    with served(settings) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/complaints HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100000\r\n\r\n{"number": '
            )
            started = time.monotonic()
            sock.settimeout(6)
            answer_of(sock)  # the server closes it: recv ends
            assert 0.9 < time.monotonic() - started < 6
        # A slow body that keeps coming is read to its end.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            body = b'{"number": "+12125551234"}'
            sock.sendall(
                b"POST /v1/deregistrations HTTP/1.1\r\nHost: x\r\nContent-Type: "
                b"application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
            )
            for i in range(0, len(body), 2):  # 13 pieces over 2.6 s: past the idle bound
                sock.sendall(body[i : i + 2])
                time.sleep(0.2)
            head, _ = answer_of(sock)
            assert head.startswith(b"HTTP/1.1 202"), head

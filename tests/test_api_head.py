"""HEAD on every GET route (RFC 9110 section 9.3.2): the GET's status and headers, no body.

The README's own check of the pages' security headers is `curl -sI`, a HEAD.
Checked through the ASGI app for every GET route it has, and through a real
uvicorn (both of its HTTP parsers) for the bytes on the wire.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from conftest import ADMIN
from fastapi.testclient import TestClient

from registry.api import create_app
from registry.config import Settings
from registry.embedded import free_port

Headers = dict[str, str]
# A value for each path parameter of a GET route; a new parameter fails the test below.
SAMPLES = {
    "number": "+12125551234",
    "receipt_id": "scr_0123456789abcdef0123",
    "name": "app.css",
    "operator_id": "op_0123456789ab",
    "consent_id": "cns_0123456789abcdef0123",
    "complaint_id": "cmp_0123456789abcdef",
}
PAGE_HEADERS = ("content-security-policy", "referrer-policy", "x-content-type-options")


def get_paths(client: TestClient) -> list[str]:
    """Every GET route: the API's from its OpenAPI document, its parameters filled in, and
    the pages and documentation, which the document leaves out."""
    paths = [
        "/",
        "/portal",
        "/assets/{name}",
        "/favicon.ico",
        "/docs",
        "/docs/assets/swagger-ui.css",
    ]
    paths += ["/openapi.json"]
    document = client.get("/openapi.json").json()
    paths += [path for path, operations in document["paths"].items() if "get" in operations]
    filled = []
    for path in paths:
        names = re.findall(r"{(\w+)}", path)
        assert set(names) <= set(SAMPLES), f"no sample value for {path}"
        filled.append(path.format(**{n: SAMPLES[n] for n in names}))
    return filled


def test_every_get_route_answers_head_with_the_gets_status_and_headers(
    client: TestClient, carrier: Headers
) -> None:
    client.put("/v1/registrations/+12125551234", headers=carrier)
    paths = get_paths(client)
    assert {"/", "/portal", "/healthz", "/readyz", "/v1/changes", "/v1/export"} <= set(paths)
    for path in paths:
        get = client.get(path, headers=ADMIN)
        head = client.head(path, headers=ADMIN)
        assert head.status_code == get.status_code != 405, path
        assert head.content == b"", path
        if path == "/metrics":  # its body counts the requests, so its length moves
            continue
        # The server adds `transfer-encoding: chunked` to a streamed GET on the wire only, and
        # the app to its HEAD (test_head_of_a_streamed_get_says_it_is_chunked_as_the_get_does).
        in_process = [(k, v) for k, v in head.headers.items() if k != "transfer-encoding"]
        assert in_process == list(get.headers.items()), path


def test_head_of_a_look_up_reaches_fastapi_behind_the_look_up_route(
    client: TestClient, operator: Headers
) -> None:
    get = client.get("/v1/numbers/+12125551234", headers=operator)
    head = client.head("/v1/numbers/+12125551234", headers=operator)
    assert (head.status_code, head.headers, head.content) == (200, get.headers, b"")
    assert client.head("/v1/numbers/+12125551234").status_code == 401  # as GET: no key


def test_head_of_a_path_without_get_is_still_a_405(client: TestClient, operator: Headers) -> None:
    answer = client.head("/v1/scrub", headers=operator)
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"


def test_heads_are_counted_as_heads(client: TestClient) -> None:
    client.head("/healthz")
    assert 'method="HEAD",status="200"' in client.get("/metrics").text


# -- on the wire ----------------------------------------------------------------------------


@pytest.fixture(params=["h11", "httptools"])
def address(request: pytest.FixtureRequest, settings: Settings) -> Iterator[tuple[str, int]]:
    """The real app under a real uvicorn with one of its HTTP parsers, in a thread."""
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=free_port(),
        http=request.param,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield config.host, config.port
    server.should_exit = True
    thread.join(10)


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """One response's status line and headers, and whatever arrived after them."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed mid-headers: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def header_map(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}


@pytest.mark.parametrize("path", ["/", "/healthz", "/portal", "/assets/app.css"])
def test_head_on_the_wire_sends_the_gets_headers_and_no_body(
    address: tuple[str, int], path: str
) -> None:
    host = f"Host: {address[0]}:{address[1]}\r\n".encode()
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(b"HEAD " + path.encode() + b" HTTP/1.1\r\n" + host + b"\r\n")
        head, extra = read_head(sock)
        # The same connection's next answer starts right after HEAD's headers: no body between.
        sock.sendall(
            b"GET " + path.encode() + b" HTTP/1.1\r\n" + host + b"Connection: close\r\n\r\n"
        )
        rest = extra
        while chunk := sock.recv(65536):
            rest += chunk
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert rest.startswith(b"HTTP/1.1 200 "), rest[:200]
    get_head, _, get_body = rest.partition(b"\r\n\r\n")
    got, sent = header_map(head), header_map(get_head)
    assert got["content-length"] == sent["content-length"] == str(len(get_body))
    assert got["content-type"] == sent["content-type"]
    if path != "/healthz":
        for name in PAGE_HEADERS:
            assert got[name] == sent[name], name


def test_head_of_a_streamed_get_says_it_is_chunked_as_the_get_does(
    address: tuple[str, int],
) -> None:
    created = httpx.post(
        f"http://{address[0]}:{address[1]}/v1/operators",
        json={"name": "op", "role": "operator"},
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    host = f"Host: {address[0]}:{address[1]}\r\n".encode()
    auth = f"Authorization: Bearer {created.json()['api_key']}\r\n".encode()
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(b"HEAD /v1/export HTTP/1.1\r\n" + host + auth + b"\r\n")
        head, extra = read_head(sock)
        sock.sendall(b"GET /v1/export HTTP/1.1\r\n" + host + auth + b"Connection: close\r\n\r\n")
        rest = extra
        while chunk := sock.recv(65536):
            rest += chunk
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert rest.startswith(b"HTTP/1.1 200 "), rest[:200]  # no body between the two
    got, sent = header_map(head), header_map(rest.partition(b"\r\n\r\n")[0])
    assert got["transfer-encoding"] == sent["transfer-encoding"] == "chunked"
    assert "content-length" not in got

"""The fixed-rate generator of goal 5 (benchmarks/loadgen.py) against a real server: it
sends the requests it scheduled, times each answer, and counts the ones not 200."""

from __future__ import annotations

from conftest import live_app
from starlette.types import Receive, Scope, Send

from benchmarks import bare, loadgen
from registry.api.protocol import Protocol


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await bare.app(scope, receive, send)
        return
    status = 404 if scope["path"] == "/missing" else 200
    body = b"x" * (5000 if scope["path"] == "/big" else 10)
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def test_the_generator_keeps_its_rate_and_counts_what_failed() -> None:
    with live_app(app, Protocol) as (url, _):
        paths = ["/a", "/big", "/missing", "/b"]
        result = loadgen.fixed_rate(url, paths, {"X-Test": "1"}, 400, 1.0, 8, 0.25)
    # 1.25 s at 400 a second, the first 0.25 s not counted; one path in four is a 404.
    assert result.requests == 400
    assert result.errors == 100
    assert 0.9 < result.seconds < 1.5
    assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms
    assert result.p99_scheduled_ms is not None and result.p99_scheduled_ms >= result.p50_ms

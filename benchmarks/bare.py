"""The bare ASGI app of goal 5: a fixed JSON body for every request, no framework, no Redis.

It is the most an ASGI app could get from this server (uvicorn), these workers and
this event loop, so `GET /v1/numbers/{n}` is measured as a share of it. It runs
with the settings `dnc serve` gives uvicorn, its HTTP protocol class included
(registry/api/protocol.py: for this app, uvicorn's httptools protocol with the
bounds on a request's head; `dnc serve`'s look-ups it answers without the ASGI
cycle):

    python -m benchmarks.bare --port 8001 --workers 1
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.types import Receive, Scope, Send

BODY = b'{"number":"+12125551234","status":"callable","reason":"not_registered"}'
_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
    ],
}
_BODY = {"type": "http.response.body", "body": BODY}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send(_START)
    await send(_BODY)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bare", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    from registry.api.protocol import Protocol

    # registry/serve.py's options, but the app and its factory.
    uvicorn.run(
        "benchmarks.bare:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        http=Protocol,
    )


if __name__ == "__main__":
    main()

"""The bare ASGI app of goal 5: a fixed JSON body for every request, no framework, no Redis.

It is the most a look-up could get from this server (uvicorn), these workers and
this event loop, so `GET /v1/numbers/{n}` is measured as a share of it.

    uvicorn benchmarks.bare:app --workers 1 --no-access-log
"""

from __future__ import annotations

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

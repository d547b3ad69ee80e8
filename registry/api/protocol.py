"""uvicorn's HTTP/1.1 protocol (httptools), its own errors in the contract's shape.

A request uvicorn cannot parse (a space in the path, bytes that are not HTTP)
never reaches the app: uvicorn answers it a plain-text 400 itself. CONTRACT
section 6 gives every error one JSON shape, so this subclass answers those in it.
Nothing else changes: every parsed request takes uvicorn's own path, the same
as the bare app of goal 5 gets.
"""

from __future__ import annotations

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from registry.api.errors import error_body


class Protocol(HttpToolsProtocol):
    def send_400_response(self, msg: str) -> None:
        body = orjson.dumps(
            error_body(
                "invalid_http",
                f"the request is not HTTP/1.1 the server can read ({msg.rstrip('.')}); "
                "percent-encode spaces and other special characters in the path",
            )
        )
        content = [STATUS_LINE[400]]
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

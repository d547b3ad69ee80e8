"""JSON answers encoded by orjson (FastAPI's own JSON is deprecated)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


def _printable(content: Any) -> Any:
    """`content` with every string made encodable: a lone surrogate (JSON lets a client
    send "\\ud800", and an error echoes what it sent) becomes the text `\\ud800`."""
    if isinstance(content, str):
        return content.encode("utf-8", "backslashreplace").decode()
    if isinstance(content, dict):
        return {_printable(k): _printable(v) for k, v in content.items()}
    if isinstance(content, list | tuple):
        return [_printable(v) for v in content]
    return content


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
        except orjson.JSONEncodeError:
            # Anything else orjson refuses is our bug, and raises again: a 500.
            return orjson.dumps(_printable(content), option=orjson.OPT_NON_STR_KEYS)

"""How one-time codes reach subscribers: DNC_NOTIFIER (CONTRACT section 4).

Three ways, chosen once at start-up from `settings.notifier`:

- `log`: a line in the server log, code included (development and demos);
- `file:/path/outbox.jsonl`: one JSON object a line, for an SMS gateway that
  tails the file. Each line is a single write(2) on a descriptor opened with
  O_APPEND, so lines of concurrent workers never interleave;
- `webhook:https://...`: the same object POSTed as JSON to a gateway.

A delivery that fails raises NotifierError; the caller voids the request and
answers 503, since a code nobody received must not stay confirmable.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from registry.config import ConfigError, check_notifier

log = logging.getLogger("dnc.notifier")
# A gateway that cannot take a message within this long is treated as down: the
# subscriber is waiting on the answer.
WEBHOOK_TIMEOUT = 5.0


class NotifierError(Exception):
    """A message could not be handed to the delivery channel."""


@dataclass(frozen=True)
class Message:
    """One one-time code on its way to a number; the outbox and webhook format."""

    to: str  # E.164
    text: str
    code: str
    at: str  # ISO-8601 UTC, when it was sent

    @classmethod
    def code_for(cls, to: str, code: str, text: str) -> Message:
        now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        return cls(to=to, text=text, code=code, at=now)

    def json(self) -> bytes:
        return orjson.dumps(asdict(self))


class Notifier(Protocol):
    async def send(self, message: Message) -> None: ...

    async def aclose(self) -> None: ...


class LogNotifier:
    """Writes each message to the server log (stderr when nothing else is configured)."""

    def __init__(self) -> None:
        # uvicorn configures only its own loggers; without a handler here an INFO line
        # would be dropped, and the code with it.
        if not log.handlers and not logging.getLogger().handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
            log.addHandler(handler)
        log.setLevel(logging.INFO)

    async def send(self, message: Message) -> None:
        log.info("code %s to %s: %s", message.code, message.to, message.text)

    async def aclose(self) -> None:
        pass


class FileNotifier:
    """Appends each message as one JSON line to an outbox file (mode 0600: it holds codes)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _append(self, line: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            written = os.write(fd, line)
        finally:
            os.close(fd)
        if written != len(line):
            raise OSError(f"short write to {self.path}: {written} of {len(line)} bytes")

    async def send(self, message: Message) -> None:
        try:
            await asyncio.to_thread(self._append, message.json() + b"\n")
        except OSError as exc:
            raise NotifierError(f"outbox {self.path}: {exc}") from exc

    async def aclose(self) -> None:
        pass


class WebhookNotifier:
    """POSTs each message as JSON; any answer but a 2xx within the timeout is a failure.

    One client for the worker's event loop keeps its connections to the gateway
    open between messages: no new TCP and TLS handshake for every code.
    """

    def __init__(self, url: str, timeout: float = WEBHOOK_TIMEOUT) -> None:
        self.url = url
        # What the log may say: no user, password or query (where gateways put tokens).
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        self.shown = urlunsplit((parts.scheme, host, parts.path, "", ""))
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _session(self) -> httpx.AsyncClient:
        # A client's connections belong to the loop that opened them (a test client's
        # loop ends with it): a new loop gets a new client.
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = httpx.AsyncClient(timeout=self.timeout)
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        if self._client is not None and self._loop is asyncio.get_running_loop():
            await self._client.aclose()
        self._client = self._loop = None

    async def send(self, message: Message) -> None:
        try:
            answer = await self._session().post(
                self.url,
                content=message.json(),
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            said = str(exc).replace(self.url, self.shown)
            raise NotifierError(f"webhook {self.shown}: {type(exc).__name__}: {said}") from exc
        if not answer.is_success:
            raise NotifierError(f"webhook {self.shown} answered {answer.status_code}")


def usable_notifier(spec: str) -> None:
    """A ConfigError unless DNC_NOTIFIER names a notifier this machine can build: `dnc
    serve` asks before it says it serves, the workers again as they build it."""
    check_notifier(spec)
    kind, _, target = spec.partition(":")
    if kind == "file" and not Path(target).parent.is_dir():
        raise ConfigError(f"DNC_NOTIFIER: the directory of {target!r} does not exist")


def build_notifier(spec: str) -> Notifier:
    """The notifier DNC_NOTIFIER names; a ConfigError at start-up, not at the first code."""
    usable_notifier(spec)
    kind, _, target = spec.partition(":")
    if kind == "file":
        return FileNotifier(Path(target))
    if kind == "webhook":
        return WebhookNotifier(target)
    return LogNotifier()

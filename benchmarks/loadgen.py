"""Load for goal 5: peak requests a second with `wrk`, latency at a fixed rate with asyncio.

Peak throughput comes from `wrk` (C, epoll, one thread), which leaves the
server nearly all of the CPU it would have alone; install it with
`apt-get install -y wrk`. Latency at a given rate comes from an open-loop
generator written here (wrk cannot hold a rate), in asyncio callbacks on
uvloop with no task a request, so it keeps its schedule beside the server on
a small machine (its garbage collector off while it runs): requests are scheduled at
fixed intervals, sent on keep-alive HTTP/1.1 connections, and a request's
latency runs from its *scheduled* time to the last byte of its answer, so a
stalled server is not hidden by the generator waiting for it (coordinated
omission). The latency from the moment each request is written is measured
too and shown beside it; it leaves out the generator's timer granularity
(about a millisecond on loopback) but also any wait for a free connection, so
goal 5's p99 is judged from the schedule (benchmarks/report.py).
"""

from __future__ import annotations

import asyncio
import gc
import re
import shutil
import subprocess
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WRK_INSTALL = "apt-get install -y wrk"
_RESULT = re.compile(r"^RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$", re.MULTILINE)


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    errors: int  # connection errors, timeouts and non-2xx answers
    p50_ms: float
    p99_ms: float
    max_ms: float
    # Fixed rate only: p99 counted from each request's scheduled time, so it also holds the
    # generator's own lateness (its timers tick in milliseconds) and any wait for a connection.
    p99_scheduled_ms: float | None = None

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_path() -> str | None:
    return shutil.which("wrk")


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _wrk_script(paths: list[str], headers: dict[str, str]) -> str:
    lines = ["local paths = {", *(f"  {_lua_string(p)}," for p in paths), "}"]
    lines += [f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items()]
    lines += [
        "local i = 0",
        "request = function()",
        "  i = i % #paths + 1",
        '  return wrk.format("GET", paths[i])',
        "end",
        "done = function(summary, latency, requests)",
        "  local e = summary.errors",
        '  io.write(string.format("RESULT %d %d %d %d %d %d %d\\n", summary.requests,',
        "    summary.duration, e.connect + e.read + e.write + e.timeout, e.status,",
        "    latency:percentile(50), latency:percentile(99), latency.max))",
        "end",
    ]
    return "\n".join(lines) + "\n"


def wrk(
    base_url: str,
    paths: list[str],
    headers: dict[str, str],
    seconds: float,
    connections: int,
    threads: int = 1,
) -> LoadResult:
    """As many requests as the server answers, cycling through `paths`."""
    binary = wrk_path()
    if binary is None:
        raise RuntimeError(f"wrk is not installed; install it with `{WRK_INSTALL}`")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_wrk_script(paths, headers))
    try:
        out = subprocess.run(
            [
                binary,
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds:g}s",
                "--timeout",
                "10s",
                "-s",
                script.name,
                base_url,
            ],  # fmt: skip
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        Path(script.name).unlink(missing_ok=True)
    found = _RESULT.search(out.stdout)
    if found is None:
        raise RuntimeError(f"wrk printed no result:\n{out.stdout}\n{out.stderr}")
    requests, micros, errors, status_errors, p50, p99, worst = map(int, found.groups())
    return LoadResult(
        requests, micros / 1e6, errors + status_errors, p50 / 1e3, p99 / 1e3, worst / 1e3
    )


class _Client(asyncio.Protocol):
    """One keep-alive connection of the fixed-rate generator: one request at a time."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.at = 0.0  # the request's scheduled time
        self.sent = 0.0  # when it was written
        self.index = -1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, at: float, index: int) -> None:
        assert self.transport is not None
        self.at, self.index = at, index
        self.sent = time.perf_counter()
        self.transport.write(self.run.requests[index % len(self.run.requests)])

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            self.buffer = buffer
            return
        head = buffer[:end]
        length = _LENGTH.search(head)
        size = end + 4 + (int(length[1]) if length else 0)
        if len(buffer) < size:
            self.buffer = buffer
            return
        self.buffer = buffer[size:]
        self.run.answered(self, head.startswith(b"HTTP/1.1 200"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.run.lost(self)


_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")


class _Run:
    """Requests released at their scheduled times to idle connections (or queued for the
    next one free), the answers timed: all in callbacks on one event loop, no task or
    coroutine a request, so the generator spends a few microseconds a request and keeps
    its schedule at the rates goal 5 asks for on a machine it shares with the server."""

    def __init__(self, requests: list[bytes], rate: float, total: int, skip: int) -> None:
        self.requests = requests
        self.rate = rate
        self.total = total
        self.skip = skip
        self.loop = asyncio.get_running_loop()
        self.idle: deque[_Client] = deque()
        self.waiting: deque[tuple[float, int]] = deque()  # released, no connection free yet
        self.released = 0
        self.finished = 0
        self.errors = 0
        self.latencies: list[float] = []
        self.scheduled: list[float] = []
        self.start = 0.0
        self.done: asyncio.Future[None] = self.loop.create_future()

    def begin(self, clients: list[_Client]) -> None:
        self.idle.extend(clients)
        self.start = time.perf_counter() + 0.05
        self.loop.call_later(0.05, self.release)

    def release(self) -> None:
        """Every request whose time has come, then again in a millisecond."""
        due = min(self.total, int((time.perf_counter() - self.start) * self.rate) + 1)
        while self.released < due:
            at = self.start + self.released / self.rate
            if self.idle:
                self.idle.popleft().send(at, self.released)
            else:
                self.waiting.append((at, self.released))
            self.released += 1
        if self.released < self.total:
            self.loop.call_later(0.001, self.release)

    def answered(self, client: _Client, ok: bool) -> None:
        done = time.perf_counter()
        if client.index >= self.skip:
            self.latencies.append(done - client.sent)
            self.scheduled.append(done - client.at)
            if not ok:
                self.errors += 1
        self.finished += 1
        if self.waiting:
            client.send(*self.waiting.popleft())
        else:
            self.idle.append(client)
        if self.finished == self.total and not self.done.done():
            self.done.set_result(None)

    def lost(self, client: _Client) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError("the server closed a connection mid-run"))


async def _fixed_rate(
    host: str,
    port: int,
    paths: list[str],
    headers: dict[str, str],
    rate: float,
    seconds: float,
    connections: int,
    warmup: float,
) -> LoadResult:
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    requests = [
        f"GET {p} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode("latin-1") for p in paths
    ]
    run = _Run(requests, rate, int(rate * (seconds + warmup)), int(rate * warmup))
    loop = asyncio.get_running_loop()
    clients: list[_Client] = []
    for _ in range(connections):
        _, client = await loop.create_connection(lambda: _Client(run), host, port)
        clients.append(client)
    started = time.perf_counter()
    try:
        run.begin(clients)
        await asyncio.wait_for(run.done, seconds + warmup + 60)
    finally:
        for client in clients:
            if client.transport is not None:
                client.transport.close()
    elapsed = time.perf_counter() - started - 0.05 - warmup
    ms = np.array(run.latencies) * 1e3
    return LoadResult(
        len(run.latencies),
        elapsed,
        run.errors,
        float(np.percentile(ms, 50)),
        float(np.percentile(ms, 99)),
        float(ms.max()),
        float(np.percentile(np.array(run.scheduled) * 1e3, 99)),
    )


def fixed_rate(
    base_url: str,
    paths: list[str],
    headers: dict[str, str],
    rate: float,
    seconds: float,
    connections: int = 64,
    warmup: float = 1.0,
) -> LoadResult:
    """`rate` requests a second for `seconds` (after `warmup`), latency from the schedule."""
    import uvloop

    host, _, port = base_url.removeprefix("http://").partition(":")
    coroutine = _fixed_rate(host, int(port), paths, headers, rate, seconds, connections, warmup)
    # The generator's own garbage collector off for the run: its pauses, not the
    # server's, were most of the p99 from the schedule (5.9 to 176 ms against 2.8 to
    # 5.8 ms without them, the bare app at 16,000 a second on this 2-core machine).
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coroutine)
    finally:
        gc.enable()
        gc.unfreeze()

"""Load for goal 5: peak requests a second with `wrk`, latency at a fixed rate with asyncio.

Peak throughput comes from `wrk` (C, epoll, one thread), which leaves the
server nearly all of the CPU it would have alone; install it with
`apt-get install -y wrk`. Latency at a given rate comes from an open-loop
generator written here (wrk cannot hold a rate): requests are scheduled at
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
import re
import shutil
import subprocess
import tempfile
import time
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
    queue: asyncio.Queue[tuple[float, int] | None] = asyncio.Queue()
    latencies: list[float] = []
    scheduled: list[float] = []
    errors = 0
    total = int(rate * (seconds + warmup))
    skip = int(rate * warmup)

    async def dispatch() -> None:
        # Wakes once a millisecond and releases every request whose time has come.
        start = time.perf_counter() + 0.05
        i = 0
        while i < total:
            due = min(total, int((time.perf_counter() - start) * rate) + 1)
            while i < due:
                queue.put_nowait((start + i / rate, i))
                i += 1
            await asyncio.sleep(0.001)
        for _ in range(connections):
            queue.put_nowait(None)

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while (item := await queue.get()) is not None:
                at, i = item
                sent = time.perf_counter()
                writer.write(requests[i % len(requests)])
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                if i >= skip:
                    done = time.perf_counter()
                    latencies.append(done - sent)
                    scheduled.append(done - at)
                    if not head.startswith(b"HTTP/1.1 200"):
                        errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(dispatch(), *(connection() for _ in range(connections)))
    elapsed = time.perf_counter() - started - warmup
    ms = np.array(latencies) * 1e3
    return LoadResult(
        len(latencies),
        elapsed,
        errors,
        float(np.percentile(ms, 50)),
        float(np.percentile(ms, 99)),
        float(ms.max()),
        float(np.percentile(np.array(scheduled) * 1e3, 99)),
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
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)

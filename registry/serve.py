"""`dnc serve`: the API, and the embedded Redis it watches and starts again.

The command line's one long-running command: it binds the port before anything
starts, starts the embedded redis-server (unless DNC_REDIS_URL names one), makes the
admin key on first start, and runs uvicorn until SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

import redis

from registry import embedded
from registry.cli_output import Failure
from registry.config import Settings
from registry.notifier import usable_notifier
from registry.store import setup
from registry.store.connect import async_client, sync_client
from registry.store.replication import replicated_sync

# Set by a SIGINT or SIGTERM that comes before uvicorn has its own handlers.
_stop_asked = threading.Event()


def _stop_on_signal(signum: int, frame: object) -> None:
    # uvicorn re-raises the signal it shut down on; with the default action SIGTERM would end
    # us before `finally` stops the embedded Redis. As KeyboardInterrupt, the API just returns.
    # Raised inside a finalizer (a redis-py pool collected during start-up, say), Python
    # prints the KeyboardInterrupt and drops it: `_stop_asked` is what uvicorn then checks.
    _stop_asked.set()
    raise KeyboardInterrupt


def run(settings: Settings) -> int:
    """`dnc serve`: the embedded Redis unless DNC_REDIS_URL, the admin key on first start,
    then the API until SIGINT/SIGTERM; 0, or a Failure saying why it stopped."""
    usable_notifier(settings.notifier)  # before anything starts or says it serves
    for warning in warnings(settings):
        print(f"dnc: warning: {warning}", file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGINT, _stop_on_signal)  # Ctrl-C: Python's own, and _stop_asked
    if settings.redis_url is not None:
        return _run(settings)
    embedded.usable_data_dir(settings.data_dir)
    lock = embedded.DataDirLock(settings.data_dir)
    if not lock.acquire():
        raise Failure(
            f"another dnc serve, or a dnc load, export or scrub started without one, uses "
            f"{settings.data_dir}; stop it first, or set DNC_DATA_DIR to another directory"
        )
    try:
        # A Redis on it whose owner holds no lock (an older dnc): never a second one.
        if embedded.running_url(settings.data_dir):
            raise Failure(f"another dnc serve already uses {settings.data_dir}")
        return _run(settings, lock)
    finally:
        lock.release()


def _run(settings: Settings, lock: embedded.DataDirLock | None = None) -> int:
    """`run` once DNC_DATA_DIR, if it serves one, is this process's alone (`lock`, which
    its Redis holds too while it lives)."""
    listener = _listen(settings.host, settings.port)
    server: embedded.RedisProcess | None = None
    stopping, redis_gone = threading.Event(), threading.Event()
    try:
        if settings.redis_url is None:
            server = embedded.RedisProcess(settings.data_dir, lock=lock)
            os.environ["DNC_REDIS_URL"] = server.start()
            settings = settings.with_(redis_url=os.environ["DNC_REDIS_URL"])
            print(f"embedded redis-server: {server.url} (data in {server.data_dir})", flush=True)
            watch = (server, stopping, redis_gone)
            threading.Thread(target=_watch, args=watch, name="dnc-redis-watch", daemon=True).start()
        assert settings.redis_url is not None
        client = sync_client(settings.redis_url)
        setup.tune(client)
        # Here, once, before any worker: a worker started later (one uvicorn replaced)
        # never makes a registry, so one Redis lost stays a 503 rather than an empty list.
        setup.ensure_registry(client)
        if settings.admin_key is None:
            key = asyncio.run(_create_admin_key(settings.redis_url, settings.retention_days))
            if key:
                print(f"admin key (shown once, keep it): {key}", flush=True)
                _warn_unless_replicated(settings, client)
        client.close()
        if _stop_asked.is_set():
            raise KeyboardInterrupt
        print(f"dnc-registry serving http://{settings.host}:{settings.port}", flush=True)
        try:
            _run_api(settings, listener)
        except KeyboardInterrupt:
            if not redis_gone.is_set():
                raise
    finally:
        stopping.set()
        listener.close()
        if server is not None:
            server.stop()
    if redis_gone.is_set():
        raise Failure(
            "the embedded redis-server is gone, so dnc serve stopped rather than answer 503 "
            f"for ever; run it again: the data in {settings.data_dir} is kept"
        )
    return 0


def _watch(server: embedded.RedisProcess, stopping: threading.Event, gone: threading.Event) -> None:
    """The embedded Redis killed or crashed while serving: start it again on its data, at
    the same address, so the workers (which answer 503 meanwhile, never "callable")
    reconnect and serve again. One that cannot be started, or dies again and again, stops
    the API (exit 1) for a person or a service manager to see to."""
    deaths: list[float] = []
    while True:
        assert server.process is not None
        status = server.process.wait()
        if stopping.is_set():
            return
        now = time.monotonic()
        deaths = [t for t in deaths if now - t < RESTART_WINDOW] + [now]
        print(
            f"dnc: the embedded redis-server exited (status {status})", file=sys.stderr, flush=True
        )
        if len(deaths) > RESTARTS:
            problem = f"it exited {len(deaths)} times in {RESTART_WINDOW:.0f} s"
        else:
            if server.tcp:
                server.fixed_port = server.port  # the address the workers know
            url = server.url
            try:
                restarted = server.start(timeout=RESTART_TIMEOUT)
                problem = "" if restarted == url else f"it came back at {restarted}, not {url}"
            except Exception as exc:  # noqa: BLE001 - any failure: stop, and say why
                problem = f"it could not be started again: {exc}"
            if not problem:
                print(
                    f"dnc: embedded redis-server started again on {server.data_dir}",
                    file=sys.stderr,
                    flush=True,
                )
                continue
        print(f"dnc: {problem}; stopping", file=sys.stderr, flush=True)
        gone.set()
        os.kill(os.getpid(), signal.SIGTERM)
        return


# The embedded Redis is started again after a crash, at most this often; the AOF of a large
# registry takes a few seconds to load.
RESTARTS, RESTART_WINDOW, RESTART_TIMEOUT = 3, 60.0, 120.0


# Five months, the least the rules keep consent evidence and ended records: the longest
# five calendar months run to 153 days.
FIVE_MONTHS_DAYS = 153


def warnings(settings: Settings) -> list[str]:
    """What `dnc serve` starts with but should not: settings allowed for development and
    tests that break a rule in production."""
    found = []
    if settings.notifier == "log" and not _loopback(settings.host):
        found.append(
            f"DNC_NOTIFIER=log on DNC_HOST={settings.host}: every code and its number goes "
            "to the log and no subscriber gets one; set DNC_NOTIFIER to webhook:https://... "
            "or file:/path/outbox.jsonl"
        )
    if settings.retention_days < FIVE_MONTHS_DAYS:
        found.append(
            f"DNC_RETENTION_DAYS={settings.retention_days} is under five months "
            f"({FIVE_MONTHS_DAYS} days): consent evidence and ended registrations, which the "
            "rules keep at least that long, are dropped sooner"
        )
    return found


def _loopback(host: str) -> bool:
    """Whether `host` (DNC_HOST) listens on this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _warn_unless_replicated(settings: Settings, client: Any) -> None:
    """The key just shown is stored on the master: say so if the replicas do not hold it
    yet (it is shown only once, and a failover now would lose it)."""
    if not settings.wait_replicas:
        return
    try:
        replicated_sync(client, settings.wait_replicas, settings.wait_replicas_ms)
    except redis.RedisError as exc:
        print(
            f"dnc: warning: the admin key is on the master, but {exc}; if the master fails "
            "before the replicas catch up, the key is lost: then set DNC_ADMIN_KEY",
            file=sys.stderr,
            flush=True,
        )


def _listen(host: str, port: int) -> socket.socket:
    """The API's socket, bound before anything starts: a port in use stops `dnc serve` at
    once, with nothing to undo. uvicorn handed it has no bind of its own to fail: after
    a failed bind it waits on the application's shutdown, which can hang for good."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise Failure(
                f"port {port} on {host} is in use: stop what holds it or set DNC_PORT"
            ) from None
        raise Failure(f"cannot listen on {host} port {port}: {exc.strerror or exc}") from None
    return sock


def _run_api(settings: Settings, listener: socket.socket) -> None:
    """uvicorn until SIGINT/SIGTERM; a start-up it gives up on is a Failure, not its exit 3.

    One worker serves on `listener`. uvicorn's supervisor of several workers takes no
    socket, so it binds the port itself the moment ours is let go; should another
    process take the port in between, that bind fails in the supervisor, before any
    worker or application starts, and ends uvicorn at once.
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from registry.api.protocol import Protocol

    class _Server(uvicorn.Server):
        """uvicorn's server, which also stops for a signal it was not there to catch."""

        async def on_tick(self, counter: int) -> bool:
            return await super().on_tick(counter) or _stop_asked.is_set()

    app = "registry.api.app:create_app_from_env"
    options: dict[str, Any] = {
        "factory": True,
        "host": settings.host,
        "port": settings.port,
        "workers": settings.workers,
        "log_level": "info",
        "access_log": False,
        # X-Forwarded-For names the client only when a trusted proxy sent it: the
        # per-client limits (status checks, codes, complaints) count by that address.
        "proxy_headers": settings.trusted_proxies != "none",
        "forwarded_allow_ips": settings.trusted_proxies,
        # httptools, as uvicorn's default here, answering what it cannot parse as the API
        # answers every error (registry/api/protocol.py).
        "http": Protocol,
    }
    try:
        if settings.workers > 1:
            listener.close()
            config = uvicorn.Config(app, **options)
            supervisor = Multiprocess(config, sockets=[config.bind_socket()])
            # Signals go to the supervisor from here on; one dropped before is in _stop_asked.
            if not _stop_asked.is_set():
                supervisor.run()
            return
        api = _Server(uvicorn.Config(app, **options))
        api.run(sockets=[listener])
        started = api.started
    except KeyboardInterrupt:
        return
    except SystemExit as exc:
        started = exc.code in (0, None)
    if not started:
        raise Failure(
            f"the API did not start on {settings.host} port {settings.port} (see its log above)"
        )


async def _create_admin_key(url: str, retention_days: int) -> str | None:
    from registry.store.operators import OperatorStore

    client = async_client(url)
    try:
        return await OperatorStore(client, retention_days).create_admin_key()
    finally:
        await client.aclose()

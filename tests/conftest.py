"""Fixtures: real redis-server processes on free loopback ports, and the real ASGI app.

No in-process stand-ins: every test talks to a redis-server started here
from the same binary `dnc serve` embeds.

A module marked `cluster` runs each test that uses `redis_url` twice: against
one redis-server (`[single]`) and against a three-master Redis Cluster
(`[cluster]`, DNC_REDIS_URL `redis+cluster://...`). A test in such a module
that needs one plain server (raw key listings, OBJECT ENCODING, a server it
kills) is marked `single_node` and runs once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from embedded_cluster import EmbeddedCluster

from registry.embedded import RedisProcess, free_port
from registry.store import setup
from registry.store.connect import sync_client

warnings.filterwarnings("ignore", message=".*httpx2.*")
import httpx  # noqa: E402
import uvicorn  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from registry.api import create_app  # noqa: E402
from registry.config import Settings  # noqa: E402

ADMIN_KEY = "test-admin-key"
TOPOLOGIES = ("single", "cluster")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cluster: run each test on a single redis-server and on a Redis Cluster"
    )
    config.addinivalue_line(
        "markers", "single_node: in a `cluster` module, a test that needs one plain redis-server"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    test = metafunc.definition
    if (
        "redis_url" in metafunc.fixturenames
        and test.get_closest_marker("cluster") is not None
        and test.get_closest_marker("single_node") is None
    ):
        metafunc.parametrize("topology", TOPOLOGIES)


def start_redis(directory: Path, durable: bool = False) -> RedisProcess:
    """A redis-server on a free loopback TCP port (not a socket: tests may stop it)."""
    server = RedisProcess(directory, durable=durable, tcp=True)
    server.start()
    return server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path_factory.mktemp("redis"), durable=False, tcp=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCluster]:
    """Three masters from the same binary; started only if a `[cluster]` test runs."""
    cluster = EmbeddedCluster(tmp_path_factory.mktemp("cluster"), masters=3)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def topology() -> str:
    """`single` unless the module is marked `cluster` (then parametrized over TOPOLOGIES)."""
    return "single"


@pytest.fixture
def redis_url(topology: str, request: pytest.FixtureRequest) -> str:
    """The session's Redis (one server or the Cluster), emptied for this test, holding a
    new registry's marker as `dnc serve` leaves it before its workers start."""
    if topology == "cluster":
        cluster: EmbeddedCluster = request.getfixturevalue("redis_cluster")
        cluster.flush()
        url = cluster.url
    else:
        server: RedisProcess = request.getfixturevalue("redis_server")
        client = redis.Redis.from_url(server.url)
        client.flushall()
        client.close()
        url = server.url
    new_registry(url)
    return url


def new_registry(url: str) -> None:
    """The registry's marker, as `dnc serve` and `dnc load` make it on an empty Redis."""
    client = sync_client(url)
    try:
        setup.ensure_registry(client)
    finally:
        client.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[Any]:
    """A synchronous client of the test's Redis: redis.Redis, or RedisCluster on the Cluster."""
    client = sync_client(redis_url)
    yield client
    client.close()


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    return Settings(redis_url=redis_url, admin_key=ADMIN_KEY, data_dir=tmp_path / "data")


def in_one_window(burst: Callable[[], Any], seconds: float = 0.8) -> Any:
    """What `burst()` returns, once a run of it took under `seconds`: requests meant to
    fall in one rate-limit window of 1 s, run again (each run with an account of its own)
    when a stalled machine stretched them past it."""
    for _ in range(3):
        started = time.monotonic()
        answers = burst()
        if time.monotonic() - started < seconds:
            return answers
    raise AssertionError(f"three runs each took {seconds} s or more: the machine is stalled")


@contextlib.contextmanager
def live_server(settings: Settings, http: Any = "h11") -> Iterator[str]:
    """The app behind a real uvicorn on a loopback port (so a response can be cut off, or
    a connection held); `http` as uvicorn takes it, dnc serve's own Protocol among them.
    Yields its URL once it is ready."""
    assert settings.redis_url is not None
    new_registry(settings.redis_url)  # as dnc serve makes it before its workers
    with live_app(create_app(settings), http) as (url, _):
        yield url


@contextlib.contextmanager
def live_app(app: Any, http: Any, **options: Any) -> Iterator[tuple[str, uvicorn.Server]]:
    """`app` behind a real uvicorn on a loopback port, in a thread, with no access log
    as dnc serve runs it: its URL once it is ready, and the server (a test may stop it).
    Its Redis must hold a registry. `options`: more of uvicorn's settings."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=http,
        log_level="critical",
        access_log=False,
        **options,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz").status_code == 200:
                break
        assert time.monotonic() < deadline, "the server never became ready"
        time.sleep(0.05)
    try:
        yield url, server
    finally:
        server.should_exit = True
        thread.join(15)


def ready_client(settings: Settings) -> TestClient:
    """A TestClient whose app has started and built its Bloom filter (call __enter__), on
    a Redis that holds a registry, as `dnc serve` makes sure before its workers start."""
    assert settings.redis_url is not None
    new_registry(settings.redis_url)
    client = TestClient(create_app(settings))
    client.__enter__()
    deadline = time.monotonic() + 10
    while client.get("/readyz").status_code != 200:
        if time.monotonic() > deadline:
            raise AssertionError("the app never became ready")
        time.sleep(0.005)
    return client


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    api = ready_client(settings)
    yield api
    api.__exit__(None, None, None)


@pytest.fixture
def spare(settings: Settings) -> Iterator[Callable[..., TestClient]]:
    """More apps on the test's Redis, as other workers or processes would be, each with
    these settings changed; all stopped when the test ends."""
    started: list[TestClient] = []

    def start(**changes: Any) -> TestClient:
        api = ready_client(settings.with_(**changes))
        started.append(api)
        return api

    yield start
    for api in started:
        api.__exit__(None, None, None)


ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
def new_key(client: TestClient) -> Callable[..., dict[str, str]]:
    """Create an account through the API; returns its Authorization header."""

    def make(role: str = "operator", prefixes: list[str] | None = None) -> dict[str, str]:
        body: dict[str, object] = {"name": f"test {role}", "role": role}
        if prefixes:
            body["prefixes"] = prefixes
        answer = client.post("/v1/operators", json=body, headers=ADMIN)
        assert answer.status_code == 201, answer.text
        return {"Authorization": f"Bearer {answer.json()['api_key']}"}

    return make


@pytest.fixture
def carrier(new_key: Callable[..., dict[str, str]]) -> dict[str, str]:
    return new_key("carrier")


@pytest.fixture
def operator(new_key: Callable[..., dict[str, str]]) -> dict[str, str]:
    return new_key("operator")


def stack_dump(process: subprocess.Popen[Any], read: Callable[[], str] | None = None) -> str:
    """What a child started with PYTHONFAULTHANDLER=1 that will not stop is doing: SIGABRT
    makes Python print every thread's stack to its stderr, then the child (and its process
    group, when it leads one) is killed. `read` gives its output when that is not a pipe."""
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGABRT)
    try:
        out, err = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.kill()
        out, err = process.communicate()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # its workers, if it led their group
    return read() if read is not None else f"{out or ''}{err or ''}"


def assert_error(answer: Any, status: int, code: str) -> dict[str, Any]:
    """The answer has `status` and the contract's error shape with `code`; returns the error."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


def assert_cli_error(result: Any, status: int, *words: str) -> None:
    """A `dnc` command that failed as CONTRACT section 5 asks: exit `status`, one line on
    stderr starting `dnc: ` and holding `words`, no traceback."""
    assert result.returncode == status, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dnc: "), result.stderr
    for word in words:
        assert word in lines[0], result.stderr

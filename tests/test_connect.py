"""Connections from DNC_REDIS_URL (CONTRACT section 4): one redis-server or a Redis Cluster."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ADMIN, ADMIN_KEY, assert_cli_error, assert_error
from fastapi.testclient import TestClient
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError

from registry.api import create_app
from registry.config import Settings
from registry.embedded import RedisProcess, free_port
from registry.store import connect
from registry.store.connect import RedisURLError, async_client, sync_client

pytestmark = pytest.mark.cluster  # every test on one redis-server and on a Redis Cluster


def test_a_burst_waits_for_connections_instead_of_failing(redis_url: str) -> None:
    """More commands at once than a worker keeps connections: they queue, none fails."""
    burst = 8 * connect.POOL_SIZE

    async def scenario() -> list[bytes]:
        client = connect.async_client(redis_url)
        try:
            await client.set("dnc:{dnc}:probe", "here")
            return await asyncio.gather(*(client.get("dnc:{dnc}:probe") for _ in range(burst)))
        finally:
            await client.aclose()

    assert asyncio.run(scenario()) == [b"here"] * burst


TORN = [
    RuntimeError(
        "unable to perform operation on <TCPTransport closed=True>; the handler is closed"
    ),
    AttributeError("'NoneType' object has no attribute 'writelines'"),
]


@pytest.mark.parametrize("torn", TORN, ids=["uvloop", "redis-py"])
def test_a_connection_torn_down_mid_command_is_a_lost_connection(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, torn: Exception
) -> None:
    """What redis-py's asyncio clients raise when a node is killed or stopped under a
    command (a Cluster audit saw these as 500s): a lost connection, so a 503."""

    def broken(*args: object, **kwargs: object) -> None:
        raise torn

    async def scenario() -> None:
        client = connect.async_client(redis_url)
        try:
            await client.set("dnc:{dnc}:probe", "here")
            with monkeypatch.context() as patched:
                patched.setattr(AbstractConnection, "send_packed_command", broken)
                with pytest.raises(RedisConnectionError, match="broke mid-command"):
                    await client.get("dnc:{dnc}:probe")
                pipe = client.pipeline(transaction=False)
                pipe.get("dnc:{dnc}:probe")
                with pytest.raises(RedisConnectionError, match="broke mid-command"):
                    await pipe.execute()
            assert await client.get("dnc:{dnc}:probe") == b"here"
        finally:
            await client.aclose()

    asyncio.run(scenario())


@pytest.mark.parametrize("bug", [RuntimeError("a bug of ours"), AttributeError("no attribute x")])
def test_other_errors_under_a_command_stay_what_they_are(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, bug: Exception
) -> None:
    """Only the torn connection's own errors become a 503: a bug stays a bug."""

    def broken(*args: object, **kwargs: object) -> None:
        raise bug

    async def scenario() -> None:
        client = connect.async_client(redis_url)
        try:
            await client.set("dnc:{dnc}:probe", "here")
            monkeypatch.setattr(AbstractConnection, "send_packed_command", broken)
            with pytest.raises(type(bug), match=str(bug)):
                await client.get("dnc:{dnc}:probe")
        finally:
            monkeypatch.undo()
            await client.aclose()

    asyncio.run(scenario())


def test_the_api_answers_a_torn_connection_503_not_500(
    client: TestClient, operator: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise TORN[0]

    assert (
        client.post("/v1/scrub", json={"numbers": ["+12125550100"]}, headers=operator).status_code
        == 200
    )
    monkeypatch.setattr(AbstractConnection, "send_packed_command", broken)
    answer = client.post("/v1/scrub", json={"numbers": ["+12125550100"]}, headers=operator)
    assert_error(answer, 503, "redis_unavailable")
    assert_error(client.get("/v1/stats", headers=ADMIN), 503, "redis_unavailable")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("redis+sentinel://127.0.0.1:26379", "names no Sentinel service"),
        ("redis+sentinel://127.0.0.1:26379/", "names no Sentinel service"),
        ("redis+sentinel://127.0.0.1:26379/dnc/zero", "database 'zero'"),
        ("redis+sentinel://127.0.0.1/dnc", "Sentinel '127.0.0.1'"),
        ("redis+sentinel://a:1,b/dnc", "Sentinel 'b'"),
        ("mongodb://127.0.0.1", "unix, redis\\+sentinel or redis\\+cluster"),
        ("redis://127.0.0.1:99999/0", "Port out of range"),
        ("redis://127.0.0.1:6379/abc", "database 'abc'"),
        ("redis+sentinel://127.0.0.1:99999/dnc", "Sentinel '127.0.0.1:99999'"),
        ("redis+sentinel://127.0.0.1:26379/dnc?db=1", "takes no query"),
        ("redis+cluster://127.0.0.1:7000/0", "takes no path or query"),
        ("redis+cluster://127.0.0.1:7000?password=x", "takes no path or query"),
        ("redis+cluster://:secret@127.0.0.1", "cluster node '127.0.0.1'"),
    ],
)
def test_a_url_the_registry_cannot_use_is_named_with_the_reason(url: str, words: str) -> None:
    with pytest.raises(RedisURLError, match=words):
        async_client(url)
    with pytest.raises(RedisURLError, match=words):
        sync_client(url)


@pytest.mark.single_node
def test_a_cluster_url_carries_credentials_and_tls() -> None:
    """They hold for every node; before, `:secret@` was read as part of a host name."""
    client: Any = async_client("redis+cluster://dnc:s%40cret@10.0.0.1:7000,10.0.0.2:7001")
    assert client.connection_kwargs["username"] == "dnc"
    assert client.connection_kwargs["password"] == "s@cret"
    assert [n.port for n in client.startup_nodes] == [7000, 7001]
    assert "ssl" not in client.connection_kwargs or not client.connection_kwargs["ssl"]
    tls: Any = async_client("rediss+cluster://:pw@10.0.0.1:7000")
    assert tls.connection_kwargs["password"] == "pw"
    assert tls.connection_kwargs["username"] is None
    assert tls.connection_kwargs["connection_class"].__name__ == "SSLConnection"


def test_a_sentinel_url_names_the_service_database_and_credentials() -> None:
    client = sync_client("redis+sentinel://:s%40cret@10.0.0.1:26379,10.0.0.2:26380/dnc-main/2")
    try:
        pool = client.connection_pool
        assert pool.service_name == "dnc-main"  # type: ignore[attr-defined]
        assert pool.connection_kwargs["db"] == 2
        assert pool.connection_kwargs["password"] == "s@cret"
        sentinels = client.manager.sentinels  # type: ignore[union-attr]
        assert [c.connection_pool.connection_kwargs["port"] for c in sentinels] == [26379, 26380]
    finally:
        client.close()


def test_a_sentinel_url_that_reaches_no_sentinel_is_a_503_and_one_line(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    urls = {
        f"redis+sentinel://127.0.0.1:{free_port()}/dnc": "no Sentinel at 127.0.0.1:",
        f"redis+sentinel://127.0.0.1:{redis_server.port}/dnc": "is not a Sentinel",
        f"redis://127.0.0.1:{redis_server.port}/99": "DB index is out of range",
    }
    for url, words in urls.items():
        settings = Settings(redis_url=url, admin_key=ADMIN_KEY, data_dir=tmp_path / "data")
        with TestClient(create_app(settings)) as client:
            answer = client.get("/v1/numbers/+12125551234", headers=ADMIN)
            assert_error(answer, 503, "redis_unavailable")
            assert client.get("/readyz").status_code == 503
        environment = {k: v for k, v in os.environ.items() if not k.startswith("DNC_")}
        listing = tmp_path / "list.txt"
        listing.write_text("+12125551234\n")
        for command in (["export", "--since", "0"], ["load", str(listing)]):
            result = subprocess.run(
                [sys.executable, "-m", "registry.cli", *command],
                env={**environment, "DNC_REDIS_URL": url},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert_cli_error(result, 1, words)
            assert len(result.stderr) < 300, result.stderr  # not redis-py's repr of every client
            assert "None:None" not in result.stderr  # a Sentinel's master has no host of its own


def test_a_stopped_cluster_master_fails_a_command_after_one_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis-py retried a command a stopped master left unanswered, each time for the whole
    reply timeout: 90 s for one command in the API, seven minutes for `dnc export` (an
    audit found both). One timeout now, for commands and pipelines, either client kind."""
    import signal
    import time

    from embedded_cluster import EmbeddedCluster
    from redis.exceptions import RedisError

    from registry.store import keys

    monkeypatch.setattr(connect, "REPLY_TIMEOUT", 1.0)
    with EmbeddedCluster(tmp_path / "cluster", masters=3, node_timeout_ms=60_000) as cluster:
        client = sync_client(cluster.url)
        client.set(keys.EPOCH, "e")
        port = int(client.get_node_from_key(keys.EPOCH).port)
        (node,) = [n for n in cluster.nodes if n.port == port]

        def failed_within(seconds: float, command: Any) -> None:
            started = time.monotonic()
            with pytest.raises(RedisError):
                command()
            assert time.monotonic() - started < seconds

        async def async_commands() -> None:
            remote = async_client(cluster.url)
            try:
                await remote.exists(keys.EPOCH)  # the slots read while all answer
                node.process.send_signal(signal.SIGSTOP)
                for command in (
                    lambda: remote.exists(keys.EPOCH),
                    lambda: (
                        remote.pipeline(transaction=False).get(keys.EPOCH).get(keys.EPOCH).execute()
                    ),
                ):
                    started = time.monotonic()
                    with pytest.raises(RedisError):
                        await command()
                    assert time.monotonic() - started < 2.5
            finally:
                node.process.send_signal(signal.SIGCONT)
                await remote.aclose()

        try:
            node.process.send_signal(signal.SIGSTOP)
            failed_within(2.5, lambda: client.exists(keys.EPOCH))
            pipe = client.pipeline()
            pipe.get(keys.EPOCH)
            pipe.get(keys.EPOCH)
            failed_within(2.5, pipe.execute)
        finally:
            node.process.send_signal(signal.SIGCONT)
            client.close()
        asyncio.run(async_commands())

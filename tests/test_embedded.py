"""The embedded redis-server never mistakes another process' server for its own."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from registry.embedded import PortTaken, RedisProcess, free_port, port_share
from registry.store import setup


@pytest.fixture
def occupant(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server already holding a loopback port."""
    server = RedisProcess(tmp_path / "occupant", durable=False, tcp=True)
    server.start()
    yield server
    server.stop()


def test_a_fixed_port_held_by_another_redis_fails_instead_of_sharing_it(
    occupant: RedisProcess, tmp_path: Path
) -> None:
    mine = RedisProcess(tmp_path / "mine", durable=False, port=occupant.port)
    with pytest.raises(PortTaken, match=str(occupant.port)):
        mine.start()
    assert mine.process is not None and mine.process.poll() is not None
    # The occupant's data was never this server's to flush.
    client = redis.Redis.from_url(occupant.url)
    assert int(client.info("server")["process_id"]) == occupant.process.pid  # type: ignore[union-attr]
    client.close()


def test_a_chosen_port_taken_before_redis_binds_it_is_chosen_again(
    occupant: RedisProcess, tmp_path: Path
) -> None:
    ports = iter([occupant.port, occupant.port, free_port()])
    mine = RedisProcess(tmp_path / "mine", durable=False, tcp=True, choose_port=lambda: next(ports))
    mine.start()
    try:
        assert mine.port != occupant.port
        client = redis.Redis.from_url(mine.url)
        assert int(client.info("server")["process_id"]) == mine.process.pid  # type: ignore[union-attr]
        client.close()
    finally:
        mine.stop()


@pytest.mark.parametrize("workers", [2, 3])
def test_each_parallel_test_worker_takes_ports_of_its_own(
    workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", str(workers))
    for worker in range(workers):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", f"gw{worker}")
        assert {port_share(free_port(), workers) for _ in range(20)} == {worker}
    monkeypatch.delenv("PYTEST_XDIST_WORKER")
    # One process alone takes any free port.
    assert len({port_share(free_port(), workers) for _ in range(60)}) == workers


def test_tuning_names_the_redis_that_does_not_answer(occupant: RedisProcess) -> None:
    assert occupant.process is not None
    client = redis.Redis.from_url(occupant.url, socket_timeout=0.3)
    os.kill(occupant.process.pid, signal.SIGSTOP)
    try:
        with pytest.raises(redis.TimeoutError, match=f"127.0.0.1:{occupant.port}: "):
            setup.tune(client)
    finally:
        os.kill(occupant.process.pid, signal.SIGCONT)
        client.close()


def test_tuning_where_config_is_forbidden_warns_and_anything_else_is_an_error(
    tmp_path: Path,
) -> None:
    """A managed service renames CONFIG away: the registry runs, with a warning. A
    database index out of range is no such refusal: it is said as it is."""
    with RedisProcess(
        tmp_path / "managed", durable=False, extra=["--rename-command", "CONFIG", ""]
    ) as managed:
        client = redis.Redis.from_url(managed.url)
        try:
            assert setup.tune(client) is False
        finally:
            client.close()
    with RedisProcess(tmp_path / "plain", durable=False, tcp=True) as plain:
        client = redis.Redis(port=plain.port, db=99)
        try:
            with pytest.raises(redis.ResponseError, match="DB index is out of range"):
                setup.tune(client)
        finally:
            client.close()


def test_the_data_it_keeps_is_readable_by_its_user_alone(tmp_path: Path) -> None:
    """The append-only file holds every registered number, complaint and consent's
    evidence: personal information, not for every account on the machine."""
    data = tmp_path / "new" / "data"
    old_umask = os.umask(0o022)  # the usual one, which leaves new files world-readable
    try:
        with RedisProcess(data, durable=True) as server:
            client = redis.Redis.from_url(server.url)
            client.sadd("dnc:test", 12125551234)
            client.close()
            files = [p for p in data.rglob("*") if not p.is_socket()]
            assert any(p.name.endswith(".aof") for p in files), files
            assert data.stat().st_mode & 0o777 == 0o700
            for path in files:
                assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"
    finally:
        os.umask(old_umask)

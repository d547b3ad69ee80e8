"""The embedded redis-server never mistakes another process' server for its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from registry.embedded import PortTaken, RedisProcess, free_port


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

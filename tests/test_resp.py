"""Bucket commands packed with numpy are byte for byte what redis-py sends."""

from __future__ import annotations

import numpy as np
import redis

from registry.store import keys, resp


def test_pack_matches_redis_py() -> None:
    members = np.array([-32768, -1, 0, 7, 32767, 12345], dtype=np.int64)
    connection = redis.Connection()
    expected = b"".join(connection.pack_command("SADD", "dnc:s:{42}", *members.tolist()))
    assert resp.pack(b"SADD", "dnc:s:{42}", members) == expected


def test_run_adds_and_checks_members(redis_client: redis.Redis) -> None:
    key = keys.numbers_set(7)
    members = np.arange(-32768, 32768, 7, dtype=np.int64)
    assert resp.run(redis_client, b"SADD", [(key, members)]) == [len(members)]
    probe = np.array([-32768, -32767, 32767], dtype=np.int64)
    assert resp.run(redis_client, b"SMISMEMBER", [(key, probe)]) == [[1, 0, 0]]
    assert redis_client.scard(key) == len(members)

"""Bucket commands packed with numpy are byte for byte what redis-py sends."""

from __future__ import annotations

import asyncio

import numpy as np
import redis

from registry.store import keys, resp
from registry.store.connect import async_client


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


def test_pack_many_matches_redis_py_call_by_call() -> None:
    rng = np.random.default_rng(3)
    connection = redis.Connection()
    calls = [
        (command, f"dnc:s:{{{i}}}", rng.integers(-32768, 32768, rng.integers(0, 40)))
        for i, command in enumerate([b"SMISMEMBER", b"HMGET"] * 50)
    ]
    expected = b"".join(
        b"".join(connection.pack_command(command.decode(), key, *members.tolist()))
        for command, key, members in calls
    )
    assert resp.pack_many(calls) == expected
    assert resp.pack_many([]) == b""


def test_run_async_answers_in_call_order_and_raises_error_replies(redis_url: str) -> None:
    async def scenario() -> tuple[list[object], str]:
        client = async_client(redis_url)
        try:
            key = keys.numbers_set(9)
            await client.sadd(key, 1, 2, 3)
            await client.hset(keys.details(9), "2", "x")
            probe = np.array([1, 5, 2], dtype=np.int64)
            replies = await resp.run_async(
                client, [(b"SMISMEMBER", key, probe), (b"HMGET", keys.details(9), probe)]
            )
            await client.set("plain", "v")
            try:
                await resp.run_async(client, [(b"SMISMEMBER", "plain", probe)])
            except redis.ResponseError as exc:
                error = str(exc)
            # The connection is still in step: the next command gets its own answer.
            assert await client.smismember(key, [3]) == [1]
            return replies, error
        finally:
            await client.aclose()

    replies, error = asyncio.run(scenario())
    assert replies == [[1, 0, 1], [None, None, b"x"]]
    assert "WRONGTYPE" in error

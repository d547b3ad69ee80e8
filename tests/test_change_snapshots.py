"""Bulk loads in the change stream without a second copy (registry.store.changes, snapshots).

A load's batch is swapped for a snapshot entry once its numbers are in their
set. Whoever reads the stream, a Bloom follower or a change-list reader, must
still end up with exactly the registry: replaying the change list in order
gives the registered numbers, however it is paged and whatever changes between
pages.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient

from loader.bulk import BulkWriter
from registry.bloom import RegisteredFilter
from registry.store import changes, keys
from registry.store.connect import async_client
from registry.store.registrations import RegistrationStore

pytestmark = pytest.mark.cluster  # every test on one redis-server and on a Redis Cluster

BASE = 12125550000 & ~0xFFFF  # the first number of one bucket


def bucket_numbers(first: int, count: int, seed: int) -> np.ndarray:
    """`count` distinct numbers of the bucket that holds `first`."""
    rng = np.random.default_rng(seed)
    start = first & ~0xFFFF
    return np.sort(start + rng.choice(1 << 16, count, replace=False)).astype(np.int64)


def every(_: np.ndarray) -> np.ndarray:
    return np.ones(len(_), dtype=bool)


def entries(client: redis.Redis) -> list[dict[bytes, bytes]]:
    return [fields for _, fields in client.xrange(keys.CHANGES)]


def registered(client: redis.Redis, buckets: list[int]) -> set[int]:
    found: set[int] = set()
    for bucket in buckets:
        members = client.smembers(keys.numbers_set(bucket))
        found |= {keys.number_of(bucket, int(m)) for m in members}
    return found


def replay(client: redis.Redis, cursor: str, limit: int, state: set[int]) -> str:
    """Apply one page of the change list to `state`; returns the next cursor."""
    found, cursor, _ = changes.read_sync(client, cursor, limit, every)
    for number, op, _ in found:
        if op == changes.ADD:
            state.add(number)
        else:
            state.discard(number)
    return cursor


def test_a_load_into_empty_buckets_keeps_no_second_copy(redis_client: redis.Redis) -> None:
    numbers = np.concatenate(
        [bucket_numbers(12125550000, 9000, 1), bucket_numbers(14155550000, 7000, 2)]
    )
    writer = BulkWriter(redis_client, retention_days=153)
    assert writer.add(numbers) == len(numbers)

    logged = entries(redis_client)
    assert len(logged) == 2
    assert all(b"S" in fields and b"z" not in fields for fields in logged)
    # The stream holds bucket ids, not 16,000 numbers (their gaps alone would take ~16 KB;
    # a stream takes a 4 KB node for its first entries, whatever their size).
    assert redis_client.memory_usage(keys.CHANGES) < len(numbers) // 2
    found, _, _ = changes.read_sync(redis_client, "0", 100_000, every)
    assert sorted(n for n, _, _ in found) == numbers.tolist()
    assert {op for _, op, _ in found} == {changes.ADD}


def test_a_small_load_into_a_full_bucket_keeps_its_batch(redis_client: redis.Redis) -> None:
    numbers = bucket_numbers(12125550000, 10_000, 3)
    writer = BulkWriter(redis_client, retention_days=153)
    writer.add(numbers[100:])
    _, cursor, _ = changes.read_sync(redis_client, "0", 100_000, every)
    writer.add(numbers[:100])

    batch = entries(redis_client)[-1]
    assert b"A" in batch and b"z" in batch
    found, _, _ = changes.read_sync(redis_client, cursor, 100_000, every)
    # Only what this load added, not the whole bucket again.
    assert [n for n, _, _ in found] == numbers[:100].tolist()


def test_a_load_logs_only_what_its_buckets_lack(redis_client: redis.Redis) -> None:
    """Into an empty bucket everything; into one holding some of the numbers, the rest;
    into one holding all of them, nothing at all."""
    numbers = bucket_numbers(12125550000, 3000, 13)
    others = bucket_numbers(14155550000, 500, 14)
    held, lacking = numbers[::6], np.setdiff1d(numbers, numbers[::6])
    writer = BulkWriter(redis_client, retention_days=153)
    assert writer.add(lacking) == 2500
    _, cursor, _ = changes.read_sync(redis_client, "0", 100_000, every)
    assert writer.add(np.concatenate([numbers, others])) == 500 + 500
    # The 500 a full bucket lacked as a batch; the empty bucket's as a snapshot of it.
    found, cursor, _ = changes.read_sync(redis_client, cursor, 100_000, every)
    assert sorted(n for n, _, _ in found) == sorted([*held.tolist(), *others.tolist()])
    assert writer.add(numbers) == 0
    assert changes.read_sync(redis_client, cursor, 100_000, every).found == []


def test_a_snapshot_lists_the_bucket_as_it_is_when_read(redis_client: redis.Redis) -> None:
    numbers = bucket_numbers(12125550000, 4000, 4)
    writer = BulkWriter(redis_client, retention_days=153)
    writer.add(numbers[:3000])  # a snapshot
    writer.add(numbers[3000:])  # a batch: a quarter of the bucket
    writer.remove(numbers[:10])

    state: set[int] = set()
    replay(redis_client, "0", 100_000, state)
    assert state == set(numbers[10:].tolist())


@pytest.mark.parametrize("limit", [1, 7, 1000, 5000])
def test_paging_through_snapshots_misses_nothing_while_the_registry_changes(
    redis_client: redis.Redis, limit: int
) -> None:
    """Replaying the change list page by page gives the registry, even when numbers are
    added and removed in the bucket being paged through between two pages."""
    rng = np.random.default_rng(limit)
    numbers = bucket_numbers(12125550000, 6000, 5)
    later = np.setdiff1d(bucket_numbers(12125550000, 3000, 6), numbers)
    writer = BulkWriter(redis_client, retention_days=153)
    writer.add(numbers)
    writer.add(bucket_numbers(16465550000, 2000, 7))

    state: set[int] = set()
    cursor = "0"
    for step in range(200):
        cursor = replay(redis_client, cursor, limit, state)
        # Between pages: a few numbers arrive on both sides of the cursor, a few leave.
        writer.add(rng.choice(later, 3, replace=False))
        writer.remove(rng.choice(numbers, 2, replace=False))
        if step > 20 and limit < 50:
            break
    while True:
        before = cursor
        cursor = replay(redis_client, cursor, 100_000, state)
        if cursor == before:
            break
    buckets = [12125550000 >> 16, 16465550000 >> 16]
    assert state == registered(redis_client, buckets)


def test_a_load_stopped_before_the_swap_keeps_its_batch(redis_client: redis.Redis) -> None:
    class Interrupted(BulkWriter):
        def _eval(self, script: str, calls: list[list[Any]]) -> list[Any]:
            if script == changes.COMMIT_SCRIPT:
                raise ConnectionError("the loader died here")
            return super()._eval(script, calls)

    numbers = bucket_numbers(12125550000, 5000, 8)
    with pytest.raises(ConnectionError):
        Interrupted(redis_client, retention_days=153).add(numbers)
    logged = entries(redis_client)
    assert len(logged) == 1 and b"A" in logged[0]
    found, _, _ = changes.read_sync(redis_client, "0", 100_000, every)
    assert [n for n, _, _ in found] == numbers.tolist()


def test_a_bloom_follower_learns_a_snapshot_it_did_not_see_as_a_batch(
    redis_client: redis.Redis, redis_url: str
) -> None:
    numbers = bucket_numbers(12125550000, 8000, 9)

    async def scenario() -> tuple[bool, bool]:
        client: Any = async_client(redis_url)
        try:
            bloom = RegisteredFilter(RegistrationStore(client, retention_days=153))
            await bloom.build()
            before = bool(bloom.might_contain(numbers).any())
            await asyncio.to_thread(BulkWriter(redis_client, retention_days=153).add, numbers)
            await bloom.catch_up()
            return before, bool(bloom.might_contain(numbers).all())
        finally:
            await client.aclose()

    assert asyncio.run(scenario()) == (False, True)


@pytest.mark.single_node
def test_a_filter_built_after_a_load_does_not_read_the_load_again(
    redis_client: redis.Redis, redis_url: str
) -> None:
    """Snapshots logged before a build read the sets are in the filter already: its first
    catch-up reads no bucket (a worker started just after a big load would otherwise read
    the load twice, and answer slowly meanwhile). What comes after is still learned."""
    loaded = np.concatenate(
        [bucket_numbers(12125550000, 8000, 10), bucket_numbers(14155550000, 6000, 11)]
    )
    later = bucket_numbers(16465550000, 7000, 12)
    BulkWriter(redis_client, retention_days=153).add(loaded)

    def dumps() -> int:
        return int(redis_client.info("commandstats").get("cmdstat_dump", {}).get("calls", 0))

    async def scenario() -> tuple[int, bool, bool]:
        client: Any = async_client(redis_url)
        try:
            bloom = RegisteredFilter(RegistrationStore(client, retention_days=153))
            before = dumps()
            await bloom.build()  # reads both buckets, then catches up
            read = dumps() - before
            holds = bool(bloom.might_contain(loaded).all())
            await asyncio.to_thread(BulkWriter(redis_client, retention_days=153).add, later)
            await bloom.catch_up()
            return read, holds, bool(bloom.might_contain(later).all())
        finally:
            await client.aclose()

    assert asyncio.run(scenario()) == (2, True, True)


def test_snapshots_through_a_build_are_not_read_again() -> None:
    built = changes.Snapshots(through="6-0")
    at = changes.Change("6-0", changes.ADD, np.zeros(0, dtype=np.int64), 7, "5-0")
    after = changes.Change("6-1", changes.ADD, np.zeros(0, dtype=np.int64), 8, "4-0")
    assert not built.needs(at)
    assert built.needs(after)
    page = [(b"6-0", {b"S": b"7", b"of": b"5-0"}), (b"6-1", {b"S": b"8", b"of": b"4-0"})]
    assert built.buckets(page) == [8]


def test_a_reader_that_saw_the_batch_skips_its_snapshot() -> None:
    batch = changes.Change("5-0", changes.ADD, np.array([1, 2]), batch="5-0")
    snapshot = changes.Change("6-0", changes.ADD, np.zeros(0, dtype=np.int64), 7, "5-0")
    other = changes.Change("7-0", changes.ADD, np.zeros(0, dtype=np.int64), 8, "4-0")
    seen = changes.Snapshots()
    seen.saw(batch)
    assert not seen.needs(snapshot)
    assert seen.needs(other)
    # A batch and its snapshot on one page: the bucket is not read at all.
    page = [(b"5-0", {b"A": b"7", b"z": b""}), (b"6-0", {b"S": b"7", b"of": b"5-0"})]
    assert changes.Snapshots().buckets(page) == []
    assert changes.Snapshots().buckets(page[1:]) == [7]


def test_the_api_change_list_pages_through_a_load(
    client: TestClient, operator: dict[str, str], redis_client: redis.Redis
) -> None:
    numbers = bucket_numbers(12125550000, 2500, 10)
    BulkWriter(redis_client, retention_days=153).add(numbers)
    found: list[str] = []
    cursor = "0"
    while True:
        page = client.get(f"/v1/changes?since={cursor}&limit=1000", headers=operator).json()
        found += [c["number"] for c in page["changes"]]
        if not page["changes"]:
            break
        cursor = page["next"]
    assert found == [f"+{n}" for n in numbers.tolist()]


# -- bounded reads: a narrow prefix does not walk the whole stream on one request ------------


def many_buckets(first: int, buckets: int, per: int, seed: int) -> np.ndarray:
    return np.concatenate(
        [bucket_numbers(first + (b << 16), per, seed + b) for b in range(buckets)]
    )


def test_a_read_stops_at_its_budget_and_resumes_where_it_stopped(
    redis_client: redis.Redis,
) -> None:
    writer = BulkWriter(redis_client, retention_days=153)
    writer.add(many_buckets(12125550000, 6, 300, 20))
    writer.remove(many_buckets(12125550000, 6, 300, 20)[::3])
    whole = changes.read_sync(redis_client, "0", 100_000, every)
    assert not whole.more
    pages, cursor, found = 0, "0", []
    while True:
        page = changes.read_sync(redis_client, cursor, 100_000, every, budget=500)
        pages += 1
        found += page.found
        cursor = page.cursor
        if not page.more:
            break
    assert pages > 3 and found == whole.found and cursor == whole.cursor


def test_buckets_outside_the_prefixes_are_passed_over_unread(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A day's bulk load elsewhere costs a narrow reader neither its snapshots' members
    nor the numbers of its batches."""
    writer = BulkWriter(redis_client, retention_days=153)
    elsewhere = many_buckets(14155550000, 8, 500, 30)
    mine = bucket_numbers(12125550000, 50, 40)
    writer.add(elsewhere)
    writer.add(mine)
    writer.remove(elsewhere[::2])
    expanded: list[int] = []
    members = changes.dump.bucket_members_sync

    def counted(client: Any, buckets: list[int]) -> Any:
        expanded.extend(buckets)
        return members(client, buckets)

    monkeypatch.setattr(changes.dump, "bucket_members_sync", counted)
    kept = keys.bucket_filter(["+1212"])

    def under(numbers: np.ndarray) -> np.ndarray:
        return (numbers // 10**7) == 1212

    page = changes.read_sync(redis_client, "0", 100_000, under, kept)
    assert sorted(n for n, _, _ in page.found) == mine.tolist()
    assert expanded == [keys.bucket_of(int(mine[0]))]
    assert not page.more
    # The same list as a read that opens every entry.
    assert page.found == changes.read_sync(redis_client, "0", 100_000, under).found


def test_a_poll_says_whether_more_changes_follow(
    client: TestClient, redis_client: redis.Redis
) -> None:
    from conftest import ADMIN

    made = client.post("/v1/operators", json={"name": "n", "role": "operator"}, headers=ADMIN)
    key = {"Authorization": f"Bearer {made.json()['api_key']}"}
    BulkWriter(redis_client, retention_days=153).add(many_buckets(12125550000, 3, 20, 50))
    first = client.get("/v1/changes", params={"limit": 10}, headers=key)
    assert first.headers["x-more-changes"] == "true" and len(first.json()["changes"]) == 10
    rest = client.get(
        "/v1/changes", params={"since": first.json()["next"], "limit": 1000}, headers=key
    )
    assert rest.headers["x-more-changes"] == "false" and len(rest.json()["changes"]) == 50

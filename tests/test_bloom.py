"""The Bloom filter (CONTRACT sections 1 and 7): it may say "maybe", never a wrong "no"."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import numpy as np
import pytest
from conftest import new_registry

from loader.bulk import BulkWriter
from registry import rules
from registry.bloom import BloomFilter, RegisteredFilter, RegistryLost
from registry.rules import SMS, VOICE, Preferences
from registry.scrub import Scrubber, ScrubQuery
from registry.store import keys
from registry.store.connect import async_client, sync_client
from registry.store.registrations import RegistrationStore

pytestmark = pytest.mark.cluster  # every test on one redis-server and on a Redis Cluster
T = TypeVar("T")
NOW = 1_700_000_000


def random_numbers(seed: int, count: int) -> np.ndarray:
    """Plausible E.164 integers: 11 to 13 digits."""
    return np.random.default_rng(seed).integers(10**10, 10**13, count, dtype=np.int64)


# -- BloomFilter ----------------------------------------------------------------------------


def test_no_false_negatives_among_100k_numbers() -> None:
    numbers = random_numbers(1, 100_000)
    bloom = BloomFilter(capacity=len(numbers))
    bloom.add(numbers)
    assert bloom.might_contain(numbers).all()
    assert bloom.count == len(numbers)


def test_no_false_negatives_when_added_in_many_small_batches() -> None:
    numbers = random_numbers(2, 20_000)
    bloom = BloomFilter(capacity=len(numbers))
    for start in range(0, len(numbers), 7):
        bloom.add(numbers[start : start + 7])
    assert bloom.might_contain(numbers).all()
    # Duplicates do not hurt (a number registered twice is still there once).
    bloom.add(numbers[:100])
    assert bloom.might_contain(numbers[:100]).all()


def test_false_positive_rate_at_capacity_is_below_two_percent() -> None:
    bloom = BloomFilter(capacity=100_000)
    members = random_numbers(3, bloom.capacity)  # exactly full
    bloom.add(members)
    assert not bloom.overfull
    others = np.setdiff1d(random_numbers(4, 200_000), members)
    rate = bloom.might_contain(others).mean()
    assert rate < 0.02, f"false-positive rate {rate:.4f} at capacity"


def test_a_filter_past_capacity_says_it_is_overfull() -> None:
    bloom = BloomFilter(capacity=1)
    bloom.add(random_numbers(5, bloom.capacity + 1))
    assert bloom.overfull


def test_an_empty_filter_says_certainly_not() -> None:
    bloom = BloomFilter(capacity=1000)
    assert not bloom.might_contain(random_numbers(6, 10_000)).any()


def test_empty_inputs() -> None:
    bloom = BloomFilter(capacity=0)
    bloom.add(np.zeros(0, dtype=np.int64))
    assert bloom.count == 0
    answer = bloom.might_contain(np.zeros(0, dtype=np.int64))
    assert answer.dtype == bool and len(answer) == 0


# -- RegisteredFilter against a real Redis --------------------------------------------------


def run(redis_url: str, scenario: Callable[[RegistrationStore], Awaitable[T]]) -> T:
    """Run an async scenario with a store on a fresh async client in its own event loop."""

    async def main() -> T:
        client: Any = async_client(redis_url)
        try:
            return await scenario(RegistrationStore(client, retention_days=153))
        finally:
            await client.aclose()

    return asyncio.run(main())


def contains(bloom: RegisteredFilter, *numbers: int) -> list[bool]:
    return bloom.might_contain(np.array(numbers, dtype=np.int64)).tolist()


def test_an_unbuilt_filter_says_maybe_to_everything(redis_url: str) -> None:
    async def scenario(store: RegistrationStore) -> list[bool]:
        bloom = RegisteredFilter(store)
        assert not bloom.ready
        return contains(bloom, 12125551234, 861012345678)

    assert run(redis_url, scenario) == [True, True]


def test_build_loads_every_registered_number(redis_url: str) -> None:
    numbers = [12125551234, 12125551235, 861012345678, 442079460958]

    async def scenario(store: RegistrationStore) -> tuple[list[bool], int]:
        for n in numbers:
            await store.register(n, Preferences(), "test", NOW)
        bloom = RegisteredFilter(store)
        await bloom.build()
        assert bloom.ready
        return contains(bloom, *numbers), bloom.version

    found, version = run(redis_url, scenario)
    assert found == [True] * len(numbers)
    assert version == len(numbers)


def test_a_filter_the_registry_outgrows_is_rebuilt_larger_and_loses_nothing(
    redis_url: str,
) -> None:
    """Built with 10% to spare (rounded up to a power of two); a bulk load past that
    makes the next catch-up rebuild it larger in the background."""
    first = random_numbers(11, 2_000)
    loaded = np.setdiff1d(random_numbers(12, 6_000), first)

    async def scenario(store: RegistrationStore) -> tuple[int, int, int, list[bool]]:
        bloom = RegisteredFilter(store, min_capacity=1)
        sync = sync_client(redis_url)
        try:
            BulkWriter(sync, retention_days=153).add(first)
            await bloom.build()
            assert bloom.bloom is not None
            built = bloom.bloom.capacity
            assert len(first) * 1.1 <= built < len(first) * 1.1 * 2.2
            BulkWriter(sync, retention_days=153).add(loaded)
        finally:
            sync.close()
        await bloom.catch_up()
        full = bloom.bloom
        assert full is not None and full.overfull
        # Until the larger one is swapped in, the full one still answers, and rightly.
        assert all(contains(bloom, *loaded[:100].tolist()))
        assert bloom._rebuilding is not None
        await bloom._rebuilding
        assert bloom.bloom is not full and not bloom.bloom.overfull
        everything = np.concatenate([first, loaded]).tolist()
        return built, bloom.bloom.capacity, len(everything), contains(bloom, *everything)

    built, grown, total, found = run(redis_url, scenario)
    assert grown >= total * 1.1 > built
    assert all(found)


def test_catch_up_picks_up_registrations_made_after_the_build(redis_url: str) -> None:
    later = [12125550001, 12125550002, 16465550003, 8613800138000, 442079460958]

    async def scenario(store: RegistrationStore) -> tuple[list[bool], list[bool], int]:
        bloom = RegisteredFilter(store, page=2)  # several pages of the stream
        await bloom.build()
        before = contains(bloom, *later)
        # Another worker (another client, same Redis) registers them.
        other: Any = async_client(redis_url)
        try:
            writer = RegistrationStore(other, retention_days=153)
            for n in later:
                await writer.register(n, Preferences(), "test", NOW)
        finally:
            await other.aclose()
        version = await bloom.catch_up()
        return before, contains(bloom, *later), version

    before, after, version = run(redis_url, scenario)
    assert before == [False] * len(later)
    assert after == [True] * len(later)
    assert version == len(later)


def test_a_removed_number_stays_maybe_so_redis_decides(redis_url: str) -> None:
    async def scenario(store: RegistrationStore) -> list[bool]:
        await store.register(12125551234, Preferences(), "test", NOW)
        bloom = RegisteredFilter(store)
        await bloom.build()
        await store.deregister(12125551234, "test", NOW)
        await store.register(12125559999, Preferences(), "test", NOW)
        await bloom.catch_up()
        return contains(bloom, 12125551234, 12125559999)

    assert run(redis_url, scenario) == [True, True]


def test_catch_up_with_nothing_new_changes_nothing(redis_url: str) -> None:
    async def scenario(store: RegistrationStore) -> tuple[int, int, str, str]:
        await store.register(12125551234, Preferences(), "test", NOW)
        bloom = RegisteredFilter(store)
        await bloom.build()
        cursor, first = bloom.cursor, await bloom.catch_up()
        second = await bloom.catch_up()
        return first, second, cursor, bloom.cursor

    first, second, cursor_before, cursor_after = run(redis_url, scenario)
    assert first == second == 1
    assert cursor_before == cursor_after != "0-0"


def restore_other_data(redis_url: str, numbers: list[int]) -> None:
    """Replace the Redis data, as restoring another snapshot would: sets, no change log."""
    client: Any = sync_client(redis_url)
    try:
        client.flushall()
        for n in numbers:
            client.sadd(keys.numbers_set(keys.bucket_of(n)), keys.member_of(n))
            client.sadd(keys.BUCKETS, keys.bucket_of(n))
        client.set(keys.EPOCH, secrets.token_hex(8))
    finally:
        client.close()


def test_a_new_epoch_rebuilds_the_filter_from_the_new_data(redis_url: str) -> None:
    old, new = [12125551234], [16465550000, 861012345678]

    async def scenario(store: RegistrationStore) -> tuple[list[bool], list[bool], str, str]:
        await store.register(old[0], Preferences(), "test", NOW)
        bloom = RegisteredFilter(store)
        await bloom.build()
        stale = contains(bloom, *new)
        epoch = bloom.epoch or ""
        # The new numbers are only in the sets: only a rebuild can learn them.
        await asyncio.to_thread(restore_other_data, redis_url, new)
        await bloom.catch_up()
        return stale, contains(bloom, *new), epoch, bloom.epoch or ""

    stale, fresh, epoch_before, epoch_after = run(redis_url, scenario)
    assert stale == [False, False]
    assert fresh == [True, True]
    assert epoch_after != epoch_before


def test_a_flushed_redis_takes_no_registration_and_makes_no_registry(redis_url: str) -> None:
    """A filter that followed a registry refuses to go on without it (RegistryLost, a 503)
    rather than make an empty one in its place, and so does one started since (a worker
    uvicorn replaced); a registration is refused, not taken to be lost again when the data
    comes back. Once a deliberate start (`dnc serve`, `dnc load`) makes a new registry, a
    filter sees what is written to it."""

    async def scenario(store: RegistrationStore) -> list[bool]:
        for n in (12125551234, 12125551235):
            await store.register(n, Preferences(), "test", NOW)
        bloom = RegisteredFilter(store)
        await bloom.build()
        await store.redis.flushall()
        with pytest.raises(RegistryLost):
            await store.register(861012345678, Preferences(), "test", NOW)
        assert not await store.redis.exists(keys.numbers_set(keys.bucket_of(861012345678)))
        with pytest.raises(RegistryLost):
            await bloom.catch_up()
        assert bloom.lost and not bloom.ready
        late = RegisteredFilter(store)
        with pytest.raises(RegistryLost):
            await late.build()
        assert late.lost and not late.ready
        assert await store.epoch() is None  # no registry made in its place
        await asyncio.to_thread(new_registry, redis_url)  # the API restarted on purpose
        await store.register(861012345678, Preferences(), "test", NOW)
        fresh = RegisteredFilter(store)
        await fresh.build()
        await bloom.catch_up()  # the old filter follows the new registry too
        return [*contains(fresh, 861012345678, 12125551234), *contains(bloom, 861012345678)]

    assert run(redis_url, scenario) == [True, False, True]


def test_build_then_catch_up_misses_nothing_written_in_between(redis_url: str) -> None:
    """Registrations racing the build are either in the snapshot or re-applied from the log."""

    async def scenario(store: RegistrationStore) -> list[bool]:
        numbers = [12125550000 + i for i in range(200)]
        bloom = RegisteredFilter(store, page=16)

        async def register_all() -> None:
            for n in numbers:
                await store.register(n, Preferences(), "test", NOW)

        await asyncio.gather(register_all(), bloom.build())
        await bloom.catch_up()
        return contains(bloom, *numbers)

    assert all(run(redis_url, scenario))


def test_the_filter_learns_which_buckets_hold_preferences(redis_url: str) -> None:
    """Scrubs read preferences only in buckets known to hold some: a worker must learn of
    a registration with preferences made through another worker, or a restart."""
    sms_only = Preferences(channels=SMS)

    async def scenario(store: RegistrationStore) -> tuple[set[int], set[int], list[int]]:
        await store.register(14155552671, Preferences(), "test", NOW)
        bloom = RegisteredFilter(store)
        await bloom.build()
        other: Any = async_client(redis_url)
        try:
            await RegistrationStore(other, 153).register(12125551234, sms_only, "test", NOW)
        finally:
            await other.aclose()
        scrubber = Scrubber(store, bloom)
        await scrubber.prepare()
        batch = await scrubber.run(["+12125551234", "+12125551299"], ScrubQuery(channel=VOICE))
        rebuilt = RegisteredFilter(store)
        await rebuilt.build()
        return bloom.detailed, rebuilt.detailed, batch.status.tolist()

    learned, rebuilt, status = run(redis_url, scenario)
    buckets = {keys.bucket_of(14155552671), keys.bucket_of(12125551234)}
    assert learned == rebuilt == buckets
    # Registered for SMS only, so callable by voice; its neighbour is not registered at all.
    assert status == [rules.CALLABLE, rules.CALLABLE]
    # Bulk loads write no details and leave the index alone.
    client: Any = sync_client(redis_url)
    try:
        BulkWriter(client, retention_days=153).add(np.array([16465550000], dtype=np.int64))
        assert {int(b) for b in client.smembers(keys.DETAILED)} == buckets
    finally:
        client.close()

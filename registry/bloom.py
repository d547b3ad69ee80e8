"""The fast negative path: a Bloom filter of every registered number, per process.

A register-blocked Bloom filter (Putze, Sanders, Singler 2007): each number
picks one 64-bit word and sets K bits inside it, so a look-up is one random
memory access and the whole batch is a handful of numpy operations. It can
only say "maybe registered" or "certainly not"; every "maybe" is confirmed in
Redis, and it never forgets a number (removals stay "maybe" until a rebuild).

pybloom-live, the design card's package, hashes each key in Python; see
benchmarks/ for the measurement that put this one in its place.
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np

from registry import cores
from registry.store import changes, dump, keys
from registry.store.registrations import RegistrationStore, RegistryLost

log = logging.getLogger("dnc.bloom")

K = 6  # bits set per number inside its word
BITS_PER_NUMBER = 14  # about 0.6% false positives at capacity for K=6 in 64-bit blocks
# A filter is built for the registry plus this share, then rounded up to a power of two
# (one mask picks a word): 10-120% room to grow before it is rebuilt larger.
HEADROOM = 0.1
MIN_CAPACITY = 1_000_000  # numbers a worker's filter holds at least, however small the registry
_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)


def _field_bits() -> np.ndarray:
    """For each 18-bit value, the OR of 1 << f over its three 6-bit fields f.

    A number's K=6 bits come from the six 6-bit fields of its hash's high 36 bits, so
    two look-ups in this table (2 MiB) give them all, where a loop over the fields
    costs four passes over the batch per bit.
    """
    x = np.arange(1 << 18, dtype=np.uint64)
    one, six, field = np.uint64(1), np.uint64(6), np.uint64(63)
    high, middle, low = (x >> (six + six)) & field, (x >> six) & field, x & field
    return (one << high) | (one << middle) | (one << low)


_FIELD_BITS = _field_bits()
_LOW18 = np.uint64((1 << 18) - 1)


def _mix(numbers: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: a cheap, well-spread 64-bit hash of each number."""
    z = numbers.astype(np.uint64) * _M1
    z ^= z >> np.uint64(30)
    z *= _M2
    z ^= z >> np.uint64(27)
    z *= _M3
    z ^= z >> np.uint64(31)
    return z


def words_for(capacity: int) -> int:
    """64-bit words of a filter for `capacity` numbers: BITS_PER_NUMBER bits each, rounded
    up to a power of two."""
    words = max(1024, (max(capacity, 1) * BITS_PER_NUMBER) // 64)
    return 1 << (words - 1).bit_length()


def capacity_for(registered: int, min_capacity: int = MIN_CAPACITY) -> int:
    """The capacity a worker builds its filter with for a registry of `registered` numbers."""
    return max(int(registered * (1 + HEADROOM)), min_capacity)


class BloomFilter:
    def __init__(self, capacity: int) -> None:
        self.words = np.zeros(words_for(capacity), dtype=np.uint64)
        # One word at a time from plain Python (registry/freshness.py): a memoryview's
        # indexing is a fraction of numpy's scalar access.
        self.view = self.words.data
        self.index_mask = len(self.words) - 1
        self.capacity = len(self.words) * 64 // BITS_PER_NUMBER
        self.count = 0  # numbers added, duplicates included: an upper bound on distinct ones

    def _locate(self, numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = _mix(numbers)
        index = (h & np.uint64(len(self.words) - 1)).astype(np.intp)
        # Bits come from the high half of the hash, which the index does not use:
        # fields at bits 58, 52, 46 (the first look-up) and 40, 34, 28 (the second).
        mask = _FIELD_BITS.take((h >> np.uint64(46)).astype(np.intp))
        mask |= _FIELD_BITS.take(((h >> np.uint64(28)) & _LOW18).astype(np.intp))
        return index, mask

    def add(self, numbers: np.ndarray) -> None:
        if len(numbers) == 0:
            return
        index, mask = self._locate(numbers)
        np.bitwise_or.at(self.words, index, mask)
        self.count += len(numbers)

    def might_contain(self, numbers: np.ndarray) -> np.ndarray:
        """Boolean mask: False means certainly not registered."""
        out = np.zeros(len(numbers), dtype=bool)

        def probe(part: slice) -> None:
            index, mask = self._locate(numbers[part])
            out[part] = (self.words[index] & mask) == mask

        cores.each(probe, len(numbers))
        return out

    @property
    def overfull(self) -> bool:
        """Past capacity the false-positive rate climbs; the owner should rebuild it larger."""
        return self.count > self.capacity


class RegisteredFilter:
    """A process's Bloom filter of the registry, kept up with the change stream.

    `catch_up()` costs one Redis round trip: it reads the epoch, the version and
    the stream entries after the filter's cursor, and adds every logged number.
    Callers run it after a request arrives and before trusting a negative, so a
    registration acknowledged by any process before that moment is in the filter.
    A changed epoch means the Redis data was replaced, and a changed replication id
    of the Redis holding the stream (a replica promoted by a failover, or a restarted
    server) that the history may have lost changes the filter took in: either way it
    is rebuilt.
    """

    def __init__(
        self, store: RegistrationStore, page: int = 10_000, min_capacity: int = MIN_CAPACITY
    ) -> None:
        self.store = store
        self.page = page
        self.min_capacity = min_capacity
        self.bloom: BloomFilter | None = None
        self.epoch: str | None = None
        self.cursor = "0-0"
        self.version = 0
        self.head: bytes | None = None  # keys.HEAD as of the last catch-up
        # The replication id of the Redis the filter was built from (RegistrationStore.lineage).
        self.lineage: str | None = None
        # Batches this filter applied, whose snapshots it can then skip.
        self.snapshots = changes.Snapshots()
        # Buckets with a details hash (numbers registered one by one): scrubs read
        # preferences only there. Bulk-loaded buckets have none.
        self.detailed: set[int] = set()
        # The registry this filter followed was found gone (lost_error): nothing is answered.
        self.lost = False
        self._lock = asyncio.Lock()
        self._rebuilding: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self.bloom is not None and not self.lost

    def lost_error(self) -> RegistryLost:
        """The registry's marker, seen before, is gone from Redis: its data was lost (a
        Redis restarted without its files, flushed, or another, empty one at the URL).
        Every answer is a 503 until the data is back (the same marker) or another
        registry is (another marker, followed as any replaced data): an empty registry
        made here in its place would call every registered number callable."""
        self.lost = True
        if self.epoch is None:  # a worker started on it: never saw the registry
            log.error(
                "Redis holds no registry (no epoch): answering 503 until its data is "
                "restored; restart the API (dnc serve) if the registry was emptied on purpose"
            )
        else:
            log.error(
                "the registry's data is gone from Redis (epoch %s no longer there): "
                "answering 503 until it is restored; restart the API if the registry was "
                "emptied on purpose",
                self.epoch,
            )
        return RegistryLost(
            "the registry's data is gone from Redis; restore it, or restart the API if the "
            "registry was emptied on purpose"
        )

    async def _build(self) -> tuple[BloomFilter, str, str, set[int], changes.Snapshots, str | None]:
        # Cursor first, numbers second: whatever lands in between is re-applied by catch_up.
        # An add is logged before its number enters the set, at most
        # changes.STORE_WINDOW_MS before, so the cursor starts changes.REAPPLY_MS back: an
        # add logged before the last id whose write had not landed when the sets were read
        # is applied from the stream. A snapshot is logged after its
        # members landed, so those up to the last id read here are in the sets read
        # (a worker started just after a big load would otherwise read it all twice).
        # No filter makes a registry: `dnc serve` made it before its workers started, so
        # none here means the data is gone, even for a worker started since (uvicorn
        # replaces one that died), which would otherwise make an empty one in its place.
        epoch = await self.store.epoch()
        if epoch is None:
            raise self.lost_error()
        lineage = await self.store.lineage()
        last_id = await self.store.last_change_id()
        cursor = changes.rewound(last_id)
        detailed = await self.store.detailed_buckets()
        arrays = [numbers async for numbers in self.store.all_numbers()]
        total = sum(len(a) for a in arrays)
        bloom = BloomFilter(capacity=capacity_for(total, self.min_capacity))
        for numbers in arrays:
            bloom.add(numbers)
        return bloom, epoch, cursor, detailed, changes.Snapshots(through=last_id), lineage

    async def build(self) -> None:
        built = await self._build()
        async with self._lock:
            self._take(built)
        await self.catch_up()

    def _take(
        self, built: tuple[BloomFilter, str, str, set[int], changes.Snapshots, str | None]
    ) -> None:
        self.bloom, self.epoch, self.cursor, self.detailed, self.snapshots, self.lineage = built

    async def catch_up(self) -> int:
        """Apply every change logged so far; returns the registry version seen."""
        async with self._lock:
            while True:
                epoch, version, head, lineage, entries = await self.store.sync_point(
                    self.cursor, self.page
                )
                if epoch is None and self.epoch is not None:
                    raise self.lost_error()
                self.lost = False
                # Another lineage (a promoted replica, a restart) may lack changes this
                # filter took in, and log new ones under ids before its cursor: rebuilt.
                if epoch != self.epoch or lineage != self.lineage or self.bloom is None:
                    self._take(await self._build())
                    continue
                buckets = self.snapshots.buckets(entries)
                members: dict[int, np.ndarray] = {}
                if buckets:
                    found = await dump.bucket_members(self.store.redis, buckets)
                    members = dict(zip(buckets, found, strict=True))
                for entry_id, fields in entries:
                    change = changes.decode(entry_id, fields)
                    self.snapshots.saw(change)
                    if self.snapshots.needs(change):
                        assert change.snapshot is not None
                        self.bloom.add(keys.join(change.snapshot, members[change.snapshot]))
                    elif change.op == changes.ADD:
                        self.bloom.add(change.numbers)
                        if change.batch is None:  # registered one by one: with details
                            self.detailed.update(keys.split(change.numbers)[0].tolist())
                    self.cursor = change.id
                self.version, self.head = version, head
                if len(entries) < self.page:
                    break
            if self.bloom.overfull and self._rebuilding is None:
                self._rebuilding = asyncio.create_task(self._grow())
            return self.version

    async def _grow(self) -> None:
        """Rebuild a larger filter in the background; the full one stays correct meanwhile."""
        try:
            bloom, epoch, cursor, detailed, snapshots, lineage = await self._build()
            async with self._lock:
                if epoch == self.epoch and lineage == self.lineage:
                    self.detailed |= detailed
                    # The new filter's cursor is not later than ours: catch_up re-applies the gap.
                    self.bloom, self.cursor = (
                        bloom,
                        min(cursor, self.cursor, key=changes.stream_order),
                    )
                    self.snapshots = snapshots
        finally:
            self._rebuilding = None

    def might_contain(self, numbers: np.ndarray) -> np.ndarray:
        if self.bloom is None:
            return np.ones(len(numbers), dtype=bool)
        return self.bloom.might_contain(numbers)

"""Registrations in Redis: writing them, confirming membership in batches, reading them back.

A registered number is a member of its bucket's set. Numbers registered one by
one (API, SMS, web) also get a details entry `registered_at|channels|allowed|source`
in the bucket's hash; bulk-loaded numbers have none and mean "full block,
registration time unknown", which keeps the bulk list at 2 bytes a number.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Container, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, NamedTuple

import numpy as np
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from registry.store import changes, dump, keys, resp
from registry.store.codes import ALL_CHANNELS, Preferences


class RegistryLost(RedisConnectionError):
    """Redis answers, but without the registry it held: a 503, as a Redis that is down."""


def _lost() -> RegistryLost:
    """What a read that found nothing says when the registry's marker is gone too: an
    empty Redis answers "not registered" for every number, which is not the registry's."""
    return RegistryLost(
        "the registry's data is gone from Redis; nothing is answered until it is restored"
    )


def no_registry(exc: ResponseError) -> bool:
    """LOG_SCRIPT's refusal: the registry's marker is gone from Redis."""
    return str(exc).startswith(changes.NO_REGISTRY)


# A write to one number holds its writer key this long at most, renewed at each try of
# an add (a worker that died holding it lets go this way): longer than an add may take
# from its log entry to its set (changes.STORE_WINDOW_MS, past which the store is
# refused), so a writer slowed by Redis keeps its turn. The next one waits WRITER_WAIT
# for it, then is a 503.
WRITER_MS = changes.STORE_WINDOW_MS + 5_000
WRITER_WAIT = 6.0

# KEYS: writer. ARGV: token. Lets go of the key if this writer still holds it.
RELEASE_WRITER_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

# KEYS: writer. ARGV: token, ms. Holds the key that much longer if this writer holds it.
RENEW_WRITER_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

# An ended registration's record: `registered_at|channels|allowed|source|ended_at|who`,
# appended to the number's list of ended periods, so a number registered and deregistered
# twice keeps both periods, each DNC_RETENTION_DAYS after its own end. The list is in
# order of end; periods past their retention are dropped from its head as a new one
# arrives, and the key expires with the newest. At most MAX_ENDED_PERIODS are kept: a
# carrier cycling one number cannot grow it without bound. A record from before the
# list (one string) is kept as its first period.
MAX_ENDED_PERIODS = 1000
KEEP_ENDED = f"""
local function keep_ended(key, record, now, retention)
  if redis.call('TYPE', key).ok == 'string' then
    local earlier = redis.call('GET', key)
    redis.call('DEL', key)
    redis.call('RPUSH', key, earlier)
  end
  while true do
    local first = redis.call('LINDEX', key, 0)
    local ended = first and tonumber(string.match(first, '^[^|]*|[^|]*|[^|]*|[^|]*|(%d+)'))
    if not ended or ended + retention > now then break end
    redis.call('LPOP', key)
  end
  redis.call('RPUSH', key, record)
  redis.call('LTRIM', key, -{MAX_ENDED_PERIODS}, -1)
  redis.call('EXPIRE', key, retention)
end
"""

# KEYS: set, details, ended. ARGV: the store's deadline (changes.STORE_GUARD), member,
# now, "channels|allowed|source", retention seconds.
# A registration whose preferences change keeps the ones it had as an ended period
# (`who` = `changed:SINCE`, SINCE when they began: the registration's start, or the
# previous change), so a complaint about a call made before the change is judged by
# the preferences that stood then.
REGISTER_SCRIPT = (
    changes.STORE_GUARD
    + KEEP_ENDED
    + """
local added = redis.call('SADD', KEYS[1], ARGV[2])
local at = ARGV[3]
if added == 0 then
  local stored = redis.call('HGET', KEYS[2], ARGV[2])
  local old = stored or '0|3|0|bulk'
  at = string.match(old, '^(%d+)') or '0'
  local same = string.match(old, '^%d+|(%d+|%d+)|') == string.match(ARGV[4], '^(%d+|%d+)|')
  -- The same preferences again (a carrier's re-sync, a second STOP): the record stands,
  -- saying how the registration began, as its audit entry no longer may after retention.
  if same and stored then return {added, tonumber(at)} end
  if not same then
    local since = at
    if redis.call('TYPE', KEYS[3]).ok == 'list' then
      local last = redis.call('LINDEX', KEYS[3], -1)
      local ended, began = string.match(last or '', '|(%d+)|changed:(%d+)$')
      if ended and tonumber(began) >= tonumber(at) then since = ended end
    end
    keep_ended(KEYS[3], old .. '|' .. ARGV[3] .. '|changed:' .. since, tonumber(ARGV[3]),
               tonumber(ARGV[5]))
  end
end
redis.call('HSET', KEYS[2], ARGV[2], at .. '|' .. ARGV[4])
return {added, tonumber(at)}
"""
)

# Times an add is logged and stored before a writer gives up on a Redis that takes
# longer than changes.STORE_WINDOW_MS between the two.
STORE_TRIES = 3


class StoreTooSlow(RedisTimeoutError):
    """Redis stored an add too long after it was logged, STORE_TRIES times over: as a
    Redis that does not answer in time (a 503), and nothing is in the set."""

    def __init__(self) -> None:
        super().__init__(
            f"Redis took over {changes.STORE_WINDOW_MS // 1000} s from logging an add to "
            f"storing it, {STORE_TRIES} times; try again"
        )


# KEYS: set, details, ended. ARGV: member, now, retention seconds, who.
# The ended record is written first: a Redis that refuses writes (OOM, NOREPLICAS,
# MISCONF) refuses a script at its first write and keeps what came before it, so the
# number is never removed without its record.
DEREGISTER_SCRIPT = (
    KEEP_ENDED
    + """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return 0 end
local old = redis.call('HGET', KEYS[2], ARGV[1]) or '0|3|0|bulk'
keep_ended(KEYS[3], old .. '|' .. ARGV[2] .. '|' .. ARGV[4], tonumber(ARGV[2]), tonumber(ARGV[3]))
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
-- The last opt-out's time, kept while the registration stood: now its retention.
redis.call('EXPIRE', KEYS[4], tonumber(ARGV[3]))
return 1
"""
)


@dataclass(frozen=True)
class Registration:
    number: int
    registered_at: int | None  # epoch seconds; None for bulk-loaded numbers
    preferences: Preferences
    source: str


def parse_details(number: int, raw: bytes | None) -> Registration:
    if raw is None:
        return Registration(number, None, Preferences(), "bulk")
    at, channels, allowed, source = raw.decode().split("|", 3)
    return Registration(number, int(at) or None, Preferences(int(channels), int(allowed)), source)


@dataclass(frozen=True)
class EndedPeriod:
    """A registration that ended (deregistered), or the preferences a registration had
    until they changed (`changed`), as its record keeps it."""

    registration: Registration
    ended_at: int
    # When these preferences began: the registration's start (None: a bulk one's,
    # unknown, from before anything), or for `changed` the previous change.
    began_at: int | None
    changed: bool = False

    def covers(self, when: float) -> bool:
        """Whether the registration stood at `when` with these preferences."""
        return (self.began_at is None or self.began_at <= when) and when < self.ended_at


def parse_ended(number: int, raw: bytes) -> EndedPeriod:
    """An ended record: `registered_at|channels|allowed|source|ended_at|who`; `who` is
    `changed:SINCE` for preferences that a change ended."""
    at, channels, allowed, rest = raw.decode().split("|", 3)
    source, ended_at, who = rest.rsplit("|", 2)
    registration = Registration(
        number, int(at) or None, Preferences(int(channels), int(allowed)), source
    )
    if who.startswith("changed:") and who[8:].isdigit():
        return EndedPeriod(registration, int(ended_at), int(who[8:]) or None, changed=True)
    return EndedPeriod(registration, int(ended_at), registration.registered_at)


def bucket_list(index: Iterable[bytes], prefixes: Sequence[str]) -> list[int]:
    """The bucket index's ids, ascending, that can hold numbers under `prefixes` (all if none).

    Buckets in ascending order give numbers in ascending order: a bucket is a number's high bits.
    """
    buckets = np.array(sorted(int(b) for b in index), dtype=np.int64)
    return [int(b) for b in keys.buckets_under(buckets, prefixes)]


def bucket_numbers(bucket: int, members: Iterable[bytes], prefixes: Sequence[str]) -> np.ndarray:
    """A bucket's set members as its numbers, ascending, only those under `prefixes` if any."""
    found = keys.join(bucket, np.sort(np.array([int(m) for m in members], dtype=np.int64)))
    return found[keys.in_prefixes(found, prefixes)] if prefixes else found


@dataclass
class Confirmation:
    """What Redis says about a batch of numbers that the Bloom filter let through."""

    registered: np.ndarray  # bool
    channels: np.ndarray  # int64 channel masks, ALL_CHANNELS where unknown
    allowed: np.ndarray  # int64 allowed-category masks


def _replid(info: Any) -> str | None:
    """master_replid from INFO replication's reply, or None for an error or no such field."""
    if not isinstance(info, dict):
        return None
    replid = info.get("master_replid")
    return str(replid) if replid is not None else None


class SyncPoint(NamedTuple):
    """Where the registry's change history stands, as `RegisteredFilter.catch_up` reads it."""

    epoch: str | None
    version: int
    head: bytes | None  # keys.HEAD: the id of the last change logged
    lineage: str | None  # RegistrationStore.lineage
    entries: list[Any]


class RegistrationStore:
    def __init__(self, redis: Any, retention_days: int) -> None:
        self.redis = redis
        self.retention_days = retention_days

    async def epoch(self) -> str | None:
        """The registry's epoch token, None when there is none; a new one means new data.
        Only a deliberate start makes one (`dnc serve`, `dnc load`: setup.ensure_registry),
        never a worker, which would make an empty registry in the place of one Redis lost."""
        value = await self.redis.get(keys.EPOCH)
        return value.decode() if value is not None else None

    async def sync_point(self, after: str, count: int) -> SyncPoint:
        """One round trip: the epoch, the version, the head, the lineage and the change
        entries after `after`."""
        clustered = isinstance(self.redis, AsyncRedisCluster)
        # A Cluster's INFO goes to one node, outside the pipeline: read first, so a
        # failover between the two reads shows as a new lineage next time.
        lineage = await self.lineage() if clustered else None
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(keys.EPOCH)
        pipe.get(keys.VERSION)
        pipe.get(keys.HEAD)
        pipe.xrange(keys.CHANGES, min=f"({after}", max="+", count=count)
        if not clustered:
            pipe.info("replication")
        epoch, version, head, entries, *info = await pipe.execute(raise_on_error=False)
        for reply in (epoch, version, head, entries):
            if isinstance(reply, Exception):
                raise reply
        return SyncPoint(
            epoch.decode() if epoch else None,
            int(version or 0),
            head,
            lineage if clustered else _replid(info[0]),
            entries,
        )

    async def lineage(self) -> str | None:
        """The replication id of the Redis that holds the change stream: a promoted replica
        or a restarted server has a new one, and may lack changes logged before. None where
        INFO is refused (a proxy, a renamed command): the head alone then tells."""
        try:
            if isinstance(self.redis, AsyncRedisCluster):
                await self.redis.initialize()  # once: it knows no node before
                node = self.redis.get_node_from_key(keys.CHANGES)
                info = await self.redis.info("replication", target_nodes=node)
            else:
                info = await self.redis.info("replication")
        except ResponseError:
            return None
        return _replid(info)

    async def last_change_id(self) -> str:
        entries = await self.redis.xrevrange(keys.CHANGES, max="+", min="-", count=1)
        return entries[0][0].decode() if entries else "0-0"

    async def all_numbers(
        self, prefixes: Sequence[str] = (), chunk: int = 512
    ) -> AsyncIterator[np.ndarray]:
        """Every registered number (under `prefixes`, if any), ascending, one array per chunk.

        Buckets are read with DUMP (see store/dump.py), falling back to SMEMBERS per bucket.
        """
        buckets = bucket_list(await self.redis.smembers(keys.BUCKETS), prefixes)
        for start in range(0, len(buckets), chunk):
            group = buckets[start : start + chunk]
            found = await dump.bucket_members(self.redis, group)
            arrays = [keys.join(b, m) for b, m in zip(group, found, strict=True) if len(m)]
            if arrays:
                numbers = np.concatenate(arrays)
                yield numbers[keys.in_prefixes(numbers, prefixes)] if prefixes else numbers

    async def preferences(
        self, numbers: np.ndarray, detailed: set[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(blocked channels, allowed categories) of each number of an ascending int64
        array, as registered now: from its details where it was registered one by one,
        else a full block (bulk-loaded, or no longer registered). `detailed`: the
        detailed buckets, if already read (detailed_buckets)."""
        if detailed is None:
            detailed = await self.detailed_buckets()
        wanted = detail_buckets(numbers, detailed)
        replies: list[Any] = []
        if wanted:
            pipe = self.redis.pipeline(transaction=False)
            for bucket in wanted:
                pipe.hgetall(keys.details(bucket))
            replies = await pipe.execute()
        return preferences_from(numbers, wanted, replies)

    async def few_preferences(self, numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`preferences` of a few numbers spread over many buckets (a change list's page):
        only their own details are read (HMGET), not their buckets' whole hashes, and
        only their buckets are looked up among the detailed ones."""
        groups = member_groups(numbers)
        if not groups:
            return preferences_from(numbers, [], [])
        flags = await self.redis.smismember(keys.DETAILED, [bucket for bucket, _ in groups])
        pipe = self.redis.pipeline(transaction=False)
        for (bucket, members), flag in zip(groups, flags, strict=True):
            if flag:
                pipe.hmget(keys.details(bucket), members)
        return few_preferences(numbers, groups, flags, await pipe.execute() if any(flags) else [])

    async def detailed_buckets(self) -> set[int]:
        """The buckets where numbers registered one by one keep details."""
        return {int(b) for b in await self.redis.smembers(keys.DETAILED)}

    async def log(self, op: str, number: int) -> tuple[str, int]:
        """Append one change to the stream; returns its entry id and the new registry
        version."""
        bucket = keys.bucket_of(number)
        args = changes.log_args(
            self.retention_days,
            [bucket] if op == changes.ADD else [],
            changes.single_fields(op, number),
            detailed=op == changes.ADD,
        )
        try:
            entry_id, version = await self.redis.eval(changes.LOG_SCRIPT, *args)
        except ResponseError as exc:
            if no_registry(exc):
                raise RegistryLost(
                    "the registry's data is gone from Redis; nothing is written until it is "
                    "restored"
                ) from None
            raise
        return entry_id.decode() if isinstance(entry_id, bytes) else entry_id, int(version)

    @contextlib.asynccontextmanager
    async def one_writer(self, number: int) -> AsyncIterator[Callable[[], Awaitable[None]]]:
        """One registration or removal of `number` at a time, across every worker.

        Each is two round trips, the set and the change stream (in a Cluster on other
        nodes, so no one script can do both): an add is logged before it is stored, a
        removal stored before it is logged. A PUT and a DELETE of one number at the same
        moment could then interleave as: removed, add logged, added, removal logged; the
        number registered and the change list ending with its removal, which every copy
        following /v1/changes would drop. Held, the second waits for the first. Yields
        what renews the turn for another WRITER_MS (before each try of an add)."""
        bucket, member = keys.bucket_of(number), keys.member_of(number)
        key, token = keys.writing(bucket, member), secrets.token_hex(8)
        deadline = time.monotonic() + WRITER_WAIT
        pause = 0.001
        while not await self.redis.set(key, token, nx=True, px=WRITER_MS):
            if time.monotonic() > deadline:
                raise RedisTimeoutError(
                    f"another write to this number did not finish in {WRITER_WAIT:g} s"
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

        async def renew() -> None:
            await self.redis.eval(RENEW_WRITER_SCRIPT, 1, key, token, WRITER_MS)

        try:
            yield renew
        finally:
            # A Redis gone meanwhile cannot take it back: it lapses after WRITER_MS.
            with contextlib.suppress(Exception):
                await self.redis.eval(RELEASE_WRITER_SCRIPT, 1, key, token)

    async def register(
        self, number: int, prefs: Preferences, source: str, now: int
    ) -> tuple[bool, int | None]:
        """Store a registration: (created, registered_at). Logged before it is stored,
        and stored within changes.STORE_WINDOW_MS of its entry or logged again."""
        bucket, member = keys.bucket_of(number), keys.member_of(number)
        async with self.one_writer(number) as renew:
            for attempt in range(STORE_TRIES):
                if attempt:
                    await renew()
                entry_id, _ = await self.log(changes.ADD, number)
                try:
                    created, at = await self.redis.eval(
                        REGISTER_SCRIPT,
                        3,
                        keys.numbers_set(bucket),
                        keys.details(bucket),
                        keys.ended(bucket, member),
                        changes.store_deadline(entry_id),
                        member,
                        now,
                        f"{prefs.channels}|{prefs.allow_categories}|{source}",
                        self.retention_days * 86400,
                    )
                except ResponseError as exc:
                    if changes.is_late(exc):
                        continue
                    raise
                return bool(created), (int(at) or None)
        raise StoreTooSlow()

    async def deregister(self, number: int, who: str, now: int) -> bool:
        """Remove a registration, keeping its record DNC_RETENTION_DAYS; logged after."""
        bucket, member = keys.bucket_of(number), keys.member_of(number)
        async with self.one_writer(number):
            removed = await self.redis.eval(
                DEREGISTER_SCRIPT,
                4,
                keys.numbers_set(bucket),
                keys.details(bucket),
                keys.ended(bucket, member),
                keys.number_opted_out(number),
                member,
                now,
                self.retention_days * 86400,
                who,
            )
            if removed:
                await self.log(changes.REMOVE, number)
        if not removed and not await self.redis.exists(keys.EPOCH):
            raise _lost()
        return bool(removed)

    async def ended(self, number: int) -> list[EndedPeriod]:
        """The number's ended registrations still kept, oldest first."""
        key = keys.ended(keys.bucket_of(number), keys.member_of(number))
        try:
            records = await self.redis.lrange(key, 0, -1)
        except ResponseError as exc:
            if "WRONGTYPE" not in str(exc):
                raise
            records = [await self.redis.get(key)]  # one period, kept before the list was
        # The list lives as long as its newest period: older ones past their own retention
        # are dropped only when another ends, and must not count meanwhile.
        kept_since = time.time() - self.retention_days * 86400
        periods = (parse_ended(number, record) for record in records if record)
        return [period for period in periods if period.ended_at > kept_since]

    async def in_force(self, number: int, when: float) -> Registration | None:
        """The registration that stood at `when`, with the preferences it had then: of the
        current one (if it had begun) and the kept periods that cover `when`, the one that
        began last (preferences changed since are kept as periods of their own, which a
        deregistration's period, from the registration's start, also covers); else the
        current one (begun later), if any."""
        current = await self.get(number)
        found: list[tuple[float, bool, Registration]] = []
        if current is not None and (current.registered_at is None or current.registered_at <= when):
            began = -1.0 if current.registered_at is None else float(current.registered_at)
            found.append((began, False, current))
        for period in await self.ended(number):
            if period.covers(when):
                began = -1.0 if period.began_at is None else float(period.began_at)
                found.append((began, period.changed, period.registration))
        if found:
            return max(found, key=lambda f: (f[0], f[1]))[2]
        return current

    async def get(self, number: int) -> Registration | None:
        bucket, member = keys.bucket_of(number), keys.member_of(number)
        pipe = self.redis.pipeline(transaction=False)
        pipe.sismember(keys.numbers_set(bucket), member)
        pipe.hget(keys.details(bucket), member)
        pipe.exists(keys.EPOCH)
        registered, raw, present = await pipe.execute()
        if not registered and not present:
            raise _lost()
        return parse_details(number, raw) if registered else None

    async def confirm(
        self, numbers: np.ndarray, detailed: Container[int] | None = None
    ) -> Confirmation:
        """Membership and preferences of a batch, one pipelined round trip for all buckets.

        With `detailed`, preferences are read only in those buckets (the others have
        no details hash, so their numbers are fully blocked when registered).
        """
        n = len(numbers)
        result = Confirmation(
            np.zeros(n, dtype=bool),
            np.full(n, ALL_CHANNELS, dtype=np.int64),
            np.zeros(n, dtype=np.int64),
        )
        if n == 0:
            return result
        buckets, members = keys.split(numbers)
        order = np.argsort(buckets, kind="stable")
        sorted_buckets, sorted_members = buckets[order], members[order]
        starts = np.flatnonzero(np.r_[True, sorted_buckets[1:] != sorted_buckets[:-1]])
        ends = np.r_[starts[1:], n]
        calls, with_details = [], []
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            bucket, group = int(sorted_buckets[start]), sorted_members[start:end]
            calls.append((b"SMISMEMBER", keys.numbers_set(bucket), group))
            if detailed is None or bucket in detailed:
                calls.append((b"HMGET", keys.details(bucket), group))
                with_details.append(start)
        replies = await resp.run_async(self.redis, calls)
        # Membership replies list the members bucket by bucket: in `order`.
        flags = chain.from_iterable(
            reply for (command, _, _), reply in zip(calls, replies, strict=True)
            if command == b"SMISMEMBER"
        )  # fmt: skip
        result.registered[order] = np.fromiter(flags, dtype=np.int8, count=n).astype(bool)
        details = (
            reply for (command, _, _), reply in zip(calls, replies, strict=True)
            if command == b"HMGET"
        )  # fmt: skip
        for start, reply in zip(with_details, details, strict=True):
            for k in [k for k, raw in enumerate(reply) if raw is not None]:
                _, channels, allowed, _ = reply[k].split(b"|", 3)
                result.channels[order[start + k]] = int(channels)
                result.allowed[order[start + k]] = int(allowed)
        return result


def detail_buckets(numbers: np.ndarray, detailed: set[int]) -> list[int]:
    """The buckets of `numbers` that keep details (numbers registered one by one)."""
    return [b for b in np.unique(numbers >> keys.BUCKET_BITS).tolist() if b in detailed]


def preferences_from(
    numbers: np.ndarray, wanted: list[int], replies: list[Any]
) -> tuple[np.ndarray, np.ndarray]:
    """RegistrationStore.preferences from the details (HGETALL) of the `wanted` buckets."""
    channels = np.full(len(numbers), ALL_CHANNELS, dtype=np.int64)
    allowed = np.zeros(len(numbers), dtype=np.int64)
    found: list[tuple[int, int, int]] = []
    for bucket, fields in zip(wanted, replies, strict=True):
        for member, raw in fields.items():
            _, blocked, allows, _ = raw.split(b"|", 3)
            found.append((keys.number_of(bucket, int(member)), int(blocked), int(allows)))
    if found:
        known = np.array(found, dtype=np.int64)
        at = np.searchsorted(numbers, known[:, 0])
        hit = at < len(numbers)
        hit[hit] = numbers[at[hit]] == known[hit, 0]
        channels[at[hit]] = known[hit, 1]
        allowed[at[hit]] = known[hit, 2]
    return channels, allowed


def member_groups(numbers: np.ndarray) -> list[tuple[int, list[int]]]:
    """(bucket, its members) of `numbers`, for reading only their own details."""
    buckets, members = keys.split(numbers)
    groups: dict[int, list[int]] = {}
    for bucket, member in zip(buckets.tolist(), members.tolist(), strict=True):
        groups.setdefault(bucket, []).append(member)
    return list(groups.items())


def few_preferences(
    numbers: np.ndarray, groups: list[tuple[int, list[int]]], flags: list[Any], replies: list[Any]
) -> tuple[np.ndarray, np.ndarray]:
    """preferences_from for the HMGET `replies` of the groups `flags` say keep details."""
    wanted = [group for group, flag in zip(groups, flags, strict=True) if flag]
    fields = [
        {str(member).encode(): raw for member, raw in zip(members, reply, strict=True) if raw}
        for (_, members), reply in zip(wanted, replies, strict=True)
    ]
    return preferences_from(numbers, [bucket for bucket, _ in wanted], fields)


def few_preferences_sync(client: Any, numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RegistrationStore.few_preferences on a synchronous client."""
    groups = member_groups(numbers)
    if not groups:
        return preferences_from(numbers, [], [])
    flags = client.smismember(keys.DETAILED, [bucket for bucket, _ in groups])
    pipe = client.pipeline(transaction=False)
    for (bucket, members), flag in zip(groups, flags, strict=True):
        if flag:
            pipe.hmget(keys.details(bucket), members)
    return few_preferences(numbers, groups, flags, pipe.execute() if any(flags) else [])


def preferences_sync(
    client: Any, numbers: np.ndarray, detailed: set[int]
) -> tuple[np.ndarray, np.ndarray]:
    """RegistrationStore.preferences on a synchronous client (`dnc export --detail`)."""
    wanted = detail_buckets(numbers, detailed)
    replies: list[Any] = []
    if wanted:
        pipe = client.pipeline(transaction=False)
        for bucket in wanted:
            pipe.hgetall(keys.details(bucket))
        replies = pipe.execute()
    return preferences_from(numbers, wanted, replies)

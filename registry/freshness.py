"""Single look-ups that read their writes, at one Redis round trip a burst, not a request.

A look-up may trust a Bloom negative only once the filter holds every change
logged before the look-up arrived: after a `RegisteredFilter.catch_up()` that
started after it (registry/bloom.py). Its Bloom hits it confirms in Redis, with
a read that also starts after it arrived. A round trip per request costs more
than everything else a look-up does, so concurrent look-ups share them: each
joins the first round that starts after it asked. While one round is in
flight, new askers queue for the next, which starts the moment the flight
lands; a failed round fails every asker in it.

The Bloom filter is asked when the round starts, for its whole batch at once
(a numpy probe costs about what one number's hash costs in plain Python), and
a round is one pipelined request: the registry's epoch, version and head if
some numbers are Bloom negatives, and membership and details of every number
to confirm. An unchanged epoch, version and head mean nothing was logged since
the last catch-up made here, so the filter that catch-up left is still
complete (every logged change increments the version and sets the head to its
stream id in the script that logs it, registry/store/changes.py; the head
tells apart a history that a failover cut short and new changes brought back
to the same version); a changed one means a real catch-up, shared by the
round. Either way each asker sees what a catch-up of its own would have
shown it. A negative the caught-up filter turns into a "maybe" is confirmed in
the next round.

A number confirmed for an operator also has that operator's consent from it
read in the same round (a ZSCORE and the consent's scope in the pipeline,
registry/store/consents.py),
so a consent costs a look-up no round trip of its own. A number the filter
rules out needs none: it is callable whatever the consents say.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

import hiredis
import numpy as np
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from registry.bloom import BloomFilter, K, RegisteredFilter
from registry.rules import ALL_CHANNELS
from registry.store import keys
from registry.store.connect import ANSWER_TIMEOUT, CONNECT_TIMEOUT, answered
from registry.store.consents import scope_of
from registry.store.registrations import parse_details

# (registered, blocked channels, allowed categories, the scope of the operator's live
# consent: 0 for none, rules.parse_scope) of a number; NOT_REGISTERED: one Redis does
# not hold.
Found = tuple[bool, int, int, int]
NOT_REGISTERED: Found = (False, ALL_CHANNELS, 0, 0)
# A number's hash and the bits it sets in its word of a Bloom filter.
Spot = tuple[int, int]


class Asker(Protocol):
    """Who waits for a number's answer: an asyncio.Future, or the HTTP protocol's look-up
    answered without a task (registry/api/protocol.py), which writes its answer as the
    round sets it."""

    def done(self) -> bool: ...

    def set_result(self, result: Found, /) -> None: ...

    def set_exception(self, exception: BaseException, /) -> None: ...

    def cancel(self) -> bool: ...


# A number, its asker, and the keys of the operator's consents and their scopes to read
# with it (None: no operator's).
Ask = tuple[int, Asker, tuple[bytes, bytes] | None]
# Below this many numbers a round hashes them in plain Python (`locate`), not numpy.
SMALL_BATCH = 4

_MASK64 = (1 << 64) - 1
_M1, _M2, _M3 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
if K != 6:
    raise ImportError("registry.freshness.locate sets 6 bits a number, as registry.bloom did")


def locate(number: int) -> Spot:
    """BloomFilter._locate for one number in plain ints: its hash and the bits it sets.

    numpy costs microseconds a call on one number; a test holds the two equal.
    """
    z = (number * _M1) & _MASK64
    z = ((z ^ (z >> 30)) * _M2) & _MASK64
    z = ((z ^ (z >> 27)) * _M3) & _MASK64
    z ^= z >> 31
    # Bits from the high half of the hash, six bits of it each, as _locate takes them.
    mask = (
        (1 << (z >> 58))
        | (1 << ((z >> 52) & 63))
        | (1 << ((z >> 46) & 63))
        | (1 << ((z >> 40) & 63))
        | (1 << ((z >> 34) & 63))
        | (1 << ((z >> 28) & 63))
    )
    return z, mask


def in_filter(bloom: BloomFilter, spot: Spot) -> bool:
    """False: certainly not in `bloom`."""
    z, mask = spot
    return bool(bloom.view[z & bloom.index_mask] & mask == mask)


def maybe_in(bloom: BloomFilter | None, numbers: list[int]) -> list[bool]:
    """bloom.might_contain(numbers) as a list; all True while there is no filter."""
    if bloom is None:
        return [True] * len(numbers)
    if len(numbers) < SMALL_BATCH:
        return [in_filter(bloom, locate(n)) for n in numbers]
    found: list[bool] = bloom.might_contain(np.array(numbers, dtype=np.int64)).tolist()
    return found


class Lookups:
    """Whether numbers are registered, as RegistrationStore.get says, for many askers at once."""

    def __init__(self, registered: RegisteredFilter) -> None:
        self.registered = registered
        self.redis = registered.store.redis
        self.wire = Wire.to(self.redis)
        self.rounds = 0  # round trips made, for tests and curiosity
        self.catch_ups = 0  # real catch-ups among them
        # The filter the last catch-up here left, and the epoch, version and head it holds.
        self._fresh: tuple[str | None, int, bytes | None, BloomFilter] | None = None
        self._asked: list[Ask] = []
        self._consent_keys: dict[str, tuple[bytes, bytes]] = {}
        self._runner: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def registration(self, number: int, operator_id: str | None = None) -> asyncio.Future[Found]:
        """(registered, blocked channels, allowed categories, consent) of `number` as of
        this call; consent: the scope of the live one `operator_id` holds from it, 0 for
        none (read where it is registered).

        Until the Bloom filter is built every number is confirmed in Redis.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Found] = loop.create_future()
        self.ask(number, operator_id, future, loop)
        return future

    def ask(
        self,
        number: int,
        operator_id: str | None,
        asker: Asker,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        """As `registration`, for any `asker` on the running `loop`: the round that
        answers it calls its set_result or set_exception (unless it is done by then)."""
        consents = None
        if operator_id is not None:
            consents = self._consent_keys.get(operator_id)
            if consents is None:
                if len(self._consent_keys) > 10_000:
                    self._consent_keys.clear()
                consents = self._consent_keys[operator_id] = (
                    keys.consents(operator_id).encode(),
                    keys.consent_scopes(operator_id).encode(),
                )
        self._asked.append((number, asker, consents))
        # A runner left by another event loop (a closed test client's) never returns.
        if self._runner is None or self._loop is not loop:
            self._loop = loop
            self._runner = loop.create_task(self._run())

    def close(self) -> None:
        if self.wire is not None:
            self.wire.close()

    async def _run(self) -> None:
        batch: list[Ask] = []
        try:
            while self._asked:
                batch, self._asked = self._asked, []
                self.rounds += 1
                try:
                    await self._round(batch)
                except Exception as exc:  # noqa: BLE001 - every asker of the round gets it
                    for _, asker, _ in batch:
                        if not asker.done():
                            asker.set_exception(exc)
                batch = []
        except BaseException:
            # Cancelled (the loop is closing): nobody may wait for a round that never comes.
            for _, asker, _ in batch + self._asked:
                asker.cancel()
            self._asked = []
            raise
        finally:
            if self._runner is asyncio.current_task():
                self._runner = None

    async def _round(self, batch: list[Ask]) -> None:
        # A "maybe" stays one however far the filter catches up: confirmed now.
        probed = self.registered.bloom
        maybe = maybe_in(probed, [number for number, _, _ in batch])
        confirm = [ask for ask, m in zip(batch, maybe, strict=True) if m]
        negatives = [ask for ask, m in zip(batch, maybe, strict=True) if not m]
        # The epoch, version and head in every round: a hit is confirmed from what Redis
        # holds, and a Redis that lost the registry holds nothing (RegisteredFilter.lost_error).
        version, replies = await self._read([(n, consents) for n, _, consents in confirm], True)
        assert version is not None
        if version[0] is None and self.registered.epoch is not None:
            raise self.registered.lost_error()
        now = time.time()
        for (number, asker, _), (registered, raw, consent) in zip(confirm, replies, strict=True):
            if asker.done():
                continue
            if not registered:
                asker.set_result(NOT_REGISTERED)
                continue
            try:
                prefs = parse_details(number, raw).preferences
            except Exception as exc:  # noqa: BLE001 - a damaged record fails its own look-up
                asker.set_exception(exc)
                continue
            scope = 0 if consent is None else scope_of(consent[0], consent[1], now)
            asker.set_result((True, prefs.channels, prefs.allow_categories, scope))
        if not negatives:
            return
        bloom, caught_up = await self._caught_up(*version)
        # The probed filter, if nothing was logged since this process's last catch-up
        # and it is that catch-up's filter, held every number logged before the read.
        # Otherwise its negatives are asked again of the caught-up one.
        still = [False] * len(negatives)
        if caught_up or bloom is not probed:
            still = maybe_in(bloom, [number for number, _, _ in negatives])
        for ask, m in zip(negatives, still, strict=True):
            if ask[1].done():
                continue
            if m:
                self._asked.append(ask)  # confirmed next round
            else:
                ask[1].set_result(NOT_REGISTERED)

    async def _read(
        self, numbers: list[tuple[int, tuple[bytes, bytes] | None]], version: bool
    ) -> tuple[tuple[Any, ...] | None, list[tuple[Any, Any, Any]]]:
        """The epoch, version and head if asked, and (SISMEMBER, HGET, the ZSCORE and the
        scope of the consent if asked, else None) of each number: one round trip."""
        commands: list[tuple[bytes, ...]] = [(b"MGET", *_SYNC_KEYS)] if version else []
        for number, consents in numbers:
            bucket, member = keys.bucket_of(number), str(keys.member_of(number)).encode()
            commands.append((b"SISMEMBER", keys.numbers_set(bucket).encode(), member))
            commands.append((b"HGET", keys.details(bucket).encode(), member))
            if consents is not None:
                digits = str(number).encode()
                commands.append((b"ZSCORE", consents[0], digits))
                commands.append((b"HGET", consents[1], digits))
        replies: list[Any] | None = None
        if self.wire is not None:
            replies = await self.wire.call(commands)
            if any(isinstance(r, hiredis.ReplyError) for r in replies):
                replies = None  # a server still loading, say: redis-py raises its own error
        if replies is None:
            # redis-py's pipeline: a Cluster routes each command to its node, but takes
            # no MGET across commands, so the sync keys (one slot) are read with GET.
            pipe = self.redis.pipeline(transaction=False)
            for name, *args in commands:
                if name == b"MGET":
                    for key in args:
                        pipe.get(key)
                else:
                    pipe.execute_command(name.decode(), *args)
            # A hung node answers in ANSWER_TIMEOUT as a 503, as the raw connection's does.
            async with answered("a look-up"):
                got = list(await pipe.execute())
            width = len(_SYNC_KEYS)
            replies = [got[:width], *got[width:]] if version else got
        head = tuple(replies[0]) if version else None
        rest = iter(replies[1:] if version else replies)
        found = [
            (next(rest), next(rest), None if consents is None else (next(rest), next(rest)))
            for _, consents in numbers
        ]
        return head, found

    async def _caught_up(
        self, epoch: bytes | None, version: bytes | None, head: bytes | None
    ) -> tuple[BloomFilter, bool]:
        """The filter holding every change logged before `epoch`, `version` and `head`
        were read, and whether a catch-up was needed for it."""
        if (
            self._fresh is not None
            and epoch is not None
            and self._fresh[:3] == (epoch.decode(), int(version or 0), head)
        ):
            return self._fresh[3], False
        self.catch_ups += 1
        seen = await self.registered.catch_up()
        # Read before anything else runs: a rebuilt filter swapped in later may lag
        # this one until the next catch-up.
        bloom = self.registered.bloom
        assert bloom is not None
        self._fresh = (self.registered.epoch, seen, self.registered.head, bloom)
        return bloom, True


_SYNC_KEYS = (keys.EPOCH.encode(), keys.VERSION.encode(), keys.HEAD.encode())


class Wire(asyncio.Protocol):
    """One raw connection to a single Redis node for the rounds: RESP out, hiredis in.

    redis-py spends about 100 us of CPU on a pipelined round trip (its connection
    pool, a timeout context and a parser call for every reply); this is the socket
    and hiredis' parser alone. Plain TCP and unix sockets only: TLS and Cluster
    keep redis-py. Failures raise redis-py's exceptions, so they answer 503 as any
    other; a broken connection is opened again by the next round.
    """

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        self._transport: asyncio.Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._parser = hiredis.Reader()
        self._replies: list[Any] = []
        self._want = 0
        self._done: asyncio.Future[None] | None = None

    @classmethod
    def to(cls, client: Any) -> Wire | None:
        pool = getattr(client, "connection_pool", None)
        if pool is None or pool.connection_class not in (Connection, UnixDomainSocketConnection):
            return None
        return cls(dict(pool.connection_kwargs))

    async def call(self, commands: list[tuple[bytes, ...]]) -> list[Any]:
        """The replies to `commands`, sent in one write; error replies are returned, not raised."""
        try:
            if self._transport is None or self._loop is not asyncio.get_running_loop():
                await self._connect()
            return await self._exchange(commands)
        except (OSError, RedisConnectionError, RuntimeError) as exc:
            # RuntimeError: uvloop's "the handler is closed", a transport torn down under us.
            self.close()
            raise RedisConnectionError(f"Redis at {self._address()}: {exc}") from exc
        except BaseException:
            self.close()  # timed out, or cancelled mid-round: the connection is out of step
            raise

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._transport = None
        self._parser = hiredis.Reader()
        self._replies = []

    async def _connect(self) -> None:
        self.close()
        options, loop = self.options, asyncio.get_running_loop()
        async with asyncio.timeout(options.get("socket_connect_timeout") or CONNECT_TIMEOUT):
            if "path" in options:
                await loop.create_unix_connection(lambda: self, options["path"])
            else:
                await loop.create_connection(lambda: self, options["host"], options["port"])
        self._loop = loop
        hello: list[tuple[bytes, ...]] = []
        if options.get("password"):
            user = (options["username"],) if options.get("username") else ()
            hello.append((b"AUTH", *(str(a).encode() for a in (*user, options["password"]))))
        if options.get("db"):
            hello.append((b"SELECT", str(options["db"]).encode()))
        for reply in await self._exchange(hello) if hello else ():
            if isinstance(reply, hiredis.ReplyError):
                raise RedisConnectionError(f"Redis refused the connection: {reply}")

    async def _exchange(self, commands: list[tuple[bytes, ...]]) -> list[Any]:
        assert self._transport is not None and self._done is None, "one round at a time"
        loop = asyncio.get_running_loop()
        done = self._done = loop.create_future()
        self._want = len(commands)
        self._transport.write(b"".join([_pack(c) for c in commands]))
        # A round is a few small replies: a Redis that leaves it unanswered is down.
        timer = loop.call_later(ANSWER_TIMEOUT, self._expire, done)
        try:
            await done
        finally:
            timer.cancel()
            self._done = None
        replies, self._replies = self._replies, []
        return replies

    def _expire(self, done: asyncio.Future[None]) -> None:
        if not done.done():
            done.set_exception(
                RedisTimeoutError(
                    f"Redis at {self._address()} did not answer in {ANSWER_TIMEOUT:g} s"
                )
            )

    def _address(self) -> str:
        return str(self.options.get("path") or f"{self.options['host']}:{self.options['port']}")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment] # uvloop's are no asyncio.Transport

    def data_received(self, data: bytes) -> None:
        self._parser.feed(data)
        while (reply := self._parser.gets()) is not False:
            self._replies.append(reply)
        if self._done is not None and len(self._replies) >= self._want and not self._done.done():
            self._done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._done is not None and not self._done.done():
            self._done.set_exception(RedisConnectionError("Redis closed the connection"))


def _pack(command: tuple[bytes, ...]) -> bytes:
    parts = [b"*%d\r\n" % len(command)]
    for arg in command:
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)

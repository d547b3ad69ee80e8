"""The change stream: every add and remove, with its time, in one Redis stream.

An entry is one number (`a` or `r` -> E.164 digits), one bucket's batch from
a bulk load (`A` or `R` -> bucket id, `z` -> the ascending members' gaps as
zlib-compressed little-endian uint16), or a snapshot (`S` -> bucket id, `of` ->
the id of the batch it replaced). Batches keep a 10-million-number load to a
few thousand entries, and the Bloom followers decode them with one numpy call
each.

Order of writes, so that a crash between two of them can only over-block:
an add is logged *before* the set changes (a follower may learn a number that
never arrived: a false "maybe", confirmed away in Redis), a remove *after*
(a change-list reader keeps blocking a number a little longer).

Snapshots keep a bulk load from being stored twice. Once a batch's members
are in their set, the loader swaps the batch for a snapshot entry in one
script (`COMMIT_SCRIPT`): the members now live only in the set, and whoever
reads the snapshot reads the bucket's set instead. Readers that saw the batch
skip its snapshot; the others take every number the bucket holds at the time
they read it, which is the batch plus numbers registered before or after it:
for a follower of the full list, re-adding a number it has is harmless. The
loader swaps only batches that are at least half of their bucket, so a
snapshot never lists more than twice what was loaded. A crash before the swap
leaves the batch in place: nothing is lost, the load just costs its memory.
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from registry.store import dump, keys

ADD, REMOVE = "add", "remove"

# The error LOG_SCRIPT answers when the registry's marker (keys.EPOCH) is gone.
NO_REGISTRY = "NOREGISTRY"

# KEYS: changes, version, head, epoch, buckets[, detailed]. ARGV: minid, then bucket ids
# to index, '--', entry fields. With a sixth key the buckets also enter that index:
# buckets where numbers registered one by one keep details. Nothing is logged, and so
# nothing written after it, on a Redis without the registry's marker: one that lost the
# registry (restarted without its files, flushed) would take the write and lose it again
# when the data is restored, and meanwhile answer the other registered numbers callable.
LOG_SCRIPT = (
    "if redis.call('EXISTS', KEYS[4]) == 0 then\n"
    f"  return redis.error_reply('{NO_REGISTRY} this Redis holds no registry (data lost)')\n"
    "end\n"
    + """
local sep = 0
for i = 2, #ARGV do
  if ARGV[i] == '--' then sep = i break end
  redis.call('SADD', KEYS[5], ARGV[i])
  if KEYS[6] then redis.call('SADD', KEYS[6], ARGV[i]) end
end
local fields = {}
for i = sep + 1, #ARGV do fields[#fields + 1] = ARGV[i] end
local id = redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[1], '*', unpack(fields))
local version = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[3], id)
return {id, version}
"""
)


# KEYS: changes. ARGV: minid, bucket, the batch's entry id. The batch's members are
# in their set by now: log where to find them, then drop the copy.
COMMIT_SCRIPT = """
local id = redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[1], '*', 'S', ARGV[2], 'of', ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
return id
"""


# How late an add may reach its set: a writer stores it within STORE_WINDOW_MS of its log
# entry's id, by the clock of the Redis holding the set (STORE_ADD refuses a later
# store, and the writer logs the add again: loader/bulk.py, RegistrationStore.register).
# So a reader that takes the stream's last id and then reads the sets (a Bloom filter's
# build, a full list's download) follows the stream from REAPPLY_MS before that id
# (`rewound`): every add whose write was still in flight has an id after it. The margin
# over the window covers a Cluster's nodes (the stream's, a bucket's) disagreeing on
# the time; re-reading the entries in between only repeats adds the reader holds.
STORE_WINDOW_MS = 20_000
REAPPLY_MS = 60_000

# A store's guard, in front of a script body that adds to KEYS[1]: ARGV[1] is the latest
# time (ms, Redis' clock) it may land, the rest the body's. A late store changes nothing
# and answers LATE: its add was logged too long ago for readers that rewind REAPPLY_MS.
LATE = "LATE"
STORE_GUARD = f"""
local clock = redis.call('TIME')
if tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000) > tonumber(ARGV[1]) then
  return redis.error_reply('{LATE} the add was logged too long ago: log it again')
end
"""


def store_deadline(entry_id: bytes | str) -> int:
    """The latest time (ms) the add logged as `entry_id` may reach its set."""
    return stream_order(_text(entry_id))[0] + STORE_WINDOW_MS


def is_late(error: BaseException) -> bool:
    """True for STORE_GUARD's refusal."""
    return str(error).startswith(LATE)


def rewound(last_id: str) -> str:
    """The cursor a reader of the sets follows the stream from, having read `last_id` as
    its last entry before reading them ("0-0" when it had none): REAPPLY_MS before it."""
    return f"{max(0, stream_order(last_id)[0] - REAPPLY_MS)}-0"


def min_id(retention_days: int, now: float | None = None) -> str:
    """The oldest stream id to keep: entries older than the retention are trimmed."""
    now = time.time() if now is None else now
    return str(int((now - retention_days * 86400) * 1000))


def log_args(
    retention_days: int,
    buckets: list[int],
    fields: list[bytes | str | int],
    detailed: bool = False,
) -> list[Any]:
    """The script's arguments; `detailed` for a number registered one by one, whose
    bucket thereby enters the index of buckets with a details hash."""
    indexes = [keys.BUCKETS, keys.DETAILED] if detailed else [keys.BUCKETS]
    return [
        4 + len(indexes),
        keys.CHANGES,
        keys.VERSION,
        keys.HEAD,
        keys.EPOCH,
        *indexes,
        min_id(retention_days),
        *buckets,
        "--",
        *fields,
    ]


def single_fields(op: str, number: int) -> list[bytes | str | int]:
    return ["a" if op == ADD else "r", number]


def batch_fields(op: str, bucket: int, members: np.ndarray) -> list[bytes | str | int]:
    """A bucket's batch: ascending members as zlib-compressed 16-bit gaps (`z`), which
    takes under a byte a number at the US registry's density instead of two."""
    gaps = np.diff(members.astype(np.int64), prepend=-keys.MEMBER_OFFSET).astype("<u2")
    return ["A" if op == ADD else "R", bucket, "z", zlib.compress(gaps.tobytes(), 1)]


def _batch_members(fields: dict[bytes, bytes]) -> np.ndarray:
    if b"z" in fields:
        gaps = np.frombuffer(zlib.decompress(fields[b"z"]), dtype="<u2").astype(np.int64)
        return np.cumsum(gaps) - keys.MEMBER_OFFSET
    return np.frombuffer(fields[b"m"], dtype="<i2")  # raw int16, as first written


def commit_args(retention_days: int, bucket: int, batch_id: str) -> list[Any]:
    return [1, keys.CHANGES, min_id(retention_days), bucket, batch_id]


@dataclass(frozen=True)
class Change:
    id: str
    op: str
    numbers: np.ndarray  # int64 E.164 digits; empty for a snapshot, whose numbers are in its set
    snapshot: int | None = None  # the bucket of a snapshot entry
    batch: str | None = None  # a snapshot's batch entry; or this entry's id when it is a batch

    @property
    def at_ms(self) -> int:
        return int(self.id.split("-", 1)[0])


def decode(entry_id: bytes | str, fields: dict[bytes, bytes]) -> Change:
    entry = _text(entry_id)
    if b"a" in fields:
        return Change(entry, ADD, np.array([int(fields[b"a"])], dtype=np.int64))
    if b"r" in fields:
        return Change(entry, REMOVE, np.array([int(fields[b"r"])], dtype=np.int64))
    if b"S" in fields:
        return Change(entry, ADD, _NONE, int(fields[b"S"]), fields[b"of"].decode())
    op = ADD if b"A" in fields else REMOVE
    bucket = int(fields[b"A" if op == ADD else b"R"])
    return Change(entry, op, keys.join(bucket, _batch_members(fields)), batch=entry)


_NONE = np.zeros(0, dtype=np.int64)


class Snapshots:
    """Which snapshots a reader must expand: those whose batch it has not seen itself,
    logged after `through` (a stream id). A snapshot is logged once its members are in
    their set, so a reader that read the sets after reading `through` as the stream's
    last id holds every snapshot up to it already."""

    def __init__(self, limit: int = 100_000, through: str = "0-0") -> None:
        self.limit = limit
        self.seen: set[str] = set()
        self.through = stream_order(through)

    def saw(self, change: Change) -> None:
        if change.op == ADD and change.batch == change.id:
            if len(self.seen) >= self.limit:
                self.seen.clear()  # forgetting only costs a re-read of a bucket
            self.seen.add(change.id)

    def needs(self, change: Change) -> bool:
        """True for a snapshot to expand; a snapshot of a batch seen is already applied."""
        if change.snapshot is None or stream_order(change.id) <= self.through:
            return False
        if change.batch in self.seen:
            self.seen.discard(change.batch)
            return False
        return True

    def buckets(self, entries: list[Any], kept: Callable[[int], bool] | None = None) -> list[int]:
        """The buckets whose members a page of entries needs, without marking anything;
        only those `kept` admits, if given."""
        batches = {_text(raw_id) for raw_id, fields in entries if b"A" in fields}
        return [
            int(fields[b"S"])
            for raw_id, fields in entries
            if b"S" in fields
            and (batch := fields[b"of"].decode()) not in self.seen
            and batch not in batches
            and stream_order(_text(raw_id)) > self.through
            and (kept is None or kept(int(fields[b"S"])))
        ]


def bucket_of(fields: dict[bytes, bytes]) -> int | None:
    """The bucket a batch or snapshot entry is about, from its fields alone; None for an
    entry of one number."""
    for name in (b"S", b"A", b"R"):
        if name in fields:
            return int(fields[name])
    return None


def stream_order(entry_id: str) -> tuple[int, int]:
    """A stream id as a pair that sorts as the stream does."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _text(entry_id: bytes | str) -> str:
    return entry_id.decode() if isinstance(entry_id, bytes) else entry_id


_LOW = (1 << keys.BUCKET_BITS) - 1


class CursorError(ValueError):
    """A change-list cursor that this registry never handed out."""


class CursorExpired(CursorError):
    """A cursor older than the retention: changes after it may be trimmed already, so the
    list from it would look whole and miss some. The full list is the way back."""


class CursorUnknown(CursorExpired):
    """A cursor past the stream's last entry: no answer handed it out (it was made up, or
    came from data since replaced), and changes logged later under ids before it would
    be skipped. The full list is the way back, as for an expired one."""


# A stream id is two unsigned 64-bit integers; Redis refuses anything larger.
MAX_ID_PART = (1 << 64) - 1
MAX_ID = f"{MAX_ID_PART}-{MAX_ID_PART}"
_STREAM_ID = re.compile(r"([0-9]{1,20})(?:-([0-9]{1,20}))?")
_CURSOR = re.compile(r"([0-9]{1,20}(?:-[0-9]{1,20})?)(?:\.([0-9]{1,5}))?")


def parse_stream_id(text: str) -> tuple[int, int | None] | None:
    """`MS` or `MS-SEQ` as numbers (SEQ None when left out); None unless both parts are
    ASCII digits within Redis' 64-bit range."""
    match = _STREAM_ID.fullmatch(text)
    if match is None:
        return None
    ms, seq = int(match[1]), None if match[2] is None else int(match[2])
    if ms > MAX_ID_PART or (seq or 0) > MAX_ID_PART:
        return None
    return ms, seq


def parse_cursor(cursor: str | None) -> tuple[str, int]:
    """`ID` resumes after entry ID; `ID.K` resumes inside entry ID: at its K-th number in
    a batch, at the first member whose low 16 bits are K or more in a snapshot. Either
    way K is below 2**16, a bucket's size."""
    if not cursor or cursor == "0":
        return "0-0", 0
    match = _CURSOR.fullmatch(cursor)
    parsed = None if match is None else parse_stream_id(match[1])
    offset = 0 if match is None or match[2] is None else int(match[2])
    if parsed is None or offset > _LOW:
        raise CursorError(
            f"cursor {cursor[:64]!r} is not one this registry handed out; "
            "send the `next` of an earlier answer, or 0 for every change kept"
        )
    ms, seq = parsed
    return f"{ms}-{seq or 0}", offset


def check_cursor(
    cursor: str | None, retention_days: int, now: float | None = None, last_id: str | None = None
) -> None:
    """Raise CursorError for a malformed cursor, CursorExpired for one older than the
    retention, CursorUnknown for one past `last_id` (the stream's last entry, "0-0" when it
    has none; not checked when None); `0` (every change kept) is always good."""
    entry_id, _ = parse_cursor(cursor)
    if not cursor or entry_id == "0-0":
        return
    oldest_ms = int(min_id(retention_days, now))
    if stream_order(entry_id)[0] < oldest_ms:
        raise CursorExpired(
            f"cursor {cursor!r} is older than the {retention_days} days of changes kept; "
            "download the full list, then follow the changes from its time"
        )
    if last_id is not None and stream_order(entry_id) > stream_order(last_id):
        raise CursorUnknown(
            f"cursor {cursor[:64]!r} is past the last change logged, so this registry did "
            "not hand it out; download the full list, then follow the changes from its time"
        )


PAGE = 256  # stream entries per XRANGE round trip
# Numbers one read examines at most, matched or not: a reader with a narrow prefix must
# not walk the whole stream on one request (a day's bulk load is millions of numbers
# elsewhere). A read cut short by it has `more`, and its cursor is past what it examined.
SCAN_BUDGET = 1 << 20
# An entry passed over unread still crosses the wire: it costs the budget this much.
SKIPPED_ENTRY_COST = 64


class Page(NamedTuple):
    found: list[tuple[int, str, int]]  # (number, op, at_ms)
    cursor: str  # where the next read resumes
    more: bool  # the read stopped at its limit or its budget, not at the stream's end


@dataclass
class Reading:
    """One change-list read in progress: the part the async API and the sync CLI share.

    The caller drives it: XRANGE from `start`, hand the page to `take`, until `done`.
    """

    entry_id: str
    offset: int
    limit: int
    keep: Callable[[np.ndarray], np.ndarray]
    cursor: str
    start: str
    found: list[tuple[int, str, int]] = field(default_factory=list)
    done: bool = False
    more: bool = False
    snapshots: Snapshots = field(default_factory=Snapshots)
    kept_buckets: Callable[[int], bool] | None = None
    budget: int = SCAN_BUDGET

    @classmethod
    def after(
        cls,
        cursor: str | None,
        limit: int,
        keep: Callable[[np.ndarray], np.ndarray],
        kept_buckets: Callable[[int], bool] | None = None,
        budget: int = SCAN_BUDGET,
    ) -> Reading:
        entry_id, offset = parse_cursor(cursor)
        start = entry_id if offset else f"({entry_id}"
        # Nothing comes after the largest id, and Redis refuses to range from past it.
        done = limit <= 0 or start == f"({MAX_ID}"
        return cls(
            entry_id, offset, limit, keep, cursor or "0-0", start, done=done,
            kept_buckets=kept_buckets, budget=budget,
        )  # fmt: skip

    def take(self, entries: list[Any], members: dict[int, np.ndarray]) -> None:
        """Consume one XRANGE page, with the members of the buckets that `snapshots.buckets`
        named for it; `done` once the limit or the budget is reached or the stream ends."""
        if not entries:
            self.done = True
            return
        for raw_id, fields in entries:
            bucket = bucket_of(fields)
            # An entry of a bucket none of whose numbers can be kept is passed over unread.
            if bucket is not None and self.kept_buckets and not self.kept_buckets(bucket):
                self.cursor = _text(raw_id)
                self.budget -= SKIPPED_ENTRY_COST
                if self.budget <= 0:
                    self.done = self.more = True
                    return
                continue
            change = decode(raw_id, fields)
            self.snapshots.saw(change)
            resume = self.offset if change.id == self.entry_id else 0
            if self.snapshots.needs(change):
                assert change.snapshot is not None
                numbers = keys.join(change.snapshot, members[change.snapshot])
                begin = int(np.searchsorted(numbers & _LOW, resume))
            else:
                numbers, begin = change.numbers, resume
            tail = numbers[begin:]
            picked = np.flatnonzero(self.keep(tail))
            room = self.limit - len(self.found)
            self.found += [(n, change.op, change.at_ms) for n in tail[picked[:room]].tolist()]
            if len(picked) > room:
                at = int(picked[room])
                position = int(tail[at]) & _LOW if change.snapshot is not None else begin + at
                self.cursor, self.done, self.more = f"{change.id}.{position}", True, True
                return
            self.cursor = change.id
            self.budget -= max(1, len(tail))
            if len(self.found) >= self.limit or self.budget <= 0:
                self.done = self.more = True
                return
        last = entries[-1][0]
        self.start = f"({last.decode() if isinstance(last, bytes) else last}"


async def read(
    redis: Any,
    cursor: str | None,
    limit: int,
    keep: Callable[[np.ndarray], np.ndarray],
    kept_buckets: Callable[[int], bool] | None = None,
    budget: int = SCAN_BUDGET,
) -> Page:
    """Up to `limit` changes after `cursor` that `keep` admits, examining at most `budget`
    numbers; entries of buckets `kept_buckets` rules out are passed over unread."""
    reading = Reading.after(cursor, limit, keep, kept_buckets, budget)
    while not reading.done:
        entries = await redis.xrange(keys.CHANGES, min=reading.start, max="+", count=PAGE)
        buckets = reading.snapshots.buckets(entries, kept_buckets)
        found = await dump.bucket_members(redis, buckets) if buckets else []
        reading.take(entries, dict(zip(buckets, found, strict=True)))
    return Page(reading.found, reading.cursor, reading.more)


def read_sync(
    redis: Any,
    cursor: str | None,
    limit: int,
    keep: Callable[[np.ndarray], np.ndarray],
    kept_buckets: Callable[[int], bool] | None = None,
    budget: int = SCAN_BUDGET,
) -> Page:
    """`read` on a synchronous client, for the command line."""
    reading = Reading.after(cursor, limit, keep, kept_buckets, budget)
    while not reading.done:
        entries = redis.xrange(keys.CHANGES, min=reading.start, max="+", count=PAGE)
        buckets = reading.snapshots.buckets(entries, kept_buckets)
        found = dump.bucket_members_sync(redis, buckets) if buckets else []
        reading.take(entries, dict(zip(buckets, found, strict=True)))
    return Page(reading.found, reading.cursor, reading.more)


async def last_entry(redis: Any) -> str:
    """The stream's last entry id, "0-0" while it has none."""
    return _last(await redis.xrevrange(keys.CHANGES, count=1))


def last_entry_sync(redis: Any) -> str:
    """last_entry on a synchronous client."""
    return _last(redis.xrevrange(keys.CHANGES, count=1))


def _last(entries: list[Any]) -> str:
    return _text(entries[0][0]) if entries else "0-0"


async def head_cursor(redis: Any) -> str:
    """The cursor to follow a full list from, taken before the list is read (`0` while the
    stream is empty): `rewound` from the last entry, so the changes from it miss nothing
    the list lacks, adds still on their way to the sets included."""
    return _head(rewound(await last_entry(redis)))


def head_cursor_sync(redis: Any) -> str:
    """head_cursor on a synchronous client."""
    return _head(rewound(last_entry_sync(redis)))


def _head(cursor: str) -> str:
    return "0" if cursor == "0-0" else cursor


def iso_time(at_ms: int) -> str:
    """A change's time as ISO 8601 UTC with milliseconds, as the change list shows it."""
    seconds, ms = divmod(at_ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ms:03d}Z"

"""Bulk writes to the bucket sets, in the order the API's Bloom filters rely on.

An add is logged to the change stream *before* its numbers enter the sets, so a
running API worker's filter learns them before Redis can confirm them; a remove
is logged *after* (see registry.store.changes). Work goes bucket by bucket: one
log entry per bucket per batch, pipelined, every command on one hash slot, so
the same code runs on one Redis and on a Cluster.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from redis.exceptions import NoScriptError

from registry.store import changes, keys, resp
from registry.store.registrations import KEEP_ENDED

# KEYS: set, details. ARGV: now, retention seconds, who, the bucket's ended-record key
# prefix, its opt-out-time key prefix (keys.opted_out_prefix), members. Returns the
# members that were in the set: exactly those must be logged as removed. Details exist
# only for numbers registered one by one (a subscriber's or a carrier's act), so most
# buckets skip the HDELs; those numbers keep
# their ended record as a deregistration does (the same key, in the bucket's slot).
# A bulk-loaded number's record is the file it came in, and its removal's is the change
# list's `remove` entry, kept DNC_RETENTION_DAYS.
REMOVE_SCRIPT = (
    KEEP_ENDED
    + """
local removed = {}
local has_details = redis.call('EXISTS', KEYS[2]) == 1
local now, retention = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 6, #ARGV do
  local member = ARGV[i]
  if has_details then
    local old = redis.call('HGET', KEYS[2], member)
    if old and redis.call('SISMEMBER', KEYS[1], member) == 1 then
      keep_ended(ARGV[4] .. member, old .. '|' .. ARGV[1] .. '|' .. ARGV[3], now, retention)
      redis.call('HDEL', KEYS[2], member)
    end
  end
  if redis.call('SREM', KEYS[1], member) == 1 then
    removed[#removed + 1] = member
    -- The last opt-out's time, kept while the registration stood: now its retention.
    redis.call('EXPIRE', ARGV[5] .. member, retention)
  end
end
return removed
"""
)

SCRIPTS = (changes.LOG_SCRIPT, changes.COMMIT_SCRIPT, REMOVE_SCRIPT)

# One pipelined round trip carries at most this much.
MAX_BUCKETS = 1024
MAX_MEMBERS = 1 << 16

Group = list[tuple[int, np.ndarray]]  # (bucket, its members ascending as int16 values)


def bucket_groups(numbers: np.ndarray) -> Iterator[Group]:
    """Distinct numbers split by bucket, members ascending, in groups sized for one pipeline."""
    if len(numbers) == 0:
        return
    # A sort and a neighbour compare: numpy 2's hash-based unique is several times slower.
    ordered = np.sort(numbers)
    distinct = ordered[np.r_[True, ordered[1:] != ordered[:-1]]]
    buckets, members = keys.split(distinct)
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    ends = np.r_[starts[1:], len(distinct)]
    group: Group = []
    size = 0
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        group.append((int(buckets[start]), members[start:end]))
        size += end - start
        if size >= MAX_MEMBERS or len(group) >= MAX_BUCKETS:
            yield group
            group, size = [], 0
    if group:
        yield group


class BulkWriter:
    """Adds and removes batches of numbers; each call returns how many sets actually changed.

    `client` is a synchronous redis-py client, single node or Cluster. The
    scripts run by hash (SCRIPT LOAD reaches every Cluster primary), so a load
    that logs thousands of buckets does not resend their source for each one.
    """

    def __init__(self, client: Any, retention_days: int, actor: str = "cli") -> None:
        self.client = client
        self.retention_days = retention_days
        self.actor = actor  # who removes, in the ended records of what it removes
        self.shas = {script: client.script_load(script) for script in SCRIPTS}

    def add(self, numbers: np.ndarray) -> int:
        """Register numbers; returns how many were new.

        Only the members a bucket lacks (all of them, in a bucket that is empty) are
        logged and added, so loading the same file twice leaves the change list alone.
        A member that a deregistration removes between the check and the add stays
        removed, which is the order "load, then deregister": every member in a set was
        logged before it got there.
        """
        return sum(self._add_group(group) for group in bucket_groups(numbers))

    def remove(self, numbers: np.ndarray) -> int:
        """Remove numbers (and their details); returns how many were registered."""
        return sum(self._remove_group(group) for group in bucket_groups(numbers))

    def _add_group(self, group: Group) -> int:
        # Sizes first: an empty bucket lacks every member, so only the others are asked
        # which members they hold (for a first load, none is: half the bytes to Redis).
        sizes = self._sizes([bucket for bucket, _ in group])
        occupied = [
            (bucket, members) for (bucket, members), size in zip(group, sizes, strict=True) if size
        ]
        calls = [(keys.numbers_set(bucket), members) for bucket, members in occupied]
        held = dict(
            zip(
                [bucket for bucket, _ in occupied],
                resp.run(self.client, b"SMISMEMBER", calls) if calls else [],
                strict=True,
            )
        )
        fresh: Group = []
        fresh_sizes: list[int] = []
        for (bucket, members), size in zip(group, sizes, strict=True):
            present = held.get(bucket)
            if present is not None:
                if all(present):
                    continue
                if any(present):  # any() and all() stop at the first 1 or 0
                    members = members[~np.array(present, dtype=bool)]
            fresh.append((bucket, members))
            fresh_sizes.append(size)
        if not fresh:
            return 0
        added, batch_ids = self._store(fresh)
        # Batches that are at least half of their bucket now live only in the set.
        self._eval(
            changes.COMMIT_SCRIPT,
            [
                changes.commit_args(self.retention_days, bucket, batch_id)
                for (bucket, members), size, batch_id in zip(
                    fresh, fresh_sizes, batch_ids, strict=True
                )
                if len(members) >= size
            ],
        )
        return added

    def _store(self, group: Group) -> tuple[int, list[str]]:
        """Log each bucket's batch, then add it to its set; returns the members added and
        the batches' entry ids.

        Readers of the sets rewind changes.REAPPLY_MS from the stream's last entry, which
        covers an add that reaches its set within changes.STORE_WINDOW_MS of its entry.
        The sets take plain SADDs (a script around them would halve the load's speed), so
        the bound is kept after the fact: a store whose reply came later than that after
        the log was sent (a stalled loader, a Redis busy elsewhere) may have landed
        behind such a reader's cursor, and the members it holds are logged again."""
        sent = time.monotonic()
        batch_ids = self._log(changes.ADD, group)
        calls = [(keys.numbers_set(bucket), members) for bucket, members in group]
        added = sum(resp.run(self.client, b"SADD", calls))
        if (time.monotonic() - sent) * 1000 > changes.STORE_WINDOW_MS:
            held = resp.run(self.client, b"SMISMEMBER", calls)
            again = [
                (bucket, members[np.array(flags, dtype=bool)])
                for (bucket, members), flags in zip(group, held, strict=True)
            ]
            relogged = iter(self._log(changes.ADD, [(b, m) for b, m in again if len(m)]))
            batch_ids = [
                next(relogged) if len(members) else batch_id
                for (_, members), batch_id in zip(again, batch_ids, strict=True)
            ]
        return added, batch_ids

    def _sizes(self, buckets: list[int]) -> list[int]:
        pipe = self.client.pipeline(transaction=False)
        for bucket in buckets:
            pipe.scard(keys.numbers_set(bucket))
        return [int(size) for size in pipe.execute()]

    def _remove_group(self, group: Group) -> int:
        now, retention = int(time.time()), self.retention_days * 86400
        calls = [
            [2, keys.numbers_set(bucket), keys.details(bucket), now, retention, self.actor]
            + [keys.ended_prefix(bucket), keys.opted_out_prefix(bucket), *members.tolist()]
            for bucket, members in group
        ]
        removed = [
            (bucket, np.array([int(m) for m in reply], dtype=np.int64))
            for (bucket, _), reply in zip(group, self._eval(REMOVE_SCRIPT, calls), strict=True)
            if reply
        ]
        self._log(changes.REMOVE, removed)
        return sum(len(members) for _, members in removed)

    def _log(self, op: str, group: Group) -> list[str]:
        """One change-stream entry per bucket, whose ids it returns; adds also enter the
        bucket index."""
        calls = [
            changes.log_args(
                self.retention_days,
                [bucket] if op == changes.ADD else [],
                changes.batch_fields(op, bucket, members),
            )
            for bucket, members in group
        ]
        return [_text(entry_id) for entry_id, _ in self._eval(changes.LOG_SCRIPT, calls)]

    def _eval(self, script: str, calls: list[list[Any]]) -> list[Any]:
        """Run the script once per call, pipelined; a node that lost it (a restart, a new
        shard) is given it again and those calls retried. The replies come in call order."""
        if not calls:
            return []
        replies = self._evalsha(self.shas[script], calls)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            self.shas[script] = self.client.script_load(script)
            retried = self._evalsha(self.shas[script], [calls[i] for i in missing])
            for i, reply in zip(missing, retried, strict=True):
                replies[i] = reply
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    def _evalsha(self, sha: str, calls: list[list[Any]]) -> list[Any]:
        # execute_command: the Cluster pipeline refuses `pipe.evalsha`, yet routes the
        # command by its keys like any other.
        pipe = self.client.pipeline(transaction=False)
        for args in calls:
            pipe.execute_command("EVALSHA", sha, *args)
        return list(pipe.execute(raise_on_error=False))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

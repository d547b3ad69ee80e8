"""`dnc export`: the full list, or the change list after a cursor, from Redis to a file.

The same answers as `GET /v1/export` and `GET /v1/changes`, on a synchronous
client and without the API's page limit: the command writes everything there is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from registry import numbers as nums
from registry.store import changes, keys
from registry.store.registrations import bucket_list, bucket_numbers

BUCKETS_PER_ROUND_TRIP = 256
CHANGES_PER_READ = 10_000


class Output(Protocol):
    """Where the lines go: a text file, or the command line's own output."""

    def write(self, text: str, /) -> object: ...


class ExportError(Exception):
    """A prefix or cursor the registry cannot export from."""


def export_full(client: Any, out: Output, prefixes: Sequence[str]) -> str:
    """Every registered number under `prefixes` (all when none), one E.164 a line, ascending.

    Returns the change-list cursor to follow the list from, taken before it was read.
    """
    prefixes = _checked(prefixes)
    cursor = changes.head_cursor_sync(client)
    buckets = bucket_list(client.smembers(keys.BUCKETS), prefixes)
    for start in range(0, len(buckets), BUCKETS_PER_ROUND_TRIP):
        group = buckets[start : start + BUCKETS_PER_ROUND_TRIP]
        pipe = client.pipeline(transaction=False)
        for bucket in group:
            pipe.smembers(keys.numbers_set(bucket))
        for bucket, members in zip(group, pipe.execute(), strict=True):
            if members:
                numbers = bucket_numbers(bucket, members, prefixes)
                out.write("".join(f"+{n}\n" for n in numbers.tolist()))
    return cursor


def export_changes(
    client: Any, out: Output, since: str, prefixes: Sequence[str], retention_days: int
) -> str:
    """Every change after cursor `since` (`0`: all that are kept) under `prefixes`, as
    `+1...,add|remove,ISO-time` lines; returns the cursor to pass next time.

    A cursor older than the retention is refused as GET /v1/changes refuses it: the
    changes after it may be trimmed already, and the list would look whole without them."""
    prefixes = _checked(prefixes)
    try:
        changes.check_cursor(since, retention_days)
    except changes.CursorError as exc:
        raise ExportError(str(exc)) from None

    def keep(numbers: np.ndarray) -> np.ndarray:
        return nums.in_prefixes(numbers, prefixes)

    kept = keys.bucket_filter(prefixes) if prefixes else None
    cursor = since
    while True:
        page = changes.read_sync(client, cursor, CHANGES_PER_READ, keep, kept)
        out.write("".join(f"+{n},{op},{changes.iso_time(at)}\n" for n, op, at in page.found))
        cursor = page.cursor
        if not page.more:
            return cursor


def _checked(prefixes: Sequence[str]) -> list[str]:
    """Prefixes as `+digits`; `1212` is taken as `+1212`."""
    checked = []
    for prefix in prefixes:
        try:
            value, _ = nums.prefix_range(prefix.strip())
        except ValueError as exc:
            raise ExportError(str(exc)) from None
        checked.append(f"+{value}")
    return checked

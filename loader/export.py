"""`dnc export`: the full list, or the change list after a cursor, from Redis to a file.

The same answers as `GET /v1/export` and `GET /v1/changes`, on a synchronous
client and without the API's page limit: the command writes everything there is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from registry import numbers as nums
from registry import tables
from registry.store import changes, keys
from registry.store.codes import Preferences
from registry.store.registrations import (
    bucket_list,
    bucket_numbers,
    few_preferences_sync,
    preferences_sync,
)

BUCKETS_PER_ROUND_TRIP = 256
CHANGES_PER_READ = 10_000


class Output(Protocol):
    """Where the lines go: a text file, or the command line's own output."""

    def write(self, text: str, /) -> object: ...


class ExportError(Exception):
    """A prefix or cursor the registry cannot export from."""


def export_full(client: Any, out: Output, prefixes: Sequence[str], detail: bool = False) -> str:
    """Every registered number under `prefixes` (all when none), one E.164 a line, ascending;
    with `detail`, GET /v1/export?detail=true's CSV of each number and its preferences.

    Returns the change-list cursor to follow the list from, taken before it was read
    (changes.head_cursor_sync: rewound past adds still on their way to the sets).
    """
    prefixes = _checked(prefixes)
    cursor = changes.head_cursor_sync(client)
    buckets = bucket_list(client.smembers(keys.BUCKETS), prefixes)
    detailed = {int(b) for b in client.smembers(keys.DETAILED)} if detail else set()
    if detail:
        out.write(tables.DETAIL_HEADER)
    for start in range(0, len(buckets), BUCKETS_PER_ROUND_TRIP):
        group = buckets[start : start + BUCKETS_PER_ROUND_TRIP]
        pipe = client.pipeline(transaction=False)
        for bucket in group:
            pipe.smembers(keys.numbers_set(bucket))
        found = [
            bucket_numbers(bucket, members, prefixes)
            for bucket, members in zip(group, pipe.execute(), strict=True)
            if members
        ]
        if not found:
            continue
        numbers = np.concatenate(found)
        if detail:
            blocked, allowed = preferences_sync(client, numbers, detailed)
            out.write(tables.detail_rows(numbers, blocked, allowed))
        else:
            out.write("".join(f"+{n}\n" for n in numbers.tolist()))
    return cursor


def export_changes(
    client: Any,
    out: Output,
    since: str,
    prefixes: Sequence[str],
    retention_days: int,
    detail: bool = False,
) -> str:
    """Every change after cursor `since` (`0`: all that are kept) under `prefixes`, as
    `+1...,add|remove,ISO-time` lines; returns the cursor to pass next time. With
    `detail`, two more cells: an add's channels and categories as they stand now (as
    GET /v1/changes?detail=true), empty for a removal.

    A cursor older than the retention is refused as GET /v1/changes refuses it: the
    changes after it may be trimmed already, and the list would look whole without them.
    So is one past the stream's last entry, which no answer handed out."""
    prefixes = _checked(prefixes)
    try:
        changes.check_cursor(since, retention_days, last_id=changes.last_entry_sync(client))
    except changes.CursorError as exc:
        raise ExportError(str(exc)) from None

    def keep(numbers: np.ndarray) -> np.ndarray:
        return nums.in_prefixes(numbers, prefixes)

    kept = keys.bucket_filter(prefixes) if prefixes else None
    cursor = since
    while True:
        page = changes.read_sync(client, cursor, CHANGES_PER_READ, keep, kept)
        tails = _detail_cells(client, page.found) if detail else {}
        lines = []
        for n, op, at in page.found:
            tail = (tails.get(n, ",,") if op == changes.ADD else ",,") if detail else ""
            lines.append(f"+{n},{op},{changes.iso_time(at)}{tail}\n")
        out.write("".join(lines))
        cursor = page.cursor
        if not page.more:
            return cursor


def _detail_cells(client: Any, found: Sequence[tuple[int, str, Any]]) -> dict[int, str]:
    """`,channels,categories` of each number added in `found`, as registered now."""
    added = np.unique(np.array([n for n, op, _ in found if op == changes.ADD], np.int64))
    if not len(added):
        return {}
    blocked, allowed = few_preferences_sync(client, added)
    pairs = zip(blocked.tolist(), allowed.tolist(), strict=True)
    return {
        n: "," + tables.preference_cells(Preferences(*pair))
        for n, pair in zip(added.tolist(), pairs, strict=True)
    }


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

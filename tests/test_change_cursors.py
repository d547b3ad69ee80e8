"""Change-list cursors (registry.store.changes): what is malformed, what is expired.

The API (`GET /v1/changes`) and the command line (`dnc export --since`) read
the same cursors, so they must answer them the same: a cursor that is no
stream id Redis could hold is malformed, a well-formed one older than the
retention is expired, and one at the very end has nothing after it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from registry.store import changes, keys

RETENTION_DAYS = 153
NOW = 1_796_020_686.559  # seconds


def every(numbers: np.ndarray) -> np.ndarray:
    return np.ones(len(numbers), dtype=bool)


@pytest.mark.parametrize(
    ("cursor", "parsed"),
    [
        (None, ("0-0", 0)),
        ("0", ("0-0", 0)),
        ("1796020686559", ("1796020686559-0", 0)),
        ("1796020686559-3", ("1796020686559-3", 0)),
        ("1796020686559-3.65535", ("1796020686559-3", 65535)),
        (changes.MAX_ID, (changes.MAX_ID, 0)),
    ],
)
def test_cursors_this_registry_hands_out_parse(cursor: str | None, parsed: tuple[str, int]) -> None:
    assert changes.parse_cursor(cursor) == parsed


@pytest.mark.parametrize(
    "cursor",
    [
        "18446744073709551616-0",
        "1-18446744073709551616",
        "1-0.65536",
        "1-0.",
        "1.5-2",
        "0-1.5.5",
        "-5",
        "\u00b2",
        "1-0\n",
        "9" * 5000,  # past int()'s digit limit
    ],
)
def test_malformed_cursors_are_cursor_errors_not_expired(cursor: str) -> None:
    with pytest.raises(changes.CursorError) as raised:
        changes.check_cursor(cursor, RETENTION_DAYS, NOW)
    assert not isinstance(raised.value, changes.CursorExpired)
    assert len(str(raised.value)) < 300


@pytest.mark.parametrize(
    "cursor", ["1", "1-0", "0-1", "0-1.5", f"{int(NOW * 1000) - 154 * 86_400_000}-0"]
)
def test_well_formed_cursors_older_than_the_retention_are_expired(cursor: str) -> None:
    with pytest.raises(changes.CursorExpired, match="full list"):
        changes.check_cursor(cursor, RETENTION_DAYS, NOW)


@pytest.mark.parametrize(
    "cursor",
    [None, "", "0", "0-0", f"{int(NOW * 1000) - 152 * 86_400_000}-0", changes.MAX_ID],
)
def test_zero_recent_and_future_cursors_are_not_expired(cursor: str | None) -> None:
    changes.check_cursor(cursor, RETENTION_DAYS, NOW)


def test_reading_after_the_largest_id_finds_nothing_and_keeps_the_cursor(
    redis_client: Any,
) -> None:
    # What `dnc export --since` reads with: Redis refuses to range from past the largest id.
    redis_client.xadd(keys.CHANGES, {"a": 12125551234})
    for cursor in (changes.MAX_ID, changes.MAX_ID + ".7", "18446744073709551615"):
        assert changes.read_sync(redis_client, cursor, 100, every) == ([], cursor, False)
    found, _, _ = changes.read_sync(redis_client, "0", 100, every)
    assert [(n, op) for n, op, _ in found] == [(12125551234, changes.ADD)]

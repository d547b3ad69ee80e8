"""Records listed in time order: sorted sets whose members are `ms:id`, read by cursor.

Every member has score 0, so the set is ordered by its members' bytes, and the
milliseconds are zero-padded to 15 digits so that order is time order; a member
is its own cursor. Scrub receipts (an operator's) and complaints (the open queue,
an operator's) are listed this way.
"""

from __future__ import annotations

import re
from typing import Any

# A member, as a listing gives it back in `next`.
CURSOR = re.compile(r"[0-9]{15}:[A-Za-z0-9_-]{1,64}")


def entry(at: float, record_id: str) -> str:
    """A record's member: milliseconds since the epoch, zero-padded, then its id."""
    return f"{int(at * 1000):015d}:{record_id}"


async def page(
    redis: Any, key: str, after: str | None, oldest: float, newest: float, limit: int
) -> tuple[list[str], bool]:
    """Up to `limit` members after cursor `after` (None: from the oldest), none stamped
    before `oldest` or at or after `newest`; and whether more follow."""
    floor = f"[{entry(oldest, '')}"
    start = f"({after}" if after else floor
    if after and f"[{after}" < floor:
        start = floor
    found = await redis.zrangebylex(key, start, f"({entry(newest, '')}", start=0, num=limit + 1)
    members = [m.decode() if isinstance(m, bytes) else m for m in found[:limit]]
    return members, len(found) > limit


def ids(members: list[str]) -> list[str]:
    """The record ids of members."""
    return [member.split(":", 1)[1] for member in members]

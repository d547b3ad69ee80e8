"""The audit trail: who changed what and when, kept DNC_RETENTION_DAYS.

One Redis stream. Each entry is an action (`registration.created`,
`operator.revoked`, `consent.recorded`, ...), the actor (an operator id,
`subscriber` for a confirmed code, `admin`) and a few string fields. Entries
older than the retention are trimmed as new ones arrive (XADD MINID), so the
trail never outgrows what the rules require to be kept. Stream ids are the
cursors of `GET /v1/audit?since=`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from registry.store import keys
from registry.store.changes import MAX_ID_PART, parse_stream_id


class CursorError(ValueError):
    """An audit cursor that is no stream id: not the `next` of an earlier answer."""


@dataclass(frozen=True)
class AuditEntry:
    id: str
    at_ms: int
    action: str
    actor: str
    fields: dict[str, str]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entry(retention_ms: int, action: str, actor: str, fields: dict[str, Any]) -> dict[str, Any]:
    """XADD's arguments for one entry, trimming what is past the retention."""
    now_ms = int(time.time() * 1000)
    body: dict[str, str] = {"action": action, "actor": actor}
    body.update({name: str(value) for name, value in fields.items() if value is not None})
    minid = str(max(0, now_ms - retention_ms))
    return {"name": keys.AUDIT, "fields": body, "minid": minid, "approximate": True}


def record_sync(
    client: Any, retention_days: int, action: str, actor: str, **fields: str | int | None
) -> str:
    """AuditLog.record through a synchronous client (the command line's)."""
    return _text(client.xadd(**_entry(retention_days * 86_400_000, action, actor, fields)))


class AuditLog:
    def __init__(self, redis: Any, retention_days: int) -> None:
        self.redis = redis
        self.retention_ms = retention_days * 86_400_000

    async def record(self, action: str, actor: str, **fields: str | int | None) -> str:
        """Append one entry; fields that are None are left out. Returns its id."""
        return _text(await self.redis.xadd(**_entry(self.retention_ms, action, actor, fields)))

    async def since(self, cursor: str | None, limit: int) -> tuple[list[AuditEntry], str | None]:
        """Entries after `cursor` (from the oldest kept when None), and the next cursor."""
        parsed = None if cursor is None else parse_stream_id(cursor)
        if cursor is not None and parsed is None:
            raise CursorError(
                f"since {cursor[:64]!r} is not an audit cursor; "
                "send the `next` of an earlier answer"
            )
        if parsed == (MAX_ID_PART, MAX_ID_PART):
            return [], cursor  # nothing comes after the largest id; Redis refuses to look
        # Nothing older than the retention is served, trimmed yet or not.
        cutoff_ms = max(0, int(time.time() * 1000) - self.retention_ms)
        start = f"({cursor}" if cursor else "-"
        if parsed is None or parsed[0] < cutoff_ms:
            start = f"{cutoff_ms}-0"
        rows = await self.redis.xrange(keys.AUDIT, min=start, max="+", count=limit)
        entries = []
        for raw_id, raw in rows:
            entry_id = _text(raw_id)
            fields = {_text(k): _text(v) for k, v in raw.items()}
            action = fields.pop("action", "")
            actor = fields.pop("actor", "")
            at_ms = int(entry_id.split("-", 1)[0])
            entries.append(AuditEntry(entry_id, at_ms, action, actor, fields))
        next_cursor = entries[-1].id if entries else cursor
        return entries, next_cursor

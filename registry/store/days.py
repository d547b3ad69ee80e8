"""Per-day counters kept as long as what they count: their UTC days and end dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def day(epoch: float) -> str:
    """The UTC day of a time, as YYYYMMDD: the suffix of a day's counter key."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y%m%d")


def expires(day_: str, retention_days: int) -> int:
    """When a day's counter goes: the retention after the day's end (epoch seconds)."""
    end = datetime.strptime(day_, "%Y%m%d").replace(tzinfo=UTC) + timedelta(days=1)
    return int(end.timestamp()) + retention_days * 86400


def kept(now: float, retention_days: int) -> list[str]:
    """Every day whose counter may still exist: the retention, the day at its edge, today."""
    today = datetime.fromtimestamp(now, UTC)
    return [
        (today - timedelta(days=back)).strftime("%Y%m%d")
        for back in range(retention_days + 1, -1, -1)
    ]

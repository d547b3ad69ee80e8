"""Counters in the Prometheus text format, every worker's in each scrape.

Each worker counts in its own memory (cheap enough to touch on every request)
and publishes its samples to Redis about once a second (registry/api/app.py).
A scrape reaches one worker of the port, which answers with its own samples,
current, and every other live worker's as last published, each series labelled
`worker` (its pid) and `host`: Prometheus sums them. A worker that stopped
publishing is dropped after STALE_SECONDS; a scrape while Redis is away answers
with its own worker's samples alone.
"""

from __future__ import annotations

import os
import socket
import time
from collections import Counter
from typing import Any

import orjson

# A sample: its family, its labels as Prometheus writes them (without worker and host),
# and its value.
Sample = tuple[str, str, float]
# family -> (type, help)
FAMILIES = {
    "dnc_http_requests_total": ("counter", "HTTP requests answered, by method and status."),
    "dnc_scrub_rows_total": ("counter", "Rows scrubbed, by result."),
    "dnc_lookup_round_trips_total": (
        "counter",
        "Redis round trips made for single look-ups (each shared by the look-ups waiting).",
    ),
    "dnc_lookup_catch_ups_total": (
        "counter",
        "Look-up round trips that found the registry changed and caught the Bloom filter up.",
    ),
    "dnc_registry_version": ("gauge", "The registry version this worker's Bloom filter holds."),
    "dnc_bloom_numbers": ("gauge", "Numbers added to this worker's Bloom filter."),
    "dnc_bloom_ready": ("gauge", "1 once this worker's Bloom filter is built."),
}
STALE_SECONDS = 10.0


class Metrics:
    def __init__(self) -> None:
        self.worker = str(os.getpid())
        self.host = socket.gethostname()
        self.requests: Counter[tuple[str, int]] = Counter()  # (method, status)
        self.scrubbed: Counter[str] = Counter()  # status -> rows
        # Values kept elsewhere and copied in before rendering or publishing.
        self.values: dict[str, float] = {}

    @property
    def id(self) -> str:
        """This worker among all that publish to the same Redis."""
        return f"{self.host}:{self.worker}"

    def samples(self) -> list[Sample]:
        found: list[Sample] = [
            ("dnc_http_requests_total", f'method="{method}",status="{status}"', count)
            for (method, status), count in sorted(self.requests.items())
        ]
        found += [
            ("dnc_scrub_rows_total", f'status="{result}"', rows)
            for result, rows in sorted(self.scrubbed.items())
        ]
        found += [(name, "", value) for name, value in sorted(self.values.items())]
        return found

    def published(self) -> bytes:
        """This worker's samples as it publishes them."""
        return orjson.dumps(
            {"at": time.time(), "worker": self.worker, "host": self.host, "samples": self.samples()}
        )

    def render(self, others: dict[Any, bytes] | None = None, now: float | None = None) -> str:
        """This worker's samples and those `others` published (worker id -> `published()`),
        skipping stale ones and this worker's own, grouped by family."""
        now = time.time() if now is None else now
        workers = [(self.worker, self.host, self.samples())]
        for worker_id, raw in sorted((others or {}).items()):
            name = worker_id.decode() if isinstance(worker_id, bytes) else str(worker_id)
            if name == self.id:
                continue
            try:
                record = orjson.loads(raw)
                if now - float(record["at"]) > STALE_SECONDS:
                    continue
                entry = (str(record["worker"]), str(record["host"]), record["samples"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue  # a record this version cannot read: not one of its workers
            workers.append(entry)
        by_family: dict[str, list[str]] = {name: [] for name in FAMILIES}
        for worker, host, samples in workers:
            for family, labels, value in samples:
                if family not in by_family:
                    continue
                tags = f'worker="{worker}",host="{_escape(host)}"'
                tags += f",{labels}" if labels else ""
                by_family[family].append(f"{family}{{{tags}}} {_number(value)}")
        lines = []
        for family, sample_lines in by_family.items():
            kind, text = FAMILIES[family]
            lines += [f"# HELP {family} {text}", f"# TYPE {family} {kind}", *sample_lines]
        return "\n".join(lines) + "\n"

    def stale(self, others: dict[Any, bytes], now: float | None = None) -> list[Any]:
        """The worker ids among `others` whose records are stale or unreadable."""
        now = time.time() if now is None else now
        found = []
        for worker_id, raw in others.items():
            try:
                if now - float(orjson.loads(raw)["at"]) <= STALE_SECONDS:
                    continue
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                pass
            found.append(worker_id)
        return found


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))

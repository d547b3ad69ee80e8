"""A one-line progress bar for `dnc load` on a terminal: share of bytes read, numbers a second.

Hand-written because it is twenty lines and the only place that needs one.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_WIDTH = 30
_REDRAW_SECONDS = 0.2


class Progress:
    def __init__(self, total_bytes: int, enabled: bool, out: TextIO | None = None) -> None:
        self.total = max(total_bytes, 1)
        self.enabled = enabled
        self.out = out or sys.stderr
        self.done_bytes = 0  # of the files finished so far
        self.position = 0
        self.numbers = 0
        self.started = time.monotonic()
        self.drawn = 0.0

    def advance(self, file_position: int, numbers: int) -> None:
        """`file_position` is the offset reached in the current file."""
        self.position = self.done_bytes + file_position
        self.numbers += numbers
        now = time.monotonic()
        if self.enabled and now - self.drawn >= _REDRAW_SECONDS:
            self.drawn = now
            self._draw(now)

    def file_done(self, size: int) -> None:
        self.done_bytes += size
        self.position = self.done_bytes

    def finish(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self.out.write("\n")
            self.out.flush()

    def _draw(self, now: float) -> None:
        share = min(self.position / self.total, 1.0)
        filled = int(share * _WIDTH)
        rate = self.numbers / max(now - self.started, 1e-6)
        bar = "#" * filled + "." * (_WIDTH - filled)
        self.out.write(f"\r[{bar}] {share:4.0%}  {self.numbers:,} numbers  {rate:,.0f}/s ")
        self.out.flush()

"""Both cores for one big scrub: numpy and hashlib let go of the GIL inside their loops.

A million-row scrub is a few long numpy passes (normalizing, the Bloom probe, the
digit matrix, the answer's bytes). Split in two halves, one on a pool thread and
one on the caller's, those passes run side by side; only the Python between numpy
calls takes turns on the GIL. Small batches stay on the caller's thread, where a
hand-off would cost more than it saves.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

PARTS = max(1, min(4, os.cpu_count() or 1))
SMALL = 1 << 16  # rows below which one thread does it all

_pool = ThreadPoolExecutor(max_workers=max(1, PARTS - 1), thread_name_prefix="dnc-cores")


def split(rows: int, parts: int = PARTS, align: int = 1) -> list[slice]:
    """`rows` cut into at most `parts` slices, each a multiple of `align` long but the last."""
    if rows < SMALL or parts < 2:
        return [slice(0, rows)]
    size = -(-rows // parts)
    size = -(-size // align) * align
    return [slice(low, min(low + size, rows)) for low in range(0, rows, size)]


def each(work: Callable[[slice], None], rows: int, align: int = 1, parts: int = PARTS) -> None:
    """`work(part)` for the slices of `split(rows)`, the first on this thread, at once.

    `work` must write only its own part of any shared output. An exception in any
    part is raised here, after every part has finished.
    """
    slices = split(rows, parts, align)
    if len(slices) == 1:
        work(slices[0])
        return
    futures = [_pool.submit(work, part) for part in slices[1:]]
    try:
        work(slices[0])
    finally:
        errors = [f.exception() for f in futures]
    for error in errors:
        if error is not None:
            raise error

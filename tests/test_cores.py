"""registry.cores: a big batch's parts run side by side and cover it exactly once."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from registry import cores
from registry.bloom import BloomFilter


def test_small_batches_stay_on_the_callers_thread() -> None:
    assert cores.split(cores.SMALL - 1) == [slice(0, cores.SMALL - 1)]
    seen: list[str] = []
    cores.each(lambda part: seen.append(threading.current_thread().name), 10)
    assert seen == [threading.current_thread().name]


def test_parts_cover_every_row_once_and_keep_their_alignment() -> None:
    rows = 5 * cores.SMALL + 123
    parts = cores.split(rows, parts=3, align=1 << 15)
    assert parts[0].start == 0 and parts[-1].stop == rows
    assert all(a.stop == b.start for a, b in zip(parts, parts[1:], strict=False))
    assert all((p.stop - p.start) % (1 << 15) == 0 for p in parts[:-1])
    hits = np.zeros(rows, dtype=np.int64)

    def work(part: slice) -> None:
        hits[part] += 1

    cores.each(work, rows)
    assert (hits == 1).all()


def test_an_error_in_any_part_is_raised_after_every_part_finished() -> None:
    rows = 4 * cores.SMALL
    finished: list[int] = []

    def work(part: slice) -> None:
        if part.start != 0:
            raise ValueError("bad part")
        finished.append(part.start)

    with pytest.raises(ValueError, match="bad part"):
        cores.each(work, rows, parts=2)
    assert finished == [0]


def test_a_big_bloom_probe_answers_as_its_parts_do() -> None:
    rng = np.random.default_rng(7)
    held = rng.integers(10**10, 2 * 10**10, 200_000)
    others = rng.integers(3 * 10**10, 4 * 10**10, 200_000)
    bloom = BloomFilter(len(held))
    bloom.add(held)
    both = np.concatenate([held, others])
    whole = bloom.might_contain(both)
    pieces = np.concatenate(
        [bloom.might_contain(both[i : i + 1000]) for i in range(0, len(both), 1000)]
    )
    assert whole.tolist() == pieces.tolist()
    assert whole[: len(held)].all()

"""Normalization speed: per-item phonenumbers against `normalize_many` on a million US numbers.

    python -m benchmarks.bench_numbers [--count 1000000] [--runs 3]

Times, for the same list written as E.164 (`+12125551234`) and in national format
(`(212) 555-1234`, region US): phonenumbers one number at a time (parse,
is_valid_number, format as E.164, the work `registry.numbers.normalize` does) and
`registry.numbers.normalize_many` on the whole list. Each figure is the median of
`--runs` runs; the machines the fast path builds for region US are built once before
timing and their build time is printed apart. tests/test_numbers_fast.py holds the
two paths to the same answers.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable, Sequence

import phonenumbers

from registry import fastnumbers, parse_machines
from registry import numbers as nums
from registry.machine_cache import MachineCache

REGION = "US"


def us_numbers(count: int, seed: int) -> list[str]:
    """E.164 numbers with random area codes and exchanges (NPA and NXX 200-999)."""
    rng = random.Random(seed)
    return [
        f"+1{rng.randint(200, 999)}{rng.randint(200, 999)}{rng.randrange(10000):04d}"
        for _ in range(count)
    ]


def national(e164: str) -> str:
    return f"({e164[2:5]}) {e164[5:8]}-{e164[8:]}"


def per_item(texts: Sequence[str]) -> int:
    """phonenumbers one input at a time; returns how many were valid."""
    valid = 0
    for text in texts:
        try:
            parsed = phonenumbers.parse(text, REGION)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            int(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)[1:])
            valid += 1
    return valid


def batch(texts: Sequence[str]) -> int:
    numbers, _ = nums.normalize_many(texts, REGION)
    return int((numbers > 0).sum())


def median_seconds(run: Callable[[Sequence[str]], int], texts: Sequence[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        run(texts)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    parse_machines.cache = MachineCache(None)  # built here, not read from an earlier run
    began = time.perf_counter()
    fastnumbers.warm(REGION)
    build = time.perf_counter() - began
    e164 = us_numbers(args.count, args.seed)
    shapes = {"E.164 +12125551234": e164, "national (212) 555-1234": [national(t) for t in e164]}

    valid = batch(e164) / len(e164)
    print(f"numbers: {args.count:,} US inputs ({valid:.0%} valid), median of {args.runs} runs")
    print(f"fast-path machines for region {REGION} built once in {build:.2f} s")
    print(f"{'shape':<26}{'per-item phonenumbers':>28}{'normalize_many':>26}{'speedup':>10}")
    for shape, texts in shapes.items():
        assert per_item(texts[:2000]) == batch(texts[:2000])  # same work, same answers
        slow = median_seconds(per_item, texts, args.runs)
        fast = median_seconds(batch, texts, args.runs)
        print(
            f"{shape:<26}"
            f"{slow:>9.2f} s ({slow / len(texts) * 1e6:5.2f} µs/number)"
            f"{fast:>9.3f} s ({fast / len(texts) * 1e6:5.2f} µs/number)"
            f"{slow / fast:>9.0f}x"
        )


if __name__ == "__main__":
    main()

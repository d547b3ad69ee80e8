"""Issue 3's goals as numbers, and the figures one run's results.json gives.

RESULTS.md (report.py), its shortfall texts (shortfalls.py) and SCALE.md
(scale.py) all read their figures from here, so none of them quotes a figure
the run did not measure, and the two files never disagree.
"""

from __future__ import annotations

import math
from typing import Any

from registry.store import keys

# The goals of issue 3, as numbers.
SCRUB_VS_NAIVE = 50
SCRUB_VS_CEILING = 2
NATIONAL_VS_NAIVE = 20
BYTES_PER_NUMBER = 2.1
LOAD_VS_NAIVE = 50
LOOKUP_SHARE = 0.70
LOOKUP_P99_MS = 10.0
START_SECONDS = 5.0
NAIVE_SET_BYTES = 56
NORMALIZE_VS_PER_ITEM = 20

# An intset member: a bucket's low BUCKET_BITS bits, as a 16-bit integer.
MEMBER_BYTES = keys.BUCKET_BITS // 8


def floor_bytes(registered: int, space: int) -> float:
    """Information-theoretic bytes a number: log2 C(space, registered) / registered / 8."""
    log2_choose = (
        math.lgamma(space + 1) - math.lgamma(registered + 1) - math.lgamma(space - registered + 1)
    ) / math.log(2)
    return log2_choose / registered / 8


def seconds(value: float) -> str:
    return f"{value * 1e3:.0f} ms" if value < 1 else f"{value:.2f} s"


def spread(runs: list[float]) -> str:
    return ", ".join(seconds(r) for r in runs)


def span(runs: list[float]) -> str:
    """The lowest and highest of the runs ("480-610 ms"), or the one run."""
    low, high = min(runs), max(runs)
    if len(runs) == 1 or seconds(low) == seconds(high):
        return seconds(low)
    if (low < 1) == (high < 1):
        return f"{seconds(low).split()[0]}-{seconds(high)}"
    return f"{seconds(low)} to {seconds(high)}"


def count(n: int) -> str:
    """1,000,000 as "1M" (a table header's list size), other counts with separators."""
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n:,}"


def derive(r: dict[str, Any]) -> dict[str, Any]:
    """The figures derived from a run's raw ones; None where the run did not measure them
    (results.json from before the harness measured them renders all the same)."""
    n_registry, n_scrub = r["world"]["registry"], r["world"]["scrub"]
    naive = r["naive"]
    f: dict[str, Any] = {}
    for name in ("e164", "national"):
        scrub = r["scrub"][name]["median"]
        naive_total = naive["scrub"][name]["per_number"] * n_scrub
        f[name] = {"scrub": scrub, "naive": naive_total, "vs_naive": naive_total / scrub}
    f["vs_ceiling"] = r["ceiling"]["median"] / f["e164"]["scrub"]
    mem = r["load"]["memory"]
    f["everything"] = mem["used_memory"] / n_registry
    f["sets_index"] = (mem["sets"] + mem["index"]) / n_registry
    # What the bucket keys cost beyond their members: key, object and allocator overhead.
    f["key_overhead"] = (mem["sets"] + mem["index"] - MEMBER_BYTES * n_registry) / max(
        mem["set_keys"], 1
    )
    f["stream"] = mem["stream"] / n_registry
    f["naive_set"] = naive["memory_used"] / n_registry
    f["floor"] = floor_bytes(n_registry, r["world"]["space"])
    f["naive_load"] = naive["load_per_line"] * n_registry
    f["load_ratio"] = f["naive_load"] / r["load"]["median"]
    # The part of goal 6 that grows with the registry, timed alone (benchmarks/start.py).
    f["bloom_build"] = r["start"].get("bloom_build_median")
    lookups = r.get("lookups")
    if lookups:
        f["lookup_share"] = lookups["api"]["median_rate"] / lookups["bare"]["median_rate"]
        # Judged from each request's scheduled time, the stricter p99: a request that waited
        # for a free connection waited all the same (coordinated omission).
        f["lookup_p99"] = lookups["api_half"]["p99_scheduled_ms"]
        f["api_cpu_us"] = lookups["api"].get("median_cpu_us")
        f["bare_cpu_us"] = lookups["bare"].get("median_cpu_us")
        f["budget_us"] = None if f["bare_cpu_us"] is None else f["bare_cpu_us"] / LOOKUP_SHARE
        f["per_round"] = lookups["api"].get("median_per_round")
    return f

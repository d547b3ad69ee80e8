"""benchmarks/report.py renders what the run measured: verdicts on the goals' own terms.

The fixture is the results.json of a real run (`python -m benchmarks.run --scale 0.05
--runs 1`); each test changes the figures it is about.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import report
from benchmarks.figures import seconds

FIXTURE = Path(__file__).with_name("benchmark_results.json")


@pytest.fixture
def results() -> dict[str, Any]:
    return copy.deepcopy(json.loads(FIXTURE.read_text()))


def row_of(text: str, first_cell: str) -> str:
    """The table row whose first cell starts with `first_cell`."""
    return next(line for line in text.splitlines() if line.startswith(f"| {first_cell}"))


def fast_enough(r: dict[str, Any]) -> None:
    """Look-ups at 80% of the bare app's rate, so only their latency decides goal 5."""
    r["lookups"]["api"]["median_rate"] = 0.8 * r["lookups"]["bare"]["median_rate"]


def test_goal_5_latency_is_judged_from_the_schedule(results: dict[str, Any]) -> None:
    fast_enough(results)
    half = results["lookups"]["api_half"]
    half["p99_ms"], half["p99_scheduled_ms"] = 2.0, 12.0  # waits for a connection hidden
    row = row_of(report.render(results), "5 single look-ups")
    assert "p99 12.0 ms from schedule" in row and "**not met**" in row

    half["p99_scheduled_ms"] = 9.0
    row = row_of(report.render(results), "5 single look-ups")
    assert "p99 9.0 ms from schedule" in row and "**met**" in row
    assert "judged on the p99 from the schedule" in report.render(results)


def test_the_fixed_rate_runs_errors_are_reported(results: dict[str, Any]) -> None:
    results["lookups"]["api_half"]["runs"][0]["errors"] = 1234
    results["lookups"]["api"]["runs"][0]["errors"] = 5
    row = row_of(report.render(results), "`GET /v1/numbers/{n}`")
    assert "| 5 / 1,234 |" in row


def shortfall(text: str, goal: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"**Goal {goal}.**"))


def test_the_texts_quote_this_runs_figures_not_the_full_worlds(results: dict[str, Any]) -> None:
    text = report.render(results)
    for stale in (
        "~100,000",
        "35 MB",
        "about 0.22 s",
        "about 2.0 B",
        "about 57% of the bare app",
        "about 11 us",
        "1M E.164",
        "about 5 bits",
        "tens of microseconds",
        "session",
    ):
        assert stale not in text, stale
    registered = results["world"]["registered_in_scrub"]
    assert f"the list's {registered:,} registered numbers" in shortfall(text, "1")
    assert f"({results['scrub']['e164']['answer_bytes'] / 1e6:.0f} MB here)" in text
    assert "| Redis | 50,000 E.164 scrub |" in text

    lookups = results["lookups"]
    share = lookups["api"]["median_rate"] / lookups["bare"]["median_rate"]
    bare = lookups["bare"]["median_cpu_us"]
    goal_5 = shortfall(text, "5")
    assert f"look-ups reached {share:.0%} of the bare app's requests a second" in goal_5
    assert f"{bare:.1f} us for the bare app's answer" in goal_5
    assert f"may cost the worker {bare / 0.7:.1f} us" in goal_5


def test_goal_5s_earlier_design_says_it_is_not_this_run(results: dict[str, Any]) -> None:
    goal_5 = shortfall(report.render(results), "5")
    mine, earlier = goal_5.split("Before the protocol answered look-ups,")
    assert "54-57% of the bare app (RESULTS.md of 2026-11-30)" in earlier
    assert "54-57" not in mine and "2026-11-30" not in mine


def test_the_memory_text_follows_the_density(results: dict[str, Any]) -> None:
    text = report.render(results)
    floor_bits = report.derive(results)["floor"] * 8
    assert f"about {floor_bits:.1f} bits at this density" in text
    mem = results["load"]["memory"]
    n = results["world"]["registry"]
    overhead = (mem["sets"] + mem["index"] - 2 * n) / mem["set_keys"]
    assert f"{overhead:.0f} B a key" in text


def test_a_million_number_list_is_1m_in_the_headers(results: dict[str, Any]) -> None:
    results["world"]["scrub"] = 1_000_000
    assert "| Redis | 1M E.164 scrub |" in report.render(results)


def test_goal_6_says_what_of_the_start_grows_with_the_registry(results: dict[str, Any]) -> None:
    start = results["start"]
    text = report.render(results)
    assert f"against the empty registry the same start took {seconds(start['empty_median'])}" in (
        text
    )
    assert "alone, in process (`RegisteredFilter.build`" in text
    assert f"took {seconds(start['bloom_build_median'])}" in text

"""benchmarks/SCALE.md is rendered from the same run as RESULTS.md, so the two agree.

The fixture is the results.json of a real run at scale 0.05 (tests/benchmark_results.json).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from benchmarks import report, scale
from benchmarks.figures import seconds
from registry import bloom

FIXTURE = Path(__file__).with_name("benchmark_results.json")


@pytest.fixture
def results() -> dict[str, Any]:
    return copy.deepcopy(json.loads(FIXTURE.read_text()))


def test_the_report_writes_scale_md_beside_results_md(
    results: dict[str, Any], tmp_path: Path
) -> None:
    report.write(results, tmp_path / "RESULTS.md")
    text = (tmp_path / "SCALE.md").read_text()
    assert text == scale.render(results)
    # The same run: its command, date and commit, and the figures RESULTS.md gives.
    assert f"`{results['command']}`, {results['date']} on commit `{results['machine']['git']}`" in (
        text
    )
    for figure in (results["load"]["median"], results["scrub"]["e164"]["median"]):
        assert seconds(figure) in text
        assert seconds(figure) in (tmp_path / "RESULTS.md").read_text()


def test_every_extrapolation_is_arithmetic_on_the_run(results: dict[str, Any]) -> None:
    text = scale.render(results)
    n = results["world"]["registry"]
    load = results["load"]["median"]
    assert f"at {n / load / 1e6:.1f}M numbers a second" in text
    assert f"**~{load * 250_000_000 / n / 60:.1f} minutes** for a 250M file" in text
    start = results["start"]
    build = start["bloom_build_median"]  # the part of the start that grows, timed alone
    at_250 = start["median"] - build + build * 250_000_000 / n
    assert f"a worker would need **~{at_250:.0f} s** to become ready at 250M" in text
    one = results["one_by_one"]
    per_entry = one["details_bytes"] / one["registrations"]
    assert f"{per_entry:.0f} B in this run's buckets" in text
    # This world's hashes stay compact; a bucket at the US density would not.
    assert "the figure is a lower bound" in text
    assert f"**{bloom.words_for(bloom.capacity_for(250_000_000)) * 8 >> 20} MiB at 250M" in text
    for stale in ("Until this session", "measured apart", "0e896e1", "25,110"):
        assert stale not in text


def test_figures_the_run_did_not_measure_are_said_to_be_missing(
    results: dict[str, Any],
) -> None:
    del results["one_by_one"]
    for key in ("empty_runs", "empty_median", "bloom_build_runs", "bloom_build_median"):
        del results["start"][key]
    text = scale.render(results)
    assert "| details hash entry (numbers registered one by one) | not measured in this run |" in (
        text
    )
    assert "| of which the Bloom filter's build (timed alone, in process) | not measured" in text
    bound = results["start"]["median"] * 250_000_000 / results["world"]["registry"]
    assert f"up to **~{bound:.0f} s**" in text and "an upper bound" in text
    assert re.search(r"the details hashes \(not measured in this run\)\.$", text.strip())


def test_the_filters_fit_in_the_cache_is_judged_on_the_machine_that_ran(
    results: dict[str, Any],
) -> None:
    results["machine"]["cache_bytes"] = 480 * 2**20
    assert (
        "this run's 2.0 MiB filter fitted in the machine's 480 MiB last-level cache; at 250M "
        "(512 MiB) it would not"
    ) in scale.render(results)
    results["machine"]["cache_bytes"] = 1 * 2**20
    assert "this run's 2.0 MiB filter was already larger than the machine's 1.0 MiB" in (
        scale.render(results)
    )

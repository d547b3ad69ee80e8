"""benchmarks/run.py's bookkeeping: which runs may write the committed results, what the
header says about the work tree, and how several runs' answers add up to one."""

from __future__ import annotations

import dataclasses

import numpy as np
import redis

from benchmarks import details, run
from benchmarks.client import check_answer, every_run
from registry.store import keys

REGISTERED = np.array([True, False, False])
RIGHT = b"number,status\n+12125550001,blocked\n+12125550002,callable\n+12125550003,callable\n"
WRONG = b"number,status\n+12125550001,callable\n+12125550002,callable\n+12125550003,callable\n"


def test_a_wrong_answer_in_any_run_makes_the_figure_wrong() -> None:
    right, wrong = check_answer(RIGHT, REGISTERED), check_answer(WRONG, REGISTERED)
    assert right["matches_truth"] and not wrong["matches_truth"]

    first_wrong = every_run([wrong, right, right])
    assert not first_wrong["matches_truth"]
    assert first_wrong["counts"] == {"callable": 3, "blocked": 0, "invalid": 0}
    assert not every_run([right, right, wrong])["matches_truth"]
    assert every_run([right, right, right]) == right


def test_only_the_documented_command_writes_the_committed_results() -> None:
    standard = dataclasses.asdict(run.STANDARD)
    assert run.results_path(standard) == run.RESULTS
    for option, value in (
        ("scale", 0.1),
        ("runs", 1),
        ("runs", 5),
        ("naive_sample", 1000),
        ("workers", 2),
        ("lookup_seconds", 2.0),
        ("connections", 10),
    ):
        path = run.results_path(standard | {option: value})
        assert path == run.OUT.parent / "RESULTS.md", option


def test_the_standard_options_are_the_command_line_defaults() -> None:
    assert run.options(run.arguments().parse_args([])) == run.STANDARD
    quick = run.options(run.arguments().parse_args(["--scale", "0.05", "--runs", "1"]))
    assert run.results_path(dataclasses.asdict(quick)) != run.RESULTS


def test_the_work_tree_is_described_as_it_is() -> None:
    assert run.worktree("") == ""
    assert run.worktree("?? notes.txt\n") == " with untracked 1 file (notes.txt)"
    assert run.worktree(" M registry/bloom.py\nR  old.py -> benchmarks/new.py\n?? a\n?? b\n") == (
        " with uncommitted changes to 2 files (registry/bloom.py, benchmarks/new.py)"
        " and untracked 2 files (a, b)"
    )
    many = "".join(f" M f{i}.py\n" for i in range(7))
    assert run.worktree(many).endswith("(f0.py, f1.py, f2.py, f3.py, f4.py and 2 more)")


def test_numbers_registered_one_by_one_are_measured_through_the_store(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    # Three buckets: the two fullest are registered again one by one, the third is not.
    registry = np.array(
        [
            keys.number_of(bucket, member)
            for bucket, count in ((190_000, 40), (190_001, 30), (190_002, 5))
            for member in range(count)
        ],
        dtype=np.int64,
    )
    figures = details.measure(redis_url, client, registry)
    assert figures["registrations"] == 70 and figures["buckets"] == 2
    assert client.hlen(keys.details(190_000)) == 40 and client.hlen(keys.details(190_001)) == 30
    assert not client.exists(keys.details(190_002))
    assert figures["stream_entries"] == 70 and figures["stream_bytes"] > 0
    assert figures["details_bytes"] > 70 * 10  # the entry holds a time, masks and the source
    assert figures["details_encoding"] in ("ziplist", "listpack")
    assert figures["compact_limit"] >= 70
    client.close()

"""Why a goal fell short and what would close it: the text RESULTS.md prints for unmet goals.

What the code does is described in words; every figure comes from the run being
reported (figures.derive), except goal 5's stage-by-stage costs, an earlier
separate measurement that says its date and scale. Update the words when the code
they describe changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchmarks.figures import LOOKUP_P99_MS, LOOKUP_SHARE, MEMBER_BYTES, seconds, span


def goal_1(r: dict[str, Any], f: dict[str, Any]) -> str:
    scrub, ceiling = r["scrub"]["e164"], r["ceiling"]
    size = scrub.get("answer_bytes")
    answer = f"the answer ({size / 1e6:.0f} MB here)" if size else "the answer"
    return (
        "The scrub reads the body's bytes straight into the normalizer (no string a line), "
        "asks the Bloom filter, confirms its maybes (the list's "
        f"{r['world']['registered_in_scrub']:,} registered numbers and the filter's false "
        "positives) with one `SMISMEMBER` a bucket packed by numpy and sent on one raw "
        "connection (`HMGET` only in the buckets that hold preferences), and builds "
        f"{answer} as numpy byte matrices; a list already in E.164 lends the answer its own "
        f"lines as the numbers' digits. Of the E.164 scrub's {seconds(f['e164']['scrub'])}, "
        f"Redis spent {_cpu(scrub)} of CPU: the rest is the API worker's own work (splitting "
        "lines, normalizing, the Bloom probe, deciding, encoding the answer) and the upload "
        "and the answer through uvicorn and an httpx client on the same cores. What would "
        "take more off: judge rows while the body is still arriving and send the first "
        "answer chunk before the last rows are confirmed."
        + (
            f" Over this run's runs the Redis ceiling took {span(ceiling['runs'])} and the "
            f"scrub {span(scrub['runs'])}: on a shared machine both move."
            if len(scrub["runs"]) > 1
            else ""
        )
    )


def goal_3(r: dict[str, Any], f: dict[str, Any]) -> str:
    mem = r["load"]["memory"]
    return (
        f"The bucket sets and their index take {f['sets_index']:.2f} B a number: intsets at "
        f"{MEMBER_BYTES} B a member plus {f['key_overhead']:.0f} B a key over "
        f"{mem['set_keys']:,} keys; the change stream holds a bulk load as one snapshot entry "
        f"a bucket ({f['stream']:.3f} B a number). What is over the goal is key and allocator "
        "overhead: fewer, larger buckets (a 17-bit member no longer fits an int16 intset) "
        "would not help, so the next step would be packing buckets as strings of gaps, which "
        "Redis sets cannot hold."
    )


def goal_4(r: dict[str, Any], f: dict[str, Any]) -> str:
    load = r["load"]
    cpu = (
        f"Redis spent {seconds(load['redis_cpu'])} of CPU a load of "
        f"{r['world']['registry']:,} numbers in this run (of {seconds(load['median'])}), "
        "inserting into intsets and reading the members' RESP."
        if "redis_cpu" in load
        else "This run did not measure Redis' CPU during the load."
    )
    return (
        "`dnc load` reads the file in 4 MiB numpy blocks on one thread and judges every "
        "line from its bytes (two threads for the digit walk) while the other thread writes: "
        "bucket sizes, membership asked only of buckets that hold something, the "
        "change-stream entry, then `SADD`, each packed with numpy and pipelined a group of "
        f"buckets at a time. {cpu} What would take more off: writing a first load's buckets "
        "as finished intsets (`RESTORE` of a payload built with numpy) instead of member by "
        "member, and more than one writer process."
    )


def goal_5(r: dict[str, Any], f: dict[str, Any]) -> str:
    per_round = (
        f", {f['per_round']:.1f} a round at the peak in this run" if f.get("per_round") else ""
    )
    text = (
        "Look-ups are answered in `dnc serve`'s HTTP protocol, without uvicorn's ASGI cycle "
        "(`registry/api/protocol.py`: a plain GET with a key the worker checked in the last "
        "seconds; the rest goes through the app), and share their Redis round trips "
        "(`registry/freshness.py`: every look-up that arrives while a round is in flight "
        f"joins the next one{per_round}; the round probes the Bloom filter for its whole batch "
        "at once; a Bloom negative then needs only an unchanged epoch and version, a Bloom "
        "hit is confirmed in the same round; the round writes each answer as it has it). In "
        f"this run look-ups reached {f['lookup_share']:.0%} of the bare app's requests a second."
    )
    api, bare, budget = f["api_cpu_us"], f["bare_cpu_us"], f["budget_us"]
    if api is not None and bare is not None and budget is not None:
        # As the table prints them, so the differences add up on the page.
        api, bare, budget = round(api, 1), round(bare, 1), round(budget, 1)
        text += (
            f" The table's server CPU a request says where the rest goes: {api:.1f} us a "
            f"look-up against {bare:.1f} us for the bare app's answer; at "
            f"{LOOKUP_SHARE:.0%} the look-up may cost the worker {budget:.1f} us, "
            f"{budget - bare:.1f} us more than the bare app's answer"
            + (f", and it costs {api - budget:.1f} us more than that." if api > budget else ".")
        )
    if f["lookup_p99"] > LOOKUP_P99_MS:
        half = r["lookups"]["api_half"]
        busy = (
            f" At that rate the worker's CPU was busy about {half['target_rate'] * api / 1e6:.0%} "
            "of the time (the rate x the peak's CPU a request)."
            if api
            else ""
        )
        text += (
            f" At half the peak rate the p99 from the schedule was {f['lookup_p99']:.1f} ms, "
            f"over the goal's {LOOKUP_P99_MS:g} ms, against {half['p99_ms']:.1f} ms from "
            "writing: the difference is time requests waited for a free connection, and the "
            f"generator's own timer lateness.{busy} The spread between runs says how much "
            "other work on the machine added."
        )
    return text + " " + EARLIER_LOOKUP_STEPS


# What goal 5's text says of the design before this one, measured then (not in any run
# this report renders).
EARLIER_LOOKUP_STEPS = (
    "Before the protocol answered look-ups, a pure-ASGI route in front of FastAPI with the "
    "same shared rounds reached 54-57% of the bare app (RESULTS.md of 2026-11-30): measured "
    "step by step then, a look-up that read nothing at all through uvicorn's ASGI cycle "
    "already cost the worker more CPU than 70% of the bare app's rate leaves it, and "
    "compiling the route with mypyc, pinning, gc.freeze() and pacing the rounds changed it "
    "by a few points at most. Skipping the ASGI cycle (its scope, task, and receive and send "
    "calls, which cost more than the look-up's own work) is what moved it. What would take "
    "more off now: the route's own steps (the key and parameter checks, normalizing) in one "
    "compiled function, and answers of a round written with one system call."
)


def _cpu(figures: dict[str, Any]) -> str:
    return seconds(figures["redis_cpu"]) if "redis_cpu" in figures else "an unrecorded amount"


TEXTS: dict[str, Callable[[dict[str, Any], dict[str, Any]], str]] = {
    "1": goal_1,
    "3": goal_3,
    "4": goal_4,
    "5": goal_5,
}

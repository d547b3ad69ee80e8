"""benchmarks/RESULTS.md from one run's figures: written whole each time, never edited by hand."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

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


def floor_bytes(registered: int, space: int) -> float:
    """Information-theoretic bytes a number: log2 C(space, registered) / registered / 8."""
    log2_choose = (
        math.lgamma(space + 1) - math.lgamma(registered + 1) - math.lgamma(space - registered + 1)
    ) / math.log(2)
    return log2_choose / registered / 8


# Why a goal fell short and what would close it: from profiles of `dnc serve` and
# `dnc load` on the full world (in-process timings of each step, cProfile, INFO cpu).
# Update these when the code they describe changes; they are printed only for unmet goals.
SHORTFALLS = {
    "1": "The scrub reads the body's bytes straight into the normalizer (no string a line), "
    "asks the Bloom filter, confirms the ~100,000 maybes with one `SMISMEMBER` a bucket "
    "packed by numpy and sent on one raw connection (`HMGET` only in the buckets that hold "
    "preferences), and builds the 35 MB answer as numpy byte matrices; a list already in "
    "E.164 lends the answer its own lines as the numbers' digits. Server-side timeline of "
    "the 1M E.164 scrub, about 0.22 s: the body arrives in 10 ms, splitting lines 27 ms, "
    "normalizing 57 ms, Bloom 27 ms, confirming 37 ms (Redis CPU 19 ms of it), deciding "
    "4 ms, then encoding (35 ms) and sending the answer (48 ms in all) to an httpx client "
    "on the same two cores. What would take more off: judge rows while the body is still "
    "arriving and send the first answer chunk before the last rows are confirmed. Between "
    "runs the Redis ceiling moves (480-610 ms on this shared machine) and so does the "
    "scrub.",
    "3": "The bucket sets and their index take about 2.0 B a number (intsets at 2 B a member "
    "plus a few dozen bytes a key); the change stream holds a bulk load as one snapshot "
    "entry a bucket. What is over the goal is key and allocator overhead: fewer, larger "
    "buckets (a 17-bit member no longer fits an int16 intset) would not help, so the next "
    "step would be packing buckets as strings of gaps, which Redis sets cannot hold.",
    "4": "`dnc load` reads the file in 4 MiB numpy blocks on one thread and judges every "
    "line from its bytes (two threads for the digit walk) while the other thread writes: "
    "bucket sizes, membership asked only of buckets that hold something, the change-stream "
    "entry, then `SADD`, each packed with numpy and pipelined a group of buckets at a time. "
    "Redis spends about 1 s of CPU on a 10M first load, 0.4 s of it inserting into "
    "intsets and most of the rest reading the members' RESP. What would take more off: "
    "writing a first load's buckets as finished intsets (`RESTORE` of a payload built "
    "with numpy) instead of member by member, and more than one writer process.",
    "5": "Look-ups are answered by a pure-ASGI route in front of FastAPI "
    "(`registry/api/lookup.py`) and share their Redis round trips (`registry/freshness.py`: "
    "every look-up that arrives while a round is in flight joins the next one, about 10 a "
    "round at the peak; the round probes the Bloom filter for its whole batch at once; a "
    "Bloom negative then needs only an unchanged epoch and version, a Bloom hit is confirmed "
    "in the same round). That took the route from 5% to about 57% of the bare app. "
    "The table's server CPU a request says where the rest goes; at 70% the look-up may cost "
    "the worker about 11 us more than the bare app's answer. Measured on 2026-11-30 (session "
    "11) at scale 0.1 under the same wrk load, with scratch copies of the route cut short at "
    "each step (not committed), server CPU a request, the bare app beside each, two runs "
    "each: bare app 26.5 us (budget at 70%: 37.9 us); the bare app's body answered by `dnc "
    "serve`'s own ASGI callable, before any of the route's work, 30.4 us (the worker's "
    "larger heap and its background work: the change follower, retention and metrics); the "
    "route answering a fixed body after its path checks 30.8 us; with the key check and "
    "parameters 34.8 us; with normalizing the number 39.4 us; with a future resolved a loop "
    "turn later in place of the round 39.6 us; as built 47.6 us. So a look-up that reads "
    "nothing at all, neither Redis nor the filter, already costs more than the budget: no "
    "cheaper way of reading the registry can close the gap by itself. Each step costs two to "
    "five times under load what it costs in a tight loop in process (0.9, 0.8, 2.1, 2.8 and "
    "4.7 us for the same steps), most likely because the kernel's and the server's work "
    "between requests evict the route's code and data from the caches (this machine exposes "
    "no hardware counters to confirm it). "
    "Tried and measured, none reaching 70%: the route's modules (look-up route, freshness, "
    "normalizing, parameters, rules) compiled to C extensions with mypyc, 47.8 against 47.6 "
    "us as built, and in process the normalizing step 2.25 against 2.1 us: the time is in the "
    "interpreter's C objects, the event loop and the kernel, not in bytecode; the getpid "
    "system call that `asyncio.get_running_loop` makes on Python 3.11 taken out of each "
    "look-up (no change); Bloom negatives answered in the request's own step with no round, "
    "the upper bound of a lease scheme that would make writers wait for every live worker "
    "(52% against 57%: a round's answers go out in a burst, and a burst costs the worker "
    "less a request in kernel time than answers spread one by one); the same with the "
    "negatives answered together once a loop turn, and with the hits' rounds paced to one "
    "every 1 or 2 ms (both within a point of as built). Earlier sessions: normalizing a loop "
    "turn's look-ups together (57%), waiting a loop turn to double a round (one point), one "
    "shared future for a round's negatives, gc.freeze() after start (kept, no measurable "
    "gain), pinning the worker to one core (61% against 57%, for both apps), huge pages for "
    "the filter. What would close it is all of the route's steps shrinking by half together, "
    "the HTTP side included, which the goal's own terms (the same uvicorn server) leave to "
    "uvicorn; we know of no way to do that in Python, and mypyc, the nearest thing to "
    "compiled code that keeps the source in Python, showed none.",
}


def met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def seconds(value: float) -> str:
    return f"{value * 1e3:.0f} ms" if value < 1 else f"{value:.2f} s"


def spread(runs: list[float]) -> str:
    return ", ".join(seconds(r) for r in runs)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def render(r: dict[str, Any]) -> str:
    m = r["machine"]
    w = r["world"]
    n_registry, n_scrub = w["registry"], w["scrub"]
    scale = r["options"]["scale"]
    out = [
        "# Benchmark results",
        "",
        "Generated by `benchmarks/run.py`; do not edit by hand, run it again. Goals are those "
        "of issue 3; every figure is the median of the runs listed beside it.",
        "",
        f"- **Command**: `{r['command']}` (from the repository root, in `.venv`)",
        f"- **Date**: {r['date']}; total run time {r.get('total_seconds', 0) / 60:.1f} min",
        f"- **Machine**: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, {m['os']}; "
        f"load average (1, 5, 15 min) at start {_loads(m['load_average_at_start'])}, "
        f"at the end {_loads(m.get('load_average_at_end', []))}",
        f"- **Software**: Python {m['python']}, {m['redis_server']}, "
        + ", ".join(f"{k} {v}" for k, v in m["packages"].items())
        + f"; commit `{m['git']}`",
        f"- **Redis**: `redis-server {' '.join(_quote(a) for a in r['redis_args'])}`: the default "
        "configuration plus a loopback port, a scratch directory and no persistence (no RDB "
        "snapshots, no AOF), reached through `DNC_REDIS_URL=redis://127.0.0.1:PORT/0`. The "
        "registry raises `set-max-intset-entries` itself at start (`CONFIG SET`).",
        f"- **World** (seed {w['seed']}, scale {scale:g}): {n_registry:,} registered numbers "
        f"drawn uniformly from {len(w['area_codes'])} area codes x 800 exchanges "
        f"({n_registry / (len(w['area_codes']) * 800):,.0f} an exchange), written as an FTC "
        f"flat file in ascending order; a scrub list of {n_scrub:,} distinct numbers in random "
        f"order, {w['registered_in_scrub']:,} of them registered, half the rest from the same "
        f"exchanges and half from {len(w['other_area_codes'])} other area codes.",
        "",
    ]
    if scale != 1.0:
        out += [
            f"> **Scale {scale:g}**: every count above is {scale:g} of the issue's world "
            "(10,000,000 registered, 1,000,000 to scrub); the figures are not the issue's.",
            "",
        ]
    out += _summary(r)
    out += _scrubs(r)
    out += _normalization(r)
    out += _memory(r)
    out += _loader(r)
    out += _lookups(r)
    out += _start(r)
    out += _cluster(r)
    out += _shortfalls(r)
    out += _notes(r)
    return "\n".join(out).rstrip() + "\n"


def _loads(values: list[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in values) or "not recorded"


def _quote(arg: str) -> str:
    return '""' if arg == "" else arg


def _figures(r: dict[str, Any]) -> dict[str, Any]:
    """The derived figures every table uses."""
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
    f["stream"] = mem["stream"] / n_registry
    f["naive_set"] = naive["memory_used"] / n_registry
    f["floor"] = floor_bytes(n_registry, r["world"]["space"])
    f["naive_load"] = naive["load_per_line"] * n_registry
    f["load_ratio"] = f["naive_load"] / r["load"]["median"]
    lookups = r.get("lookups")
    if lookups:
        f["lookup_share"] = lookups["api"]["median_rate"] / lookups["bare"]["median_rate"]
        # Judged from each request's scheduled time, the stricter p99: a request that waited
        # for a free connection waited all the same (coordinated omission).
        f["lookup_p99"] = lookups["api_half"]["p99_scheduled_ms"]
    return f


def _summary(r: dict[str, Any]) -> list[str]:
    f = _figures(r)
    rows = [
        [
            "1 bulk scrub, E.164",
            f"{seconds(f['e164']['scrub'])} for {r['world']['scrub']:,}",
            f"{f['e164']['vs_naive']:.1f}x naive, {f['vs_ceiling']:.2f}x ceiling",
            f">= {SCRUB_VS_NAIVE}x, >= {SCRUB_VS_CEILING}x",
            met(f["e164"]["vs_naive"] >= SCRUB_VS_NAIVE and f["vs_ceiling"] >= SCRUB_VS_CEILING),
        ],
        [
            "1 bulk scrub, national",
            f"{seconds(f['national']['scrub'])}",
            f"{f['national']['vs_naive']:.1f}x naive",
            f">= {NATIONAL_VS_NAIVE}x",
            met(f["national"]["vs_naive"] >= NATIONAL_VS_NAIVE),
        ],
        _normalization_row(r),
        [
            "3 memory",
            f"{f['everything']:.2f} B a number (sets + index {f['sets_index']:.2f})",
            f"naive {f['naive_set']:.1f} B, floor {f['floor']:.2f} B",
            f"<= {BYTES_PER_NUMBER} B",
            met(f["everything"] <= BYTES_PER_NUMBER),
        ],
        [
            "4 loader",
            f"{seconds(r['load']['median'])}",
            f"{f['load_ratio']:.1f}x naive",
            f">= {LOAD_VS_NAIVE}x, seen at once",
            met(f["load_ratio"] >= LOAD_VS_NAIVE and r["freshness"]["all_blocked"]),
        ],
    ]
    if "lookup_share" in f:
        rows.append(
            [
                "5 single look-ups",
                f"{r['lookups']['api']['median_rate']:,.0f} req/s, "
                f"p99 {f['lookup_p99']:.1f} ms from schedule",
                f"{f['lookup_share']:.0%} of bare ASGI",
                f">= {LOOKUP_SHARE:.0%}, p99 <= {LOOKUP_P99_MS:g} ms",
                met(f["lookup_share"] >= LOOKUP_SHARE and f["lookup_p99"] <= LOOKUP_P99_MS),
            ]
        )
    else:
        rows.append(["5 single look-ups", "not measured: wrk missing", "", "", "TODO"])
    rows.append(
        [
            "6 worker start",
            seconds(r["start"]["median"]),
            "",
            f"<= {START_SECONDS:g} s",
            met(r["start"]["median"] <= START_SECONDS),
        ]
    )
    c = r.get("cluster") or {}
    if "median" in c:
        ratio = c["median"] / f["e164"]["scrub"]
        rows.append(
            [
                "7 cluster scrub",
                seconds(c["median"]),
                f"{ratio:.2f}x the single node's time",
                "reported",
                "reported" if c.get("matches_truth") else "**wrong answers**",
            ]
        )
    else:
        rows.append(["7 cluster scrub", "**TODO**", c.get("error", "not run"), "reported", ""])
    rows += [
        ["8 locust", "`benchmarks/locustfile.py`", "not part of this run", "", ""],
        ["9 on paper", "[SCALE.md](SCALE.md)", "", "", ""],
    ]
    return ["## Summary", ""] + _table(["goal", "figure", "against", "goal", ""], rows)


def _normalization_row(r: dict[str, Any]) -> list[str]:
    norm = r.get("normalization")
    if not norm:
        return ["2 normalization", "not measured in this run", "", "", ""]
    worst = min(norm["e164"]["speedup"], norm["national"]["speedup"])
    return [
        "2 normalization",
        f"{norm['e164']['batch'] * 1e6:.2f} us a number E.164, "
        f"{norm['national']['batch'] * 1e6:.2f} national",
        f"{norm['e164']['speedup']:.0f}x, {norm['national']['speedup']:.0f}x per-item phonenumbers",
        f">= {NORMALIZE_VS_PER_ITEM}x",
        met(worst >= NORMALIZE_VS_PER_ITEM),
    ]


def _normalization(r: dict[str, Any]) -> list[str]:
    norm = r.get("normalization")
    if not norm:
        return []
    rows = [
        [
            label,
            f"{norm[name]['per_item'] * 1e6:.2f} us",
            f"{norm[name]['batch'] * 1e6:.3f} us",
            f"{norm[name]['speedup']:.0f}x",
        ]
        for name, label in (("e164", "E.164"), ("national", "national, region US"))
    ]
    return [
        "## Goal 2: normalization speed",
        "",
        *_table(["list", "per-item phonenumbers", "`normalize_many`", "speedup"], rows),
        f"Per-item: `parse` + `is_valid_number` + E.164 format one input at a time "
        f"(`benchmarks/bench_numbers.per_item`) on the first {norm['sample']:,} inputs of the "
        f"scrub list; `registry.numbers.normalize_many` on the whole list "
        f"({r['world']['scrub']:,} inputs); both a number. Agreement with `phonenumbers` is "
        "a test (`tests/test_numbers_fast.py`), not a benchmark; "
        "`python -m benchmarks.bench_numbers` times random US numbers the same way.",
        "",
    ]


def _scrubs(r: dict[str, Any]) -> list[str]:
    f = _figures(r)
    n = r["world"]["scrub"]
    naive = r["naive"]
    rows = []
    for name, label in (("e164", "E.164"), ("national", "national, region=US")):
        s = r["scrub"][name]
        rows.append(
            [
                label,
                f"{seconds(s['median'])} ({n / s['median']:,.0f}/s)",
                spread(s["runs"]),
                f"{seconds(f[name]['naive'])} ({naive['scrub'][name]['per_number'] * 1e6:.1f} us "
                "a number)",
                f"{f[name]['vs_naive']:.1f}x",
                f"{seconds(r['ceiling']['median'])}" if name == "e164" else "",
                f"{f['vs_ceiling']:.2f}x" if name == "e164" else "",
                "yes" if s["matches_truth"] else f"**no**: {s['counts']}",
            ]
        )
    lines = [
        "## Goal 1: bulk scrub",
        "",
        f"`POST /v1/scrub` with a `text/plain` body of the {n:,}-number list, uploaded in 1 MiB "
        "chunks by httpx (streamed) and the streamed CSV answer read to its last byte; timed "
        "from the first byte sent to the last byte received. One `dnc serve` worker.",
        "",
    ]
    lines += _table(
        ["list", "API", "runs", "naive reference", "ratio", "Redis ceiling", "ratio", "answer"],
        rows,
    )
    lines += [
        f"The naive reference ran on the first {naive['sample']:,} numbers of the list and is "
        f"given as its time a number x {n:,}. The ceiling (`benchmarks/ceiling.py`) asked Redis "
        f"about all {n:,} ints with one `SMISMEMBER` per bucket, pipelined, on the project's "
        f"keys: runs {spread(r['ceiling']['runs'])}; its answers "
        + ("match the truth." if r["ceiling"]["matches_truth"] else "**do not match**.")
        + " \"answer\": every row's status checked against the world's truth. Redis CPU "
        f"(user + system, from `INFO cpu`) a scrub: {_cpu(r['scrub']['e164'])} for the API's "
        f"E.164 scrub, {_cpu(r['ceiling'])} for the ceiling.",
        "",
    ]
    return lines


def _cpu(figures: dict[str, Any]) -> str:
    return seconds(figures["redis_cpu"]) if "redis_cpu" in figures else "not recorded"


def _memory(r: dict[str, Any]) -> list[str]:
    f = _figures(r)
    mem = r["load"]["memory"]
    n = r["world"]["registry"]
    rows = [
        ["everything (`used_memory` after - before the load)", mem["used_memory"], f["everything"]],
        ["the bucket sets", mem["sets"], mem["sets"] / n],
        ["the bucket index", mem["index"], mem["index"] / n],
        [
            "sets + index (what scrubs and look-ups read)",
            mem["sets"] + mem["index"],
            f["sets_index"],
        ],
        [f"the change stream ({mem['stream_entries']:,} entries)", mem["stream"], f["stream"]],
        ["naive: one set of E.164 strings", r["naive"]["memory_used"], f["naive_set"]],
        ["information-theoretic floor", round(f["floor"] * n), f["floor"]],
    ]
    table = [[label, f"{b / 2**20:,.1f} MiB", f"{per:.2f}"] for label, b, per in rows]
    encodings = ", ".join(f"{count:,} {enc}" for enc, count in mem["encodings"].items())
    return [
        "## Goal 3: memory",
        "",
        *_table(["what", "bytes", "bytes a number"], table),
        f"{mem['set_keys']:,} bucket sets ({encodings}). Everything is "
        f"{f['everything'] / f['floor']:.1f}x the floor "
        f"({f['floor']:.2f} B: log2 C({r['world']['space']:,}, {n:,}) bits over {n:,} numbers) "
        f"and {f['naive_set'] / f['everything']:.0f}x smaller than the naive set. Why not the "
        "floor: an intset stores each member as a plain 16-bit integer (2 B) where the floor "
        "codes only the gaps between numbers (about 5 bits at this density); each bucket key "
        "adds a few dozen bytes of key, object and allocator overhead. The change stream, "
        "which Bloom filters and change-list readers follow, is counted too: a bulk load's "
        "batches are swapped for snapshot entries (a bucket id each) once their numbers are in "
        f"the sets, so it takes {f['stream']:.3f} B a number instead of holding every loaded "
        'number a second time for `DNC_RETENTION_DAYS` (README, "Change stream and '
        'versions").',
        "",
    ]


def _loader(r: dict[str, Any]) -> list[str]:
    f = _figures(r)
    load, fresh, naive = r["load"], r["freshness"], r["naive"]
    n = r["world"]["registry"]
    rows = [
        [
            f"`dnc load --format ftc` of {n:,} lines",
            f"{seconds(load['median'])} ({n / load['median']:,.0f}/s)",
            spread(load["runs"]),
            f"{seconds(f['naive_load'])} ({naive['load_per_line'] * 1e6:.1f} us a line)",
            f"{f['load_ratio']:.1f}x",
        ]
    ]
    return [
        "## Goal 4: loader",
        "",
        *_table(["what", "time", "runs", "naive (parse, validate, SADD)", "ratio"], rows),
        f"`dnc load` runs as a subprocess into an emptied Redis (`FLUSHALL` before each run), "
        f"wall time; it printed `{load['output']}`. The naive load ran on the first "
        f"{naive['sample']:,} lines of the same file, pipelined `SADD` per line into one set of "
        "strings, and is given as its time a line x the file's lines.",
        "",
        f"Seen at once: with `dnc serve` running, `dnc load` of {fresh['numbers']:,} more numbers "
        f"took {seconds(fresh['load_seconds'])}; a JSON scrub of exactly those numbers sent the "
        f"moment the command returned answered in {seconds(fresh['scrub_after_seconds'])} with "
        f"counts {fresh['counts']}: "
        + ("every one blocked." if fresh["all_blocked"] else "**not every one blocked**."),
        "",
    ]


def _lookups(r: dict[str, Any]) -> list[str]:
    lookups = r.get("lookups")
    if not lookups:
        return ["## Goal 5: single look-ups", "", "Not measured: `wrk` is not installed.", ""]
    rows = []
    for name, label in (("api", "`GET /v1/numbers/{n}`"), ("bare", "bare ASGI app")):
        peak, half = lookups[name], lookups[name + "_half"]
        p99_runs = ", ".join(f"{run['p99_ms']:.1f}" for run in half["runs"])
        scheduled_runs = ", ".join(f"{run['p99_scheduled_ms']:.1f}" for run in half["runs"])
        cpu = peak.get("median_cpu_us")
        rows.append(
            [
                label,
                f"{peak['median_rate']:,.0f}",
                ", ".join(f"{run['rate']:,.0f}" for run in peak["runs"]),
                f"{_errors(peak)} / {_errors(half)}",
                "not measured" if cpu is None else f"{cpu:.1f} us",
                f"{half['target_rate']:,.0f}",
                f"{half['p50_ms']:.2f} / {half['p99_ms']:.2f} ms (p99 runs {p99_runs})",
                f"{half['p99_scheduled_ms']:.2f} ms (runs {scheduled_runs})",
            ]
        )
    method = lookups["method"]
    return [
        "## Goal 5: single look-ups",
        "",
        *_table(
            [
                "app",
                "req/s (peak)",
                "runs",
                "errors (peak / fixed rate)",
                "server CPU a request",
                "fixed rate",
                "p50 / p99 at that rate, from writing",
                "p99 from schedule (judged)",
            ],
            rows,
        ),
        f"Peak: {method['peak']} (numbers from the scrub list, about 10% registered), against "
        f"`dnc serve` with {method['workers']} worker(s) and against `benchmarks/bare.py` on "
        "uvicorn with the same settings (workers, event loop and HTTP implementation: uvicorn's "
        "defaults, uvloop and httptools). Latency: half the look-ups' peak rate, by "
        f"{method['latency']}, for both apps, the median of the runs; latency counted from "
        "the moment each request was written, and from its scheduled time, which adds the "
        "generator's own timer lateness (its timers tick in milliseconds) and any wait for a "
        f"free connection. The goal's p99 (<= {LOOKUP_P99_MS:g} ms) is judged on the p99 from "
        "the schedule, the stricter one: a request that waited for a connection while the "
        "server was busy waited all the same, and timing it from when it was written would "
        "hide that wait (coordinated omission). Errors: answers other than 200 (and wrk's "
        "connection errors and timeouts), summed over the peak runs and over the fixed-rate "
        "runs. The generator, wrk, Redis and the server share "
        "this machine's cores. Server CPU a request: the user and system time of the server's "
        "processes during the peak runs (from /proc) over the requests answered, the median of "
        "the runs. At the peak one worker is busy all the time, so an app's requests a second "
        "follow from it: 70% of the bare app's rate leaves the look-up "
        f"{_budget(lookups)} of CPU a request.",
        "",
    ]


def _errors(figures: dict[str, Any]) -> str:
    """Non-2xx answers, timeouts and connection errors over all the runs."""
    return f"{sum(run['errors'] for run in figures['runs']):,}"


def _budget(lookups: dict[str, Any]) -> str:
    bare = lookups["bare"].get("median_cpu_us")
    return "(not measured)" if bare is None else f"{bare / LOOKUP_SHARE:.1f} us"


def _start(r: dict[str, Any]) -> list[str]:
    s = r["start"]
    return [
        "## Goal 6: worker start",
        "",
        f"`dnc serve` with `DNC_WORKERS=1` against the loaded registry, timed from the process' "
        f"start to the first `200` from `GET /readyz` (Redis answers and the Bloom filter is "
        f"complete): **{seconds(s['median'])}** (runs {spread(s['runs'])}; goal <= "
        f"{START_SECONDS:g} s, {met(s['median'] <= START_SECONDS)}). Python's start and imports "
        "are included.",
        "",
    ]


def _cluster(r: dict[str, Any]) -> list[str]:
    c = r.get("cluster") or {}
    lines = ["## Goal 7: Redis Cluster", ""]
    if "median" not in c:
        return lines + [
            f"**TODO**: no figure. {c.get('error', 'not run')}",
            "",
        ]
    single = r["scrub"]["e164"]["median"]
    rows = [
        ["one node", seconds(single), spread(r["scrub"]["e164"]["runs"]), "yes"],
        [
            f"cluster, {c['masters']} masters",
            seconds(c["median"]),
            spread(c["runs"]),
            "yes" if c["matches_truth"] else f"**no**: {c['counts']}",
        ],
    ]
    return lines + [
        *_table(["Redis", "1M E.164 scrub", "runs", "answer"], rows),
        "Three plain redis-servers (default configuration plus `cluster-enabled yes`) on "
        "loopback ports, joined by `redis-cli --cluster create`; loaded with `dnc load` and "
        "scrubbed through `dnc serve` (one worker) on `DNC_REDIS_URL=redis+cluster://...`. "
        f"`dnc load` printed `{c['load_output']}`"
        + (f" in {seconds(c['load_seconds'])} (one run)" if "load_seconds" in c else "")
        + ". All three masters share this machine's cores with the API.",
        "",
    ]


def _unmet(r: dict[str, Any]) -> list[str]:
    f = _figures(r)
    unmet = []
    if (
        min(f["e164"]["vs_naive"] / SCRUB_VS_NAIVE, f["vs_ceiling"] / SCRUB_VS_CEILING) < 1
        or f["national"]["vs_naive"] < NATIONAL_VS_NAIVE
    ):
        unmet.append("1")
    if f["everything"] > BYTES_PER_NUMBER:
        unmet.append("3")
    if f["load_ratio"] < LOAD_VS_NAIVE or not r["freshness"]["all_blocked"]:
        unmet.append("4")
    if "lookup_share" in f and (
        f["lookup_share"] < LOOKUP_SHARE or f["lookup_p99"] > LOOKUP_P99_MS
    ):
        unmet.append("5")
    return unmet


def _shortfalls(r: dict[str, Any]) -> list[str]:
    unmet = [goal for goal in _unmet(r) if goal in SHORTFALLS]
    if not unmet:
        return []
    lines = ["## Goals not met: why, and what would close them", ""]
    for goal in unmet:
        lines += [f"**Goal {goal}.** {SHORTFALLS[goal]}", ""]
    return lines


def _notes(r: dict[str, Any]) -> list[str]:
    naive = r["naive"]
    return [
        "## Notes",
        "",
        f"- The naive reference (`benchmarks/naive.py`) runs on a sample of "
        f"{naive['sample']:,} numbers (or lines) and is reported per number: at tens of "
        "microseconds a number the whole list would take minutes a run. Its Redis is a second "
        "plain redis-server holding the whole registry as one set of E.164 strings (written in "
        "bulk; that is also the naive memory figure). Its `pybloom-live` filter is sized for "
        "the whole registry at 0.1% false positives and holds the sample's registered numbers: "
        "a check costs the same however full the filter is, and a fuller one would only add "
        "0.1% more `SISMEMBER`s.",
        "- Every figure is a wall-clock time on a shared machine: the client, the server, Redis "
        "and the load generators compete for the same cores, which favours neither side of a "
        "ratio but makes absolute numbers smaller than on a dedicated host. Other work may run "
        "beside the benchmark too (the load averages in the header); the figures it disturbs "
        "most are those with the widest spread between runs, the look-ups' p99 first.",
        "- Raw figures of this run: `benchmarks/out/results.json` (not committed); "
        "`python -m benchmarks.run --report-only` renders this file from them again.",
        "",
    ]


def write(results: dict[str, Any], path: Path) -> None:
    path.write_text(render(results))

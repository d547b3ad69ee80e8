"""Every figure of issue 3 and the references beside it, in one command.

    python -m benchmarks.run [--scale 1.0] [--runs 3]

Generates (or reuses) the seeded world, starts a plain redis-server with its
default configuration, and measures through the real `dnc` command and API:
the loader, Redis memory, worker start, bulk scrubs, single look-ups, what a
number registered one by one costs (for SCALE.md), and, on a second plain
redis-server, the naive reference. Each figure is the median of
`--runs` runs. Writes benchmarks/RESULTS.md and SCALE.md (and the raw figures
to benchmarks/out/results.json; `--report-only` renders both again from them).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks import (
    bench_numbers,
    ceiling,
    cluster,
    details,
    loadgen,
    naive,
    report,
    servers,
    start,
    world,
)
from benchmarks.client import check_answer, create_operator, every_run, scrub_text
from registry.store import keys

OUT = Path(__file__).parent / "out" / "results.json"
RESULTS = Path(__file__).parent / "RESULTS.md"


@dataclass(frozen=True)
class Options:
    scale: float
    runs: int
    naive_sample: int
    workers: int
    lookup_seconds: float
    connections: int


# The documented command's options (`make bench`): only a run with exactly these writes the
# committed RESULTS.md; any other goes to benchmarks/out/, beside the raw figures.
STANDARD = Options(
    scale=1.0, runs=3, naive_sample=100_000, workers=1, lookup_seconds=10.0, connections=50
)


def step(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def spread(values: list[float]) -> str:
    return ", ".join(f"{v:.2f} s" for v in values)


def median(values: list[float]) -> float:
    return float(statistics.median(values))


# The machine and the run.


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    import phonenumbers
    import redis
    import uvicorn

    git = subprocess.run(
        ["git", "describe", "--always", "--dirty"], capture_output=True, text=True
    ).stdout.strip()
    changed = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True)
    git += worktree(changed.stdout)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cache_bytes": last_level_cache(),
        "ram_gib": round(mem_kb / 2**20, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "redis_server": servers.redis_version(),
        "packages": {
            "numpy": np.__version__,
            "redis-py": redis.__version__,
            "uvicorn": uvicorn.__version__,
            "phonenumbers": phonenumbers.__version__,
        },
        "load_average_at_start": os.getloadavg(),
        "git": git,
        "wrk": loadgen.wrk_path() is not None,
    }


def last_level_cache() -> int | None:
    """Bytes of the CPU's largest cache as sysfs gives it (None where it is not exposed):
    SCALE.md says whether the run's Bloom filter fitted in it."""
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    sizes = []
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            text = (index / "size").read_text().strip()
        except OSError:
            continue
        if text[-1:] in units and text[:-1].isdigit():
            sizes.append(int(text[:-1]) * units[text[-1]])
        elif text.isdigit():
            sizes.append(int(text))
    return max(sizes) if sizes else None


def worktree(porcelain: str) -> str:
    """What `git status --porcelain` lists beside the commit, in words: changed tracked
    files and untracked ones apart, by name, so a reader knows what ran beside the commit."""
    tracked: list[str] = []
    untracked: list[str] = []
    for line in porcelain.splitlines():
        if line.strip():
            path = line[3:].split(" -> ")[-1]
            (untracked if line.startswith("??") else tracked).append(path)
    parts = []
    if tracked:
        parts.append(f"uncommitted changes to {_files(tracked)}")
    if untracked:
        parts.append(f"untracked {_files(untracked)}")
    return " with " + " and ".join(parts) if parts else ""


def _files(paths: list[str], shown: int = 5) -> str:
    names = ", ".join(paths[:shown]) + (
        f" and {len(paths) - shown} more" if len(paths) > shown else ""
    )
    return f"{len(paths)} file{'s' if len(paths) != 1 else ''} ({names})"


# Goals 3 and 4: the loader and the memory it leaves.


def dnc_load(redis_url: str, path: Path) -> tuple[float, str]:
    """Wall seconds of `dnc load --format ftc FILE` and its last line."""
    env = servers.dnc_env(redis_url, None, 1)
    started = time.perf_counter()
    done = subprocess.run(
        servers.dnc_command("load", str(path), "--format", "ftc"),
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"dnc load failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds, done.stdout.strip().splitlines()[-1]


def memory(client: Any, baseline: int) -> dict[str, Any]:
    """used_memory over the empty server's, and what the keys themselves take."""
    used = int(client.info("memory")["used_memory"]) - baseline
    set_keys = list(client.scan_iter(match="dnc:s:*", count=10_000))
    pipe = client.pipeline(transaction=False)
    for key in set_keys:
        pipe.memory_usage(key, samples=0)
        pipe.object("encoding", key)
    replies = pipe.execute()
    sizes, encodings = replies[0::2], replies[1::2]
    return {
        "used_memory": used,
        "sets": int(sum(sizes)),
        "set_keys": len(set_keys),
        "encodings": {_text(e): encodings.count(e) for e in set(encodings)},
        "index": int(client.memory_usage(keys.BUCKETS, samples=0) or 0),
        "stream": int(client.memory_usage(keys.CHANGES, samples=0) or 0),
        "stream_entries": int(client.xlen(keys.CHANGES)),
    }


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def bench_load(opts: Options, w: world.World, redis_server: servers.PlainRedis) -> dict[str, Any]:
    client = redis_server.client()
    runs, line, mem, cpu = [], "", {}, []
    for run in range(opts.runs):
        client.flushall()
        baseline = int(client.info("memory")["used_memory"])
        before = redis_cpu(client)
        seconds, line = dnc_load(redis_server.url, w.registry_ftc)
        cpu.append(redis_cpu(client) - before)
        runs.append(seconds)
        step(f"dnc load run {run + 1}: {seconds:.1f} s, Redis CPU {cpu[-1]:.2f} s ({line})")
        mem = memory(client, baseline)
    client.close()
    return {
        "runs": runs,
        "median": median(runs),
        "redis_cpu": median(cpu),
        "output": line,
        "memory": mem,
    }


# Goal 1: bulk scrubs through the API.


def redis_cpu(client: Any) -> float:
    """Seconds of CPU the redis-server process has used (user + system)."""
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def bench_scrubs(
    opts: Options, w: world.World, base_url: str, key: str, redis_client: Any
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    scrub_text(base_url, key, w.scrub_e164.read_bytes()[: 13 * 1000], None)  # warm-up
    for name, path, region in (
        ("e164", w.scrub_e164, None),
        ("national", w.scrub_national, "US"),
    ):
        body = path.read_bytes()
        runs, checks, cpu = [], [], []
        for run in range(opts.runs):
            before = redis_cpu(redis_client)
            seconds, answer = scrub_text(base_url, key, body, region)
            cpu.append(redis_cpu(redis_client) - before)
            checks.append(check_answer(answer, w.registered))
            runs.append(seconds)
            step(
                f"scrub {name} run {run + 1}: {seconds:.2f} s, Redis CPU {cpu[-1]:.2f} s, "
                f"{checks[-1]}"
            )
        results[name] = {
            "runs": runs,
            "median": median(runs),
            "redis_cpu": median(cpu),
            "answer_bytes": len(answer),
            **every_run(checks),
        }
    return results


def freshness(redis_url: str, base_url: str, key: str, w: world.World) -> dict[str, Any]:
    """`dnc load` into a running API, then at once a scrub of the loaded numbers."""
    seconds, line = dnc_load(redis_url, w.late_ftc)
    returned = time.perf_counter()
    answer = httpx.post(
        base_url + "/v1/scrub",
        json={"numbers": [f"+{n}" for n in w.late.tolist()]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=120,
    )
    answer.raise_for_status()
    counts = answer.json()["counts"]
    return {
        "numbers": len(w.late),
        "load_seconds": seconds,
        "load_output": line,
        "scrub_after_seconds": time.perf_counter() - returned,
        "counts": counts,
        "all_blocked": counts["blocked"] == len(w.late),
    }


def bench_ceiling(opts: Options, w: world.World, redis_server: servers.PlainRedis) -> dict:
    client = redis_server.client()
    runs, exact, cpu = [], True, []
    for run in range(opts.runs):
        before = redis_cpu(client)
        seconds, found = ceiling.time_membership(client, w.scrub)
        cpu.append(redis_cpu(client) - before)
        exact = exact and bool(np.array_equal(found, w.registered))
        runs.append(seconds)
        step(f"ceiling run {run + 1}: {seconds:.2f} s, Redis CPU {cpu[-1]:.2f} s")
    client.close()
    return {"runs": runs, "median": median(runs), "redis_cpu": median(cpu), "matches_truth": exact}


# Goal 5: single look-ups under load.


def bench_lookups(opts: Options, w: world.World, redis_url: str) -> dict[str, Any]:
    sample = w.scrub[: min(1000, len(w.scrub))]
    paths = [f"/v1/numbers/+{n}" for n in sample.tolist()]
    results: dict[str, Any] = {}
    with servers.dnc_serve(redis_url, opts.workers) as api:
        key = create_operator(api.url)
        headers = {"Authorization": f"Bearer {key}"}
        results["api"] = _peak("look-ups", api, paths, headers, opts, lookup_rounds)
        rate = results["api"]["median_rate"] / 2
        results["api_half"] = _at_rate("look-ups", api.url, paths, headers, rate, opts)
    with servers.bare_serve(opts.workers) as bare:
        results["bare"] = _peak("bare app", bare, paths, headers, opts)
        results["bare_half"] = _at_rate("bare app", bare.url, paths, headers, rate, opts)
    results["method"] = {
        "peak": f"wrk -t1 -c{opts.connections} -d{opts.lookup_seconds:g}s, "
        f"{len(paths):,} numbers in turn",
        "registered": int(w.registered[: len(sample)].sum()),
        "latency": "open-loop asyncio generator (benchmarks/loadgen.py), 64 keep-alive "
        f"connections, {opts.lookup_seconds:g} s after 1 s warm-up",
        "workers": opts.workers,
    }
    return results


def lookup_rounds(base_url: str) -> int:
    """The Redis round trips `dnc serve`'s look-ups have made (each shared by the look-ups
    that waited for it), summed over its workers from /metrics."""
    text = httpx.get(base_url + "/metrics", timeout=10).text
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("dnc_lookup_round_trips_total")
        )
    )


def _peak(
    name: str,
    server: servers.HttpServer,
    paths: list[str],
    headers: dict[str, str],
    opts: Options,
    rounds: Callable[[str], int] | None = None,
) -> dict[str, Any]:
    url = server.url
    loadgen.wrk(url, paths, headers, 2, opts.connections)  # warm-up, not counted
    runs = []
    for run in range(opts.runs):
        before = server.cpu_seconds()
        rounds_before = rounds(url) if rounds else 0
        result = loadgen.wrk(url, paths, headers, opts.lookup_seconds, opts.connections)
        after = server.cpu_seconds()
        rounds_made = rounds(url) - rounds_before if rounds else 0
        # The server's CPU time a request: steadier than requests a second on a shared
        # machine, and where the two apps' difference is spent.
        cpu_us = None
        if before is not None and after is not None and result.requests:
            cpu_us = (after - before) / result.requests * 1e6
        per_round = result.requests / rounds_made if rounds_made > 0 else None
        runs.append(
            asdict(result) | {"rate": result.rate, "cpu_us": cpu_us, "per_round": per_round}
        )
        step(f"{name} peak run {run + 1}: {result.rate:,.0f} req/s, {result.errors} errors")
    cpu = [r["cpu_us"] for r in runs if r["cpu_us"] is not None]
    per_rounds = [r["per_round"] for r in runs if r["per_round"] is not None]
    return {
        "runs": runs,
        "median_rate": median([r["rate"] for r in runs]),
        "median_cpu_us": median(cpu) if cpu else None,
        "median_per_round": median(per_rounds) if per_rounds else None,
    }


def _at_rate(
    name: str, url: str, paths: list[str], headers: dict[str, str], rate: float, opts: Options
) -> dict[str, Any]:
    runs = []
    for run in range(opts.runs):
        result = loadgen.fixed_rate(url, paths, headers, rate, opts.lookup_seconds)
        runs.append(asdict(result) | {"rate": result.rate})
        step(f"{name} at {rate:,.0f} req/s run {run + 1}: p99 {result.p99_ms:.2f} ms")
    return {
        "target_rate": rate,
        "runs": runs,
        **{k: median([r[k] for r in runs]) for k in ("p50_ms", "p99_ms", "p99_scheduled_ms")},
    }


# Goal 2: normalization speed on the world's lists (benchmarks/bench_numbers.py has its own).


def bench_normalization(opts: Options, w: world.World) -> dict[str, Any]:
    results: dict[str, Any] = {}
    sample = min(opts.naive_sample, len(w.scrub))
    for name, path in (("e164", w.scrub_e164), ("national", w.scrub_national)):
        texts = path.read_text().splitlines()
        bench_numbers.batch(texts[:1000])  # builds the fast path's machines, not timed
        slow = median([_timed(bench_numbers.per_item, texts[:sample]) for _ in range(opts.runs)])
        fast = median([_timed(bench_numbers.batch, texts) for _ in range(opts.runs)])
        results[name] = {
            "per_item": slow / sample,
            "batch": fast / len(texts),
            "speedup": (slow / sample) / (fast / len(texts)),
        }
        step(f"normalization {name}: {results[name]['speedup']:.0f}x per-item phonenumbers")
    results["sample"] = sample
    return results


def _timed(work: Any, texts: list[str]) -> float:
    started = time.perf_counter()
    work(texts)
    return time.perf_counter() - started


# The naive reference, on its own plain redis-server.


def bench_naive(opts: Options, w: world.World) -> dict[str, Any]:
    sample = min(opts.naive_sample, len(w.scrub))
    with servers.PlainRedis("naive") as naive_redis:
        client = naive_redis.client()
        baseline = int(client.info("memory")["used_memory"])
        naive.fill_set(client, [f"+{n}" for n in w.registry.tolist()])
        used = int(client.info("memory")["used_memory"]) - baseline
        step(f"naive set of strings: {used / len(w.registry):.1f} B a number")
        load_runs = [
            naive.time_load(client, w.registry_ftc, sample, key="naive:load")
            for _ in range(opts.runs)
        ]
        step(f"naive load: {median(load_runs) * 1e6:.1f} us a line")
        registered = w.scrub[:sample][w.registered[:sample]]
        bloom = naive.bloom_of(len(w.registry), (f"+{n}" for n in registered.tolist()))
        scrubs: dict[str, Any] = {}
        for name, path, region in (
            ("e164", w.scrub_e164, "US"),
            ("national", w.scrub_national, "US"),
        ):
            inputs = path.read_text().splitlines()[:sample]
            runs, counts = [], None
            for _ in range(opts.runs):
                started = time.perf_counter()
                counts = naive.scrub(client, bloom, inputs, region)
                runs.append((time.perf_counter() - started) / sample)
            assert counts is not None
            step(f"naive scrub {name}: {median(runs) * 1e6:.1f} us a number, {counts}")
            scrubs[name] = {
                "per_number_runs": runs,
                "per_number": median(runs),
                "counts": asdict(counts),
                "matches_truth": counts.blocked == int(w.registered[:sample].sum()),
            }
        client.close()
    return {
        "sample": sample,
        "bloom_error_rate": naive.ERROR_RATE,
        "memory_used": used,
        "load_per_line_runs": load_runs,
        "load_per_line": median(load_runs),
        "scrub": scrubs,
    }


# The whole run.


def run(opts: Options, command: str) -> dict[str, Any]:
    results: dict[str, Any] = {
        "command": command,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "options": asdict(opts),
        "machine": machine(),
    }
    step("world")
    w = world.ensure(opts.scale)
    results["world"] = {
        "registry": len(w.registry),
        "scrub": len(w.scrub),
        "registered_in_scrub": int(w.registered.sum()),
        "space": w.space,
        "area_codes": list(world.AREA_CODES),
        "other_area_codes": list(world.OTHER_AREA_CODES),
        "seed": world.SEED,
    }
    with servers.PlainRedis("dnc") as redis_server:
        results["redis_args"] = [
            "PORT" if a == str(redis_server.port) else a.replace(str(redis_server.directory), "DIR")
            for a in redis_server.args[1:]
        ]
        step(f"redis-server {redis_server.url}; goal 6: worker start on an empty registry")
        empty = start.worker_starts(redis_server.url, opts.runs)
        step(f"dnc serve ready in {spread(empty)} on the empty registry")
        step(f"goal 4: dnc load x{opts.runs}")
        results["load"] = bench_load(opts, w, redis_server)
        step("goal 6: worker start")
        starts = start.worker_starts(redis_server.url, opts.runs)
        step(f"dnc serve ready in {spread(starts)}")
        builds = start.bloom_builds(redis_server.url, opts.runs)
        step(f"the Bloom filter alone, in process: {spread(builds)}")
        results["start"] = {
            "runs": starts,
            "median": median(starts),
            "empty_runs": empty,
            "empty_median": median(empty),
            "bloom_build_runs": builds,
            "bloom_build_median": median(builds),
        }
        with servers.dnc_serve(redis_server.url, 1) as api:
            key = create_operator(api.url)
            step("goal 1: scrubs")
            client = redis_server.client()
            results["scrub"] = bench_scrubs(opts, w, api.url, key, client)
            client.close()
            step("goal 4: a load seen by the running API")
            results["freshness"] = freshness(redis_server.url, api.url, key, w)
        step("goal 1: the Redis ceiling")
        results["ceiling"] = bench_ceiling(opts, w, redis_server)
        if loadgen.wrk_path() is None:
            step(f"goal 5 skipped: wrk is not installed ({loadgen.WRK_INSTALL})")
            results["lookups"] = None
        else:
            step("goal 5: single look-ups")
            results["lookups"] = bench_lookups(opts, w, redis_server.url)
        step("SCALE.md: numbers registered one by one (last: it leaves details behind)")
        client = redis_server.client()
        results["one_by_one"] = details.measure(redis_server.url, client, w.registry)
        client.close()
    step("goal 7: cluster")
    results["cluster"] = cluster.bench(opts.runs, w)
    step("the naive reference")
    results["naive"] = bench_naive(opts, w)
    step("goal 2: normalization")
    results["normalization"] = bench_normalization(opts, w)
    return results


def _stop_on_sigterm(signum: int, frame: object) -> None:
    # A plain SIGTERM would end us before the `finally` blocks stop the servers we started.
    raise SystemExit(143)


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    std = STANDARD
    parser.add_argument("--scale", type=float, default=std.scale, help="1.0: 10M numbers")
    parser.add_argument("--runs", type=int, default=std.runs, help="runs a figure (the median)")
    parser.add_argument("--naive-sample", type=int, default=std.naive_sample)
    parser.add_argument("--workers", type=int, default=std.workers, help="look-ups' API workers")
    parser.add_argument("--lookup-seconds", type=float, default=std.lookup_seconds)
    parser.add_argument("--connections", type=int, default=std.connections)
    parser.add_argument("--report-only", action="store_true", help=f"re-render from {OUT}")
    return parser


def options(args: argparse.Namespace) -> Options:
    return Options(**{field.name: getattr(args, field.name) for field in fields(Options)})


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    args = arguments().parse_args(argv)
    if args.report_only:
        results = json.loads(OUT.read_text())
        report.write(results, results_path(results["options"]))
        return 0
    opts = options(args)
    command = shlex.join(["python", "-m", "benchmarks.run", *sys.argv[1:]])
    started = time.perf_counter()
    results = run(opts, command)
    results["total_seconds"] = time.perf_counter() - started
    results["machine"]["load_average_at_end"] = os.getloadavg()
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1) + "\n")
    target = results_path(asdict(opts))
    report.write(results, target)
    step(f"done in {results['total_seconds']:.0f} s: {target}")
    return 0


def results_path(options: dict[str, Any]) -> Path:
    """Only the documented command makes the committed RESULTS.md: a run with any other
    option (another scale, fewer runs, a smaller naive sample, shorter look-ups...) goes
    to benchmarks/out/, beside the raw figures."""
    return RESULTS if options == asdict(STANDARD) else OUT.parent / "RESULTS.md"


if __name__ == "__main__":
    sys.exit(main())

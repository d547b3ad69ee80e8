"""benchmarks/SCALE.md, goal 9: the run's figures carried to the US registry's 250M numbers.

Rendered with RESULTS.md from the same results.json (report.write), so the two
never disagree: every measured figure comes from figures.derive or the raw
results, every other one is arithmetic on them or an assumption named as one.
"""

from __future__ import annotations

from typing import Any

from benchmarks.figures import MEMBER_BYTES, START_SECONDS, derive, seconds, span
from registry import bloom
from registry.store import keys

US_NUMBERS = 250_000_000
# Roughly the US's area codes in service; each has 800 exchanges (NXX 200-999) of 10,000.
US_AREA_CODES = 330
EXCHANGES = 800
LINES = 10_000
WORKERS_EXAMPLE = 16


def render(r: dict[str, Any]) -> str:
    s = _Scale(r)
    return "\n".join([*s.header(), *s.measured(), *s.one_node(), *s.cluster(), *s.first()]) + "\n"


def _mib(value: float) -> str:
    """A size in memory's binary units: 0.2 MiB, 512 MiB, 8.0 GiB."""
    if value >= 2**30:
        return f"{value / 2**30:,.1f} GiB"
    return f"{value / 2**20:,.0f} MiB" if value >= 100 * 2**20 else f"{value / 2**20:,.1f} MiB"


def _size(value: float) -> str:
    """Bytes in the unit a reader plans with: MB, or GB past one."""
    if value >= 10e9:
        return f"{value / 1e9:,.0f} GB"
    return f"{value / 1e9:.1f} GB" if value >= 1e9 else f"{value / 1e6:,.0f} MB"


def _duration(value: float) -> str:
    return f"{value / 60:.1f} minutes" if value >= 60 else f"{value:.0f} s"


class _Scale:
    """One run's figures and what they come to at 250M numbers."""

    def __init__(self, r: dict[str, Any]) -> None:
        self.r, self.f = r, derive(r)
        w = r["world"]
        self.n, self.n_scrub = w["registry"], w["scrub"]
        self.factor = US_NUMBERS / self.n
        self.density = self.n / (len(w["area_codes"]) * EXCHANGES * LINES)
        self.us_density = US_NUMBERS / (US_AREA_CODES * EXCHANGES * LINES)
        mem = r["load"]["memory"]
        self.per_key = self.n / max(mem["set_keys"], 1)  # numbers a bucket, at this density
        self.us_keys = US_NUMBERS / (self.us_density * (1 << keys.BUCKET_BITS))
        self.sets_250 = self.f["sets_index"] * US_NUMBERS
        entries = max(mem["stream_entries"], 1)
        self.stream_250 = mem["stream"] / entries * self.us_keys  # a snapshot entry a bucket
        self.scrub = r["scrub"]["e164"]
        self.scrub_rate = self.n_scrub / self.scrub["median"]
        self.filter_250 = bloom.words_for(bloom.capacity_for(US_NUMBERS)) * 8
        self.filter_here = bloom.words_for(bloom.capacity_for(self.n)) * 8
        start = r["start"]["median"]
        build = self.f["bloom_build"]
        # With the filter's build timed alone, only that part of the start grows; without
        # it, all of the start is taken to grow: an upper bound.
        self.start_exact = build is not None
        self.start_250 = (
            max(start - build, 0) + build * self.factor
            if build is not None
            else start * self.factor
        )
        self.one = r.get("one_by_one")

    def header(self) -> list[str]:
        r, m = self.r, self.r["machine"]
        loads = ", ".join(f"{x:.2f}" for x in m["load_average_at_start"])
        lines = [
            "# Scale: 250 million numbers, on paper",
            "",
            "Goal 9 of issue 3: what the figures of one benchmark run ([RESULTS.md](RESULTS.md): "
            f"`{r['command']}`, {r['date']} on commit `{m['git']}`, {m['cpu']}, {m['cores']} "
            f"cores, {m['ram_gib']} GiB RAM, load average at the start {loads}) say about the "
            f"US registry's size, {US_NUMBERS:,} numbers, on one node and on a Redis Cluster. "
            "Written by `benchmarks/report.py` with RESULTS.md from the same run's "
            "`results.json`; do not edit by hand. Everything below is arithmetic on that run's "
            "figures; where a figure was not measured, it says so.",
            "",
        ]
        scale = r["options"]["scale"]
        if scale != 1.0:
            lines += [
                f"> **Scale {scale:g}**: the run's world held {self.n:,} numbers, not the "
                f"issue's 10,000,000: everything is carried {self.factor:,.0f}x to 250M, and "
                "figures that depend on density (bytes a key, a details entry) are this "
                "world's.",
                "",
            ]
        return lines

    def measured(self) -> list[str]:
        r, f, n = self.r, self.f, self.n
        mem, load, ceiling = r["load"]["memory"], r["load"], r["ceiling"]
        start = r["start"]
        rows = [
            ["Redis `used_memory` after `dnc load`", _mib(mem["used_memory"]),
             f"{f['everything']:.2f} B"],
            ["of which the bucket sets + bucket index",
             f"{_mib(mem['sets'] + mem['index'])} in {mem['set_keys']:,} keys",
             f"{f['sets_index']:.2f} B ({MEMBER_BYTES} B a member + ~{f['key_overhead']:.0f} B "
             "a key)"],
            ["of which the change stream (one snapshot entry a bucket)",
             f"{_mib(mem['stream'])}, {mem['stream_entries']:,} entries", f"{f['stream']:.3f} B"],
            ["naive set of E.164 strings", _mib(r["naive"]["memory_used"]),
             f"{f['naive_set']:.0f} B"],
            *self._one_by_one_rows(),
            [f"`dnc load` of the FTC file (median of {len(load['runs'])})",
             f"{seconds(load['median'])} ({span(load['runs'])})",
             f"{load['median'] / n * 1e6:.2f} us ({n / load['median'] / 1e6:.1f}M a second)"],
            [f"{self.n_scrub:,}-number scrub through the API, one worker",
             seconds(self.scrub["median"]),
             f"{self.scrub['median'] / self.n_scrub * 1e6:.2f} us "
             f"({self.scrub_rate / 1e6:.1f}M a second)"],
            ["Redis CPU for that scrub", _cpu(self.scrub), _per(self.scrub, self.n_scrub)],
            ["Redis ceiling (every number asked, redis-py)",
             f"{seconds(ceiling['median'])}, Redis CPU {_cpu(ceiling)}",
             f"{ceiling['median'] / self.n_scrub * 1e6:.2f} us"],
            ["worker start to `/readyz` 200", f"{seconds(start['median'])} "
             f"({span(start['runs'])})" + (f"; {seconds(start['empty_median'])} against the "
             "empty registry" if "empty_median" in start else ""), ""],
            ["of which the Bloom filter's build (timed alone, in process)",
             seconds(f["bloom_build"]) if self.start_exact else "not measured in this run",
             f"{f['bloom_build'] / n * 1e6:.2f} us" if self.start_exact else ""],
        ]  # fmt: skip
        c = r.get("cluster") or {}
        if "median" in c:
            rows.append(
                [
                    f"same scrub on a {c['masters']}-master cluster (same machine)",
                    seconds(c["median"]),
                    f"{c['median'] / self.n_scrub * 1e6:.2f} us",
                ]
            )
        lookups = r.get("lookups")
        if lookups:
            rows.append(
                [
                    "single look-ups, one worker",
                    f"{lookups['api']['median_rate']:,.0f} a second (p99 from schedule "
                    f"{lookups['api_half']['p99_scheduled_ms']:.1f} ms at half that rate)",
                    "",
                ]
            )
        table = ["| figure | measured | a number |", "| --- | --- | --- |"]
        table += ["| " + " | ".join(row) + " |" for row in rows]
        return [f"## What was measured ({n:,} numbers)", "", *table, ""]

    def _one_by_one_rows(self) -> list[list[str]]:
        one = self.one
        if not one:
            return [
                ["details hash entry (numbers registered one by one)",
                 "not measured in this run", ""],
            ]  # fmt: skip
        fields = one["registrations"] / one["buckets"]
        return [
            ["details hash entry (numbers registered one by one)",
             f"{one['registrations']:,} numbers in {one['buckets']} buckets, "
             f"{fields:,.0f} fields a hash ({one['details_encoding']})",
             f"{one['details_bytes'] / one['registrations']:.0f} B"],
            ["change stream entry of one such registration",
             f"{one['stream_entries']:,} entries, {_mib(one['stream_bytes'])}",
             f"{one['stream_bytes'] / max(one['stream_entries'], 1):.0f} B"],
        ]  # fmt: skip

    def one_node(self) -> list[str]:
        f = self.f
        lines = [
            "## One node, 250M numbers",
            "",
            f"The world's density is {self.density:.1%} of each exchange's numbers; the US's "
            f"would be about {self.us_density:.1%} (250M over roughly {US_AREA_CODES} area "
            f"codes x {EXCHANGES} exchanges x {LINES:,} lines). Bucket size, and so the bytes a "
            "member, depends on density, not on the registry's size: this world's buckets hold "
            f"{self.per_key:,.0f} numbers each, the US's would hold about "
            f"{self.us_density * (1 << keys.BUCKET_BITS):,.0f}, in about "
            f"{self.us_keys:,.0f} bucket keys.",
            "",
            f"- **Redis memory**: sets + index {f['sets_index']:.2f} B x 250M = "
            f"**~{_size(self.sets_250)}**; the change stream holds bulk loads as one snapshot "
            f"entry a bucket (~{_size(self.stream_250)}), so **~"
            f"{_size(self.sets_250 + self.stream_250)} `used_memory`** in all for bulk-loaded "
            f"numbers (the naive set of strings: ~{_size(f['naive_set'] * US_NUMBERS)}). Leave "
            "as much again for a fork at AOF rewrite or a replica's sync (copy-on-write).",
            *self._details(),
            f"- **Loading**: at {self.n / self.r['load']['median'] / 1e6:.1f}M numbers a second, "
            f"**~{_duration(self.r['load']['median'] * self.factor)}** for a 250M file in one "
            "process (reading in numpy blocks while one thread writes). Loading several files "
            "in parallel processes divides it further.",
            *self._scrubs(),
            *self._workers(),
            "",
        ]
        return lines

    def _details(self) -> list[str]:
        one = self.one
        if not one:
            return [
                "- **The caveat on memory**: that figure is for bulk-loaded numbers. A number "
                "registered one at a time (API, SMS, web) also gets a details entry in its "
                "bucket's hash and its own change-stream entry; this run did not measure their "
                "size (later runs of `benchmarks/run.py` do), so what 250M such numbers would "
                "take is not given here."
            ]
        per_entry = one["details_bytes"] / one["registrations"]
        fields = one["registrations"] / one["buckets"]
        us_fields = self.us_density * (1 << keys.BUCKET_BITS)
        bound = ""
        if one["details_encoding"] != "hashtable" and us_fields > one["compact_limit"]:
            bound = (
                f" This run's hashes held {fields:,.0f} fields, under Redis' "
                f"{one['compact_limit']}-entry limit for its compact encoding "
                f"({one['details_encoding']}); a bucket at the US density would hold about "
                f"{us_fields:,.0f}, over it, and the hash-table encoding costs more an entry: "
                "the figure is a lower bound."
            )
        stream_entry = one["stream_bytes"] / max(one["stream_entries"], 1)
        return [
            "- **The caveat on memory**: that figure is for bulk-loaded numbers. A number "
            "registered one at a time (API, SMS, web) also gets a details entry, "
            f"{per_entry:.0f} B in this run's buckets.{bound} If all 250M were registered that "
            f"way, as the US registry's were, details would need **~"
            f"{_size(per_entry * US_NUMBERS)}**: the one memory figure that would decide the "
            "node size. Each such registration's change-stream entry adds "
            f"{stream_entry:.0f} B for `DNC_RETENTION_DAYS`. Keeping details only where they "
            "differ from the default (full block, both channels) or packing them per bucket "
            "would be the fix."
        ]

    def _scrubs(self) -> list[str]:
        here, there = _mib(self.filter_here), _mib(self.filter_250)
        cache = self.r["machine"].get("cache_bytes")
        if cache is None:
            caches = (
                "this run did not record the machine's cache sizes, so whether its "
                f"{here} filter sat in a cache is not known; at 250M ({there}) it is past most "
                "CPUs' last-level cache, and a probe may cost more than measured here"
            )
        elif self.filter_here > cache:
            caches = (
                f"this run's {here} filter was already larger than the machine's {_mib(cache)} "
                "last-level cache"
            )
        else:
            caches = (
                f"this run's {here} filter fitted in the machine's {_mib(cache)} last-level "
                f"cache; at 250M ({there}) "
                + ("it would not, and " if self.filter_250 > cache else "on a smaller cache ")
                + "a probe may cost more than measured here"
            )
        text = (
            "- **Scrub capacity**: a scrub does the same work a number at any registry size: "
            f"the Bloom filter is one random memory access a number ({caches}); Redis confirms "
            "only the maybes (the registered share plus under 1% false positives). One worker: "
            f"**~{self.scrub_rate / 1e6:.1f}M numbers a second** (two cores for its numpy "
            "passes)."
        )
        cpu = self.scrub.get("redis_cpu")
        if cpu:
            workers = self.scrub["median"] / cpu
            text += (
                f" Redis spent {seconds(cpu)} of CPU on the {self.n_scrub:,}-number scrub, so "
                f"one Redis core keeps up with about **{workers:.0f} such workers** scrubbing "
                f"flat out (~{workers * self.scrub_rate / 1e6:.0f}M numbers a second); until "
                "then capacity grows with API cores."
            )
        return [text]

    def _workers(self) -> list[str]:
        r, f = self.r, self.f
        filter_250 = self.filter_250
        if self.start_exact:
            build = f["bloom_build"]
            start = (
                f"Building it took {seconds(build)} for {self.n:,} numbers here (timed alone: "
                "reading every bucket with `DUMP`, decoding, hashing); the rest of the "
                f"{seconds(r['start']['median'])} start (Python's start, imports, the app) "
                f"does not grow, so a worker would need **~{self.start_250:.0f} s** to become "
                f"ready at 250M (goal 6 asks {START_SECONDS:g} s)"
            )
        else:
            start = (
                "This run did not time the filter's build alone, so the part of its "
                f"{seconds(r['start']['median'])} start that grows with the registry (reading "
                "every bucket with `DUMP`, decoding, hashing) is not known: if all of it grew, a "
                f"worker would need up to **~{self.start_250:.0f} s** to become ready at 250M "
                f"(goal 6 asks {START_SECONDS:g} s)"
            )
        return [
            "- **Worker memory and start**: every API worker builds its own Bloom filter, "
            f"sized at {bloom.BITS_PER_NUMBER} bits a number for the registry plus "
            f"{bloom.HEADROOM:.0%} and rounded up to a power of two: {_mib(self.filter_here)} "
            f"at this run's {self.n:,}, **{_mib(filter_250)} at 250M, per worker** "
            f"({WORKERS_EXAMPLE} workers: {_mib(filter_250 * WORKERS_EXAMPLE)}). {start}, and a "
            f"restart of N workers pulls N x {_size(self.sets_250)} out of one Redis at once. "
            "Sharing one filter per host (shared memory, built once, one follower) would remove "
            "both."
        ]

    def cluster(self) -> list[str]:
        r = self.r
        c = r.get("cluster") or {}
        masters = c.get("masters", 3)
        lines = [
            "## Redis Cluster, 250M numbers",
            "",
            "- **Memory**: the buckets spread over the slots by their hash tag, so each of "
            f"{masters} masters holds ~{_size(self.sets_250 / masters)} of sets. The "
            "registry-wide keys share the tag `{dnc}` and live on **one** master: the change "
            "stream (with every registration made one by one for `DNC_RETENTION_DAYS`), the "
            "version and the bucket index. Every registration's log write (`XADD` + `INCR`) "
            "and every scrub's and look-up round's sync point lands on it: memory is not short "
            "either way, and the `{dnc}` master is the cluster's hot spot for writes.",
        ]
        if "median" in c:
            single = self.scrub["median"]
            cpu = self.scrub.get("redis_cpu")
            limit = (
                f" Redis CPU was {cpu / single:.0%} of a one-node scrub's time, so Redis is not "
                "the scrub's limit, API workers are: a cluster buys memory headroom and "
                "availability (with replicas), not scrub throughput, at this size."
                if cpu and cpu / single < 0.5
                else ""
            )
            lines.append(
                f"- **Scrubs**: measured {seconds(c['median'])} against {seconds(single)} on one "
                f"node for the same {self.n_scrub:,}-number scrub (the {masters} masters shared "
                "this machine's cores with the API). Confirmations split by node, so Redis CPU "
                f"spreads across masters.{limit}"
            )
            load = (
                f" One cluster load of the file took {seconds(c['load_seconds'])} (one run) "
                f"against {seconds(r['load']['median'])} on one node."
                if "load_seconds" in c
                else ""
            )
            lines.append(
                "- **Loading**: one `dnc load` process is bound by its own CPU, as on one node; "
                "the cluster only helps when files (area codes) are loaded by parallel "
                f"processes, each bucket's commands going to its own master.{load}"
            )
        else:
            lines.append(f"- **Scrubs and loading**: not measured in this run ({c.get('error')}).")
        return [*lines, ""]

    def first(self) -> list[str]:
        total = self.sets_250 + self.stream_250
        cpu = self.scrub.get("redis_cpu")
        redis = f"Redis is comfortable at 250M numbers (about {_size(total)} for bulk-loaded "
        redis += (
            f"numbers, {cpu / self.n_scrub * 1e6:.3f} CPU seconds a million scrubbed). "
            if cpu
            else "numbers). "
        )
        memory = f"{_mib(self.filter_250)} of RAM per API worker"
        late = self.start_250 > START_SECONDS
        if late and self.start_exact:
            verdict = (
                f"What breaks first is **the per-worker Bloom filter**: {memory} and about "
                f"{self.start_250:.0f} s to build it at start, against goal 6's "
                f"{START_SECONDS:g} s."
            )
        elif late:
            verdict = (
                f"What breaks first is most likely **the per-worker Bloom filter**: {memory}, "
                f"and up to {self.start_250:.0f} s to build it at start against goal 6's "
                f"{START_SECONDS:g} s (an upper bound: this run did not time the filter's build "
                "alone)."
            )
        else:
            verdict = (
                f"Worker start would still meet goal 6 (about {self.start_250:.0f} s); what "
                f"grows first is **the per-worker Bloom filter's memory**: {memory}."
            )
        one = self.one
        details = (
            ", the details hashes at ~"
            f"{one['details_bytes'] / one['registrations']:.0f} B a number or more"
            if one
            else ", the details hashes (not measured in this run)"
        )
        return [
            "## The first bottleneck",
            "",
            f"{redis}{verdict} Next, if numbers are registered one by one{details}.",
        ]


def _cpu(figures: dict[str, Any]) -> str:
    return seconds(figures["redis_cpu"]) if "redis_cpu" in figures else "not recorded"


def _per(figures: dict[str, Any], count: int) -> str:
    if "redis_cpu" not in figures:
        return ""
    return f"{figures['redis_cpu'] / count * 1e6:.3f} us"

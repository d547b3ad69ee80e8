"""The naive reference of issue 3: the design card's packages used one item at a time.

What a user would write first: per number `phonenumbers.parse` +
`is_valid_number` + E.164 formatting, a `pybloom-live` check, and pipelined
`SISMEMBER` on one Redis set of E.164 strings; loading is parse, validate and
`SADD` per line into that set, pipelined. It is slow (tens of microseconds a
number), so the benchmark times it on a sample and reports it per number.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import phonenumbers
from pybloom_live import BloomFilter

KEY = "naive:dnc"
PIPELINE = 10_000
ERROR_RATE = 0.001
_E164 = phonenumbers.PhoneNumberFormat.E164


@dataclass(frozen=True)
class NaiveCounts:
    callable: int
    blocked: int
    invalid: int


def load_lines(client: Any, lines: Iterable[str], key: str = KEY) -> int:
    """The naive `dnc load` of FTC lines (`212,5551234`): returns how many were valid."""
    pipe = client.pipeline(transaction=False)
    valid = 0
    for line in lines:
        area, _, local = line.strip().partition(",")
        try:
            parsed = phonenumbers.parse(area + local, "US")
        except phonenumbers.NumberParseException:
            continue
        if not phonenumbers.is_valid_number(parsed):
            continue
        pipe.sadd(key, phonenumbers.format_number(parsed, _E164))
        valid += 1
        if len(pipe) >= PIPELINE:
            pipe.execute()
    pipe.execute()
    return valid


def time_load(client: Any, path: Path, sample: int, key: str = KEY) -> float:
    """Seconds a line of the naive load, over the first `sample` lines of `path`."""
    with path.open(encoding="utf-8") as file:
        lines = list(islice(file, sample))
    client.delete(key)
    started = time.perf_counter()
    load_lines(client, lines, key)
    elapsed = time.perf_counter() - started
    client.delete(key)
    return elapsed / len(lines)


def fill_set(client: Any, e164: Sequence[str], key: str = KEY, chunk: int = 10_000) -> None:
    """The naive set of strings holding the whole registry, written in bulk (not timed: the
    naive load's speed comes from `time_load`; this only gives the scrub its set and the
    memory figure its size)."""
    pipe = client.pipeline(transaction=False)
    for start in range(0, len(e164), chunk):
        pipe.sadd(key, *e164[start : start + chunk])
        if len(pipe) >= 16:
            pipe.execute()
    pipe.execute()


def bloom_of(capacity: int, e164: Iterable[str]) -> BloomFilter:
    """A pybloom-live filter sized for the whole registry (0.1% false positives)."""
    bloom = BloomFilter(capacity=max(capacity, 1000), error_rate=ERROR_RATE)
    for number in e164:
        bloom.add(number)
    return bloom


def scrub(
    client: Any, bloom: BloomFilter, inputs: Sequence[str], region: str, key: str = KEY
) -> NaiveCounts:
    """The naive scrub: normalize each input, Bloom check, pipelined SISMEMBER for the maybes."""
    invalid = 0
    maybes: list[str] = []
    for text in inputs:
        try:
            parsed = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            invalid += 1
            continue
        if not phonenumbers.is_valid_number(parsed):
            invalid += 1
            continue
        number = phonenumbers.format_number(parsed, _E164)
        if number in bloom:
            maybes.append(number)
    blocked = 0
    for start in range(0, len(maybes), PIPELINE):
        pipe = client.pipeline(transaction=False)
        for number in maybes[start : start + PIPELINE]:
            pipe.sismember(key, number)
        blocked += sum(pipe.execute())
    return NaiveCounts(len(inputs) - invalid - blocked, blocked, invalid)

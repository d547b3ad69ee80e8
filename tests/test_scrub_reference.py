"""The issue's acceptance check: a scrub of 20,000 mixed inputs through the API matches,
item by item, a reference computed with phonenumbers and a Python set; counts and receipt agree.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import phonenumbers
import pytest
import redis.asyncio as aioredis
from fastapi.testclient import TestClient
from phonenumbers import NumberParseException

from registry import rules
from registry.config import Settings
from registry.store.registrations import RegistrationStore

SEED = 20_240_601
TOTAL = 20_000
US_AREAS = (212, 213, 206, 303, 305, 312, 404, 415, 617, 702)
FULL_WIDTH = str.maketrans("0123456789+", "０１２３４５６７８９＋")
JUNK_ALPHABET = "abcdefxyzABCXYZ0123456789 -.,;:()#*+/\"'电话"
E164 = phonenumbers.PhoneNumberFormat.E164


def e164_of(text: str) -> str:
    """The reference: phonenumbers' reading of `text` against US, '' when not a valid number."""
    try:
        parsed = phonenumbers.parse(text, "US")
    except NumberParseException:
        return ""
    return phonenumbers.format_number(parsed, E164) if phonenumbers.is_valid_number(parsed) else ""


def valid_us(rng: random.Random) -> str:
    while True:
        number = f"+1{rng.choice(US_AREAS)}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"
        if e164_of(number) == number:
            return number


def foreign(rng: random.Random) -> str:
    """Numbers of other countries, mostly valid, written in their international forms."""
    kind = rng.randrange(4)
    if kind == 0:
        return f"+44 20 {rng.randint(7000, 8999)} {rng.randint(0, 9999):04d}"
    if kind == 1:
        return f"+44 7{rng.randint(100, 999)} {rng.randint(0, 999_999):06d}"
    if kind == 2:
        head = f"1{rng.choice('3456789')}{rng.randint(0, 9)}"
        return f"+86 {head} {rng.randint(0, 9999):04d} {rng.randint(0, 9999):04d}"
    return f"+91 {rng.choice('6789')}{rng.randint(0, 9999):04d} {rng.randint(0, 99_999):05d}"


def national(rng: random.Random, number: str) -> str:
    """A US E.164 number written the ways people write it."""
    area, exchange, line = number[2:5], number[5:8], number[8:]
    forms = [
        f"({area}) {exchange}-{line}",
        f"{area}.{exchange}.{line}",
        f"1-{area}-{exchange}-{line}",
        f"{area}-{exchange}-{line}",
        f"{area}{exchange}{line}",
        f"+1 {area} {exchange} {line}",
        f"1 ({area}) {exchange}-{line}",
        f"{number}".translate(FULL_WIDTH),
        f'"{area}" {exchange} {line}',
        f"tel:{number}",
    ]
    return rng.choice(forms)


def junk(rng: random.Random) -> str:
    while True:
        text = "".join(rng.choice(JUNK_ALPHABET) for _ in range(rng.randint(1, 24))).strip()
        if text:
            return text


@dataclass
class Registry:
    """What the test registered, by preference: the Python sets of the reference."""

    full: set[str] = field(default_factory=set)
    voice_only: set[str] = field(default_factory=set)
    sms_only: set[str] = field(default_factory=set)
    allows_education: set[str] = field(default_factory=set)

    @property
    def everything(self) -> set[str]:
        return self.full | self.voice_only | self.sms_only | self.allows_education

    def blocked(self, channel: str | None, category: int | None) -> set[str]:
        """Registrations that block a request, per CONTRACT section 3, spelled out by hand."""
        blocking = set(self.full)
        if channel != "sms":
            blocking |= self.voice_only
        if channel != "voice":
            blocking |= self.sms_only
        if category != 3:
            blocking |= self.allows_education
        return blocking


def build(rng: random.Random) -> tuple[Registry, list[str], list[str], list[str]]:
    """Registrations by kind, bulk ones, unregistered numbers; all valid E.164."""
    registry = Registry()
    seen: set[str] = set()

    def fresh(make: Callable[[random.Random], str] = valid_us) -> str:
        while True:
            number = e164_of(make(rng))
            if number and number not in seen:
                seen.add(number)
                return number

    for target, count in (
        (registry.full, 150),
        (registry.voice_only, 150),
        (registry.sms_only, 60),
        (registry.allows_education, 40),
    ):
        target.update(fresh() for _ in range(count))
    bulk = [fresh() for _ in range(1_950)] + [fresh(foreign) for _ in range(50)]
    registry.full.update(bulk)
    unregistered = [fresh() for _ in range(3_000)]
    unregistered_foreign = [fresh(foreign) for _ in range(100)]
    return registry, bulk, unregistered, unregistered_foreign


def inputs_for(
    rng: random.Random, registry: Registry, unregistered: list[str], foreign_free: list[str]
) -> list[str]:
    registered = sorted(registry.everything)
    us_registered = [n for n in registered if n.startswith("+1")]
    foreign_registered = [n for n in registered if not n.startswith("+1")]
    national_pool = us_registered + unregistered[:500]
    inputs: list[str] = []
    while len(inputs) < TOTAL:
        roll = rng.random()
        if roll < 0.25:
            text = rng.choice(registered)
        elif roll < 0.42:
            text = rng.choice(unregistered)
        elif roll < 0.64:
            text = national(rng, rng.choice(national_pool))
        elif roll < 0.70:
            text = rng.choice(foreign_registered + foreign_free)
        elif roll < 0.74:
            text = foreign(rng)
        elif roll < 0.83:
            text = junk(rng)
        elif roll < 0.89:
            text = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 7)))
        elif roll < 0.93:
            text = "".join(rng.choice("0123456789") for _ in range(rng.randint(8, 16)))
        elif roll < 0.999 and inputs:
            text = rng.choice(inputs)  # a duplicate
        else:
            text = rng.choice(registered) + " x" * 130  # over phonenumbers' 250 characters
        inputs.append(text)
    # A text/plain line is the same input only when it has no line end and no outer spaces.
    assert all(text and text == text.strip() and "\n" not in text for text in inputs)
    return inputs


def register_bulk(settings: Settings, numbers: list[str]) -> None:
    """Full blocks written straight through the store, as a bulk loader would."""

    async def write() -> None:
        client = aioredis.Redis.from_url(settings.redis_url or "")
        store = RegistrationStore(client, settings.retention_days)
        now = int(time.time())
        try:
            for start in range(0, len(numbers), 50):
                await asyncio.gather(
                    *(
                        store.register(int(n[1:]), rules.Preferences(), "test:bulk", now)
                        for n in numbers[start : start + 50]
                    )
                )
        finally:
            await client.aclose()

    asyncio.run(write())


def register_by_carrier(client: TestClient, carrier: dict[str, str], registry: Registry) -> None:
    """The partial blocks, each through PUT /v1/registrations with its preferences."""
    preferences: list[tuple[set[str], dict[str, object] | None]] = [
        (registry.voice_only, {"channels": ["voice"]}),
        (registry.sms_only, {"channels": ["sms"]}),
        (registry.allows_education, {"allow_categories": [3]}),
    ]
    for numbers, prefs in preferences:
        for number in sorted(numbers):
            answer = client.put(f"/v1/registrations/{number}", json=prefs, headers=carrier)
            assert answer.status_code == 201, answer.text


def mismatches(got: list[list[str]], expected: list[list[str]]) -> list[tuple[int, object, object]]:
    """Where two tables differ, for a readable failure."""
    found = [(i, e, g) for i, (g, e) in enumerate(zip(got, expected, strict=False)) if g != e]
    if len(got) != len(expected):
        found.append((min(len(got), len(expected)), f"{len(expected)} rows", f"{len(got)} rows"))
    return found[:10]


def counts_of(statuses: list[str]) -> dict[str, int]:
    return {
        "total": len(statuses),
        "callable": statuses.count("callable"),
        "blocked": statuses.count("blocked"),
        "invalid": statuses.count("invalid"),
    }


@pytest.mark.slow
def test_twenty_thousand_mixed_inputs_match_the_reference(
    client: TestClient, carrier: dict[str, str], operator: dict[str, str], settings: Settings
) -> None:
    rng = random.Random(SEED)
    registry, bulk, unregistered, foreign_free = build(rng)
    inputs = inputs_for(rng, registry, unregistered, foreign_free)

    # Full blocks: 150 through the carrier API, the rest (US and foreign) through the store.
    by_api = sorted(set(registry.full) - set(bulk))
    for number in by_api:
        assert client.put(f"/v1/registrations/{number}", headers=carrier).status_code == 201
    register_bulk(settings, bulk)
    register_by_carrier(client, carrier, registry)

    numbers = [e164_of(text) for text in inputs]
    valid = [n for n in numbers if n]
    expected_digest = hashlib.sha256("".join(f"{n}\n" for n in valid).encode()).hexdigest()
    # The mix the issue asks for is really there.
    assert 4_000 < numbers.count("") < 8_000
    assert len(set(inputs)) < TOTAL

    body = "".join(f"{text}\n" for text in inputs).encode()
    for channel, category in ((None, None), ("sms", None), ("voice", 3)):
        query = {k: str(v) for k, v in (("channel", channel), ("category", category)) if v}
        blocking = registry.blocked(channel, category)
        statuses = [
            "invalid" if not n else "blocked" if n in blocking else "callable" for n in numbers
        ]
        expected_counts = counts_of(statuses)
        assert expected_counts["blocked"] > 3_000 and expected_counts["callable"] > 5_000

        # Streamed text/plain: every row, item by item.
        streamed = client.post(
            "/v1/scrub",
            params=query,
            content=body,
            headers={**operator, "content-type": "text/plain"},
        )
        assert streamed.status_code == 200, streamed.text
        rows = list(csv.reader(io.StringIO(streamed.text, newline="")))
        assert rows[0] == ["input", "number", "status"]
        expected_rows = [
            [text, n, status] for text, n, status in zip(inputs, numbers, statuses, strict=True)
        ]
        assert mismatches(rows[1:], expected_rows) == [], query

        # JSON: counts, the blocked list and the invalid indices.
        answer = client.post("/v1/scrub", params=query, json={"numbers": inputs}, headers=operator)
        assert answer.status_code == 200, answer.text
        scrubbed = answer.json()
        assert scrubbed["counts"] == expected_counts, query
        assert scrubbed["blocked"] == [
            n for n, s in zip(numbers, statuses, strict=True) if s == "blocked"
        ]
        assert [(item["index"], item["input"]) for item in scrubbed["invalid"]] == [
            (i, inputs[i]) for i, s in enumerate(statuses) if s == "invalid"
        ]

        # Both receipts agree with the reference.
        for receipt_id in (streamed.headers["x-scrub-receipt"], scrubbed["receipt_id"]):
            receipt = client.get(f"/v1/scrubs/{receipt_id}", headers=operator).json()
            assert receipt["counts"] == expected_counts, query
            assert receipt["sha256"] == expected_digest, query

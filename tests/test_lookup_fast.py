"""The look-up route in front of FastAPI (registry/api/lookup.py, registry/freshness.py).

It must answer `GET /v1/numbers/{number}` exactly as FastAPI's documented route
does, byte for byte and header for header, read every write acknowledged before
a look-up was sent, by any worker, fail closed without Redis, and share its Redis
round trips among concurrent look-ups.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import orjson
import pytest
import redis
from conftest import ADMIN, ADMIN_KEY, assert_error, in_one_window, new_registry
from fastapi.testclient import TestClient

from loader.load import load_files
from registry.api import create_app
from registry.api.lookup import LookupRoute
from registry.bloom import BloomFilter, RegisteredFilter
from registry.config import Settings
from registry.embedded import RedisProcess, free_port
from registry.freshness import Lookups, in_filter, locate
from registry.rules import EVERYTHING, Preferences
from registry.store import keys
from registry.store.connect import async_client, sync_client
from registry.store.consents import ConsentStore
from registry.store.registrations import RegistrationStore

pytestmark = pytest.mark.cluster  # every test on one redis-server and on a Redis Cluster
Headers = dict[str, str]
Answer = tuple[int, list[tuple[str, str]], bytes]


def started(settings: Settings, fast: bool) -> TestClient:
    """A running app whose Bloom filter is built; `fast`: the look-up route in front."""
    assert settings.redis_url is not None
    new_registry(settings.redis_url)  # as dnc serve makes it before its workers
    client = TestClient(create_app(settings, fast_lookups=fast), raise_server_exceptions=False)
    client.__enter__()
    deadline = time.monotonic() + 10
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "the app never became ready"
        time.sleep(0.005)
    return client


@dataclass
class Pair:
    """Two workers on one Redis: `fast` as served, `slow` with FastAPI's route only."""

    fast: TestClient
    slow: TestClient

    def answers(
        self, path: str, headers: list[tuple[str, str]], method: str = "GET"
    ) -> tuple[Answer, Answer]:
        return answer(self.fast, method, path, headers), answer(self.slow, method, path, headers)


def answer(client: TestClient, method: str, path: str, headers: list[tuple[str, str]]) -> Answer:
    got = client.request(method, path, headers=headers)
    return got.status_code, got.headers.multi_items(), got.content


@pytest.fixture
def pair(settings: Settings) -> Iterator[Pair]:
    fast, slow = started(settings, True), started(settings, False)
    assert isinstance(fast.app, LookupRoute) and fast.app.enabled
    yield Pair(fast, slow)
    fast.__exit__(None, None, None)
    slow.__exit__(None, None, None)


def new_key(client: httpx.Client, role: str = "operator", **body: Any) -> str:
    answer = client.post("/v1/operators", json={"name": role, "role": role, **body}, headers=ADMIN)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["api_key"])


def bearer(key: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {key}")]


def register(client: httpx.Client, carrier: str, number: str, **prefs: Any) -> None:
    answer = client.put(f"/v1/registrations/{number}", json=prefs or None, headers=bearer(carrier))
    assert answer.status_code in (200, 201), answer.text


def bulk_load(url: str, tmp_path: Path, numbers: list[str]) -> None:
    path = tmp_path / "bulk.txt"
    path.write_text("\n".join(numbers) + "\n")
    client = sync_client(url)
    try:
        load_files(
            client,
            [path],
            fmt="e164",
            column=None,
            region="US",
            remove=False,
            retention_days=153,
            progress=False,
        )
    finally:
        client.close()


# Registrations of every kind the route reads: preferences, bulk, other countries.
REGISTERED = {
    "+12125550001": {},
    "+12125550002": {"channels": ["voice"]},
    "+12125550003": {"channels": ["sms"], "allow_categories": [2, 5]},
    "+12125550004": {"allow_categories": [1, 2, 3, 4, 5, 6, 7, 8]},
    "+16465550005": {"allow_categories": [3]},
    "+861012345678": {},
}
BULK = ["+12125550100", "+12125550101", "+14155552671"]
DEREGISTERED = "+12125550009"
# Path segments: registered and not, bulk, deregistered, national and percent-encoded
# forms, invalid numbers, and segments FastAPI's pattern does not take.
NUMBERS = [
    *REGISTERED,
    *BULK,
    DEREGISTERED,
    "+12125559999",
    "%2B12125550003",
    "%2b12125550001",
    "(212)%20555-0002",
    "212.555.0004",
    "2125550100",
    "1-212-555-0101",
    "010%201234%205678",
    "13800138000",
    "abc",
    "%2B1212555",
    "%2B12125551234567",
    "%2B999123456789",
    "%2B11235551234",
    "%20",
    "%EF%BC%8B%EF%BC%91%EF%BC%92%EF%BC%91%EF%BC%92%EF%BC%95%EF%BC%95%EF%BC%95%EF%BC%90%EF%BC%90%EF%BC%90%EF%BC%91",
    quote("+1 212 555 0001\n", safe="+"),
    "+12125550001%2F",
    "%2F",
    "",
    "+12125550001/",
    "+12125550001/extra",
]
QUERIES = [
    "",
    "channel=voice",
    "channel=sms",
    "channel=",
    "channel",
    "channel=fax",
    "channel=VOICE",
    "channel=voice%20",
    "channel=sms&channel=voice",
    "channel=voice&channel=fax",
    "category=3",
    "category=2",
    "category=",
    "category=0",
    "category=9",
    "category=x",
    "category=%EF%BC%93",
    "category=2&category=9",
    "region=CN",
    "region=cn",
    "region=+cn",
    "region=",
    "region=XX",
    "region=US&region=CN",
    "channel=sms&category=2",
    "channel=voice&category=5&region=US",
    "channel=fax&category=x&region=XX",
    "category=x&region=XX",
    "channel=voice;category=3",
    "other=1",
    "&&channel=sms&",
]


# Each with its scope: the channels and categories it was given for (none: all).
CONSENTS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "operator": [
        ("+12125550001", {}),
        ("+12125550003", {"channels": ["sms"]}),
        ("+14155552671", {"categories": [2]}),
        ("+12125559999", {}),
        ("+12125550004", {}),
    ],
    "prefixed": [
        ("+12125550002", {"channels": ["voice"], "categories": [3]}),
        ("+861012345678", {}),
    ],
    "admin": [("+12125550100", {"channels": ["voice", "sms"], "categories": [1, 2]})],
}


@dataclass
class World:
    """Accounts and registrations, made through the API and the loader."""

    operator: str
    prefixed: str
    carrier: str
    revoked: str


@pytest.fixture
def world(pair: Pair, redis_url: str, tmp_path: Path) -> World:
    return make_world(pair.slow, redis_url, tmp_path)


def make_world(client: httpx.Client, redis_url: str, tmp_path: Path) -> World:
    """The registrations, accounts and consents above, made through `client`'s app."""
    carrier = new_key(client, "carrier")
    for number, prefs in REGISTERED.items():
        register(client, carrier, number, **prefs)
    register(client, carrier, DEREGISTERED)
    assert client.delete(f"/v1/registrations/{DEREGISTERED}", headers=bearer(carrier)).is_success
    bulk_load(redis_url, tmp_path, BULK)
    revoked_account = client.post(
        "/v1/operators", json={"name": "gone", "role": "operator"}, headers=ADMIN
    ).json()
    assert client.delete(f"/v1/operators/{revoked_account['operator_id']}", headers=ADMIN)
    world = World(
        operator=new_key(client),
        prefixed=new_key(client, prefixes=["+1212", "+8610"]),
        carrier=carrier,
        revoked=revoked_account["api_key"],
    )
    # Consents: each key's own, registered or not, one withdrawn, one recorded by an admin.
    for key, numbers in CONSENTS.items():
        for number, scope in numbers:
            consent = {
                "number": number,
                "evidence": {"method": "test", "reference": "t-1"},
                **scope,
            }
            headers = bearer(ADMIN_KEY if key == "admin" else getattr(world, key))
            assert client.post("/v1/consents", json=consent, headers=headers).status_code == 201
    withdrawn = client.delete("/v1/consents/+12125550004", headers=bearer(world.operator))
    assert withdrawn.status_code == 200
    return world


def assert_same(pair: Pair, path: str, headers: list[tuple[str, str]], method: str = "GET") -> int:
    fast, slow = pair.answers(path, headers, method)
    assert fast == slow, (method, path, headers)
    return fast[0]


def test_every_number_and_query_answers_as_fastapi_does(pair: Pair, world: World) -> None:
    lookups = pair.fast.app.state.services.lookups
    rounds = lookups.rounds
    statuses = set()
    for number, query in itertools.product(NUMBERS, QUERIES):
        path = f"/v1/numbers/{number}" + (f"?{query}" if query else "")
        statuses.add(assert_same(pair, path, bearer(world.operator)))
    assert statuses == {200, 400, 404}
    assert lookups.rounds > rounds + 100  # the fast worker answered them itself


def test_every_key_answers_as_fastapi_does(pair: Pair, world: World) -> None:
    keys_ = [
        [],
        [("Authorization", "")],
        [("Authorization", "Bearer")],
        [("Authorization", "Bearer    ")],
        [("Authorization", f"Basic {world.operator}")],
        [("Authorization", f"bearer {world.operator}")],
        [("Authorization", f"Bearer   {world.operator}  ")],
        bearer("dnc_not-a-key"),
        bearer(world.revoked),
        bearer(world.carrier),
        bearer(world.prefixed),
        bearer(ADMIN_KEY),
        [*bearer("dnc_not-a-key"), *bearer(world.operator)],  # the first one counts
        [*bearer(world.operator), *bearer("dnc_not-a-key")],
    ]
    statuses = set()
    for headers, number, query in itertools.product(
        keys_, NUMBERS[:16], ["", "channel=fax", "region=CN", "channel=sms&channel=voice"]
    ):
        path = f"/v1/numbers/{number}" + (f"?{query}" if query else "")
        statuses.add(assert_same(pair, path, headers))
    assert statuses == {200, 400, 401, 403}


def test_consents_answer_as_fastapi_does(pair: Pair, world: World) -> None:
    reasons = set()
    for key, number, query in itertools.product(
        [world.operator, world.prefixed, ADMIN_KEY],
        NUMBERS[:16],
        ["", "channel=voice", "channel=sms", "channel=sms&category=2", "category=2", "category=3"],
    ):
        path = f"/v1/numbers/{number}" + (f"?{query}" if query else "")
        fast, _ = pair.answers(path, bearer(key))
        assert_same(pair, path, bearer(key))
        if fast[0] == 200:
            reasons.add(orjson.loads(fast[2])["reason"])
    assert {"consent", "registered", "channel_not_blocked", "category_allowed"} <= reasons


def test_a_look_up_reads_a_consent_another_worker_just_recorded(pair: Pair, world: World) -> None:
    writer, reader = pair.slow, pair.fast
    operator = bearer(world.operator)
    lookups = reader.app.state.services.lookups

    def status(number: str) -> str:
        got = reader.get(f"/v1/numbers/{number}", headers=operator)
        assert got.status_code == 200, got.text
        return str(got.json()["reason"])

    for n in range(10):
        number = f"+1212555{n + 20:04d}"
        register(writer, world.carrier, number)
        assert status(number) == "registered"
        consent = {"number": number, "evidence": {"method": "test", "reference": "t-1"}}
        assert writer.post("/v1/consents", json=consent, headers=operator).status_code == 201
        rounds = lookups.rounds
        assert status(number) == "consent"
        assert lookups.rounds == rounds + 1  # the consent was read in the confirming round
        assert writer.delete(f"/v1/consents/{number}", headers=operator).status_code == 200
        assert status(number) == "registered"


def test_other_methods_and_paths_are_fastapis(pair: Pair, world: World) -> None:
    for method, path in [
        ("HEAD", "/v1/numbers/+12125550001"),
        ("POST", "/v1/numbers/+12125550001"),
        ("DELETE", "/v1/numbers/+12125550001"),
        ("GET", "/v1/numbers"),
        ("GET", "/v1/numbers/"),
        ("GET", "/v1/number/+12125550001"),
        ("GET", "/v1/numbers/+12125550001/"),
    ]:
        assert assert_same(pair, path, bearer(world.operator), method) in (200, 307, 404, 405)


def test_rate_limited_operators_get_the_same_429(pair: Pair) -> None:
    def burst(app: Any) -> Any:
        key = bearer(new_key(pair.slow, rate_limit=2))
        return [answer(app, "GET", "/v1/numbers/+12125550001", key) for _ in "abcd"]

    fast = in_one_window(lambda: burst(pair.fast))
    slow = in_one_window(lambda: burst(pair.slow))
    assert [a[0] for a in fast] == [200, 200, 429, 429]
    assert fast == slow
    assert ("retry-after", "1") in fast[-1][1]


def test_a_damaged_record_is_the_same_500(pair: Pair, world: World, redis_client: Any) -> None:
    # An account record with a rate limit that is no number: the key check itself fails.
    account = pair.slow.post(
        "/v1/operators", json={"name": "x", "role": "operator"}, headers=ADMIN
    ).json()
    redis_client.hset(keys.operator(account["operator_id"]), "rate_limit", "lots")
    fast, slow = pair.answers("/v1/numbers/+12125559999", bearer(account["api_key"]))
    assert fast == slow and fast[0] == 500
    # Details of a registration that cannot be read: the confirmation fails.
    number = 12125550001
    redis_client.hset(keys.details(keys.bucket_of(number)), keys.member_of(number), "junk")
    fast, slow = pair.answers(f"/v1/numbers/+{number}", bearer(world.operator))
    assert fast == slow and fast[0] == 500
    assert_error(
        pair.fast.get(f"/v1/numbers/+{number}", headers=bearer(world.operator)),
        500,
        "internal_error",
    )
    # Its neighbours, confirmed in the same rounds, are not affected.
    ok = pair.fast.get("/v1/numbers/+12125550002", headers=bearer(world.operator))
    assert ok.json()["status"] == "blocked"


def served_500s(client: TestClient) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("dnc_http_requests_total") and 'status="500"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_500s_are_counted_for_metrics(pair: Pair, world: World, redis_client: Any) -> None:
    """A 500 is the one answer monitoring must see; Starlette sends it from outside the
    counting middleware, the look-up route from its own handler."""
    number = 12125550001
    redis_client.hset(keys.details(keys.bucket_of(number)), keys.member_of(number), "junk")
    for client in (pair.fast, pair.slow):
        before = served_500s(client)
        assert (
            client.get(f"/v1/numbers/+{number}", headers=bearer(world.operator)).status_code == 500
        )
        assert served_500s(client) == before + 1


def test_look_ups_are_counted_for_metrics(pair: Pair, world: World) -> None:
    def counts() -> dict[str, float]:
        found = {}
        for line in pair.fast.get("/metrics").text.splitlines():
            if line.startswith("dnc_http_requests_total") and 'method="GET"' in line:
                status = line.split('status="')[1].split('"')[0]
                found[status] = float(line.rsplit(" ", 1)[1])
        return found

    before = counts()
    pair.fast.get("/v1/numbers/+12125550001", headers=bearer(world.operator))
    pair.fast.get("/v1/numbers/+12125550001")
    after = counts()
    # The look-up and the first /metrics read; the refused look-up.
    assert after["200"] == before["200"] + 2
    assert after["401"] == before.get("401", 0) + 1


def test_look_up_round_trips_are_counted_for_metrics(pair: Pair, world: World) -> None:
    def total(name: str) -> int:
        text = pair.fast.get("/metrics").text
        assert f"# TYPE {name} counter" in text
        line = next(line for line in text.splitlines() if line.startswith(name + "{"))
        return int(line.rsplit(" ", 1)[1])

    # The first look-up may take two rounds: a negative the catch-up turns into a "maybe".
    pair.fast.get("/v1/numbers/+12125559997", headers=bearer(world.operator))
    before = total("dnc_lookup_round_trips_total")
    for number in NUMBERS[:5]:
        pair.fast.get(f"/v1/numbers/{number}", headers=bearer(world.operator))
    # Valid numbers looked up one after another share no round: each made its own.
    assert total("dnc_lookup_round_trips_total") - before == 5
    catch_ups = total("dnc_lookup_catch_ups_total")
    register(pair.slow, world.carrier, "+12125550042")
    pair.fast.get("/v1/numbers/+12125559998", headers=bearer(world.operator))
    # A Bloom negative after a change logged elsewhere: its round caught the filter up.
    assert total("dnc_lookup_catch_ups_total") == catch_ups + 1


def test_the_documented_route_stays_in_the_openapi_document(pair: Pair) -> None:
    assert "get" in pair.fast.get("/openapi.json").json()["paths"]["/v1/numbers/{number}"]


# --- Read your writes -------------------------------------------------------------------------


def test_a_look_up_reads_what_another_worker_just_wrote(
    pair: Pair, redis_url: str, tmp_path: Path
) -> None:
    writer, reader = pair.slow, pair.fast
    carrier, operator = new_key(writer, "carrier"), bearer(new_key(writer))
    lookups = reader.app.state.services.lookups
    catch_ups = lookups.catch_ups

    def status(number: str, query: str = "") -> str:
        got = reader.get(f"/v1/numbers/{number}{query}", headers=operator)
        assert got.status_code == 200, got.text
        return str(got.json()["status"])

    for n in range(20):
        number = f"+1212555{n:04d}"
        assert status(number) == "callable"
        register(writer, carrier, number)
        assert status(number) == "blocked"
    assert lookups.catch_ups > catch_ups  # the reader caught up by itself, not on a timer
    # Preferences changed, and a registration removed, are read at once too.
    register(writer, carrier, "+12125550000", channels=["voice"])
    assert status("+12125550000", "?channel=sms") == "callable"
    assert writer.delete("/v1/registrations/+12125550001", headers=bearer(carrier)).is_success
    assert status("+12125550001") == "callable"
    # So is a bulk load straight into Redis.
    loaded = [f"+1415555{n:04d}" for n in range(50)]
    assert all(status(number) == "callable" for number in loaded)
    bulk_load(redis_url, tmp_path, loaded)
    assert all(status(number) == "blocked" for number in loaded)


# --- Shared round trips, on one event loop ----------------------------------------------------


@contextlib.asynccontextmanager
async def asgi_clients(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """A client of a fast app on this event loop (no lifespan: no follower runs), and the app.

    Its Bloom filter is built once, here; from then on only its look-ups catch it up.
    """
    app = create_app(settings)
    services = app.state.services
    await services.bloom.build()
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://dnc") as client:
            yield client, app
    finally:
        services.lookups.close()
        await services.redis.aclose()


def test_concurrent_look_ups_share_round_trips_and_read_their_writes(settings: Settings) -> None:
    asyncio.run(_share_round_trips(settings))


async def _share_round_trips(settings: Settings) -> None:
    async with asgi_clients(settings) as (reader, app), asgi_clients(settings) as (writer, _):
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        lookups: Lookups = app.state.services.lookups

        async def register_then_look_up(number: str) -> str:
            registered = await writer.put(f"/v1/registrations/{number}", headers=admin)
            assert registered.status_code == 201
            got = await reader.get(f"/v1/numbers/{number}", headers=admin)
            return str(got.json()["status"])

        async def look_up(number: str) -> str:
            got = await reader.get(f"/v1/numbers/{number}", headers=admin)
            return str(got.json()["status"])

        before, catch_ups = lookups.rounds, lookups.catch_ups
        plain = [f"+1646555{n:04d}" for n in range(300)]
        assert set(await asyncio.gather(*(look_up(n) for n in plain))) == {"callable"}
        assert lookups.rounds - before <= 5  # 300 look-ups, a handful of round trips
        assert lookups.catch_ups - catch_ups <= 1

        before = lookups.rounds
        written = [f"+1212555{n:04d}" for n in range(100)]
        answers = await asyncio.gather(
            *(register_then_look_up(n) for n in written), *(look_up(n) for n in plain[:100])
        )
        assert answers == ["blocked"] * 100 + ["callable"] * 100
        assert lookups.rounds - before < 100


def test_a_filter_not_built_yet_sends_every_look_up_to_redis(settings: Settings) -> None:
    asyncio.run(_not_built(str(settings.redis_url)))


async def _not_built(url: str) -> None:
    store = RegistrationStore(async_client(url), 153)
    try:
        await asyncio.to_thread(new_registry, url)  # as dnc serve makes it
        await store.register(12125550001, Preferences(channels=1), "test", 1)
        lookups = Lookups(RegisteredFilter(store))
        assert not lookups.registered.ready
        found = await asyncio.gather(
            lookups.registration(12125550001), lookups.registration(12125550002)
        )
        assert found == [(True, 1, 0, False), (False, 3, 0, False)]
        assert lookups.catch_ups == 0 and lookups.rounds == 1
        # A consent is read with the number it is asked with, in the same round.
        await ConsentStore(store.redis, 153).record("op_a", 12125550001, "{}", None)
        found = await asyncio.gather(
            lookups.registration(12125550001, "op_a"),
            lookups.registration(12125550001, "op_b"),
            lookups.registration(12125550001),
        )
        # Its scope: every channel and category (rules.EVERYTHING), or 0 for none.
        assert found == [(True, 1, 0, EVERYTHING), (True, 1, 0, 0), (True, 1, 0, 0)]
        assert lookups.rounds == 2
        lookups.close()
    finally:
        await store.redis.aclose()


# --- Fail closed ------------------------------------------------------------------------------


@pytest.fixture
def private_pair(tmp_path: Path) -> Iterator[tuple[Pair, RedisProcess, str]]:
    """Both workers on a redis-server of their own (restarted on its port), keys cached."""
    server = RedisProcess(tmp_path / "redis", durable=True, port=free_port())
    server.start()
    settings = Settings(
        redis_url=server.url, admin_key=ADMIN_KEY, data_dir=tmp_path / "data", auth_cache_seconds=60
    )
    fast, slow = started(settings, True), started(settings, False)
    try:
        carrier, operator = new_key(slow, "carrier"), new_key(slow)
        register(slow, carrier, "+12125550001")
        for client in (fast, slow):  # keys cached, Bloom filters built, connections open
            assert client.get("/v1/numbers/+12125550001", headers=bearer(operator)).is_success
        yield Pair(fast, slow), server, operator
    finally:
        fast.__exit__(None, None, None)
        slow.__exit__(None, None, None)
        server.kill()


def test_without_redis_every_look_up_is_the_same_503(
    private_pair: tuple[Pair, RedisProcess, str],
) -> None:
    pair, server, operator = private_pair
    unused = new_key(pair.slow)
    server.kill()
    for number, query, key in itertools.product(
        ["+12125550001", "+12125559999", "(212)%20555-0001", "abc"],
        ["", "?channel=sms", "?category=3", "?channel=fax"],
        [operator, unused],
    ):
        fast, slow = pair.answers(f"/v1/numbers/{number}{query}", bearer(key))
        assert fast == slow, (number, query)
        if number != "abc" and "fax" not in query:
            assert fast[0] == 503 and ("retry-after", "1") in fast[1]
            assert b"callable" not in fast[2]


def test_look_ups_resume_when_redis_comes_back(
    private_pair: tuple[Pair, RedisProcess, str],
) -> None:
    pair, server, operator = private_pair
    server.kill()
    assert pair.fast.get("/v1/numbers/+12125559999", headers=bearer(operator)).status_code == 503
    server.start()
    deadline = time.monotonic() + 10
    while (got := pair.fast.get("/v1/numbers/+12125550001", headers=bearer(operator))).is_error:
        assert time.monotonic() < deadline, got.text
        time.sleep(0.05)
    assert got.json()["status"] == "blocked"


# --- The pieces -------------------------------------------------------------------------------


def test_locate_finds_what_the_bloom_filter_holds() -> None:
    rng = np.random.default_rng(7)
    bloom = BloomFilter(capacity=1)  # the smallest: 1,024 words
    members = rng.integers(10**10, 10**15, size=20_000)
    bloom.add(members)
    others = rng.integers(10**10, 10**15, size=20_000)
    numbers = np.concatenate([members, others])
    expected = bloom.might_contain(numbers)
    assert expected[:20_000].all() and not expected[20_000:].all()
    assert [in_filter(bloom, locate(n)) for n in numbers.tolist()] == expected.tolist()


@pytest.mark.single_node
def test_the_raw_connection_logs_in_and_picks_its_database(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path / "redis", durable=False, tcp=False)
    server.start()
    try:
        sync = redis.Redis.from_url(server.url)
        sync.config_set("requirepass", "s3cret")
        sync.close()
        socket = server.url.removeprefix("unix://")
        for url in (f"unix://{socket}?db=3&password=s3cret", f"unix://:s3cret@{socket}?db=3"):
            asyncio.run(_registered_is_found(url))
    finally:
        server.kill()


async def _registered_is_found(url: str) -> None:
    store = RegistrationStore(async_client(url), 153)
    try:
        await asyncio.to_thread(new_registry, url)  # as dnc serve makes it
        await store.register(12125550001, Preferences(), "test", 1)
        registered = RegisteredFilter(store)
        await registered.build()
        lookups = Lookups(registered)
        assert lookups.wire is not None
        assert await lookups.registration(12125550001) == (True, 3, 0, False)
        assert await lookups.registration(12125550002) == (False, 3, 0, False)
        await store.redis.flushdb()
        lookups.close()
    finally:
        await store.redis.aclose()

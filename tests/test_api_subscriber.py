"""The public status check and rate limits (CONTRACT sections 6 and 7, "No enumeration").

`GET /v1/registrations/{number}` needs no key and is limited per client address;
operator keys created with a `rate_limit` are limited per account. Both limits
live in Redis, so every app on the same Redis shares them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import redis
from conftest import ADMIN, ADMIN_KEY, assert_error, in_one_window, ready_client, start_redis
from fastapi.testclient import TestClient
from httpx import Response

from registry.api import create_app
from registry.api.limits import limit_client
from registry.config import ConfigError, Settings, load_settings

Headers = dict[str, str]
NUMBER = "+12125551234"
LIMIT = 5

_installed = Path(sys.executable).with_name("dnc")
DNC = [str(_installed)] if _installed.exists() else [sys.executable, "-m", "registry.cli"]


def assert_rate_limited(answer: Response, window: int) -> int:
    """A 429 rate_limited with a Retry-After of whole seconds within the window; returns it."""
    error = assert_error(answer, 429, "rate_limited")
    retry_after = int(answer.headers["retry-after"])
    assert 1 <= retry_after <= window
    assert error["details"]["retry_after"] == retry_after
    return retry_after


def when(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def status(client: TestClient, number: str, **query: str) -> Response:
    return client.get(f"/v1/registrations/{number}", params=query)


@pytest.fixture
def limited(settings: Settings) -> Settings:
    """Settings with a small status-check limit, so tests reach it quickly."""
    return settings.with_(status_checks_per_minute=LIMIT)


# -- the answer -----------------------------------------------------------------------------


def test_a_number_not_registered(client: TestClient) -> None:
    answer = status(client, NUMBER)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"number": NUMBER, "registered": False}


def test_a_registered_number_with_its_times(client: TestClient, carrier: Headers) -> None:
    put = client.put(f"/v1/registrations/{NUMBER}", headers=carrier)
    assert put.status_code == 201, put.text
    answer = status(client, NUMBER)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body == {
        "number": NUMBER,
        "registered": True,
        "registered_at": put.json()["registered_at"],
        "effective_at": put.json()["effective_at"],
    }
    assert when(body["effective_at"]) - when(body["registered_at"]) == timedelta(days=31)


def test_the_answer_says_nothing_of_preferences(client: TestClient, carrier: Headers) -> None:
    put = client.put(
        f"/v1/registrations/{NUMBER}",
        json={"channels": ["sms"], "allow_categories": [2]},
        headers=carrier,
    )
    assert put.status_code == 201, put.text
    assert set(status(client, NUMBER).json()) == {
        "number",
        "registered",
        "registered_at",
        "effective_at",
    }


def test_effective_at_follows_the_grace_days(
    spare: Callable[..., TestClient], carrier: Headers
) -> None:
    api = spare(grace_days=7)
    assert api.put(f"/v1/registrations/{NUMBER}", headers=carrier).status_code == 201
    body = status(api, NUMBER).json()
    assert when(body["effective_at"]) - when(body["registered_at"]) == timedelta(days=7)


def test_a_deregistered_number_is_not_registered(client: TestClient, carrier: Headers) -> None:
    assert client.put(f"/v1/registrations/{NUMBER}", headers=carrier).status_code == 201
    assert client.delete(f"/v1/registrations/{NUMBER}", headers=carrier).status_code == 200
    assert status(client, NUMBER).json() == {"number": NUMBER, "registered": False}


def test_a_bulk_loaded_number_has_no_times(
    client: TestClient, redis_url: str, tmp_path: Path
) -> None:
    """`dnc load` does not know when a number was registered: both times are left out."""
    listing = tmp_path / "list.txt"
    listing.write_text(f"{NUMBER}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DNC_")}
    loaded = subprocess.run(
        [*DNC, "load", str(listing)],
        env={**env, "DNC_REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert status(client, NUMBER).json() == {"number": NUMBER, "registered": True}


@pytest.mark.parametrize(
    ("written", "query"),
    [
        ("+12125551234", {}),
        ("%2B12125551234", {}),
        ("12125551234", {}),
        ("(212) 555-1234", {}),
        ("212.555.1234", {}),
        ("2125551234", {"region": "US"}),
        ("020 7946 0018", {"region": "GB"}),
        ("010 1234 5678", {"region": "CN"}),
    ],
)
def test_numbers_in_any_accepted_form_answer_in_e164(
    client: TestClient, written: str, query: dict[str, str]
) -> None:
    answer = status(client, written, **query)
    assert answer.status_code == 200, answer.text
    assert answer.json()["number"].startswith("+")
    assert answer.json()["registered"] is False


def test_the_region_reads_national_formats(client: TestClient, carrier: Headers) -> None:
    assert client.put("/v1/registrations/+442079460018", headers=carrier).status_code == 201
    answer = status(client, "020 7946 0018", region="GB")
    assert answer.json()["number"] == "+442079460018"
    assert answer.json()["registered"] is True
    # The same digits read as a US number are another (invalid) number.
    assert_error(status(client, "020 7946 0018"), 400, "invalid_number")


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("not a number", "not_a_number"),
        ("+1212555", "too_short"),
        ("+1212555123456789", "too_long"),
        ("+12120551234", "invalid_for_region"),
    ],
)
def test_an_invalid_number_is_a_400_with_its_reason(
    client: TestClient, written: str, reason: str
) -> None:
    error = assert_error(status(client, written), 400, "invalid_number")
    assert error["details"]["reason"] == reason


def test_an_unknown_region_is_a_400(client: TestClient) -> None:
    assert_error(status(client, "2125551234", region="XX"), 400, "invalid_region")


def test_no_key_is_needed_and_any_key_is_fine(
    client: TestClient, operator: Headers, carrier: Headers
) -> None:
    for headers in ({}, operator, carrier, ADMIN, {"Authorization": "Bearer not-a-key"}):
        assert client.get(f"/v1/registrations/{NUMBER}", headers=headers).status_code == 200


def test_the_carrier_put_on_the_same_path_still_needs_a_key(client: TestClient) -> None:
    assert_error(client.put(f"/v1/registrations/{NUMBER}"), 401, "missing_key")
    assert status(client, NUMBER).json()["registered"] is False


def test_the_check_is_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"get", "put", "delete"} <= set(paths["/v1/registrations/{number}"])


# -- the per-client limit -------------------------------------------------------------------


def test_over_the_limit_is_a_429_with_retry_after(spare: Callable[..., TestClient]) -> None:
    api = spare(status_checks_per_minute=LIMIT)
    for _ in range(LIMIT):
        assert status(api, NUMBER).status_code == 200
    answer = status(api, NUMBER)
    assert_rate_limited(answer, 60)
    details = answer.json()["error"]["details"]
    assert details["limit"] == LIMIT and details["window_seconds"] == 60
    # Further checks, of any number, stay refused until the window ends.
    assert_rate_limited(status(api, "+13105550000"), 60)


def test_the_limit_is_per_client_address(limited: Settings) -> None:
    first = ready_client(limited)
    elsewhere = TestClient(create_app(limited), client=("203.0.113.9", 40000))
    elsewhere.__enter__()
    try:
        for _ in range(LIMIT):
            assert status(first, NUMBER).status_code == 200
        assert_rate_limited(status(first, NUMBER), 60)
        for _ in range(LIMIT):
            assert status(elsewhere, NUMBER).status_code == 200
        assert_rate_limited(status(elsewhere, NUMBER), 60)
    finally:
        first.__exit__(None, None, None)
        elsewhere.__exit__(None, None, None)


def test_ipv6_clients_are_counted_by_their_64(settings: Settings) -> None:
    """A host holds a whole /64: another address in it is the same client; another /64
    is not."""
    limited = settings.with_(status_checks_per_minute=LIMIT)
    apps = [
        TestClient(create_app(limited), client=(host, 40000))
        for host in ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", "2001:db8:1:3::1")
    ]
    for api in apps:
        api.__enter__()
    try:
        for i in range(LIMIT):
            assert status(apps[i % 2], NUMBER).status_code == 200
        assert_rate_limited(status(apps[0], NUMBER), 60)
        assert_rate_limited(status(apps[1], NUMBER), 60)
        assert status(apps[2], NUMBER).status_code == 200
    finally:
        for api in apps:
            api.__exit__(None, None, None)


@pytest.mark.parametrize(
    ("host", "counted"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        ("fe80::1%eth0", "fe80::/64"),
        ("unknown", "unknown"),
    ],
)
def test_the_client_a_limit_counts(host: str, counted: str) -> None:
    assert limit_client(host) == counted


def test_x_forwarded_for_does_not_reset_the_limit(spare: Callable[..., TestClient]) -> None:
    api = spare(status_checks_per_minute=LIMIT)
    for _ in range(LIMIT):
        assert status(api, NUMBER).status_code == 200
    forged = api.get(f"/v1/registrations/{NUMBER}", headers={"X-Forwarded-For": "198.51.100.7"})
    assert_rate_limited(forged, 60)


def test_the_limit_is_shared_by_apps_on_the_same_redis(
    spare: Callable[..., TestClient],
) -> None:
    """Two workers (or processes) count into one window; alternating does not double it."""
    one, two = spare(status_checks_per_minute=LIMIT), spare(status_checks_per_minute=LIMIT)
    for i in range(LIMIT):
        assert status(one if i % 2 else two, NUMBER).status_code == 200
    assert_rate_limited(status(one, NUMBER), 60)
    assert_rate_limited(status(two, NUMBER), 60)


def test_invalid_numbers_are_answered_without_counting(spare: Callable[..., TestClient]) -> None:
    api = spare(status_checks_per_minute=LIMIT)
    for _ in range(LIMIT * 2):
        assert_error(status(api, "not a number"), 400, "invalid_number")
    for _ in range(LIMIT):
        assert status(api, NUMBER).status_code == 200


def test_a_counter_expires_with_its_window(
    spare: Callable[..., TestClient], redis_client: redis.Redis
) -> None:
    """The counter expires with the window: no counter outlives it, so no client is stuck."""
    api = spare(status_checks_per_minute=LIMIT)
    for _ in range(LIMIT + 3):
        status(api, NUMBER)
    counters = list(redis_client.scan_iter("dnc:limit:*"))
    assert len(counters) == 1
    assert 0 < redis_client.pttl(counters[0]) <= 60_000
    redis_client.pexpire(counters[0], 1)  # the minute passes
    time.sleep(0.05)
    assert status(api, NUMBER).status_code == 200


def test_the_limit_is_read_from_the_environment() -> None:
    assert load_settings({}).status_checks_per_minute == 30
    assert load_settings({"DNC_STATUS_RATE_LIMIT": "120"}).status_checks_per_minute == 120


def test_trusted_proxies_are_read_from_the_environment() -> None:
    assert load_settings({}).trusted_proxies == "127.0.0.1"
    assert load_settings({"DNC_TRUSTED_PROXIES": "*"}).trusted_proxies == "*"
    assert load_settings({"DNC_TRUSTED_PROXIES": "none"}).trusted_proxies == "none"
    got = load_settings({"DNC_TRUSTED_PROXIES": " 10.0.0.0/8, ::1 "}).trusted_proxies
    assert got == "10.0.0.0/8,::1"
    for bad in (",", "10.0.0.0/33", "nginx"):
        with pytest.raises(ConfigError, match="DNC_TRUSTED_PROXIES"):
            load_settings({"DNC_TRUSTED_PROXIES": bad})


def test_redis_down_is_a_503(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "redis")
    api = ready_client(
        Settings(redis_url=server.url, admin_key=ADMIN_KEY, data_dir=tmp_path / "data")
    )
    try:
        assert status(api, NUMBER).status_code == 200
        server.kill()
        answer = status(api, NUMBER)
        assert_error(answer, 503, "redis_unavailable")
        assert answer.headers.get("retry-after")
        assert "registered" not in answer.json()
    finally:
        api.__exit__(None, None, None)
        server.kill()


# -- operator and carrier keys with a rate_limit --------------------------------------------


def new_account(client: TestClient, role: str, rate_limit: int | None) -> Headers:
    body: dict[str, object] = {"name": f"limited {role}", "role": role}
    if rate_limit is not None:
        body["rate_limit"] = rate_limit
    answer = client.post("/v1/operators", json=body, headers=ADMIN)
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['api_key']}"}


def test_an_operator_over_its_rate_limit_gets_429(client: TestClient) -> None:
    def burst() -> list[Response]:
        key = new_account(client, "operator", 3)
        return [client.get(f"/v1/numbers/{NUMBER}", headers=key) for _ in range(4)]

    answers = in_one_window(burst)
    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    assert_rate_limited(answers[3], 1)
    assert answers[3].json()["error"]["details"]["limit"] == 3


def test_the_operator_limit_covers_every_endpoint_of_the_key(client: TestClient) -> None:
    """Look-ups, scrubs, receipts, change lists and exports all count into one window."""

    def burst() -> list[Response]:
        key = new_account(client, "operator", 5)
        return [
            client.get(f"/v1/numbers/{NUMBER}", headers=key),
            client.post("/v1/scrub", json={"numbers": [NUMBER]}, headers=key),
            client.get("/v1/changes?since=0", headers=key),
            client.get("/v1/export", headers=key),
            client.get("/v1/scrubs/no-such-receipt", headers=key),
            client.post(
                "/v1/scrub",
                content=f"{NUMBER}\n".encode(),
                headers={**key, "Content-Type": "text/plain"},
            ),
        ]

    answers = in_one_window(burst)
    assert [a.status_code for a in answers[:5]] == [200, 200, 200, 200, 404]
    assert_rate_limited(answers[-1], 1)
    assert "x-scrub-receipt" not in answers[-1].headers


def test_a_carrier_over_its_rate_limit_gets_429(client: TestClient) -> None:
    key = new_account(client, "carrier", 2)
    answers = [
        client.put(f"/v1/registrations/{NUMBER}", headers=key),
        client.put("/v1/registrations/+13105550000", headers=key),
        client.put("/v1/registrations/+14155550000", headers=key),
    ]
    assert [a.status_code for a in answers[:2]] == [201, 201]
    assert_rate_limited(answers[-1], 1)
    # A refused registration is not stored.
    assert status(client, "+14155550000").json()["registered"] is False


def test_the_operator_window_lasts_one_second(client: TestClient) -> None:
    key = new_account(client, "operator", 1)
    assert client.get(f"/v1/numbers/{NUMBER}", headers=key).status_code == 200
    refused = client.get(f"/v1/numbers/{NUMBER}", headers=key)
    assert_rate_limited(refused, 1)
    time.sleep(int(refused.headers["retry-after"]))
    assert client.get(f"/v1/numbers/{NUMBER}", headers=key).status_code == 200


def test_the_operator_limit_is_shared_by_apps_on_the_same_redis(
    client: TestClient, spare: Callable[..., TestClient]
) -> None:
    other = spare()

    def burst() -> list[Response]:
        key = new_account(client, "operator", 2)
        return [app.get(f"/v1/numbers/{NUMBER}", headers=key) for app in (client, other) * 2]

    answers = in_one_window(burst)
    assert [a.status_code for a in answers[:2]] == [200, 200]
    assert_rate_limited(answers[2], 1)
    assert_rate_limited(answers[3], 1)


def test_accounts_without_a_rate_limit_touch_no_counter(
    client: TestClient, redis_client: redis.Redis
) -> None:
    key = new_account(client, "operator", None)
    for _ in range(50):
        assert client.get(f"/v1/numbers/{NUMBER}", headers=key).status_code == 200
    for _ in range(5):
        assert client.get("/v1/changes?since=0", headers=ADMIN).status_code == 200
    assert list(redis_client.scan_iter("dnc:limit:*")) == []


def eval_calls(redis_client: redis.Redis) -> int:
    """Scripts Redis has run; the counter is a script, a look-up runs none."""
    stats = redis_client.info("commandstats")
    return sum(
        int(stats.get(name, {}).get("calls", 0)) for name in ("cmdstat_eval", "cmdstat_evalsha")
    )


def test_an_unlimited_account_pays_no_extra_round_trip(
    client: TestClient, redis_client: redis.Redis
) -> None:
    unlimited = new_account(client, "operator", None)
    limited = new_account(client, "operator", 100)
    for key in (unlimited, limited):  # resolve and cache both keys first
        assert client.get(f"/v1/numbers/{NUMBER}", headers=key).status_code == 200
    before = eval_calls(redis_client)
    for _ in range(10):
        client.get(f"/v1/numbers/{NUMBER}", headers=unlimited)
    assert eval_calls(redis_client) == before
    for _ in range(10):
        client.get(f"/v1/numbers/{NUMBER}", headers=limited)
    assert eval_calls(redis_client) == before + 10


def test_a_rate_limit_must_be_positive(client: TestClient) -> None:
    for bad in (0, -1, "fast"):
        answer = client.post(
            "/v1/operators",
            json={"name": "x", "role": "operator", "rate_limit": bad},
            headers=ADMIN,
        )
        assert_error(answer, 400, "invalid_request")


def test_a_limited_key_meets_a_missing_redis_with_503(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "redis")
    api = ready_client(
        Settings(
            redis_url=server.url,
            admin_key=ADMIN_KEY,
            data_dir=tmp_path / "data",
            auth_cache_seconds=60,
        )
    )
    try:
        key = new_account(api, "operator", 1000)
        assert api.get(f"/v1/numbers/{NUMBER}", headers=key).status_code == 200
        server.kill()
        assert_error(api.get(f"/v1/numbers/{NUMBER}", headers=key), 503, "redis_unavailable")
    finally:
        api.__exit__(None, None, None)
        server.kill()


def test_the_public_url_is_an_http_address_short_enough_for_a_text() -> None:
    assert load_settings({}).public_url is None
    url = load_settings({"DNC_PUBLIC_URL": "https://donotcall.example.gov/"}).public_url
    assert url == "https://donotcall.example.gov"
    for bad in (
        "donotcall.example.gov",
        "ftp://x.example",
        "https://" + "x" * 100 + ".example",
        "http://[x",
        "https://x.example:99999",
    ):
        with pytest.raises(ConfigError, match="DNC_PUBLIC_URL"):
            load_settings({"DNC_PUBLIC_URL": bad})

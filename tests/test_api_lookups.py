"""Single look-ups, GET /v1/numbers/{number} (CONTRACT sections 3 and 6)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from conftest import ADMIN, assert_error, ready_client
from fastapi.testclient import TestClient

from registry.config import Settings

pytestmark = pytest.mark.cluster  # every test on one redis-server and on a Redis Cluster
Headers = dict[str, str]


def look_up(client: TestClient, operator: Headers, number: str, **query: str) -> dict[str, Any]:
    answer = client.get(f"/v1/numbers/{number}", params=query, headers=operator)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"number", "status", "reason"}
    return body  # type: ignore[no-any-return]


def register(client: TestClient, carrier: Headers, number: str, **prefs: Any) -> None:
    answer = client.put(f"/v1/registrations/{number}", json=prefs or None, headers=carrier)
    assert answer.status_code in (200, 201), answer.text


def test_a_number_not_registered_is_callable(client: TestClient, operator: Headers) -> None:
    assert look_up(client, operator, "+12125551234") == {
        "number": "+12125551234",
        "status": "callable",
        "reason": "not_registered",
    }


@pytest.mark.parametrize("query", [{}, {"channel": "voice"}, {"channel": "sms"}, {"category": "4"}])
def test_a_registered_number_is_blocked(
    client: TestClient, carrier: Headers, operator: Headers, query: dict[str, str]
) -> None:
    register(client, carrier, "+12125551234")
    assert look_up(client, operator, "+12125551234", **query) == {
        "number": "+12125551234",
        "status": "blocked",
        "reason": "registered",
    }


def test_a_channel_the_registration_does_not_block(
    client: TestClient, carrier: Headers, operator: Headers
) -> None:
    register(client, carrier, "+12125551234", channels=["voice"])
    sms = look_up(client, operator, "+12125551234", channel="sms")
    assert (sms["status"], sms["reason"]) == ("callable", "channel_not_blocked")
    voice = look_up(client, operator, "+12125551234", channel="voice")
    assert (voice["status"], voice["reason"]) == ("blocked", "registered")
    # No channel asks about both, and voice is blocked.
    both = look_up(client, operator, "+12125551234")
    assert (both["status"], both["reason"]) == ("blocked", "registered")


def test_a_category_the_registration_allows(
    client: TestClient, carrier: Headers, operator: Headers
) -> None:
    register(client, carrier, "+12125551234", allow_categories=[3, 7])
    for category in ("3", "7"):
        answer = look_up(client, operator, "+12125551234", category=category)
        assert (answer["status"], answer["reason"]) == ("callable", "category_allowed")
    for category in ("1", "2", "8"):
        answer = look_up(client, operator, "+12125551234", category=category)
        assert (answer["status"], answer["reason"]) == ("blocked", "registered")
    # A request that names no category is blocked by any registration.
    assert look_up(client, operator, "+12125551234")["status"] == "blocked"


def test_channel_and_category_together(
    client: TestClient, carrier: Headers, operator: Headers
) -> None:
    register(client, carrier, "+12125551234", channels=["sms"], allow_categories=[2])
    cases = {
        ("sms", "2"): ("callable", "category_allowed"),
        ("sms", "5"): ("blocked", "registered"),
        ("voice", "5"): ("callable", "channel_not_blocked"),
        ("", "5"): ("blocked", "registered"),
    }
    for (channel, category), expected in cases.items():
        answer = look_up(client, operator, "+12125551234", channel=channel, category=category)
        assert (answer["status"], answer["reason"]) == expected, (channel, category)


def test_a_look_up_after_deregistration_is_callable_again(
    client: TestClient, carrier: Headers, operator: Headers
) -> None:
    register(client, carrier, "+12125551234")
    assert client.delete("/v1/registrations/+12125551234", headers=carrier).status_code == 200
    assert look_up(client, operator, "+12125551234")["reason"] == "not_registered"


@pytest.mark.parametrize(
    ("path", "query", "e164"),
    [
        ("+12125551234", {}, "+12125551234"),
        ("%2B12125551234", {}, "+12125551234"),
        ("(212)%20555-1234", {}, "+12125551234"),
        ("212.555.1234", {}, "+12125551234"),
        ("010%201234%205678", {"region": "CN"}, "+861012345678"),
        ("010%201234%205678", {"region": "cn"}, "+861012345678"),
        ("13800138000", {"region": "CN"}, "+8613800138000"),
    ],
)
def test_numbers_in_any_accepted_form_are_looked_up_as_e164(
    client: TestClient,
    carrier: Headers,
    operator: Headers,
    path: str,
    query: dict[str, str],
    e164: str,
) -> None:
    register(client, carrier, e164)
    assert look_up(client, operator, path, **query) == {
        "number": e164,
        "status": "blocked",
        "reason": "registered",
    }


@pytest.mark.parametrize(
    ("path", "query", "reason"),
    [
        ("abc", {}, "not_a_number"),
        ("%2B1212555", {}, "too_short"),
        ("%2B12125551234567", {}, "too_long"),
        ("%2B999123456789", {}, "invalid_country_code"),
        ("%2B11235551234", {}, "invalid_for_region"),
        ("010%201234%205678", {}, "too_long"),  # a Chinese number read as a US one
        ("%20", {}, "empty"),
    ],
)
def test_an_invalid_number_is_invalid_with_its_reason_and_no_number(
    client: TestClient, operator: Headers, path: str, query: dict[str, str], reason: str
) -> None:
    assert look_up(client, operator, path, **query) == {
        "number": None,
        "status": "invalid",
        "reason": reason,
    }


def test_a_number_written_with_slashes_is_one_path_segment_on_every_route(
    client: TestClient, carrier: Headers, operator: Headers
) -> None:
    """`030/12345678` is how Germans write a number, and phonenumbers reads it; sent as
    %2F (as the portal sends it), the slash stays in its segment, not a 404."""
    assert client.put("/v1/registrations/212%2F555-1234", headers=carrier).status_code == 201
    assert look_up(client, operator, "212%2F555%2F1234") == {
        "number": "+12125551234",
        "status": "blocked",
        "reason": "registered",
    }
    german = look_up(client, operator, "030%2f12345678", region="DE")
    assert german["number"] == "+493012345678"
    status = client.get("/v1/registrations/(212)%2F555-1234")
    assert status.status_code == 200 and status.json()["registered"] is True
    held = client.get("/v1/numbers/212%2F5551234/consents", headers=ADMIN)
    assert held.status_code == 200, held.text
    removed = client.delete("/v1/registrations/212%2F555%2F1234", headers=carrier)
    assert removed.status_code == 200 and removed.json()["number"] == "+12125551234"
    # A slash the path itself has still divides it.
    assert client.get("/v1/numbers/212/5551234", headers=operator).status_code == 404


@pytest.mark.parametrize("channel", ["fax", "VOICE", "voice,sms", "both"])
def test_an_unknown_channel_is_a_400(client: TestClient, operator: Headers, channel: str) -> None:
    answer = client.get("/v1/numbers/+12125551234", params={"channel": channel}, headers=operator)
    assert_error(answer, 400, "invalid_channel")


@pytest.mark.parametrize(
    "category", ["0", "9", "x", "1.5", "-1", "banking", "\u0663", "\uff13", "1_0"]
)
def test_an_unknown_category_is_a_400(client: TestClient, operator: Headers, category: str) -> None:
    answer = client.get("/v1/numbers/+12125551234", params={"category": category}, headers=operator)
    assert_error(answer, 400, "invalid_category")


@pytest.mark.parametrize("region", ["XX", "USA", "001", "1"])
def test_an_unknown_region_is_a_400(client: TestClient, operator: Headers, region: str) -> None:
    answer = client.get("/v1/numbers/+12125551234", params={"region": region}, headers=operator)
    assert_error(answer, 400, "invalid_region")


def test_a_bad_parameter_is_a_400_even_for_an_invalid_number(
    client: TestClient, operator: Headers
) -> None:
    assert_error(
        client.get("/v1/numbers/abc", params={"channel": "fax"}, headers=operator),
        400,
        "invalid_channel",
    )


def test_look_ups_need_an_operator_key(client: TestClient, carrier: Headers) -> None:
    assert_error(client.get("/v1/numbers/+12125551234"), 401, "missing_key")
    assert_error(client.get("/v1/numbers/+12125551234", headers=carrier), 403, "forbidden")


def test_a_look_up_reads_what_another_worker_just_wrote(
    client: TestClient, carrier: Headers, operator: Headers, settings: Settings
) -> None:
    other = ready_client(settings)
    try:
        for n in range(20):
            number = f"+1212555{n:04d}"
            assert other.put(f"/v1/registrations/{number}", headers=carrier).status_code == 201
            assert look_up(client, operator, number)["status"] == "blocked"
    finally:
        other.__exit__(None, None, None)


def test_a_query_of_thousands_of_names_is_refused_at_once(
    client: TestClient, operator: Headers
) -> None:
    """Finding the repeated name by a scan per name cost 17,000 names about 3 s of a
    worker's CPU (10,000 about 1 s), before any key was asked for: one request froze
    the worker."""
    names = "&".join(f"{i:x}=" for i in range(10_000)) + f"&{9_999:x}="  # 56 KB
    for path in ("/healthz", "/v1/numbers/+12125551234", "/v1/registrations/+12125551234"):
        started = time.perf_counter()
        answer = client.get(f"{path}?{names}", headers=operator)
        assert time.perf_counter() - started < 0.5, path
        assert_error(answer, 400, "too_many_parameters")
    # Under the limit, a repeat at the very end is still found, by name.
    some = "&".join(f"n{i}=" for i in range(32)) + "&n31="  # 33: one past the limit
    many = client.get(f"/healthz?{some}")
    assert_error(many, 400, "too_many_parameters")
    answer = client.get("/healthz?" + "&".join(f"n{i}=" for i in range(30)) + "&n29=")
    assert assert_error(answer, 400, "repeated_parameter")["details"] == {"parameter": "n29"}


def test_a_parameter_given_twice_is_400_not_the_last_one(
    client: TestClient, carrier: Headers, operator: Headers
) -> None:
    """`channel=voice&channel=sms` read as sms alone would call a number whose registration
    blocks calls only; every route refuses a repeated parameter, before the key."""
    assert client.put("/v1/registrations/+12125551234", json={"channels": ["voice"]},
                      headers=carrier).status_code == 201  # fmt: skip
    twice = "channel=voice&channel=sms"
    answer = client.get(f"/v1/numbers/+12125551234?{twice}", headers=operator)
    error = assert_error(answer, 400, "repeated_parameter")
    assert error["details"] == {"parameter": "channel"}
    assert "'channel' is given 2 times" in error["message"]
    scrub = client.post(f"/v1/scrub?{twice}", json={"numbers": ["+12125551234"]},
                        headers=operator)  # fmt: skip
    assert_error(scrub, 400, "repeated_parameter")
    changes = client.get("/v1/changes?since=0&since=0", headers=operator)
    assert_error(changes, 400, "repeated_parameter")
    status = client.get("/v1/registrations/+12125551234?region=US&region=US")
    assert_error(status, 400, "repeated_parameter")
    no_key = client.get(f"/v1/numbers/+12125551234?{twice}")
    assert_error(no_key, 400, "repeated_parameter")
    # Once each is as before.
    once = client.get("/v1/numbers/+12125551234?channel=voice", headers=operator).json()
    assert once["status"] == "blocked"


def test_a_trailing_slash_is_answered_as_the_path_without_it(
    client: TestClient, carrier: Headers, operator: Headers
) -> None:
    register(client, carrier, "+12125551234")
    for path in ("/v1/numbers/+12125551234/", "/v1/numbers/+12125551234//"):
        answer = client.get(
            path, params={"channel": "sms"}, headers=operator, follow_redirects=False
        )
        assert answer.status_code == 200, answer.text  # not a 307 to follow
        assert answer.json()["status"] == "blocked"
    scrub = client.post(
        "/v1/scrub/",
        json={"numbers": ["+12125551234", "+12125550000"]},
        headers=operator,
        follow_redirects=False,
    )
    assert scrub.status_code == 200, scrub.text
    assert scrub.json()["counts"]["blocked"] == 1
    assert client.head("/healthz/", follow_redirects=False).status_code == 200
    assert client.get("/").status_code == 200  # the root keeps its slash
    assert_error(client.get("/v1/numbers/", headers=operator), 404, "not_found")

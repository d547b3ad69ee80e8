"""Carrier registrations, the change list and the full list (CONTRACT sections 3 and 6)."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
from conftest import assert_error, ready_client
from fastapi.testclient import TestClient
from httpx import Response

from loader.export import ExportError, export_changes, export_full
from loader.load import load_files
from registry import rules
from registry.config import Settings
from registry.store import changes as changes_log
from registry.store import keys
from registry.store.connect import async_client
from registry.store.registrations import RegistrationStore

pytestmark = pytest.mark.cluster  # every test on one redis-server and on a Redis Cluster
Headers = dict[str, str]
NewKey = Callable[..., Headers]


def when(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def register(client: TestClient, carrier: Headers, number: str, **body: Any) -> Response:
    answer = client.put(f"/v1/registrations/{number}", json=body or None, headers=carrier)
    assert answer.status_code in (200, 201), answer.text
    return answer


def status_of(client: TestClient, operator: Headers, number: str) -> str:
    answer = client.get(f"/v1/numbers/{number}", headers=operator)
    assert answer.status_code == 200, answer.text
    return answer.json()["status"]  # type: ignore[no-any-return]


def next_second() -> None:
    """Sleep into the next wall-clock second, so a new timestamp would differ."""
    time.sleep(1.02 - time.time() % 1)


# -- PUT /v1/registrations/{number} ---------------------------------------------------------


def test_a_new_registration_is_201_with_its_times_and_preferences(
    client: TestClient, carrier: Headers
) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    answer = client.put("/v1/registrations/+12125551234", headers=carrier)
    after = datetime.now(UTC)
    assert answer.status_code == 201
    body = answer.json()
    assert set(body) == {"number", "registered_at", "effective_at", "channels", "allow_categories"}
    assert body["number"] == "+12125551234"
    assert before <= when(body["registered_at"]) <= after
    assert when(body["effective_at"]) - when(body["registered_at"]) == timedelta(days=31)
    assert sorted(body["channels"]) == ["sms", "voice"]  # default: both
    assert body["allow_categories"] == []  # default: full block


def test_a_registration_blocks_the_number_at_once(
    client: TestClient, carrier: Headers, operator: Headers
) -> None:
    assert status_of(client, operator, "+12125551234") == "callable"
    register(client, carrier, "+12125551234")
    assert status_of(client, operator, "+12125551234") == "blocked"


@pytest.fixture
def grace_client(settings: Settings) -> Iterator[TestClient]:
    api = ready_client(settings.with_(grace_days=7))
    yield api
    api.__exit__(None, None, None)


def test_effective_at_follows_the_configured_grace_days(
    grace_client: TestClient, client: TestClient, carrier: Headers
) -> None:
    body = grace_client.put("/v1/registrations/+12125551234", headers=carrier).json()
    assert when(body["effective_at"]) - when(body["registered_at"]) == timedelta(days=7)


def test_preferences_are_stored_and_echoed(client: TestClient, carrier: Headers) -> None:
    answer = register(client, carrier, "+12125551234", channels=["sms"], allow_categories=[5, 3, 5])
    assert answer.status_code == 201
    body = answer.json()
    assert body["channels"] == ["sms"]
    assert sorted(body["allow_categories"]) == [3, 5]


def test_an_update_is_200_and_keeps_registered_at(
    client: TestClient, carrier: Headers, operator: Headers
) -> None:
    first = register(client, carrier, "+12125551234").json()
    next_second()
    answer = register(client, carrier, "+12125551234", channels=["voice"], allow_categories=[2])
    assert answer.status_code == 200
    body = answer.json()
    assert body["registered_at"] == first["registered_at"]  # the liability clock keeps running
    assert body["effective_at"] == first["effective_at"]
    assert body["channels"] == ["voice"] and body["allow_categories"] == [2]
    # The new preferences are what look-ups now apply.
    sms = client.get("/v1/numbers/+12125551234?channel=sms", headers=operator).json()
    assert sms["reason"] == "channel_not_blocked"
    voice2 = client.get("/v1/numbers/+12125551234?channel=voice&category=2", headers=operator)
    assert voice2.json()["reason"] == "category_allowed"


def test_an_update_without_preferences_goes_back_to_a_full_block(
    client: TestClient, carrier: Headers
) -> None:
    register(client, carrier, "+12125551234", channels=["sms"], allow_categories=[1])
    body = register(client, carrier, "+12125551234").json()
    assert sorted(body["channels"]) == ["sms", "voice"] and body["allow_categories"] == []


def test_a_number_after_deregistration_is_registered_anew(
    client: TestClient, carrier: Headers
) -> None:
    first = register(client, carrier, "+12125551234").json()
    assert client.delete("/v1/registrations/+12125551234", headers=carrier).status_code == 200
    next_second()
    again = register(client, carrier, "+12125551234")
    assert again.status_code == 201
    assert when(again.json()["registered_at"]) > when(first["registered_at"])


@pytest.mark.parametrize(
    "path",
    [
        "/v1/registrations/+12125551234",
        "/v1/registrations/%2B12125551234",
        "/v1/registrations/12125551234",
        "/v1/registrations/(212)%20555-1234",
        "/v1/registrations/212.555.1234",
        "/v1/registrations/tel:+1-212-555-1234",
    ],
)
def test_a_number_in_the_path_may_be_written_any_accepted_way(
    client: TestClient, carrier: Headers, path: str
) -> None:
    answer = client.put(path, headers=carrier)
    assert answer.status_code == 201, answer.text
    assert answer.json()["number"] == "+12125551234"
    assert client.put("/v1/registrations/%2B12125551234", headers=carrier).status_code == 200


def test_a_national_number_is_read_against_the_region(
    client: TestClient, carrier: Headers, operator: Headers
) -> None:
    answer = client.put("/v1/registrations/010%201234%205678?region=CN", headers=carrier)
    assert answer.status_code == 201
    assert answer.json()["number"] == "+861012345678"
    assert status_of(client, operator, "+861012345678") == "blocked"
    # Without the region the same digits are read as a US number, which it is not.
    error = assert_error(
        client.put("/v1/registrations/010%201234%205678", headers=carrier), 400, "invalid_number"
    )
    assert error["details"]["reason"]


def test_the_region_may_be_in_the_body(
    client: TestClient, carrier: Headers, operator: Headers
) -> None:
    """The contract reads national numbers against "the request's region field"."""
    path = "/v1/registrations/020%207946%200956"
    answer = client.put(path, json={"region": "GB", "channels": ["voice"]}, headers=carrier)
    assert answer.status_code == 201, answer.text
    assert answer.json()["number"] == "+442079460956"
    assert answer.json()["channels"] == ["voice"]
    assert status_of(client, operator, "+442079460956") == "blocked"
    agreed = client.put(f"{path}?region=gb", json={"region": "GB"}, headers=carrier)
    assert agreed.status_code == 200, agreed.text
    differ = client.put(f"{path}?region=US", json={"region": "GB"}, headers=carrier)
    assert "differ" in assert_error(differ, 400, "invalid_region")["message"]
    unknown = client.put(path, json={"region": "XX"}, headers=carrier)
    assert_error(unknown, 400, "invalid_region")


def test_an_unknown_region_is_a_400(client: TestClient, carrier: Headers) -> None:
    answer = client.put("/v1/registrations/010%201234%205678?region=XX", headers=carrier)
    assert_error(answer, 400, "invalid_region")


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("abc", "not_a_number"),
        ("%2B1212555", "too_short"),
        ("%2B12125551234567", "too_long"),
        ("%2B999123456789", "invalid_country_code"),
        ("%2B11235551234", "invalid_for_region"),
    ],
)
def test_an_invalid_number_is_a_400_with_the_reason(
    client: TestClient, carrier: Headers, redis_client: Any, number: str, reason: str
) -> None:
    version = redis_client.get("dnc:{dnc}:version")
    answer = client.put(f"/v1/registrations/{number}", headers=carrier)
    error = assert_error(answer, 400, "invalid_number")
    assert error["details"]["reason"] == reason
    assert redis_client.get("dnc:{dnc}:version") == version  # nothing was written
    assert_error(
        client.delete(f"/v1/registrations/{number}", headers=carrier), 400, "invalid_number"
    )


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/registrations", '{"number": "\\ud800"}'),
        ("/v1/deregistrations", '{"number": "+1212\\udfff5551234"}'),
        ("/v1/sms/inbound", '{"from": "\\ud800", "to": "55555", "text": "STOP"}'),
    ],
)
def test_a_lone_surrogate_in_a_number_is_a_400(
    client: TestClient, carrier: Headers, path: str, body: str
) -> None:
    """JSON lets a client send half a UTF-16 pair ("\\ud800"), which no UTF-8 answer can
    echo as it came: the error shows it escaped, instead of failing to encode (a 500)."""
    headers = {**carrier, "Content-Type": "application/json"}
    answer = client.post(path, content=body.encode(), headers=headers)
    error = assert_error(answer, 400, "invalid_number")
    assert "\\ud" in error["details"]["input"], error


@pytest.mark.parametrize(
    "body",
    [
        {"channels": ["fax"]},
        {"channels": []},
        {"channels": ["Voice"]},
        {"allow_categories": [0]},
        {"allow_categories": [9]},
        {"allow_categories": [-3]},
    ],
)
def test_unknown_preferences_are_a_400(
    client: TestClient, carrier: Headers, operator: Headers, body: dict[str, Any]
) -> None:
    answer = client.put("/v1/registrations/+12125551234", json=body, headers=carrier)
    assert_error(answer, 400, "invalid_preferences")
    assert status_of(client, operator, "+12125551234") == "callable"


@pytest.mark.parametrize(
    "body",
    [
        {"channels": "voice"},  # not a list
        {"channels": ["voice", "sms", "voice"]},
        {"allow_categories": 3},
        {"allow_categories": [True]},  # a boolean is not a category code
        {"allow_categories": ["three"]},
        {"allow_categories": [1.5]},
        {"source": "a b c"},
        {"source": "x" * 65},
        {"number": "+12125550000"},  # unknown fields are refused, not ignored
        {"channels": ["voice"], "expires": "never"},
        ["voice"],
    ],
)
def test_malformed_registration_bodies_are_a_400(
    client: TestClient, carrier: Headers, operator: Headers, body: Any
) -> None:
    answer = client.put("/v1/registrations/+12125551234", json=body, headers=carrier)
    assert_error(answer, 400, "invalid_request")
    assert status_of(client, operator, "+12125551234") == "callable"


def test_a_body_that_is_not_json_is_a_400(client: TestClient, carrier: Headers) -> None:
    answer = client.put(
        "/v1/registrations/+12125551234",
        content=b"channels=voice",
        headers={**carrier, "Content-Type": "application/json"},
    )
    assert_error(answer, 400, "invalid_json")


@pytest.mark.parametrize("content_type", ["text/plain", "text/json", None])
def test_json_sent_as_another_content_type_is_read_as_json(
    client: TestClient, carrier: Headers, operator: Headers, content_type: str | None
) -> None:
    headers = {**carrier, **({"Content-Type": content_type} if content_type else {})}
    answer = client.put(
        "/v1/registrations/+12125551234", content=b'{"channels": ["voice"]}', headers=headers
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["channels"] == ["voice"]


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", None])
def test_a_form_body_is_a_415_naming_application_json(
    client: TestClient, carrier: Headers, operator: Headers, content_type: str | None
) -> None:
    headers = {**carrier, **({"Content-Type": content_type} if content_type else {})}
    answer = client.put(
        "/v1/registrations/+12125551234", content=b"channels=voice", headers=headers
    )
    error = assert_error(answer, 415, "unsupported_media_type")
    assert "Content-Type: application/json" in error["message"]
    assert error["details"] == {"content_type": content_type}
    assert status_of(client, operator, "+12125551234") == "callable"


def test_a_body_over_the_small_body_limit_is_a_413(
    client: TestClient, carrier: Headers, operator: Headers
) -> None:
    answer = client.put(
        "/v1/registrations/+12125551234",
        content=b'{"source": "' + b"x" * 20_000_000 + b'"}',
        headers={**carrier, "Content-Type": "application/json"},
    )
    assert_error(answer, 413, "body_too_large")
    assert status_of(client, operator, "+12125551234") == "callable"


def test_a_source_is_accepted(client: TestClient, carrier: Headers) -> None:
    answer = register(client, carrier, "+12125551234", source="sms:short-code.1234")
    assert answer.status_code == 201


# -- DELETE /v1/registrations/{number} ------------------------------------------------------


def test_deregistration_answers_registered_false_then_404(
    client: TestClient, carrier: Headers, operator: Headers
) -> None:
    register(client, carrier, "+12125551234")
    answer = client.delete("/v1/registrations/%2B12125551234", headers=carrier)
    assert answer.status_code == 200
    assert answer.json() == {"number": "+12125551234", "registered": False}
    assert status_of(client, operator, "+12125551234") == "callable"
    again = client.delete("/v1/registrations/+12125551234", headers=carrier)
    assert_error(again, 404, "not_registered")


def ended_periods(redis_client: Any, number: int) -> list[list[str]]:
    """The number's ended registrations, oldest first, as their fields."""
    key = keys.ended(keys.bucket_of(number), keys.member_of(number))
    return [entry.decode().split("|") for entry in redis_client.lrange(key, 0, -1)]


def test_each_ended_registration_is_kept_for_the_retention_after_its_own_end(
    client: TestClient, carrier: Headers, new_key: NewKey, redis_client: Any
) -> None:
    other = new_key("carrier")
    register(client, carrier, "+12125551234", source="ivr")
    assert client.delete("/v1/registrations/+12125551234", headers=carrier).status_code == 200
    register(client, other, "+12125551234", channels=["sms"], source="sms")
    assert client.delete("/v1/registrations/+12125551234", headers=other).status_code == 200
    first, second = ended_periods(redis_client, 12125551234)
    # registered_at|channels|allowed|source|ended_at|who: the second period did not
    # overwrite the first.
    assert first[3].endswith(":ivr") and second[3].endswith(":sms")
    assert first[4] <= second[4] and first[5] != second[5]
    assert second[1] == "2"  # sms only
    key = keys.ended(keys.bucket_of(12125551234), keys.member_of(12125551234))
    assert 152 * 86400 < redis_client.ttl(key) <= 153 * 86400


def test_an_ended_period_past_its_retention_goes_when_the_next_one_ends(
    client: TestClient, carrier: Headers, redis_client: Any
) -> None:
    key = keys.ended(keys.bucket_of(12125551234), keys.member_of(12125551234))
    long_ago = int(time.time()) - 154 * 86400
    redis_client.rpush(key, f"1|3|0|old:web|{long_ago}|subscriber")
    redis_client.rpush(key, f"1|3|0|recent:web|{long_ago + 2 * 86400}|subscriber")
    register(client, carrier, "+12125551234")
    assert client.delete("/v1/registrations/+12125551234", headers=carrier).status_code == 200
    periods = ended_periods(redis_client, 12125551234)
    assert [period[3] for period in periods[:1]] == ["recent:web"]
    assert len(periods) == 2


def test_an_ended_record_kept_as_one_string_stays_as_the_first_period(
    client: TestClient, carrier: Headers, redis_client: Any
) -> None:
    """Records written before the history was a list."""
    key = keys.ended(keys.bucket_of(12125551234), keys.member_of(12125551234))
    redis_client.set(key, f"5|3|0|earlier:web|{int(time.time()) - 86400}|subscriber")
    register(client, carrier, "+12125551234")
    assert client.delete("/v1/registrations/+12125551234", headers=carrier).status_code == 200
    periods = ended_periods(redis_client, 12125551234)
    assert [period[3] for period in periods][0] == "earlier:web"
    assert len(periods) == 2


def test_deregistering_a_number_never_registered_is_a_404(
    client: TestClient, carrier: Headers
) -> None:
    assert_error(
        client.delete("/v1/registrations/+12125551234", headers=carrier), 404, "not_registered"
    )


def test_deregistration_reads_national_numbers_against_the_region(
    client: TestClient, carrier: Headers
) -> None:
    register(client, carrier, "+861012345678")
    answer = client.delete("/v1/registrations/010-12345678?region=CN", headers=carrier)
    assert answer.json() == {"number": "+861012345678", "registered": False}


def test_deregistration_leaves_other_numbers_registered(
    client: TestClient, carrier: Headers, operator: Headers
) -> None:
    for n in ("+12125551234", "+12125551235"):  # neighbours in the same bucket
        register(client, carrier, n)
    client.delete("/v1/registrations/+12125551234", headers=carrier)
    assert status_of(client, operator, "+12125551235") == "blocked"


# -- GET /v1/changes ------------------------------------------------------------------------


def changes(client: TestClient, key: Headers, **query: Any) -> dict[str, Any]:
    answer = client.get("/v1/changes", params=query, headers=key)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"changes", "next"}
    return body  # type: ignore[no-any-return]


def ops(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["number"], c["op"]) for c in body["changes"]]


def test_the_change_list_shows_adds_and_removes_with_times(
    client: TestClient, carrier: Headers, operator: Headers
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    register(client, carrier, "+12125551234")
    register(client, carrier, "+861012345678")
    client.delete("/v1/registrations/+12125551234", headers=carrier)
    after = datetime.now(UTC) + timedelta(seconds=1)
    body = changes(client, operator)
    assert ops(body) == [
        ("+12125551234", "add"),
        ("+861012345678", "add"),
        ("+12125551234", "remove"),
    ]
    times = [when(c["at"]) for c in body["changes"]]
    assert all(before <= t <= after for t in times)
    assert times == sorted(times)
    assert isinstance(body["next"], str) and body["next"]


def test_an_empty_change_list(client: TestClient, operator: Headers) -> None:
    body = changes(client, operator)
    assert body["changes"] == []
    assert changes(client, operator, since=body["next"])["changes"] == []


def test_next_resumes_where_the_last_page_ended(
    client: TestClient, carrier: Headers, operator: Headers
) -> None:
    numbers = [f"+1212555{i:04d}" for i in range(5)]
    for n in numbers:
        register(client, carrier, n)
    seen: list[tuple[str, str]] = []
    cursor = None
    for _ in range(10):
        page = changes(client, operator, limit=2, **({"since": cursor} if cursor else {}))
        assert len(page["changes"]) <= 2
        if not page["changes"]:
            break
        seen += ops(page)
        cursor = page["next"]
    assert seen == [(n, "add") for n in numbers]
    # Later changes show up after the last cursor, and nothing before it does.
    client.delete(f"/v1/registrations/{numbers[0]}", headers=carrier)
    assert ops(changes(client, operator, since=cursor)) == [(numbers[0], "remove")]


def test_the_change_list_is_limited_to_the_operators_prefixes(
    client: TestClient, carrier: Headers, new_key: NewKey
) -> None:
    nyc = new_key("operator", ["+1212"])
    china = new_key("operator", ["+86"])
    for n in ("+12125551234", "+16465551234", "+861012345678", "+12125559999"):
        register(client, carrier, n)
    client.delete("/v1/registrations/+16465551234", headers=carrier)
    assert ops(changes(client, nyc)) == [("+12125551234", "add"), ("+12125559999", "add")]
    assert ops(changes(client, china)) == [("+861012345678", "add")]
    # Paging skips over changes outside the prefixes without losing the place.
    first = changes(client, nyc, limit=1)
    assert ops(first) == [("+12125551234", "add")]
    assert ops(changes(client, nyc, since=first["next"])) == [("+12125559999", "add")]


@pytest.mark.parametrize("since", ["abc", "12-x", "1-2.z", "-5"])
def test_a_cursor_the_registry_never_handed_out_is_a_400(
    client: TestClient, operator: Headers, since: str
) -> None:
    answer = client.get("/v1/changes", params={"since": since}, headers=operator)
    assert_error(answer, 400, "invalid_cursor")


def test_a_cursor_older_than_the_retention_is_gone(client: TestClient, operator: Headers) -> None:
    answer = client.get("/v1/changes", params={"since": "1000-0"}, headers=operator)
    assert_error(answer, 410, "cursor_expired")


MAX_ID = "18446744073709551615-18446744073709551615"  # Redis' largest stream id


@pytest.mark.parametrize(
    "since",
    [
        "99999999999999999999999-0",  # milliseconds past 2**64-1
        "18446744073709551616-0",
        "1796020686559-99999999999999999999",  # a sequence number past 2**64-1
        "1796020686559-18446744073709551616",
        "18446744073709551616",
        "1796020686559-0.65536",  # inside a bucket's batch: positions are 16 bits
        "1796020686559-0.99999999999999999999999",
        "\u00b2",  # a digit to str.isdigit, not to int
        "\u0661\u0662-0",  # Arabic-Indic digits
        "1796020686559-0\n",
        "1796020686559-0.",
        "01796020686559000000000-0",  # 23 digits
    ],
)
def test_a_cursor_beyond_a_stream_id_is_a_400_not_a_500(
    client: TestClient, operator: Headers, since: str
) -> None:
    answer = client.get("/v1/changes", params={"since": since}, headers=operator)
    assert_error(answer, 400, "invalid_cursor")


@pytest.mark.parametrize("since", [MAX_ID, MAX_ID + ".5", "18446744073709551615"])
def test_a_cursor_at_the_very_end_was_never_handed_out(
    client: TestClient, carrier: Headers, operator: Headers, since: str
) -> None:
    register(client, carrier, "+12125551234")
    answer = client.get("/v1/changes", params={"since": since}, headers=operator)
    assert "full list" in assert_error(answer, 410, "cursor_expired")["message"]


def test_a_cursor_in_the_future_is_refused_not_an_empty_list_forever(
    client: TestClient, carrier: Headers, operator: Headers, redis_client: Any, tmp_path: Path
) -> None:
    """Following from a cursor past the last change would skip every change logged until
    the clock reaches it; only the last entry itself, or any before it, was handed out."""
    register(client, carrier, "+12125551234")
    last = redis_client.xrevrange(keys.CHANGES, count=1)[0][0].decode()
    ms, seq = (int(part) for part in last.split("-"))
    for since in (f"{ms + 86_400_000}-0", f"{ms}-{seq + 1}", f"{ms + 1}", f"{ms}-{seq + 1}.3"):
        answer = client.get("/v1/changes", params={"since": since}, headers=operator)
        assert_error(answer, 410, "cursor_expired")
        with pytest.raises(ExportError, match="full list"):
            export_changes(redis_client, io.StringIO(), since, [], 153)
    for since in (last, f"{last}.0", f"{ms - 1}"):
        answer = client.get("/v1/changes", params={"since": since}, headers=operator)
        assert answer.status_code == 200, answer.text
        assert export_changes(redis_client, io.StringIO(), since, [], 153).startswith(last)


def test_with_no_change_logged_only_zero_is_a_cursor(
    client: TestClient, operator: Headers, redis_client: Any
) -> None:
    assert client.get("/v1/export", headers=operator).headers["x-changes-cursor"] == "0"
    assert changes(client, operator, since="0") == {"changes": [], "next": "0"}
    recent = f"{int(time.time() * 1000) - 1000}-0"
    answer = client.get("/v1/changes", params={"since": recent}, headers=operator)
    assert_error(answer, 410, "cursor_expired")


def test_a_cursor_whose_sequence_is_the_largest_resumes_at_the_next_millisecond(
    client: TestClient, carrier: Headers, operator: Headers
) -> None:
    register(client, carrier, "+12125551234")
    first = changes(client, operator)["next"]
    ms = int(first.split("-")[0])
    before = f"{ms - 1}-18446744073709551615"
    assert ops(changes(client, operator, since=before)) == [("+12125551234", "add")]
    while int(time.time() * 1000) <= ms:
        time.sleep(0.001)
    register(client, carrier, "+12125551235")
    after = changes(client, operator, since=f"{ms}-18446744073709551615")
    assert ops(after) == [("+12125551235", "add")]


@pytest.mark.parametrize("since", ["1", "1-0", "0-1", "0-1.5", "1000-0.3"])
def test_a_well_formed_cursor_older_than_the_retention_is_expired(
    client: TestClient, operator: Headers, since: str
) -> None:
    # "0-1.5" is entry 0-1, its fifth number: a cursor's shape, from 1970, so expired.
    answer = client.get("/v1/changes", params={"since": since}, headers=operator)
    error = assert_error(answer, 410, "cursor_expired")
    assert "full list" in error["message"]


@pytest.mark.parametrize("since", ["0", "0-0", "00", ""])
def test_zero_is_every_change_kept_not_an_expired_cursor(
    client: TestClient, carrier: Headers, operator: Headers, since: str
) -> None:
    register(client, carrier, "+12125551234")
    assert ops(changes(client, operator, since=since)) == [("+12125551234", "add")]


@pytest.mark.parametrize("limit", ["0", "-1", "100001", "many", "1_000", "10.0"])
def test_a_limit_out_of_range_is_a_400(client: TestClient, operator: Headers, limit: str) -> None:
    answer = client.get("/v1/changes", params={"limit": limit}, headers=operator)
    assert_error(answer, 400, "invalid_request")


def test_carriers_do_not_read_the_change_list(client: TestClient, carrier: Headers) -> None:
    assert_error(client.get("/v1/changes", headers=carrier), 403, "forbidden")


def test_a_registration_stored_too_long_after_its_entry_is_logged_again(
    client: TestClient,
    carrier: Headers,
    operator: Headers,
    redis_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As a bulk load's (tests/test_loader.py): a full list's cursor is rewound
    changes.REAPPLY_MS, which covers only adds stored within changes.STORE_WINDOW_MS of
    their entry; a later store is refused, the add logged again, and after too many
    tries the registration is a 503 with nothing stored."""
    monkeypatch.setattr(changes_log, "STORE_WINDOW_MS", -(10**13))
    answer = client.put("/v1/registrations/+12125551234", headers=carrier)
    assert_error(answer, 503, answer.json()["error"]["code"])
    assert status_of(client, operator, "+12125551234") == "callable"
    monkeypatch.setattr(changes_log, "STORE_WINDOW_MS", 20_000)
    real, left = changes_log.store_deadline, [1]
    monkeypatch.setattr(
        changes_log, "store_deadline", lambda entry_id: 1 if left and left.pop() else real(entry_id)
    )
    entries = redis_client.xlen(keys.CHANGES)
    assert register(client, carrier, "+12125551234").status_code == 201
    assert redis_client.xlen(keys.CHANGES) == entries + 2
    assert status_of(client, operator, "+12125551234") == "blocked"


# -- GET /v1/export -------------------------------------------------------------------------


def export(client: TestClient, key: Headers, **query: str) -> list[str]:
    answer = client.get("/v1/export", params=query, headers=key)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return answer.text.splitlines()


REGISTERED = ["+12125551234", "+12125551235", "+16465550000", "+861012345678", "+442079460958"]


@pytest.fixture
def registered(client: TestClient, carrier: Headers) -> list[str]:
    for n in REGISTERED:
        register(client, carrier, n)
    return REGISTERED


def test_export_lists_every_registered_number_once(
    client: TestClient, carrier: Headers, operator: Headers, registered: list[str]
) -> None:
    register(client, carrier, registered[0], channels=["sms"])  # an update is not a second entry
    client.delete(f"/v1/registrations/{registered[1]}", headers=carrier)
    lines = export(client, operator)
    assert sorted(lines) == sorted(set(registered) - {registered[1]})
    assert len(lines) == len(set(lines))


def test_the_full_list_says_where_to_follow_the_changes_from(
    client: TestClient, carrier: Headers, operator: Headers
) -> None:
    empty = client.get("/v1/export", headers=operator)
    assert empty.headers["x-changes-cursor"] == "0"
    register(client, carrier, "+12125551234")
    full = client.get("/v1/export", headers=operator)
    cursor = full.headers["x-changes-cursor"]
    assert full.text == "+12125551234\n"
    # Rewound past adds that may have been on their way to the sets: the list's own
    # number may come again, nothing else.
    again = client.get("/v1/changes", params={"since": cursor}, headers=operator)
    assert again.status_code == 200, again.text
    assert {c["number"] for c in again.json()["changes"]} <= {"+12125551234"}
    register(client, carrier, "+12125551235")
    after = client.get("/v1/changes", params={"since": cursor}, headers=operator).json()
    assert [c["number"] for c in after["changes"]][-1] == "+12125551235"
    assert {c["number"] for c in after["changes"]} <= {"+12125551234", "+12125551235"}


def log_add_unstored(redis_client: Any, number: int) -> None:
    """What a writer does first: log the add (LOG_SCRIPT), its set not yet changed."""
    args = changes_log.log_args(
        153, [keys.bucket_of(number)], changes_log.single_fields(changes_log.ADD, number)
    )
    redis_client.eval(changes_log.LOG_SCRIPT, *args)


def test_a_full_list_read_while_an_add_is_on_its_way_misses_it_nowhere(
    client: TestClient, carrier: Headers, operator: Headers, redis_client: Any
) -> None:
    """An export that reads the sets after an add was logged and before it was stored has
    it in neither the list nor, with a cursor at the last entry, the changes after it."""
    register(client, carrier, "+12125550001")
    for n, reader in enumerate(["http", "cli"]):
        number = 12126001234 + n
        log_add_unstored(redis_client, number)
        if reader == "http":
            full = client.get("/v1/export", headers=operator)
            listed, cursor = set(full.text.split()), full.headers["x-changes-cursor"]
        else:
            out = io.StringIO()
            cursor = export_full(redis_client, out, [])
            listed = set(out.getvalue().split())
        redis_client.sadd(keys.numbers_set(keys.bucket_of(number)), keys.member_of(number))
        assert f"+{number}" not in listed  # the race, played
        answer = client.get("/v1/changes", params={"since": cursor}, headers=operator)
        assert answer.status_code == 200, answer.text  # not too old, not in the future
        assert f"+{number}" in {c["number"] for c in answer.json()["changes"]}
        out = io.StringIO()
        export_changes(redis_client, out, cursor, [], 153)
        assert f"+{number},add," in out.getvalue()


def test_export_and_changes_with_detail_carry_each_numbers_preferences(
    client: TestClient, carrier: Headers, operator: Headers, redis_client: Any, tmp_path: Path
) -> None:
    """A local copy that honours partial blocks (India's NCPR categories, SMS-only
    registrations); without `detail`, the contract's shapes."""
    register(client, carrier, "+12125551234", channels=["sms"], allow_categories=[5, 2])
    register(client, carrier, "+12125551235")
    bulk = tmp_path / "bulk.txt"
    bulk.write_text("+12125551236\n")
    load_files(redis_client, [bulk], fmt="e164", column=None, region="US", remove=False,
               retention_days=153, progress=False)  # fmt: skip
    answer = client.get("/v1/export", params={"detail": "true"}, headers=operator)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(answer.text))) == [
        ["number", "channels", "allow_categories"],
        ["+12125551234", "sms", "2 5"],
        ["+12125551235", "voice sms", ""],
        ["+12125551236", "voice sms", ""],  # bulk-loaded: a full block
    ]
    plain = client.get("/v1/export", headers=operator)
    assert plain.text == "+12125551234\n+12125551235\n+12125551236\n"

    page = client.get("/v1/changes", params={"detail": "true"}, headers=operator).json()
    adds = {c["number"]: c for c in page["changes"] if c["op"] == "add"}
    assert (adds["+12125551234"]["channels"], adds["+12125551234"]["allow_categories"]) == (
        ["sms"], [2, 5],
    )  # fmt: skip
    assert adds["+12125551236"]["channels"] == ["voice", "sms"]
    # New preferences are an add with them; a removal carries none.
    register(client, carrier, "+12125551234")
    client.delete("/v1/registrations/+12125551235", headers=carrier)
    after = client.get(
        "/v1/changes", params={"detail": "true", "since": page["next"]}, headers=operator
    ).json()["changes"]
    assert [(c["number"], c["op"], c.get("channels")) for c in after] == [
        ("+12125551234", "add", ["voice", "sms"]),
        ("+12125551235", "remove", None),
    ]
    contract = client.get("/v1/changes", headers=operator).json()["changes"]
    assert all(set(c) == {"number", "op", "at"} for c in contract)


def test_dnc_export_with_detail_writes_what_the_api_answers(
    client: TestClient, carrier: Headers, operator: Headers, redis_client: Any, tmp_path: Path
) -> None:
    """`dnc export --detail` (loader.export) and GET /v1/export?detail=true, /v1/changes
    ?detail=true: the same numbers with the same preferences, many buckets and a bulk load
    among them."""
    register(client, carrier, "+12125551234", channels=["sms"], allow_categories=[5, 2])
    register(client, carrier, "+14155552671", channels=["voice"])
    register(client, carrier, "+442079460958", allow_categories=[8])
    bulk = tmp_path / "bulk.txt"
    bulk.write_text("".join(f"+1212555{i:04d}\n" for i in range(2000, 2300)))
    load_files(redis_client, [bulk], fmt="e164", column=None, region="US", remove=False,
               retention_days=153, progress=False)  # fmt: skip
    client.delete("/v1/registrations/+12125552000", headers=carrier)
    out = io.StringIO()
    export_full(redis_client, out, [], detail=True)
    answer = client.get("/v1/export", params={"detail": "true"}, headers=operator)
    assert out.getvalue() == answer.text
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert ["+12125551234", "sms", "2 5"] in rows and ["+442079460958", "voice sms", "8"] in rows
    assert len(rows) == 1 + 3 + 299
    out = io.StringIO()
    export_full(redis_client, out, ["+1415"], detail=True)
    assert out.getvalue() == "number,channels,allow_categories\n+14155552671,voice,\n"

    out = io.StringIO()
    export_changes(redis_client, out, "0", [], 153, detail=True)
    api = client.get("/v1/changes", params={"detail": "true"}, headers=operator).json()["changes"]
    lines = list(csv.reader(io.StringIO(out.getvalue())))
    assert [(line[0], line[1], line[2]) for line in lines] == [
        (c["number"], c["op"], c["at"]) for c in api
    ]
    for line, change in zip(lines, api, strict=True):
        if change["op"] == "add":
            assert line[3] == " ".join(change["channels"])
            assert line[4] == " ".join(str(c) for c in change["allow_categories"])
        else:
            assert line[3:] == ["", ""]
    assert lines[-1][:2] == ["+12125552000", "remove"]
    # An add's cells (only its own details read) are the full list's (whole buckets read).
    full = {row[0]: row[1:] for row in rows[1:]}
    adds = [line for line in lines if line[1] == "add" and line[0] in full]
    assert {line[0] for line in adds} == set(full) and all(
        line[3:] == full[line[0]] for line in adds
    )


def test_export_of_an_empty_registry_is_empty(client: TestClient, operator: Headers) -> None:
    assert export(client, operator) == []


@pytest.mark.parametrize("prefix", ["%2B1212", "+1212"])
def test_export_of_one_prefix(
    client: TestClient, operator: Headers, registered: list[str], prefix: str
) -> None:
    answer = client.get(f"/v1/export?prefix={prefix}", headers=operator)
    assert answer.status_code == 200, answer.text
    assert sorted(answer.text.splitlines()) == ["+12125551234", "+12125551235"]


def test_export_is_limited_to_the_operators_prefixes(
    client: TestClient, new_key: NewKey, registered: list[str]
) -> None:
    key = new_key("operator", ["+1212", "+44"])
    assert sorted(export(client, key)) == ["+12125551234", "+12125551235", "+442079460958"]
    assert export(client, key, prefix="+12125551234") == ["+12125551234"]
    answer = client.get("/v1/export", params={"prefix": "+1646"}, headers=key)
    assert_error(answer, 403, "prefix_not_subscribed")
    # A wider prefix is the account's own under it, never the numbers beside them.
    assert sorted(export(client, key, prefix="+1")) == ["+12125551234", "+12125551235"]
    assert sorted(export(client, key, prefix="+4")) == ["+442079460958"]
    assert_error(
        client.get("/v1/export", params={"prefix": "+3"}, headers=key), 403, "prefix_not_subscribed"
    )
    assert export(client, key, prefix="＋１２１２５５５１２３４") == ["+12125551234"]  # full width


@pytest.mark.parametrize("prefix", ["+0", "abc", "+12a", "+1234567890123456"])
def test_export_of_a_prefix_that_is_not_one_is_a_400(
    client: TestClient, operator: Headers, prefix: str
) -> None:
    answer = client.get("/v1/export", params={"prefix": prefix}, headers=operator)
    assert_error(answer, 400, "invalid_prefix")


# -- operator prefixes on single look-ups ---------------------------------------------------


def test_look_ups_outside_the_operators_prefixes_are_403(
    client: TestClient, new_key: NewKey, registered: list[str]
) -> None:
    key = new_key("operator", ["+1212"])
    assert status_of(client, key, "+12125551234") == "blocked"
    assert status_of(client, key, "(212) 555-0000") == "callable"
    error = assert_error(
        client.get("/v1/numbers/+16465550000", headers=key), 403, "prefix_not_subscribed"
    )
    assert error["details"]["prefixes"] == ["+1212"]
    assert_error(client.get("/v1/numbers/+861012345678", headers=key), 403, "prefix_not_subscribed")


# -- numbers longer than E.164's 15 digits ---------------------------------------------------

# phonenumbers calls these valid: a German number of 17 digits, and Indonesian and
# Japanese toll-free numbers of 19.
LONG = ["+49914776980492687", "+6200180312345678901", "+8100371234567890123"]


def test_the_longest_numbers_phonenumbers_accepts_are_valid_here() -> None:
    for number in LONG:
        assert phonenumbers.is_valid_number(phonenumbers.parse(number)), number


def test_numbers_longer_than_fifteen_digits_are_registered_scrubbed_and_listed(
    client: TestClient, carrier: Headers, new_key: NewKey
) -> None:
    german = LONG[0]
    register(client, carrier, german)
    key = new_key("operator", ["+49"])
    assert status_of(client, key, german) == "blocked"
    scrub = client.post("/v1/scrub", json={"numbers": [german, "+4930123456"]}, headers=key)
    assert scrub.status_code == 200, scrub.text
    assert scrub.json()["blocked"] == [german]
    plain = client.post(
        "/v1/scrub",
        content=f"{german}\n+4930123456\n".encode(),
        headers={**key, "Content-Type": "text/plain"},
    )
    assert plain.status_code == 200, plain.text
    assert plain.text.splitlines()[1:] == [
        f"{german},{german},blocked",
        "+4930123456,+4930123456,callable",
    ]
    assert export(client, key) == [german]
    assert export(client, key, prefix="+49914") == [german]
    assert ops(changes(client, key, since="0-0")) == [(german, "add")]


def test_a_long_invalid_number_is_not_echoed_whole(client: TestClient, carrier: Headers) -> None:
    answer = client.put(f"/v1/registrations/{'x' * 10_000}", headers=carrier)
    error = assert_error(answer, 400, "invalid_number")
    assert len(answer.content) < 1_000
    assert error["details"]["input"] == "x" * 64


@pytest.mark.parametrize(
    "body",
    [
        b'{"channels": ["sms"], "channels": ["voice"]}',
        b'{"source": "ivr", "channels": ["sms"], "source": "web"}',
    ],
)
def test_a_json_key_given_twice_is_a_400_not_the_last_one(
    client: TestClient, carrier: Headers, body: bytes
) -> None:
    """Read as the last, {"channels": ["sms"], "channels": ["voice"]} would leave texts
    unblocked; as with a query parameter given twice, the request is refused."""
    answer = client.put(
        "/v1/registrations/+12125550200",
        content=body,
        headers={**carrier, "Content-Type": "application/json"},
    )
    error = assert_error(answer, 400, "repeated_key")
    assert error["details"]["key"] in ("channels", "source")
    assert client.get("/v1/registrations/+12125550200").json()["registered"] is False
    # Inside a nested object too, as a consent's evidence.
    inbound = b'{"from": "x", "from": "+12125551701", "to": "55555", "text": "STOP"}'
    answer = client.post(
        "/v1/sms/inbound", content=inbound, headers={**carrier, "Content-Type": "application/json"}
    )
    assert_error(answer, 400, "repeated_key")


def test_a_put_and_a_delete_at_once_leave_the_change_list_ending_in_the_numbers_state(
    redis_url: str,
) -> None:
    """A registration logs its add before storing it, a removal stores before logging:
    a DELETE held between its two round trips (as the event loop does under load) let a
    PUT log and store in between, and the change list ended with the removal of a number
    still registered, which every copy following /v1/changes then dropped. Now the PUT
    waits for the DELETE to finish."""

    async def scenario() -> tuple[bool, list[Any]]:
        client = async_client(redis_url)
        store = RegistrationStore(client, 153)
        number = 12125550777
        await store.register(number, rules.Preferences(3, 0), "carrier:x", 1_000)
        removed, go_on = asyncio.Event(), asyncio.Event()
        original_log = store.log

        async def slow_log(op: str, value: int) -> int:
            if op == changes_log.REMOVE:
                removed.set()
                await go_on.wait()
            return await original_log(op, value)

        store.log = slow_log  # type: ignore[method-assign]
        delete = asyncio.create_task(store.deregister(number, "carrier:y", 1_001))
        await asyncio.wait_for(removed.wait(), 10)
        put = asyncio.create_task(store.register(number, rules.Preferences(3, 0), "c:x", 1_002))
        await asyncio.sleep(0.2)
        assert not put.done()  # it waits for the removal to be logged
        go_on.set()
        assert await delete is True
        await put
        registered = await store.get(number) is not None
        entries = await client.xrange(keys.CHANGES)
        await client.aclose()
        return registered, [changes_log.decode(i, f) for i, f in entries]

    registered, logged = asyncio.run(scenario())
    assert registered
    assert [c.op for c in logged][-3:] == [changes_log.ADD, changes_log.REMOVE, changes_log.ADD]


DAY = 86400


def test_preferences_that_changed_still_judge_the_calls_made_under_them(redis_url: str) -> None:
    """A carrier narrowed a full block to texts, then to calls: a complaint about a call
    made before a change is judged by the preferences that stood then (they used to be
    overwritten, and the voice block that stood at the call was gone); a deregistration
    keeps them, and a registration after it starts afresh."""
    number, t0 = 12125550142, int(time.time()) - 10 * DAY
    every, texts, calls = rules.ALL_CHANNELS, rules.SMS, rules.VOICE

    async def run() -> list[list[int | None]]:
        client = async_client(redis_url)
        store = RegistrationStore(client, 153)

        async def channels_at(*times: int) -> list[int | None]:
            found = [await store.in_force(number, when) for when in times]
            return [None if r is None else r.preferences.channels for r in found]

        await store.register(number, rules.Preferences(every, 0), "c:a", t0)
        await store.register(number, rules.Preferences(every, 0), "c:b", t0 + DAY // 2)  # same
        await store.register(number, rules.Preferences(texts, 0), "c:a", t0 + DAY)
        await store.register(number, rules.Preferences(calls, 1 << 2), "c:a", t0 + 2 * DAY)
        times = (t0, t0 + DAY - 1, t0 + DAY, t0 + 2 * DAY - 1, t0 + 2 * DAY, t0 + 5 * DAY)
        registered = await channels_at(*times)
        registered_at = (await store.in_force(number, t0 + DAY)).registered_at  # type: ignore[union-attr]
        await store.deregister(number, "c:a", t0 + 3 * DAY)
        ended = await channels_at(*times[:5], t0 + 3 * DAY)
        await store.register(number, rules.Preferences(every, 0), "c:a", t0 + 4 * DAY)
        again = await channels_at(t0 + DAY, t0 + 2 * DAY, t0 + 4 * DAY)
        await client.aclose()
        return [registered, ended, again, [registered_at]]

    registered, ended, again, [registered_at] = asyncio.run(run())
    assert registered == [every, every, texts, texts, calls, calls]
    assert ended == [every, every, texts, texts, calls, None]
    assert again == [texts, calls, every]
    assert registered_at == t0  # a change keeps the registration's start (and its grace)


def test_a_period_past_its_retention_no_longer_counts(redis_url: str) -> None:
    """The list of a number's ended periods lives as long as its newest: an older one past
    its own 153 days stayed in it, and still judged complaints, until another ended."""
    number, t0 = 12125550141, int(time.time()) - 200 * DAY

    async def run() -> tuple[int, bool]:
        client = async_client(redis_url)
        store = RegistrationStore(client, 153)
        await store.register(number, rules.Preferences(), "c:a", t0)
        await store.deregister(number, "c:a", t0 + 10 * DAY)  # ended 190 days ago
        await store.register(number, rules.Preferences(), "c:a", t0 + 100 * DAY)
        await store.deregister(number, "c:a", t0 + 140 * DAY)  # ended 60 days ago
        kept = await store.ended(number)
        old = await store.in_force(number, t0 + 5 * DAY)
        await client.aclose()
        return len(kept), old is None

    assert asyncio.run(run()) == (1, True)


def test_a_change_of_preferences_keeps_a_voice_complaint_from_before_it(
    client: TestClient, carrier: Headers
) -> None:
    number = "+12125550143"
    first = client.put(f"/v1/registrations/{number}", json={}, headers=carrier).json()
    time.sleep(1.1)  # the change, a second later
    narrowed = client.put(
        f"/v1/registrations/{number}", json={"channels": ["sms"]}, headers=carrier
    )
    assert narrowed.status_code == 200

    def complaint(occurred_at: str) -> dict[str, Any]:
        body = {"number": number, "caller": "+13125550100", "occurred_at": occurred_at}
        answer = client.post("/v1/complaints", json={**body, "channel": "voice"})
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    # Voice was blocked when the call came; it is not since the change.
    assert complaint(first["registered_at"])["registered_at_time"] is True
    later = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert complaint(later)["registered_at_time"] is False


def test_a_writers_turn_outlasts_a_slow_add_and_is_renewed_only_by_its_holder(
    redis_url: str,
) -> None:
    """An add may reach its set up to the store window after its log entry: a turn that
    lapsed sooner would let a removal in between, as without turns. Renewed at each try."""
    from registry.store import registrations as store_module

    number = 12125550144
    writer = keys.writing(keys.bucket_of(number), keys.member_of(number))

    async def run() -> tuple[int, int, int]:
        client = async_client(redis_url)
        store = RegistrationStore(client, 153)
        async with store.one_writer(number) as renew:
            held = await client.pttl(writer)
            await client.pexpire(writer, 1_000)
            await renew()
            renewed = await client.pttl(writer)
            await client.set(writer, "another writer's", px=1_000)  # it lapsed, taken
            await renew()
            theirs = await client.pttl(writer)
        await client.aclose()
        return held, renewed, theirs

    held, renewed, theirs = asyncio.run(run())
    assert store_module.WRITER_MS > changes_log.STORE_WINDOW_MS
    assert store_module.WRITER_MS - 1_000 < held <= store_module.WRITER_MS
    assert store_module.WRITER_MS - 1_000 < renewed <= store_module.WRITER_MS
    assert theirs <= 1_000

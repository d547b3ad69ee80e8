"""POST /v1/complaints (CONTRACT sections 3 and 6): flags, validation, storage, rate limit."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import ADMIN, assert_error, ready_client
from fastapi.testclient import TestClient
from httpx import Response

from loader.load import load_files
from registry import complaints
from registry.config import Settings
from registry.rules import Preferences
from registry.store import keys
from registry.store.registrations import EndedPeriod, Registration

pytestmark = pytest.mark.cluster  # every test on one redis-server and on a Redis Cluster
Headers = dict[str, str]
NUMBER = "+12125551234"


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def now() -> datetime:
    return datetime.now(UTC)


def complain(client: TestClient, **fields: Any) -> Response:
    body: dict[str, Any] = {
        "number": NUMBER,
        "caller": "+13125550100",
        "occurred_at": iso(now()),
        "channel": "voice",
    }
    body.update(fields)
    return client.post("/v1/complaints", json=body)


def flags(answer: Response) -> tuple[bool, bool]:
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert set(body) == {"complaint_id", "registered_at_time", "within_grace"}
    return body["registered_at_time"], body["within_grace"]


# -- the flags ------------------------------------------------------------------------------


def test_a_call_to_an_unregistered_number_is_not_covered(client: TestClient) -> None:
    assert flags(complain(client)) == (False, False)


def test_a_call_before_the_registration_is_not_covered_and_within_grace(
    client: TestClient, carrier: Headers
) -> None:
    """Not registered at the time; and, as the contract words it, a call before
    effective_at (the registration's own time included) is within the grace."""
    assert client.put(f"/v1/registrations/{NUMBER}", headers=carrier).status_code == 201
    before = now() - timedelta(hours=1)
    assert flags(complain(client, occurred_at=iso(before))) == (False, True)


def test_a_call_after_registration_but_before_effective_at_is_within_grace(
    client: TestClient, carrier: Headers
) -> None:
    assert client.put(f"/v1/registrations/{NUMBER}", headers=carrier).status_code == 201
    assert flags(complain(client, occurred_at=iso(now()))) == (True, True)
    # The same instant written with another offset is the same instant.
    local = now().astimezone(timezone(timedelta(hours=-5)))
    assert flags(complain(client, occurred_at=local.isoformat())) == (True, True)


@pytest.fixture
def no_grace(settings: Settings) -> Iterator[TestClient]:
    api = ready_client(settings.with_(grace_days=0))
    yield api
    api.__exit__(None, None, None)


def test_a_call_after_effective_at_is_registered_and_past_grace(
    no_grace: TestClient, carrier: Headers
) -> None:
    assert no_grace.put(f"/v1/registrations/{NUMBER}", headers=carrier).status_code == 201
    time.sleep(1.05)  # registered_at is whole seconds: be past it
    assert flags(complain(no_grace, occurred_at=iso(now()))) == (True, False)


def test_the_liability_rule_on_plain_values() -> None:
    registered_at = 1_700_000_000
    day = 86400

    def rule(*args: Any) -> tuple[bool, bool]:
        flags = complaints.liability(*args)
        return flags.registered_at_time, flags.within_grace

    assert rule(True, registered_at, True, registered_at - 1, 31) == (False, True)
    assert rule(True, registered_at, True, registered_at, 31) == (True, True)
    assert rule(True, registered_at, True, registered_at + 31 * day - 1, 31) == (True, True)
    assert rule(True, registered_at, True, registered_at + 31 * day, 31) == (True, False)
    assert rule(True, registered_at, False, registered_at + 40 * day, 31) == (False, False)
    assert rule(True, registered_at, False, registered_at + day, 31) == (False, True)
    assert rule(True, None, True, 0, 31) == (True, False)  # bulk-loaded: no known time
    assert rule(False, None, True, registered_at, 31) == (False, False)


def test_a_call_in_the_second_of_a_change_is_judged_after_it() -> None:
    """Registrations' times are whole seconds (README): within the second a registration
    began, a call is after its start; within the second it ended, after its end."""
    second = 1_700_000_000
    registration = Registration(1, second, Preferences(), "web")
    assert complaints.liability(True, second, True, second + 0.9, 31).registered_at_time
    assert not complaints.liability(True, second, True, second - 0.1, 31).registered_at_time
    ended = EndedPeriod(registration, ended_at=second + 5, began_at=second)
    assert ended.covers(second) and ended.covers(second + 4.99)
    assert not ended.covers(second + 5) and not ended.covers(second + 5.6)


def test_a_channel_the_registration_does_not_block_is_not_covered(
    client: TestClient, carrier: Headers
) -> None:
    answer = client.put(
        f"/v1/registrations/{NUMBER}", json={"channels": ["voice"]}, headers=carrier
    )
    assert answer.status_code == 201
    # Not covered on sms; the call still came before effective_at.
    assert flags(complain(client, channel="sms")) == (False, True)
    assert flags(complain(client, channel="voice")) == (True, True)


def test_a_registration_ended_since_still_covers_the_calls_made_while_it_stood(
    client: TestClient, carrier: Headers
) -> None:
    """Its record is kept DNC_RETENTION_DAYS to prove exactly this (MIIT draft art. 8):
    a number deregistered, or registered again, after the call is judged by what stood."""
    answer = client.put(
        f"/v1/registrations/{NUMBER}", json={"channels": ["voice"]}, headers=carrier
    )
    assert answer.status_code == 201
    registered_at = datetime.fromisoformat(answer.json()["registered_at"].replace("Z", "+00:00"))
    while now() < registered_at + timedelta(seconds=1):  # times are whole seconds
        time.sleep(0.02)
    call = iso(registered_at + timedelta(milliseconds=500))
    assert client.delete(f"/v1/registrations/{NUMBER}", headers=carrier).status_code == 200
    assert flags(complain(client, occurred_at=call)) == (True, True)
    assert flags(complain(client, occurred_at=call, channel="sms")) == (False, True)
    assert flags(complain(client, occurred_at=iso(now()))) == (False, False)  # after it ended
    # Registered again since: the call still falls in the first period.
    assert client.put(f"/v1/registrations/{NUMBER}", headers=carrier).status_code == 201
    assert flags(complain(client, occurred_at=call)) == (True, True)
    before = iso(registered_at - timedelta(hours=1))
    assert flags(complain(client, occurred_at=before)) == (False, True)  # before both


def test_a_bulk_loaded_number_counts_as_registered_past_grace(
    client: TestClient, redis_client: Any, tmp_path: Path
) -> None:
    path = tmp_path / "list.txt"
    path.write_text(f"{NUMBER}\n")
    load_files(redis_client, [path], fmt="e164", column=None, region="US", remove=False,
               retention_days=153, progress=False)  # fmt: skip
    old = now() - timedelta(days=400)
    assert flags(complain(client, occurred_at=iso(old))) == (True, False)


# -- what is stored -------------------------------------------------------------------------


def test_the_record_keeps_what_a_regulator_needs_and_expires(
    client: TestClient, redis_client: Any, carrier: Headers
) -> None:
    client.put(f"/v1/registrations/{NUMBER}", headers=carrier)
    answer = complain(
        client,
        number="(212) 555-1234",
        caller="AcmeBank",
        channel="sms",
        category=1,
        text="  Loan offer, again.  ",
    )
    complaint_id = answer.json()["complaint_id"]
    key = keys.complaint(complaint_id)
    record = orjson.loads(redis_client.get(key))
    assert set(record) == {
        "complaint_id", "received_at", "number", "caller", "occurred_at", "channel",
        "category", "text", "registered_at_time", "within_grace", "operator", "status",
    }  # fmt: skip
    assert record["operator"] is None  # no account declared ACMEBANK
    assert record["status"] == "open"
    assert record["number"] == NUMBER
    assert record["caller"] == "ACMEBANK"  # sender ids count as one whatever their case
    assert record["channel"] == "sms" and record["category"] == 1
    assert record["text"] == "Loan offer, again."
    assert record["registered_at_time"] is True and record["within_grace"] is True
    assert 153 * 86400 - 60 <= redis_client.ttl(key) <= 153 * 86400


@pytest.mark.parametrize(
    ("caller", "counted_as"),
    [
        ("+1 (312) 555-0100", "+13125550100"),
        ("3125550100", "+13125550100"),  # national format, read against the region
        ("12345", "12345"),  # a short code
        ("Acme Bank", "ACME BANK"),
        # China's commercial SMS: a 106 port number (up to 20 digits), or the signature
        # in 【】 every such message carries.
        ("1069 0123 4567 8", "1069012345678"),
        ("１０６９０１２３４５６７８９０１２３４５", "10690123456789012345"),
        ("【某银行】", "【某银行】"),
        ("【 Acme Bank 】", "【ACME BANK】"),
    ],
)
def test_callers_are_counted_in_one_form(client: TestClient, caller: str, counted_as: str) -> None:
    assert complain(client, caller=caller).status_code == 201
    report = client.get("/v1/reports/callers", headers=ADMIN).json()
    assert [c["caller"] for c in report["callers"]] == [counted_as]


@pytest.mark.parametrize(
    "caller", ["withheld", "Private Number", "Anonymous", " Unknown caller ", "隐藏号码"]
)
def test_a_call_that_showed_no_number_is_a_complaint_about_a_withheld_caller(
    client: TestClient, caller: str
) -> None:
    """Counted apart from the senders (the report's `withheld`), not refused."""
    answer = complain(client, caller=caller)
    assert answer.status_code == 201, answer.text
    complaint_id = answer.json()["complaint_id"]
    record = client.get(f"/v1/complaints/{complaint_id}", headers=ADMIN).json()
    assert record["caller"] == "withheld"
    assert client.get("/v1/reports/callers", headers=ADMIN).json()["callers"] == []


def test_a_complaint_is_in_the_audit_trail_without_the_number(client: TestClient) -> None:
    complaint_id = complain(client).json()["complaint_id"]
    entries = client.get("/v1/audit", headers=ADMIN).json()["entries"]
    received = [e for e in entries if e["action"] == "complaint.received"]
    assert len(received) == 1
    assert received[0]["complaint"] == complaint_id and received[0]["actor"] == "subscriber"
    assert "number" not in received[0]


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"occurred_at": "yesterday"}, "invalid_time"),
        ({"occurred_at": "2026-13-01T00:00:00Z"}, "invalid_time"),
        ({"occurred_at": "2026-11-01T10:00:00"}, "invalid_time"),  # no offset: ambiguous
        ({"occurred_at": iso(now() + timedelta(hours=1))}, "invalid_time"),
        ({"channel": "fax"}, "invalid_channel"),
        ({"channel": ""}, "invalid_channel"),
        ({"category": 9}, "invalid_category"),
        ({"category": 0}, "invalid_category"),
        ({"category": "3"}, "invalid_request"),
        ({"category": True}, "invalid_request"),
        ({"text": "x" * 2001}, "text_too_long"),
        ({"number": "12345"}, "invalid_number"),
        ({"number": "not a number"}, "invalid_number"),
        ({"number": "9" * 400}, "invalid_number"),  # too long: a number's error, not the body's
        ({"caller": "!!!"}, "invalid_caller"),
        ({"caller": "2125551"}, "short_code_ok"),
        ({"caller": "+1 212 555"}, "invalid_caller"),
        ({"caller": "ABCDEFGHIJKL"}, "invalid_caller"),  # sender ids are at most 11 long
        ({"caller": "123456789012"}, "invalid_caller"),  # long digits: a 106 port only
        ({"caller": "106901234567890123456"}, "invalid_caller"),  # 21 digits
        ({"caller": "【】"}, "invalid_caller"),
        ({"caller": "【某银行】【某保险】"}, "invalid_caller"),
        ({"caller": "【" + "银" * 21 + "】"}, "invalid_caller"),
        ({"region": "XX"}, "invalid_region"),
        ({"extra": 1}, "invalid_request"),
        ({"number": None}, "invalid_request"),
    ],
)
def test_bad_input_is_a_400_in_the_error_shape(
    client: TestClient, fields: dict[str, Any], code: str
) -> None:
    answer = complain(client, **fields)
    if code == "short_code_ok":  # seven digits: not a valid number, but a short code
        assert answer.status_code == 201
        return
    assert_error(answer, 400, code)


def test_a_missing_field_or_a_body_that_is_not_json_is_a_400(client: TestClient) -> None:
    assert_error(client.post("/v1/complaints", json={"number": NUMBER}), 400, "invalid_request")
    answer = client.post(
        "/v1/complaints", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_error(answer, 400, "invalid_json")


def test_a_huge_body_is_a_413(client: TestClient) -> None:
    answer = complain(client, text="x" * 40_000)
    assert_error(answer, 413, "body_too_large")


def test_the_longest_text_fits_however_the_client_escapes_it(client: TestClient) -> None:
    """2,000 emoji are 8 KB as UTF-8 but 24 KB as json.dumps escapes them by default."""
    body = json.dumps(
        {
            "number": NUMBER,
            "caller": "+13105550000",
            "occurred_at": "2026-01-01T00:00:00Z",
            "channel": "voice",
            "text": "\U0001f600" * 2000,
        }  # fmt: skip
    ).encode()
    assert len(body) > 24_000
    answer = client.post(
        "/v1/complaints", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 201, answer.text


def test_a_huge_body_is_told_to_shorten_the_complaint_not_to_split_a_scrub(
    client: TestClient,
) -> None:
    error = assert_error(complain(client, text="x" * 40_000), 413, "body_too_large")
    assert "scrub" not in error["message"]
    assert "text" in error["message"]
    assert error["details"]["limit_bytes"] == 32 * 1024


@pytest.mark.parametrize(
    "occurred_at",
    [
        "0001-01-01T00:00:00+01:00",  # year 0 in UTC
        "0001-01-01T00:59:59+01:00",
        "9999-12-31T23:59:59-01:00",  # year 10000 in UTC
    ],
)
def test_a_time_outside_the_years_datetimes_hold_is_a_400(
    client: TestClient, occurred_at: str
) -> None:
    error = assert_error(complain(client, occurred_at=occurred_at), 400, "invalid_time")
    assert occurred_at in error["message"]


def test_the_earliest_time_in_utc_is_still_a_complaint(client: TestClient) -> None:
    assert complain(client, occurred_at="0001-01-01T00:00:00-01:00").status_code == 201
    assert complain(client, occurred_at="0001-01-01T00:00:00Z").status_code == 201


def test_two_thousand_characters_of_text_are_accepted(client: TestClient) -> None:
    assert complain(client, text="é" * 2000).status_code == 201


# -- flood control --------------------------------------------------------------------------


def test_complaints_are_rate_limited_per_client_address(client: TestClient) -> None:
    limit = 20  # DNC_COMPLAINT_RATE_LIMIT's default
    for _ in range(3):  # bad input is answered without counting
        assert complain(client, channel="fax").status_code == 400
    for _ in range(limit):
        assert complain(client).status_code == 201
    answer = complain(client)
    error = assert_error(answer, 429, "rate_limited")
    assert 1 <= int(answer.headers["Retry-After"]) <= 3600
    assert error["details"]["limit"] == limit
    stats = client.get("/v1/stats", headers=ADMIN).json()
    assert stats["complaints"] == limit  # the refused one was not stored


def test_the_complaint_limit_is_a_setting(spare: Callable[..., TestClient]) -> None:
    api = spare(complaints_per_hour=2)
    assert [complain(api).status_code for _ in range(3)] == [201, 201, 429]


def test_times_may_write_the_t_and_the_z_in_lower_case(client: TestClient) -> None:
    """RFC 3339 allows `2026-11-29t10:00:00z`; Python's parser reads only upper case."""
    then = (now() - timedelta(hours=1)).strftime("%Y-%m-%dt%H:%M:%Sz")
    assert complain(client, occurred_at=then).status_code == 201


def test_a_form_body_is_415_as_on_every_json_endpoint(client: TestClient) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    answer = client.post("/v1/complaints", content=b"number=%2B12125551234", headers=form)
    assert_error(answer, 415, "unsupported_media_type")
    # A JSON object is read as JSON whatever its Content-Type says.
    body = json.dumps({"number": NUMBER, "caller": "+13125550100",
                       "occurred_at": iso(now()), "channel": "voice"})  # fmt: skip
    assert client.post("/v1/complaints", content=body, headers=form).status_code == 201


def test_administrators_read_a_complaint_by_its_id(client: TestClient) -> None:
    complaint_id = complain(client, caller="【某银行】", text="贷款广告").json()["complaint_id"]
    answer = client.get(f"/v1/complaints/{complaint_id}", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    record = answer.json()
    assert record["complaint_id"] == complaint_id and record["caller"] == "【某银行】"
    assert record["number"] == NUMBER and record["text"] == "贷款广告"
    assert {"registered_at_time", "within_grace", "occurred_at", "received_at"} <= set(record)
    assert_error(client.get("/v1/complaints/cmp_nope", headers=ADMIN), 404, "complaint_not_found")
    assert client.get(f"/v1/complaints/{complaint_id}").status_code == 401


def test_the_store_and_the_domain_name_withheld_callers_alike() -> None:
    from registry.store import complaints as stored

    assert stored.WITHHELD == complaints.WITHHELD

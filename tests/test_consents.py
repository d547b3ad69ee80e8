"""Operator consents (CONTRACT sections 3 and 6): recorded with evidence, withdrawn, expired,
and read by look-ups and scrubs for the operator that holds them, and no other."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import ADMIN, assert_error
from fastapi.testclient import TestClient

from registry.store import consents as consent_store
from registry.store import keys

pytestmark = pytest.mark.cluster  # every test on one redis-server and on a Redis Cluster
Headers = dict[str, str]
NewKey = Callable[..., Headers]

A, B, C = "+12125550001", "+12125550002", "+12125550003"
FREE = "+12125559999"
EVIDENCE = {"method": "web_form", "reference": "form-42", "text": "Yes, you may call me"}
RETENTION = 153 * 86400


def dated(given_at: Any, method: str = "web_form") -> dict[str, Any]:
    return {"method": method, "text": "yes", "given_at": given_at}


def register(client: TestClient, carrier: Headers, number: str, **prefs: Any) -> None:
    answer = client.put(f"/v1/registrations/{number}", json=prefs or None, headers=carrier)
    assert answer.status_code in (200, 201), answer.text


def consent(client: TestClient, key: Headers, number: str, **body: Any) -> dict[str, Any]:
    answer = client.post(
        "/v1/consents", json={"number": number, "evidence": EVIDENCE} | body, headers=key
    )
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


def look_up(client: TestClient, key: Headers, number: str, **query: str) -> tuple[str, str]:
    answer = client.get(f"/v1/numbers/{number}", params=query, headers=key)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return body["status"], body["reason"]


def given_now() -> str:
    """Now to the millisecond: after a registration made earlier in the same second."""
    time.sleep(0.002)
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def world(client: TestClient, carrier: Headers) -> None:
    register(client, carrier, A)
    register(client, carrier, B, channels=["voice"], allow_categories=[3])


# --- Recording, and what a consent changes ------------------------------------------------


def test_a_consent_makes_a_registered_number_callable_for_its_operator_only(
    client: TestClient, world: None, operator: Headers, new_key: NewKey
) -> None:
    other = new_key()
    assert look_up(client, operator, A) == ("blocked", "registered")
    before = datetime.now(UTC).replace(microsecond=0)
    body = consent(client, operator, "(212) 555-0001")
    assert set(body) == {"consent_id", "number", "recorded_at"}
    assert body["number"] == A and body["consent_id"].startswith("cns_")
    recorded = datetime.fromisoformat(body["recorded_at"].replace("Z", "+00:00"))
    assert before <= recorded <= datetime.now(UTC)
    assert look_up(client, operator, A) == ("callable", "consent")
    assert look_up(client, operator, A, channel="sms", category="1") == ("callable", "consent")
    assert look_up(client, other, A) == ("blocked", "registered")
    assert look_up(client, ADMIN, A) == ("blocked", "registered")


def test_consent_is_the_reason_only_where_the_answer_would_be_blocked(
    client: TestClient, world: None, carrier: Headers, operator: Headers
) -> None:
    consent(client, operator, B)  # B blocks voice only and allows category 3
    consent(client, operator, FREE)  # not registered at all
    assert look_up(client, operator, B, channel="sms") == ("callable", "channel_not_blocked")
    assert look_up(client, operator, B, channel="voice", category="3") == (
        "callable",
        "category_allowed",
    )
    assert look_up(client, operator, B, channel="voice") == ("callable", "consent")
    assert look_up(client, operator, B) == ("callable", "consent")
    assert look_up(client, operator, FREE) == ("callable", "not_registered")
    # A consent recorded before the number registers ends when it does: the
    # registration is the subscriber's later word.
    assert look_up(client, operator, C) == ("callable", "not_registered")
    consent(client, operator, C)
    register(client, carrier, C)
    assert look_up(client, operator, C) == ("blocked", "registered")
    consent(client, operator, C, evidence=dated(iso_in(1)))  # given since
    assert look_up(client, operator, C) == ("callable", "consent")


def test_an_administrator_may_record_consents_that_count_for_its_own_look_ups(
    client: TestClient, world: None, operator: Headers
) -> None:
    consent(client, ADMIN, A)
    assert look_up(client, ADMIN, A) == ("callable", "consent")
    assert look_up(client, operator, A) == ("blocked", "registered")


def test_an_expired_consent_no_longer_counts_and_its_record_outlives_it(
    client: TestClient, world: None, operator: Headers, redis_client: Any
) -> None:
    expires = iso_in(5)  # whole seconds: 4 to 5 s, room for the recording and the look-up
    consent(client, operator, B)  # one with no end date: the scopes hash is kept for good
    body = consent(client, operator, A, expires_at=expires, channels=["sms"])
    assert look_up(client, operator, A, channel="sms") == ("callable", "consent")
    end = datetime.fromisoformat(expires.replace("Z", "+00:00")).timestamp()
    time.sleep(max(0.0, end - time.time()) + 0.05)
    assert look_up(client, operator, A) == ("blocked", "registered")
    scrubbed = client.post("/v1/scrub", json={"numbers": [A]}, headers=operator).json()
    assert scrubbed["counts"]["blocked"] == 1
    # Read back: still the current one, with its evidence, but no longer live.
    read = client.get(f"/v1/consents/{A}", headers=operator).json()
    assert read["consent_id"] == body["consent_id"] and read["live"] is False
    assert read["expires_at"] == expires and read["evidence"] == EVIDENCE
    assert_error(client.delete(f"/v1/consents/{A}", headers=operator), 404, "consent_not_found")
    # Its evidence is kept DNC_RETENTION_DAYS after it ended.
    key = _record_key(redis_client, body)
    ttl = redis_client.ttl(key)
    assert RETENTION - 5 <= ttl <= RETENTION
    record = {k.decode(): v.decode() for k, v in redis_client.hgetall(key).items()}
    assert record["consent_id"] == body["consent_id"] and record["number"] == A[1:]
    assert record["expires_at"] == str(int(end))
    assert '"method":"web_form"' in record["evidence"]
    # An administrator finds it from the number while its record is kept (the holders
    # hash lives the retention past the last expires_at, not until it).
    listed = client.get(f"/v1/numbers/{A}/consents", headers=ADMIN).json()["consents"]
    assert [c["consent_id"] for c in listed] == [body["consent_id"]]
    holders = keys.consent_holders(int(A[1:]))
    assert RETENTION - 10 <= redis_client.ttl(holders) <= RETENTION + 10
    # The index look-ups read drops an ended entry at the next write, and its scope with
    # it: the scopes hash of an operator with a consent without an end date has no TTL.
    index, scopes = keys.consents(record["operator"]), keys.consent_scopes(record["operator"])
    assert redis_client.hget(scopes, A[1:]) is not None
    assert client.delete(f"/v1/consents/{B}", headers=operator).status_code == 200
    assert redis_client.zscore(index, A[1:]) is None and redis_client.hget(scopes, A[1:]) is None
    assert not redis_client.exists(index)


def _record_key(redis_client: Any, body: dict[str, Any]) -> str:
    """The key of a consent record, found by its id in the operators' consent indexes."""
    for op in redis_client.smembers(keys.OPERATORS) | {b"admin"}:
        key = keys.consent(op.decode(), body["consent_id"])
        if redis_client.exists(key):
            return key
    raise AssertionError(f"no record of {body['consent_id']}")


def test_an_operator_reads_its_current_consent_back_with_the_evidence(
    client: TestClient, world: None, operator: Headers, new_key: NewKey
) -> None:
    body = consent(client, operator, A)
    answer = client.get("/v1/consents/(212) 555-0001", headers=operator)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "consent_id": body["consent_id"],
        "number": A,
        "recorded_at": body["recorded_at"],
        "expires_at": None,
        "live": True,
        "channels": ["voice", "sms"],
        "categories": None,  # every category
        "evidence": EVIDENCE,
    }
    # Only one's own; a newer consent is the current one; a withdrawn one is gone.
    assert_error(client.get(f"/v1/consents/{A}", headers=new_key()), 404, "consent_not_found")
    assert_error(client.get(f"/v1/consents/{B}", headers=operator), 404, "consent_not_found")
    newer = consent(client, operator, A, expires_at=iso_in(3600))
    read = client.get(f"/v1/consents/{A}", headers=operator).json()
    assert read["consent_id"] == newer["consent_id"] and read["live"] is True
    assert client.delete(f"/v1/consents/{A}", headers=operator).status_code == 200
    assert_error(client.get(f"/v1/consents/{A}", headers=operator), 404, "consent_not_found")
    assert_error(client.get("/v1/consents/abc", headers=operator), 400, "invalid_number")


def test_a_withdrawn_consent_no_longer_counts_and_its_record_is_kept(
    client: TestClient, world: None, operator: Headers, redis_client: Any
) -> None:
    body = consent(client, operator, A)
    key = _record_key(redis_client, body)
    assert redis_client.ttl(key) == -1  # live without an end date: kept while live
    answer = client.delete("/v1/consents/+12125550001", headers=operator)
    assert answer.status_code == 200, answer.text
    withdrawn = answer.json()
    assert withdrawn["consent_id"] == body["consent_id"] and withdrawn["number"] == A
    assert withdrawn["withdrawn_at"]
    assert look_up(client, operator, A) == ("blocked", "registered")
    assert RETENTION - 5 <= redis_client.ttl(key) <= RETENTION
    record = {k.decode(): v.decode() for k, v in redis_client.hgetall(key).items()}
    assert record["ended"] == "withdrawn" and '"reference":"form-42"' in record["evidence"]
    # Withdrawn once; a second time there is nothing to withdraw.
    assert_error(client.delete(f"/v1/consents/{A}", headers=operator), 404, "consent_not_found")
    # The trail has both changes.
    actions = [
        fields[b"action"].decode()
        for _, fields in redis_client.xrange(keys.AUDIT)
        if fields.get(b"consent_id", b"").decode() == body["consent_id"]
    ]
    assert actions == ["consent.recorded", "consent.withdrawn"]


def test_revoking_an_operator_ends_its_consents_and_keeps_their_evidence_the_retention(
    client: TestClient, world: None, new_key: Any, redis_client: Any
) -> None:
    doomed = new_key("operator")
    body = consent(client, doomed, A)
    key = _record_key(redis_client, body)
    operator_id = key.split("{", 1)[1].split("}", 1)[0]
    assert redis_client.ttl(key) == -1
    answer = client.delete(f"/v1/operators/{operator_id}", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    assert RETENTION - 5 <= redis_client.ttl(key) <= RETENTION
    record = {k.decode(): v.decode() for k, v in redis_client.hgetall(key).items()}
    assert record["ended"] == "withdrawn"
    assert record["withdrawn_by"].startswith("operator_revoked:")
    assert '"reference":"form-42"' in record["evidence"]
    assert redis_client.zcard(keys.consents(operator_id)) == 0
    # The trail names it, as every other withdrawal: how an administrator finds the
    # record (and its evidence) once the number's list of consents no longer shows it.
    entries = [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in redis_client.xrange(keys.AUDIT)
    ]
    [withdrawn] = [e for e in entries if e.get("consent_id") == body["consent_id"]][1:]
    assert withdrawn["action"] == "consent.withdrawn" and withdrawn["number"] == A
    assert withdrawn["operator"] == operator_id
    assert withdrawn["withdrawn_by"].startswith("operator_revoked:")
    revoked = [e for e in entries if e["action"] == "operator.revoked"]
    assert revoked[-1]["consents_ended"] == "1"


def test_withdrawing_needs_a_consent_of_ones_own(
    client: TestClient, world: None, operator: Headers, new_key: NewKey
) -> None:
    consent(client, operator, A)
    other = new_key()
    assert_error(client.delete(f"/v1/consents/{A}", headers=other), 404, "consent_not_found")
    assert_error(client.delete(f"/v1/consents/{B}", headers=operator), 404, "consent_not_found")
    assert_error(client.delete("/v1/consents/abc", headers=operator), 400, "invalid_number")
    assert look_up(client, operator, A) == ("callable", "consent")


def test_a_new_consent_replaces_the_live_one_whose_record_is_kept(
    client: TestClient, world: None, operator: Headers, redis_client: Any
) -> None:
    first = consent(client, operator, A)
    second = consent(client, operator, A, expires_at=iso_in(3600))
    assert second["consent_id"] != first["consent_id"]
    old = _record_key(redis_client, first)
    assert redis_client.hget(old, "ended") == b"superseded"
    assert RETENTION - 5 <= redis_client.ttl(old) <= RETENTION
    new = _record_key(redis_client, second)
    assert RETENTION + 3600 - 5 <= redis_client.ttl(new) <= RETENTION + 3600
    assert look_up(client, operator, A) == ("callable", "consent")
    assert (
        client.delete(f"/v1/consents/{A}", headers=operator).json()["consent_id"]
        == (second["consent_id"])
    )
    assert look_up(client, operator, A) == ("blocked", "registered")


# --- The subscriber's later opt-out ends consents ----------------------------------------


def stop(client: TestClient, carrier: Headers, number: str, text: str = "STOP") -> str:
    body = {"from": number, "to": "55555", "text": text}
    answer = client.post("/v1/sms/inbound", json=body, headers=carrier)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["action"])


def withdrawn_by(redis_client: Any, operator_id: str, consent_id: str) -> str | None:
    raw = redis_client.hget(keys.consent(operator_id, consent_id), "withdrawn_by")
    return None if raw is None else str(raw.decode())


def operator_id(client: TestClient, key: Headers) -> str:
    answer = client.post("/v1/scrub", json={"numbers": [FREE]}, headers=key).json()
    receipt = client.get(f"/v1/scrubs/{answer['receipt_id']}", headers=key).json()
    return str(receipt["operator"])


def test_an_opt_out_text_ends_every_consent_recorded_before_it(
    client: TestClient,
    world: None,
    operator: Headers,
    new_key: NewKey,
    carrier: Headers,
    redis_client: Any,
) -> None:
    other = new_key()
    first, second = consent(client, operator, A), consent(client, other, A)
    kept = consent(client, operator, B)  # another number's
    assert look_up(client, operator, A) == ("callable", "consent")
    assert stop(client, carrier, A, "退订") == "registered"
    assert look_up(client, operator, A) == ("blocked", "registered")
    assert look_up(client, other, A) == ("blocked", "registered")
    answer = client.post("/v1/scrub", json={"numbers": [A, B]}, headers=operator).json()
    assert answer["blocked"] == [A]
    assert_error(client.get(f"/v1/consents/{A}", headers=operator), 404, "consent_not_found")
    for key, made in ((operator, first), (other, second)):
        reason = withdrawn_by(redis_client, operator_id(client, key), made["consent_id"])
        assert reason is not None and reason.startswith("opt_out:") and reason.endswith(":sms")
    assert withdrawn_by(redis_client, operator_id(client, operator), kept["consent_id"]) is None
    assert not redis_client.exists(keys.consent_holders(12125550001))
    # The record and its evidence stay the retention, as any withdrawn consent's.
    ttl = redis_client.ttl(keys.consent(operator_id(client, operator), first["consent_id"]))
    assert RETENTION - 60 < ttl <= RETENTION
    # A consent given after the opt-out counts; it says when (undated evidence cannot
    # show it came after the opt-out that ended this operator's consent).
    consent(client, operator, A, evidence=dated(iso_in(1)))
    assert look_up(client, operator, A) == ("callable", "consent")


def test_a_consent_given_before_the_opt_out_is_refused_though_recorded_after(
    client: TestClient,
    world: None,
    operator: Headers,
    new_key: NewKey,
    carrier: Headers,
    redis_client: Any,
) -> None:
    """An operator whose consent a STOP ended cannot bring it back by recording the old
    evidence again: the subscriber's refusal is the later word (MIIT draft art. 16)."""
    other = new_key()
    consent(
        client,
        operator,
        C,
        evidence={"method": "sms", "given_at": "2026-01-01T00:00:00Z", "text": "yes"},
    )
    assert stop(client, carrier, C, "TD") == "registered"
    for given in ("2026-01-01T00:00:00Z", iso_in(-60)):
        evidence = {"method": "sms", "given_at": given, "text": "yes"}
        answer = client.post(
            "/v1/consents", json={"number": C, "evidence": evidence}, headers=operator
        )
        error = assert_error(answer, 409, "consent_predates_opt_out")
        assert error["details"]["opted_out_at"] >= given
        assert look_up(client, operator, C, channel="sms") == ("blocked", "registered")
    assert_error(client.get(f"/v1/consents/{C}", headers=operator), 404, "consent_not_found")
    # The opt-out's time is kept the retention, each on its own: an old one goes at the
    # next opt-out of the operator's, not only once the operator's opt-outs stop coming.
    held = keys.consents_opted_out(operator_id(client, operator))
    assert redis_client.zscore(held, C[1:]) is not None
    assert RETENTION - 60 < redis_client.ttl(held) <= RETENTION
    long_ago = (time.time() - RETENTION - 60) * 1000
    redis_client.zadd(held, {"12125550009": long_ago})
    consent(client, operator, A)
    assert stop(client, carrier, A, "STOP") == "registered"
    assert redis_client.zscore(held, "12125550009") is None
    assert redis_client.zscore(held, A[1:]) is not None
    # One the release before kept (a hash, dnc:coo:) still counts until it expires.
    before = keys.consents_opted_out_before(operator_id(client, operator))
    redis_client.hset(before, B[1:], str(int(time.time() * 1000)))
    evidence = {"method": "sms", "given_at": iso_in(-3600), "text": "yes"}
    answer = client.post("/v1/consents", json={"number": B, "evidence": evidence}, headers=operator)
    assert_error(answer, 409, "consent_predates_opt_out")
    # Given after it (the clock's next second): it counts.
    consent(client, operator, C, evidence={"method": "sms", "given_at": iso_in(1), "text": "yes"})
    assert look_up(client, operator, C, channel="sms") == ("callable", "consent")
    # An operator whose consent it did not end cannot record evidence given before it
    # either: the opt-out ended every consent given before it, recorded or not.
    for number, given in ((C, "2026-01-01T00:00:00Z"), (A, "2025-06-01")):
        answer = client.post(
            "/v1/consents", json={"number": number, "evidence": dated(given)}, headers=other
        )
        assert_error(answer, 409, "consent_predates_opt_out")
        assert look_up(client, other, number, channel="sms") == ("blocked", "registered")


def test_an_opt_out_is_not_undone_by_evidence_without_its_given_at(
    client: TestClient, world: None, operator: Headers, carrier: Headers
) -> None:
    """The review's case: the same proof re-posted without its date after a STOP ended
    the consent it proved. Undated evidence cannot show it came after the opt-out."""
    evidence = {"method": "web_form", "text": "Yes", "reference": "f-1", "given_at": given_now()}
    consent(client, operator, C, evidence=evidence)
    assert stop(client, carrier, C) == "registered"
    for sent in (evidence, {k: v for k, v in evidence.items() if k != "given_at"}):
        answer = client.post("/v1/consents", json={"number": C, "evidence": sent}, headers=operator)
        error = assert_error(answer, 409, "consent_predates_opt_out")
        assert error["details"]["field"] == "given_at"
        assert look_up(client, operator, C) == ("blocked", "registered")
    # Dated after the STOP: it counts.
    consent(client, operator, C, evidence=evidence | {"given_at": iso_in(1)})
    assert look_up(client, operator, C) == ("callable", "consent")


def test_evidence_given_before_the_numbers_registration_is_refused_for_every_operator(
    client: TestClient, world: None, operator: Headers, new_key: NewKey, carrier: Headers
) -> None:
    """A registration is the subscriber's opt-out: a consent given before it no longer
    counts, whichever operator records it and whether or not it was recorded before."""
    for given in ("2020-01-01T00:00:00Z", iso_in(-60)):
        answer = client.post(
            "/v1/consents", json={"number": A, "evidence": dated(given)}, headers=operator
        )
        error = assert_error(answer, 409, "consent_predates_opt_out")
        registered = client.get(f"/v1/registrations/{A}").json()["registered_at"]
        assert error["details"]["opted_out_at"] == registered
        assert look_up(client, operator, A) == ("blocked", "registered")
    # Given since the registration, or undated (taken as given now, the contract's flow:
    # register, record the consent, call): it counts.
    consent(client, operator, A, evidence=dated(given_now()))
    assert look_up(client, operator, A) == ("callable", "consent")
    other = new_key()
    consent(client, other, A)
    assert look_up(client, other, A) == ("callable", "consent")
    # An opt-out (a STOP of a number registered already keeps its registered_at) counts
    # for every operator too, the ones without a consent to end as well.
    third = new_key()
    given = given_now()
    assert stop(client, carrier, A) == "registered"
    answer = client.post(
        "/v1/consents", json={"number": A, "evidence": dated(given)}, headers=third
    )
    assert_error(answer, 409, "consent_predates_opt_out")
    assert look_up(client, third, A) == ("blocked", "registered")


def test_a_start_text_ends_consents_as_a_carrier_registration_does(
    client: TestClient, world: None, operator: Headers, carrier: Headers
) -> None:
    """Before, START n ended none while a confirmed code or a carrier's PUT with the same
    categories ended them all: the subscriber was told calls were blocked but for the
    categories named, and an operator holding an old consent could call about anything."""
    consent(client, operator, A)
    # START 2: new preferences on a registered number, the subscriber's later word.
    assert stop(client, carrier, A, "START 2") == "preferences_updated"
    assert look_up(client, operator, A, category="1") == ("blocked", "registered")
    consent(client, operator, A, evidence=dated(given_now()))  # given since: counts
    assert stop(client, carrier, A, "START 2") == "preferences_updated"  # the same again
    assert look_up(client, operator, A, category="1") == ("callable", "consent")
    # A number START n registers: an opt-out too, as a code or a PUT registering it.
    fresh = "+12125558001"
    consent(client, operator, fresh)
    assert stop(client, carrier, fresh, "START 2") == "registered"
    assert look_up(client, operator, fresh, category="1") == ("blocked", "registered")
    assert look_up(client, operator, fresh, category="2") == ("callable", "category_allowed")


def test_a_carrier_sending_the_same_preferences_again_keeps_consents(
    client: TestClient, world: None, operator: Headers, carrier: Headers
) -> None:
    """A carrier's re-sync of what it already attested is no act of the subscriber's."""
    consent(client, operator, A)
    register(client, carrier, A)  # registered so by the world fixture already: unchanged
    assert look_up(client, operator, A) == ("callable", "consent")
    register(client, carrier, B, channels=["voice"], allow_categories=[3])  # B's own again
    consent(client, operator, B)
    register(client, carrier, B, channels=["voice"], allow_categories=[3])
    assert look_up(client, operator, B, channel="voice") == ("callable", "consent")
    register(client, carrier, A, channels=["voice"])  # new preferences: the subscriber's word
    assert look_up(client, operator, A, channel="voice") == ("blocked", "registered")


def test_a_bulk_load_keeps_consents(
    client: TestClient, world: None, operator: Headers, redis_client: Any, tmp_path: Any
) -> None:
    """A list loaded from a file (the FTC's, every day) is no act of the subscriber."""
    from loader.load import load_files

    consent(client, operator, A)
    path = tmp_path / "list.txt"
    path.write_text(f"{A}\n{C}\n")
    load_files(
        redis_client,
        [path],
        fmt="auto",
        column=None,
        region="US",
        remove=False,
        retention_days=153,
        progress=False,
    )
    assert look_up(client, operator, A) == ("callable", "consent")
    assert look_up(client, operator, C) == ("blocked", "registered")


def test_consents_recorded_before_their_holders_were_kept_are_entered_at_start(
    client: TestClient,
    world: None,
    operator: Headers,
    carrier: Headers,
    redis_client: Any,
    spare: Callable[..., TestClient],
) -> None:
    consent(client, operator, A, expires_at=iso_in(3600))
    consent(client, ADMIN, A)
    redis_client.delete(keys.consent_holders(12125550001), keys.CONSENT_HOLDERS_INDEXED)
    spare()  # a worker of the new version starts, and enters them once it has its filter
    deadline = time.monotonic() + 10
    while not redis_client.exists(keys.CONSENT_HOLDERS_INDEXED) and time.monotonic() < deadline:
        time.sleep(0.05)
    holders = redis_client.hgetall(keys.consent_holders(12125550001))
    assert sorted(holders) == sorted([operator_id(client, operator).encode(), b"admin"])
    assert redis_client.ttl(keys.consent_holders(12125550001)) == -1  # admin's has no end
    assert stop(client, carrier, A) == "registered"
    assert look_up(client, operator, A) == ("blocked", "registered")
    assert look_up(client, ADMIN, A) == ("blocked", "registered")


def test_holders_expire_the_retention_after_the_last_consent_that_can_be_live(
    client: TestClient, world: None, operator: Headers, new_key: NewKey, redis_client: Any
) -> None:
    """Past its expires_at a consent's record is kept the retention, and an administrator
    finds it from the number through this hash: kept as long."""
    other = new_key()
    consent(client, operator, A, expires_at=iso_in(3600))
    consent(client, other, A, expires_at=iso_in(7200))
    ttl = redis_client.ttl(keys.consent_holders(12125550001))
    assert RETENTION + 7100 < ttl <= RETENTION + 7200
    assert client.delete(f"/v1/consents/{A}", headers=other).status_code == 200
    ttl = redis_client.ttl(keys.consent_holders(12125550001))
    assert RETENTION + 3500 < ttl <= RETENTION + 3600
    assert client.delete(f"/v1/consents/{A}", headers=operator).status_code == 200
    assert not redis_client.exists(keys.consent_holders(12125550001))


# --- Scrubs -------------------------------------------------------------------------------


@pytest.mark.parametrize("fetch_all", [consent_store.FETCH_ALL, 1])
def test_scrubs_count_consented_numbers_callable(
    client: TestClient,
    world: None,
    operator: Headers,
    new_key: NewKey,
    monkeypatch: pytest.MonkeyPatch,
    fetch_all: int,
) -> None:
    # fetch_all=1: more live consents than the scrub reads whole, so it asks number by number.
    monkeypatch.setattr(consent_store, "FETCH_ALL", fetch_all)
    other = new_key()
    consent(client, operator, A)
    consent(client, operator, FREE)
    consent(client, operator, "+12125550077")
    numbers = [A, B, FREE, A, "junk", "(212) 555-0002"]
    mine = client.post("/v1/scrub", json={"numbers": numbers}, headers=operator).json()
    assert mine["counts"] == {"total": 6, "callable": 3, "blocked": 2, "invalid": 1}
    assert mine["blocked"] == [B, B]
    theirs = client.post("/v1/scrub", json={"numbers": numbers}, headers=other).json()
    assert theirs["counts"] == {"total": 6, "callable": 1, "blocked": 4, "invalid": 1}
    # Channel and category: B's registration allows sms and category 3 anyway.
    voice = client.post(
        "/v1/scrub", params={"channel": "voice"}, json={"numbers": numbers}, headers=operator
    ).json()
    assert voice["blocked"] == [B, B]
    cat = client.post(
        "/v1/scrub", params={"category": "3"}, json={"numbers": numbers}, headers=other
    ).json()
    assert cat["blocked"] == [A, A]  # B allows category 3
    sms = client.post(
        "/v1/scrub", params={"channel": "sms"}, json={"numbers": numbers}, headers=other
    ).json()
    assert sms["blocked"] == [A, A]  # B blocks voice only

    plain = client.post(
        "/v1/scrub",
        content="\n".join(numbers).encode(),
        headers={**operator, "content-type": "text/plain"},
    )
    assert plain.status_code == 200, plain.text
    rows = list(csv.reader(io.StringIO(plain.text)))
    assert rows[0] == ["input", "number", "status"]
    assert [r[2] for r in rows[1:]] == [
        "callable",
        "blocked",
        "callable",
        "callable",
        "invalid",
        "blocked",
    ]
    receipt = client.get(f"/v1/scrubs/{plain.headers['x-scrub-receipt']}", headers=operator).json()
    assert receipt["counts"] == mine["counts"]

    table = "name,phone\n" + "".join(f"p{i},{n}\n" for i, n in enumerate(numbers))
    only = client.post(
        "/v1/scrub",
        params={"column": "phone", "only": "callable"},
        content=table.encode(),
        headers={**operator, "content-type": "text/csv"},
    )
    assert only.status_code == 200, only.text
    rows = list(csv.reader(io.StringIO(only.text)))
    assert rows == [
        ["name", "phone", "number", "status"],
        ["p0", A, A, "callable"],
        ["p2", FREE, FREE, "callable"],
        ["p3", A, A, "callable"],
    ]
    theirs_csv = client.post(
        "/v1/scrub",
        params={"column": "phone", "only": "callable"},
        content=table.encode(),
        headers={**other, "content-type": "text/csv"},
    )
    assert [r[0] for r in csv.reader(io.StringIO(theirs_csv.text))] == ["name", "p2"]


def test_a_withdrawn_consent_is_blocked_in_the_next_scrub(
    client: TestClient, world: None, operator: Headers
) -> None:
    consent(client, operator, A)
    assert client.post("/v1/scrub", json={"numbers": [A]}, headers=operator).json()["blocked"] == []
    assert client.delete(f"/v1/consents/{A}", headers=operator).status_code == 200
    assert client.post("/v1/scrub", json={"numbers": [A]}, headers=operator).json()["blocked"] == [
        A
    ]


# --- Bad requests -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"number": A}, 400, "invalid_request"),
        ({"number": A, "evidence": {}}, 400, "invalid_evidence"),
        ({"number": A, "evidence": "I said yes"}, 400, "invalid_request"),
        ({"number": A, "evidence": ["yes"]}, 400, "invalid_request"),
        ({"number": A, "evidence": None}, 400, "invalid_request"),
        ({"evidence": EVIDENCE}, 400, "invalid_request"),
        ({"number": 12125550001, "evidence": EVIDENCE}, 400, "invalid_request"),
        ({"number": "abc", "evidence": EVIDENCE}, 400, "invalid_number"),
        ({"number": "+1212555", "evidence": EVIDENCE}, 400, "invalid_number"),
        ({"number": "9" * 400, "evidence": EVIDENCE}, 400, "invalid_number"),
        ({"number": A, "evidence": EVIDENCE, "region": "XX"}, 400, "invalid_region"),
        ({"number": A, "evidence": EVIDENCE, "expires_at": "2020-01-01T00:00:00Z"}, 400,
         "invalid_expires_at"),
        ({"number": A, "evidence": EVIDENCE, "expires_at": "tomorrow"}, 400,
         "invalid_expires_at"),
        ({"number": A, "evidence": EVIDENCE, "expires_at": "9999-12-31T23:59:59-01:00"}, 400,
         "invalid_expires_at"),
        ({"number": A, "evidence": EVIDENCE, "expires_at": 1900000000}, 400, "invalid_request"),
        ({"number": A, "evidence": EVIDENCE, "expiry": "2099-01-01"}, 400, "invalid_request"),
        ({"number": A, "evidence": {"text": "x" * 17_000}}, 413, "evidence_too_large"),
        ({"number": A, "evidence": {"id": 2**64}}, 400, "invalid_evidence"),
        ({"number": A, "evidence": {"ids": [-(2**64)]}}, 400, "invalid_evidence"),
        # The fields the README names must say what they are for, where given.
        ({"number": A, "evidence": dated("2099-01-01T00:00:00Z", "web_form")},
         400, "invalid_evidence"),
        ({"number": A, "evidence": dated("last week", "web_form")}, 400,
         "invalid_evidence"),
        ({"number": A, "evidence": dated(1764000000, "web_form")}, 400,
         "invalid_evidence"),
        ({"number": A, "evidence": {"method": None}}, 400, "invalid_evidence"),
        ({"number": A, "evidence": {"method": " "}}, 400, "invalid_evidence"),
        ({"number": A, "evidence": {"reference": 42}}, 400, "invalid_evidence"),
        # Placeholders, not times: no consent to telemarketing predates 1990.
        ({"number": A, "evidence": dated("1800-01-01T00:00:00Z", "sms")},
         400, "invalid_evidence"),
        ({"number": A, "evidence": dated("0001-01-01T00:00:00+14:00", "sms")},
         400, "invalid_evidence"),
        # Consent is the subscriber's explicit act (PIPL art. 14), never silence or a default.
        ({"number": A, "evidence": {"method": "implied"}}, 400, "consent_not_explicit"),
        ({"number": A, "evidence": {"method": "Pre-ticked box"}}, 400, "consent_not_explicit"),
        ({"number": A, "evidence": {"method": "opt-out"}}, 400, "consent_not_explicit"),
        ({"number": A, "evidence": {"method": "DEFAULT", "reference": "r"}}, 400,
         "consent_not_explicit"),
        # Word by word, not the whole method only.
        ({"number": A, "evidence": {"method": "IMPLIED CONSENT"}}, 400, "consent_not_explicit"),
        ({"number": A, "evidence": {"method": "inferred from purchase"}}, 400,
         "consent_not_explicit"),
        ({"number": A, "evidence": {"method": "no consent"}}, 400, "consent_not_explicit"),
        ({"number": A, "evidence": {"method": "none"}}, 400, "consent_not_explicit"),
        ({"number": A, "evidence": {"method": "purchased list"}}, 400, "consent_not_explicit"),
        ({"number": A, "evidence": {"method": "legitimate interest"}}, 400,
         "consent_not_explicit"),
    ],
)  # fmt: skip
def test_bad_bodies_are_4xx_and_record_nothing(
    client: TestClient,
    world: None,
    operator: Headers,
    body: dict[str, Any],
    status: int,
    code: str,
) -> None:
    assert_error(client.post("/v1/consents", json=body, headers=operator), status, code)
    assert look_up(client, operator, A) == ("blocked", "registered")


@pytest.mark.parametrize(
    ("evidence", "code", "field"),
    [
        # Nothing to read at all.
        ({"x": ""}, "invalid_evidence", "evidence"),
        ({"note": None}, "invalid_evidence", "evidence"),
        ({"a": {}}, "invalid_evidence", "evidence"),
        ({"a": [" ", {"b": "\u200b"}], "c": False}, "invalid_evidence", "evidence"),
        # Blank is empty: spaces, zero-width and control characters, a filler letter.
        ({"method": "web_form", "text": "\u200b"}, "invalid_evidence", "text"),
        ({"method": "web_form", "text": " \u200b\u2060\ufeff\t\u0000"}, "invalid_evidence",
         "text"),
        ({"method": "web_form", "reference": "\u3164"}, "invalid_evidence", "reference"),
        ({"method": "\u200b", "text": "Yes"}, "invalid_evidence", "method"),
        # Not the subscriber's explicit act: someone else's list, an enrolment the operator
        # made, records moved over, an earlier purchase's "soft opt-in".
        ({"method": "auto-enrolled", "text": "Yes"}, "consent_not_explicit", "method"),
        ({"method": "third party list", "text": "Yes"}, "consent_not_explicit", "method"),
        ({"method": "third-party", "reference": "r-1"}, "consent_not_explicit", "method"),
        ({"method": "imported from CRM", "text": "Yes"}, "consent_not_explicit", "method"),
        ({"method": "soft opt-in", "text": "Yes"}, "consent_not_explicit", "method"),
        ({"method": "Auto Enrolment", "text": "Yes"}, "consent_not_explicit", "method"),
        ({"method": "partner lead list", "text": "Yes"}, "consent_not_explicit", "method"),
        # Hidden from the word match: zero-width characters, full-width letters, Chinese.
        ({"method": "im\u200bplied", "text": "Yes"}, "consent_not_explicit", "method"),
        ({"method": "\uff49\uff4d\uff50\uff4c\uff49\uff45\uff44", "text": "Yes"},
         "consent_not_explicit", "method"),
        ({"method": "第三方名单", "text": "同意"}, "consent_not_explicit", "method"),
        # Found accepted by an audit: never obtained, no word of how, lists from elsewhere.
        *(({"method": method, "text": "Yes"}, "consent_not_explicit", "method") for method in (
            "not obtained", "no", "N/A", "?", "customer did not object", "list rental",
            "data vendor", "inherited from acquisition", "未同意", "默许", "无", "不详",
            "合作方提供", "預設勾選")),
    ],
)  # fmt: skip
def test_evidence_that_proves_no_explicit_consent_is_a_400_naming_the_field(
    client: TestClient,
    world: None,
    operator: Headers,
    evidence: dict[str, Any],
    code: str,
    field: str,
) -> None:
    """The evidence is kept to prove an explicit consent (MIIT draft art. 19, PIPL art. 14):
    it must say how the subscriber gave it and what they agreed to (or where that is)."""
    answer = client.post("/v1/consents", json={"number": A, "evidence": evidence}, headers=operator)
    error = assert_error(answer, 400, code)
    named = "evidence" if field == "evidence" else f"evidence.{field}"
    assert error["details"]["field"] == field and named in error["message"]
    assert look_up(client, operator, A) == ("blocked", "registered")
    assert_error(client.get(f"/v1/consents/{A}", headers=operator), 404, "consent_not_found")


@pytest.mark.parametrize(
    "evidence",
    [
        {"form": "signup-7", "ip": "198.51.100.7"},
        {"type": "recorded_call", "ref": "rec-1"},
        {"text": "Yes, you may call me"},
        {"method": "web_form"},
        {"recording_id": 88121},
    ],
)
def test_evidence_in_the_operators_own_words_is_kept(
    client: TestClient, world: None, operator: Headers, evidence: dict[str, Any]
) -> None:
    """The contract names no field of the evidence: proof kept in other words than the
    README's counts, as long as it says something."""
    answer = client.post("/v1/consents", json={"number": A, "evidence": evidence}, headers=operator)
    assert answer.status_code == 201, answer.text
    assert look_up(client, operator, A) == ("callable", "consent")
    kept = client.get(f"/v1/consents/{A}", headers=operator).json()
    assert kept["evidence"] == evidence


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_evidence_json_cannot_keep_exactly_is_a_400(
    client: TestClient, world: None, operator: Headers, value: str
) -> None:
    """Python's JSON reader takes these; stored, they would come back as null."""
    body = f'{{"number": "{A}", "evidence": {{"method": "call", "score": {value}}}}}'
    answer = client.post(
        "/v1/consents",
        content=body.encode(),
        headers={**operator, "Content-Type": "application/json"},
    )
    assert_error(answer, 400, "invalid_evidence")
    assert look_up(client, operator, A) == ("blocked", "registered")


def test_bodies_that_are_not_json_or_too_big_are_rejected(
    client: TestClient, operator: Headers
) -> None:
    assert_error(
        client.post("/v1/consents", content=b"{not json", headers=operator),
        400,
        "invalid_request",
    )
    huge = b'{"number": "+12125550001", "evidence": {"x": "' + b"y" * 40_000 + b'"}}'
    assert_error(client.post("/v1/consents", content=huge, headers=operator), 413, "body_too_large")


def test_a_national_number_is_read_against_the_region(
    client: TestClient, carrier: Headers, operator: Headers
) -> None:
    register(client, carrier, "+861012345678")
    body = consent(client, operator, "010 1234 5678", region="CN")
    assert body["number"] == "+861012345678"
    assert look_up(client, operator, "+861012345678") == ("callable", "consent")
    answer = client.delete("/v1/consents/010%201234%205678?region=CN", headers=operator)
    assert answer.status_code == 200, answer.text


def test_an_operator_with_prefixes_records_consents_only_under_them(
    client: TestClient, world: None, new_key: NewKey
) -> None:
    scoped = new_key(prefixes=["+1212"])
    error = assert_error(
        client.post(
            "/v1/consents", json={"number": "+14155552671", "evidence": EVIDENCE}, headers=scoped
        ),
        403,
        "prefix_not_subscribed",
    )
    assert error["details"]["prefixes"] == ["+1212"]
    assert_error(
        client.get("/v1/consents/+14155552671", headers=scoped), 403, "prefix_not_subscribed"
    )
    # Withdrawing is always one's own to do: none held there is a 404, not a 403.
    assert_error(
        client.delete("/v1/consents/+14155552671", headers=scoped), 404, "consent_not_found"
    )
    consent(client, scoped, A)
    assert look_up(client, scoped, A) == ("callable", "consent")


def test_consents_under_a_prefix_given_up_end_and_do_not_come_back_with_it(
    client: TestClient, carrier: Headers, redis_client: Any
) -> None:
    """The review's case: an account drops +1646 and takes it back later."""
    made = client.post(
        "/v1/operators",
        json={"name": "Acme", "role": "operator", "prefixes": ["+1212", "+1646"]},
        headers=ADMIN,
    ).json()
    owner, key = made["operator_id"], {"Authorization": f"Bearer {made['api_key']}"}
    dropped, kept = "+16465550123", A
    for number in (dropped, kept):
        register(client, carrier, number)
    gone, stays = consent(client, key, dropped), consent(client, key, kept)
    answer = client.patch(f"/v1/operators/{owner}", json={"prefixes": ["+1212"]}, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    # Ended as on revocation: marked, its evidence kept the retention from now, audited.
    record = keys.consent(owner, gone["consent_id"])
    assert redis_client.hget(record, "withdrawn_by") == b"prefix_dropped:admin"
    assert RETENTION - 60 < redis_client.ttl(record) <= RETENTION
    entries = client.get("/v1/audit?limit=1000", headers=ADMIN).json()["entries"]
    ended = [e for e in entries if e["action"] == "consent.withdrawn"]
    assert [(e["consent_id"], e["operator"]) for e in ended] == [(gone["consent_id"], owner)]
    assert [e["consents_ended"] for e in entries if e["action"] == "operator.updated"] == ["1"]
    # The one under the prefix it keeps is untouched.
    assert redis_client.ttl(keys.consent(owner, stays["consent_id"])) == -1
    assert look_up(client, key, kept) == ("callable", "consent")
    # The prefix back: the old consent does not count again.
    client.patch(f"/v1/operators/{owner}", json={"prefixes": ["+1212", "+1646"]}, headers=ADMIN)
    assert look_up(client, key, dropped) == ("blocked", "registered")
    assert_error(client.delete(f"/v1/consents/{dropped}", headers=key), 404, "consent_not_found")


def test_an_operator_withdraws_its_consent_under_a_prefix_it_no_longer_has(
    client: TestClient, world: None, new_key: NewKey, redis_client: Any
) -> None:
    """One recorded as the prefix was being dropped (another worker's key cache still had
    it) is not out of reach: the operator withdraws it."""
    scoped = new_key(prefixes=["+1212"])
    owner = operator_id(client, scoped)
    made = consent(client, scoped, A)
    redis_client.hset(keys.operator(owner), "prefixes", "+1646")  # changed under it
    client.app.state.services.auth.forget(owner)
    assert_error(client.get(f"/v1/numbers/{A}", headers=scoped), 403, "prefix_not_subscribed")
    answer = client.delete(f"/v1/consents/{A}", headers=scoped)
    assert answer.status_code == 200, answer.text
    assert answer.json()["consent_id"] == made["consent_id"]
    assert RETENTION - 60 < redis_client.ttl(keys.consent(owner, made["consent_id"])) <= RETENTION


def test_consents_need_an_operator_key(
    client: TestClient, carrier: Headers, operator: Headers
) -> None:
    body = {"number": A, "evidence": EVIDENCE}
    assert_error(client.post("/v1/consents", json=body), 401, "missing_key")
    unknown = {"Authorization": "Bearer dnc_unknown"}
    assert_error(client.post("/v1/consents", json=body, headers=unknown), 401, "unknown_key")
    assert_error(client.post("/v1/consents", json=body, headers=carrier), 403, "forbidden")
    assert_error(client.delete(f"/v1/consents/{A}"), 401, "missing_key")
    assert_error(client.delete(f"/v1/consents/{A}", headers=carrier), 403, "forbidden")
    assert_error(client.get(f"/v1/consents/{A}"), 401, "missing_key")
    assert_error(client.get(f"/v1/consents/{A}", headers=carrier), 403, "forbidden")
    assert client.post("/v1/consents", json=body, headers=operator).status_code == 201


def test_the_endpoints_are_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "post" in paths["/v1/consents"] and "delete" in paths["/v1/consents/{number}"]
    assert "get" in paths["/v1/consents/{number}"]
    schema = paths["/v1/consents"]["post"]["requestBody"]["content"]["application/json"]
    assert "evidence" in schema["schema"]["required"]


def test_expires_at_may_write_the_t_and_the_z_in_lower_case(
    client: TestClient, world: None, operator: Headers
) -> None:
    """RFC 3339 allows `2027-01-31t00:00:00z`; it is the same time as the upper-case one."""
    lower = iso_in(3600).lower()
    body = consent(client, operator, A, expires_at=lower)
    assert look_up(client, operator, A) == ("callable", "consent")
    assert client.get(f"/v1/consents/{A}", headers=operator).json()["expires_at"] == lower.upper()
    assert body["consent_id"]


# --- Administrators read a consent's record, whatever became of it ------------------------


def test_administrators_read_a_withdrawn_consents_evidence_by_its_id(
    client: TestClient, world: None, operator: Headers, redis_client: Any
) -> None:
    """A dispute ("they said I consented") is settled from the kept record."""
    made = consent(client, operator, A)
    owner = operator_id(client, operator)
    assert client.delete(f"/v1/consents/{A}", headers=operator).status_code == 200
    path = f"/v1/operators/{owner}/consents/{made['consent_id']}"
    answer = client.get(path, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    record = answer.json()
    assert record["evidence"] == EVIDENCE and record["number"] == A
    assert record["operator"] == owner and record["ended"] == "withdrawn"
    assert record["live"] is False and record["withdrawn_by"] == owner
    assert record["recorded_at"] <= record["ended_at"]
    assert_error(client.get(path, headers=operator), 403, "forbidden")
    for wrong in (
        f"/v1/operators/{owner}/consents/cns_nope",
        f"/v1/operators/op_x/consents/{made['consent_id']}",
    ):
        assert_error(client.get(wrong, headers=ADMIN), 404, "consent_not_found")
    live = consent(client, operator, A)
    answer = client.get(f"/v1/operators/{owner}/consents/{live['consent_id']}", headers=ADMIN)
    assert answer.json()["live"] is True and answer.json()["ended"] is None


@pytest.mark.parametrize(
    "evidence",
    [
        {"method": "sms", "given_at": "2026-11-01T10:00:00+08:00", "text": "YES"},
        {"method": "ivr", "given_at": "2026-11-01t10:00:00z", "reference": "call-77"},
        {"method": "written", "given_at": "2026-11-01", "reference": "scan-3"},  # read as UTC
        {"method": "web_form", "reference": "signup-7", "ip": "198.51.100.7"},  # its own fields
        {"method": "web_form", "text": "✓"},  # a symbol is something to read
        {"method": "automobile dealer web form", "text": "Yes"},  # words, not letters
    ],
)
def test_evidence_in_the_shapes_operators_keep_is_accepted(
    client: TestClient, world: None, operator: Headers, evidence: dict[str, Any]
) -> None:
    # FREE: never registered, so no opt-out that these times of 2026-11-01 come before.
    answer = client.post(
        "/v1/consents", json={"number": FREE, "evidence": evidence}, headers=operator
    )
    assert answer.status_code == 201, answer.text


# --- Scope: the channels and categories a consent was given for ----------------------------


def test_a_consent_counts_only_for_the_channels_and_categories_it_names(
    client: TestClient, world: None, operator: Headers
) -> None:
    """Consent is for a purpose (PIPL art. 6): a consent to texts about loans is none to
    calls, nor to texts about anything else, nor to a request that names no purpose."""
    consent(client, operator, A, channels=["sms"], categories=[1])
    answers = {
        "channel=sms&category=1": ("callable", "consent"),
        "channel=sms&category=2": ("blocked", "registered"),
        "channel=sms": ("blocked", "registered"),  # no category: not the one consented to
        "channel=voice&category=1": ("blocked", "registered"),
        "category=1": ("blocked", "registered"),  # no channel asks about both
        "": ("blocked", "registered"),
    }
    for query, expected in answers.items():
        params = dict(p.split("=") for p in query.split("&")) if query else {}
        assert look_up(client, operator, A, **params) == expected, query
        scrubbed = client.post(
            "/v1/scrub", params=params, json={"numbers": [A, FREE]}, headers=operator
        ).json()
        assert scrubbed["blocked"] == ([] if expected[0] == "callable" else [A]), query
    read = client.get(f"/v1/consents/{A}", headers=operator).json()
    assert read["channels"] == ["sms"] and read["categories"] == [1]
    # Both channels and two categories.
    consent(client, operator, A, categories=[1, 4])
    assert look_up(client, operator, A, channel="voice", category="4") == ("callable", "consent")
    assert look_up(client, operator, A, category="1") == ("callable", "consent")
    assert look_up(client, operator, A, category="2") == ("blocked", "registered")
    # A newer consent without a scope replaces the scoped one: every channel and category.
    consent(client, operator, A)
    assert look_up(client, operator, A) == ("callable", "consent")
    read = client.get(f"/v1/consents/{A}", headers=operator).json()
    assert read["channels"] == ["voice", "sms"] and read["categories"] is None
    # And a scoped one replaces that in turn.
    consent(client, operator, A, channels=["voice"])
    assert look_up(client, operator, A, channel="voice") == ("callable", "consent")
    assert look_up(client, operator, A, channel="sms") == ("blocked", "registered")


def test_a_consents_scope_is_kept_with_its_record_and_in_the_audit_trail(
    client: TestClient, world: None, operator: Headers, redis_client: Any
) -> None:
    made = consent(client, operator, A, channels=["voice"], categories=[3, 1])
    owner = operator_id(client, operator)
    assert redis_client.hget(keys.consent_scopes(owner), A[1:]) is not None
    assert client.delete(f"/v1/consents/{A}", headers=operator).status_code == 200
    assert redis_client.hget(keys.consent_scopes(owner), A[1:]) is None
    # The withdrawn record still says what the subscriber agreed to.
    path = f"/v1/operators/{owner}/consents/{made['consent_id']}"
    record = client.get(path, headers=ADMIN).json()
    assert record["channels"] == ["voice"] and record["categories"] == [1, 3]
    entries = client.get("/v1/audit", headers=ADMIN).json()["entries"]
    recorded = [e for e in entries if e.get("consent_id") == made["consent_id"]]
    assert recorded[0]["channels"] == "voice" and recorded[0]["categories"] == "1,3"


@pytest.mark.parametrize(
    ("scope", "code"),
    [
        ({"channels": ["fax"]}, "invalid_scope"),
        ({"channels": []}, "invalid_scope"),
        ({"categories": []}, "invalid_scope"),
        ({"categories": [9]}, "invalid_scope"),
        ({"categories": [0]}, "invalid_scope"),
        ({"categories": ["2"]}, "invalid_request"),
        ({"categories": [True]}, "invalid_request"),
        ({"channels": "sms"}, "invalid_request"),
        ({"channels": ["sms", "voice", "sms"]}, "invalid_request"),  # more than two
    ],
)
def test_a_scope_the_registry_does_not_know_is_a_400_and_records_nothing(
    client: TestClient, world: None, operator: Headers, scope: dict[str, Any], code: str
) -> None:
    answer = client.post(
        "/v1/consents", json={"number": A, "evidence": EVIDENCE, **scope}, headers=operator
    )
    assert_error(answer, 400, code)
    assert_error(client.get(f"/v1/consents/{A}", headers=operator), 404, "consent_not_found")
    assert look_up(client, operator, A) == ("blocked", "registered")


def test_administrators_list_every_operators_current_consent_from_a_number(
    client: TestClient, world: None, operator: Headers, new_key: NewKey
) -> None:
    """A subscriber disputing "they say I consented" is answered from the number, not from a
    consent id only the operator and a five-month audit trail knew."""
    other = new_key()
    first = consent(client, operator, A)
    second = consent(client, other, A, channels=["sms"], categories=[1])
    consent(client, operator, B)  # another number's
    answer = client.get("/v1/numbers/(212) 555-0001/consents", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["number"] == A
    listed = {c["consent_id"]: c for c in body["consents"]}
    assert set(listed) == {first["consent_id"], second["consent_id"]}
    assert listed[first["consent_id"]]["operator"] == operator_id(client, operator)
    assert listed[first["consent_id"]]["evidence"] == EVIDENCE
    assert listed[first["consent_id"]]["live"] is True
    assert listed[second["consent_id"]]["channels"] == ["sms"]
    # Withdrawn: no longer live, and listed while its record is kept.
    assert client.delete(f"/v1/consents/{A}", headers=operator).status_code == 200
    after = client.get(f"/v1/numbers/{A}/consents", headers=ADMIN).json()["consents"]
    state = {c["consent_id"]: (c["live"], c["ended"]) for c in after}
    assert state == {first["consent_id"]: (False, "withdrawn"), second["consent_id"]: (True, None)}
    assert client.get(f"/v1/numbers/{FREE}/consents", headers=ADMIN).json()["consents"] == []
    # Operators see only their own, through GET /v1/consents/{number}.
    assert_error(client.get(f"/v1/numbers/{A}/consents", headers=operator), 403, "forbidden")
    assert_error(client.get("/v1/numbers/12/consents", headers=ADMIN), 400, "invalid_number")


def test_a_superseded_consent_is_named_by_the_one_that_replaced_it_and_listed(
    client: TestClient, world: None, operator: Headers, redis_client: Any
) -> None:
    """Its record is kept DNC_RETENTION_DAYS after it was superseded; its own audit entry
    may be trimmed before (a consent without an end lives longer than the trail), so the
    superseding entry names it and the number's listing shows it."""
    old = consent(client, operator, A)
    new = consent(client, operator, A, evidence=EVIDENCE | {"reference": "form-43"})
    entries = client.get("/v1/audit?limit=1000", headers=ADMIN).json()["entries"]
    recorded = {e["consent_id"]: e for e in entries if e["action"] == "consent.recorded"}
    assert recorded[new["consent_id"]]["supersedes"] == old["consent_id"]
    assert "supersedes" not in recorded[old["consent_id"]]
    listed = client.get(f"/v1/numbers/{A}/consents", headers=ADMIN).json()["consents"]
    state = {c["consent_id"]: (c["live"], c["ended"], c["ended_at"] is None) for c in listed}
    assert state == {
        old["consent_id"]: (False, "superseded", False),
        new["consent_id"]: (True, None, True),
    }
    assert {c["evidence"]["reference"] for c in listed} == {"form-42", "form-43"}
    # The index lives as long as the last record it lists; one whose retention passed
    # is listed no more.
    kept = keys.consents_kept(12125550001)
    assert redis_client.ttl(kept) == -1  # the live one has no end date
    owner = operator_id(client, operator)
    assert client.delete(f"/v1/consents/{A}", headers=operator).status_code == 200
    assert RETENTION - 60 < redis_client.ttl(kept) <= RETENTION
    redis_client.delete(keys.consent(owner, old["consent_id"]))  # as its TTL would
    listed = client.get(f"/v1/numbers/{A}/consents", headers=ADMIN).json()["consents"]
    assert [c["consent_id"] for c in listed] == [new["consent_id"]]


@pytest.mark.parametrize("opt_out", ["before_the_record", "after_the_record"])
def test_old_evidence_recorded_as_the_opt_out_lands_does_not_outlive_it(
    client: TestClient,
    world: None,
    operator: Headers,
    monkeypatch: pytest.MonkeyPatch,
    opt_out: str,
) -> None:
    """The old evidence recorded again while a STOP ends the live consent: whichever
    reaches Redis first, the consent does not outlive the opt-out. Before the record, the
    script that stores it sees the opt-out's time (written by the script that ended the
    consent) and stores nothing; after it, the opt-out ends what it stored."""
    old = dated(given_now(), "sms")  # after the world's registration, before the STOP
    consent(client, operator, A, evidence=old)
    record = consent_store.ConsentStore.record

    async def racing(self: consent_store.ConsentStore, operator_id: str, number: int,
                     *args: Any, **kwargs: Any) -> Any:  # fmt: skip
        if opt_out == "before_the_record":
            await self.end_for_opt_out(number, "opt_out:test")
        made = await record(self, operator_id, number, *args, **kwargs)
        if opt_out == "after_the_record":
            await self.end_for_opt_out(number, "opt_out:test")
        return made

    monkeypatch.setattr(consent_store.ConsentStore, "record", racing)
    answer = client.post("/v1/consents", json={"number": A, "evidence": old}, headers=operator)
    if opt_out == "before_the_record":
        assert_error(answer, 409, "consent_predates_opt_out")
    else:
        assert answer.status_code == 201, answer.text  # recorded, then the STOP ended it
    monkeypatch.undo()
    assert_error(client.get(f"/v1/consents/{A}", headers=operator), 404, "consent_not_found")
    assert look_up(client, operator, A) == ("blocked", "registered")


def test_old_evidence_refused_leaves_the_consent_given_since_alone(
    client: TestClient, world: None, operator: Headers, carrier: Headers
) -> None:
    """Refused before anything is written: a consent given after the STOP stays live."""
    old = {"method": "sms", "given_at": "2026-01-01T00:00:00Z", "text": "yes"}
    consent(client, operator, C, evidence=old)
    assert stop(client, carrier, C, "TD") == "registered"
    consent(client, operator, C, evidence={"method": "sms", "given_at": iso_in(1), "text": "yes"})
    answer = client.post("/v1/consents", json={"number": C, "evidence": old}, headers=operator)
    assert_error(answer, 409, "consent_predates_opt_out")
    assert client.get(f"/v1/consents/{C}", headers=operator).status_code == 200
    assert look_up(client, operator, C, channel="sms") == ("callable", "consent")


def test_a_refused_consent_leaves_the_numbers_index_expiring_with_what_it_lists(
    client: TestClient, operator: Headers, carrier: Headers, redis_client: Any
) -> None:
    """A consent is listed under its number (no end: kept for good) before the script
    that stores it runs; when the script refused it, the entry went with a bare ZREM,
    and the number's index kept no expiry at all instead of the retention of the
    ended consent it still lists."""
    evidence = {"method": "web_form", "text": "Yes", "reference": "f-1", "given_at": given_now()}
    consent(client, operator, C, evidence=evidence)
    assert stop(client, carrier, C) == "registered"  # ends it: kept the retention from now
    kept = keys.consents_kept(int(C[1:]))
    assert RETENTION - 60 < redis_client.ttl(kept) <= RETENTION
    undated = {k: v for k, v in evidence.items() if k != "given_at"}
    answer = client.post("/v1/consents", json={"number": C, "evidence": undated}, headers=operator)
    assert_error(answer, 409, "consent_predates_opt_out")
    assert RETENTION - 60 < redis_client.ttl(kept) <= RETENTION


def test_evidence_from_before_a_start_text_is_refused_and_from_after_counts(
    client: TestClient, operator: Headers, carrier: Headers
) -> None:
    """START n registering a number is an opt-out like any registration: the evidence
    given before it no longer counts; a consent given since does."""
    evidence = dated(given_now())
    consent(client, operator, C, evidence=evidence)
    time.sleep(1.1)  # registered_at is whole seconds
    assert stop(client, carrier, C, "START 2") == "registered"
    assert look_up(client, operator, C) == ("blocked", "registered")
    answer = client.post("/v1/consents", json={"number": C, "evidence": evidence}, headers=operator)
    assert_error(answer, 409, "consent_predates_opt_out")
    consent(client, operator, C, evidence=dated(given_now()))
    assert look_up(client, operator, C) == ("callable", "consent")


def test_an_opt_out_outlives_its_retention_while_the_number_stays_registered(
    client: TestClient, operator: Headers, carrier: Headers, redis_client: Any, tmp_path: Any
) -> None:
    """The opt-out's time was kept DNC_RETENTION_DAYS from the opt-out: past that, with the
    number still registered, evidence from before the opt-out was taken again (an audit
    deleted the key to stand for the days). It stays while the registration stands, and
    the registration's start answers for one from before it was kept so."""
    from loader.load import load_files

    old = dated(given_now())
    number = int(C[1:])
    opted_out = keys.number_opted_out(number)
    consent(client, operator, C, evidence=old)
    time.sleep(1.1)  # registered_at is whole seconds
    assert stop(client, carrier, C) == "registered"
    assert redis_client.ttl(opted_out) == -1  # kept while registered
    body = {"number": C, "evidence": old}
    assert_error(client.post("/v1/consents", json=body, headers=operator), 409,
                 "consent_predates_opt_out")  # fmt: skip
    redis_client.delete(opted_out)  # as an opt-out time kept only the retention would be
    error = assert_error(
        client.post("/v1/consents", json=body, headers=operator), 409, "consent_predates_opt_out"
    )
    registered_at = client.get(f"/v1/registrations/{C}").json()["registered_at"]
    assert error["details"]["opted_out_at"] == registered_at
    # Deregistered, by a carrier or a bulk removal: its retention from then.
    assert stop(client, carrier, C) == "registered"
    assert client.delete(f"/v1/registrations/{C}", headers=carrier).status_code == 200
    assert RETENTION - 60 < redis_client.ttl(opted_out) <= RETENTION
    assert stop(client, carrier, A) == "registered"
    assert redis_client.ttl(keys.number_opted_out(int(A[1:]))) == -1
    path = tmp_path / "remove.txt"
    path.write_text(f"{A}\n")
    load_files(redis_client, [path], fmt="auto", column=None, region="US", remove=True,
               retention_days=153, progress=False)  # fmt: skip
    assert RETENTION - 60 < redis_client.ttl(keys.number_opted_out(int(A[1:]))) <= RETENTION


def test_the_same_preferences_again_keep_how_the_registration_began(
    client: TestClient, carrier: Headers, redis_client: Any
) -> None:
    """A carrier's re-sync or a second STOP replaced the record's source, and the way the
    subscriber opted out was then only in an audit entry that ends after the retention."""
    number = int(C[1:])

    def source() -> str:
        raw = redis_client.hget(keys.details(keys.bucket_of(number)), keys.member_of(number))
        return str(raw.decode().split("|", 3)[3])

    assert client.put(f"/v1/registrations/{C}", json={"source": "ivr"},
                      headers=carrier).status_code == 201  # fmt: skip
    began = source()
    assert began.endswith(":ivr")
    assert stop(client, carrier, C) == "registered"  # the same preferences
    assert client.put(f"/v1/registrations/{C}", headers=carrier).status_code == 200
    assert source() == began
    assert client.put(f"/v1/registrations/{C}", json={"channels": ["sms"]},
                      headers=carrier).status_code == 200  # fmt: skip
    assert source().endswith(":carrier")

"""POST /v1/sms/inbound: opt-out keywords a carrier forwards (CONTRACT section 6, Carriers).

Through the real app: a carrier's key forwards the text, then an operator's
look-up of the number shows what the keyword did.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from conftest import ADMIN, assert_error
from fastapi.testclient import TestClient

from registry.store import keys

pytestmark = pytest.mark.cluster  # every test on one redis-server and on a Redis Cluster
Headers = dict[str, str]
NUMBER = "+12125551234"
SHORT_CODE = "55555"


def sms(client: TestClient, key: Headers, text: str, sender: str = NUMBER) -> dict[str, str]:
    answer = client.post(
        "/v1/sms/inbound", json={"from": sender, "to": SHORT_CODE, "text": text}, headers=key
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"action", "reply"}
    assert body["reply"]
    return body  # type: ignore[no-any-return]


def status(client: TestClient, operator: Headers, number: str = NUMBER, **query: str | int) -> str:
    answer = client.get(f"/v1/numbers/{number}", params=query, headers=operator)
    assert answer.status_code == 200, answer.text
    return answer.json()["status"]  # type: ignore[no-any-return]


def test_stop_registers_a_full_block(
    client: TestClient, carrier: Headers, operator: Headers
) -> None:
    assert status(client, operator) == "callable"
    body = sms(client, carrier, "STOP")
    assert body["action"] == "registered"
    assert "START" in body["reply"] and "do-not-call" in body["reply"]
    assert status(client, operator) == "blocked"
    assert status(client, operator, category=2) == "blocked"
    assert status(client, operator, channel="sms") == "blocked"
    assert status(client, operator, channel="voice") == "blocked"
    registration = client.get(f"/v1/registrations/{NUMBER}").json()
    assert registration["registered"] is True


def test_stop_again_is_still_registered_and_keeps_registered_at(
    client: TestClient, carrier: Headers
) -> None:
    assert sms(client, carrier, "STOP")["action"] == "registered"
    first = client.get(f"/v1/registrations/{NUMBER}").json()["registered_at"]
    assert sms(client, carrier, "quit")["action"] == "registered"
    assert sms(client, carrier, "START 0")["action"] == "registered"
    assert client.get(f"/v1/registrations/{NUMBER}").json()["registered_at"] == first


@pytest.mark.parametrize(
    "text", ["ＳＴＯＰ", "stop", "Stop. Thank you", "STOP please", "stop!!", "  End  ", "STOPALL"]
)
def test_width_case_and_courtesy_variants_register(
    client: TestClient, carrier: Headers, operator: Headers, text: str
) -> None:
    assert sms(client, carrier, text)["action"] == "registered"
    assert status(client, operator) == "blocked"


@pytest.mark.parametrize(
    "text",
    [
        "Stop thank you very much",
        "STOP, thanks very much",
        "Stop thanks a lot",
        "STOP thank u",
        "Stop please and thank you",
        "STOP kindly",
        "STOP STOP",
        "STOP, STOP",
        "Stop stop stop",
    ],
)
def test_reasonable_opt_outs_found_by_the_audit_register(
    client: TestClient, carrier: Headers, operator: Headers, text: str
) -> None:
    body = sms(client, carrier, text)
    assert body["action"] == "registered"
    assert "do-not-call" in body["reply"]
    assert status(client, operator) == "blocked"


@pytest.mark.parametrize(
    "text", ["退订", "退订，谢谢", "TD", "td", "退订，谢谢啦", "退訂", "退訂，謝謝"]
)
def test_chinese_keywords_register_and_reply_in_chinese(
    client: TestClient, carrier: Headers, operator: Headers, text: str
) -> None:
    body = sms(client, carrier, text, sender="+8613800138000")
    assert body["action"] == "registered"
    assert "拒收" in body["reply"]
    assert not any("a" <= c <= "z" for c in body["reply"])  # no English words
    assert status(client, operator, "+8613800138000") == "blocked"


def test_start_with_categories_and_courtesy_words_keeps_its_meaning(
    client: TestClient, carrier: Headers, operator: Headers
) -> None:
    assert sms(client, carrier, "START 2,3 thank you very much")["action"] == "registered"
    assert status(client, operator, category=2) == "callable"
    assert status(client, operator, category=3) == "callable"
    assert status(client, operator, category=1) == "blocked"


def test_start_with_categories_allows_them(
    client: TestClient, carrier: Headers, operator: Headers
) -> None:
    body = sms(client, carrier, "START 2,5")
    assert body["action"] == "registered"
    assert "real estate" in body["reply"]
    assert status(client, operator, category=2) == "callable"
    assert status(client, operator, category=5) == "callable"
    assert status(client, operator, category=3) == "blocked"
    assert status(client, operator) == "blocked"  # no category: any registration blocks


def test_start_with_categories_on_a_registered_number_updates_preferences(
    client: TestClient, carrier: Headers, operator: Headers
) -> None:
    sms(client, carrier, "STOP")
    assert status(client, operator, category=2) == "blocked"
    assert sms(client, carrier, "ｓｔａｒｔ　２，５")["action"] == "preferences_updated"
    assert status(client, operator, category=2) == "callable"
    assert status(client, operator, category=1) == "blocked"
    # STOP afterwards takes the categories back: a full block again, "registered" as the
    # contract words it for STOP whatever was there before.
    assert sms(client, carrier, "STOP")["action"] == "registered"
    assert status(client, operator, category=2) == "blocked"


@pytest.mark.parametrize("text", ["ｓｔｏｐ", "START 0", "退订"])
def test_a_full_block_on_a_registered_number_answers_registered(
    client: TestClient, carrier: Headers, operator: Headers, text: str
) -> None:
    assert sms(client, carrier, "START 2,5")["action"] == "registered"
    assert status(client, operator, category=2) == "callable"
    answer = sms(client, carrier, text)
    assert answer["action"] == "registered"
    assert "START" in answer["reply"]
    assert status(client, operator, category=2) == "blocked"


def test_start_with_categories_keeps_the_blocked_channels(
    client: TestClient, carrier: Headers, operator: Headers
) -> None:
    put = client.put(f"/v1/registrations/{NUMBER}", json={"channels": ["sms"]}, headers=carrier)
    assert put.status_code == 201
    assert sms(client, carrier, "START 2")["action"] == "preferences_updated"
    assert status(client, operator, channel="voice", category=1) == "callable"
    assert status(client, operator, channel="sms", category=1) == "blocked"
    assert status(client, operator, channel="sms", category=2) == "callable"
    # STOP is a full block: every channel.
    sms(client, carrier, "STOP")
    assert status(client, operator, channel="voice") == "blocked"


@pytest.mark.parametrize(
    ("channels", "sender", "says", "denies"),
    [
        (["sms"], NUMBER, "marketing texts are blocked except for education (3)", "calls"),
        (["voice"], NUMBER, "marketing calls are blocked except for education (3)", "texts"),
        # START is an English keyword: answered in English, whoever sends it.
        (["sms"], "+8613800138000", "marketing texts are blocked except for education", "calls"),
        (["voice"], "+8613800138000", "marketing calls are blocked except for education", "texts"),
    ],
)
def test_the_start_n_reply_names_the_channels_still_blocked(
    client: TestClient,
    carrier: Headers,
    operator: Headers,
    channels: list[str],
    sender: str,
    says: str,
    denies: str,
) -> None:
    """A registration for one channel keeps it through START n, and the reply says which:
    not that "marketing" is blocked while the other channel is not blocked at all."""
    put = client.put(f"/v1/registrations/{sender}", json={"channels": channels}, headers=carrier)
    assert put.status_code == 201
    reply = sms(client, carrier, "START 3", sender=sender)["reply"]
    other = "voice" if channels == ["sms"] else "sms"
    assert status(client, operator, sender, channel=other, category=1) == "callable"
    assert says in reply
    assert denies in reply.split("Reply")[0].split("回复")[0]  # ...are not blocked


def test_a_new_start_n_registration_blocks_and_names_both_channels(
    client: TestClient, carrier: Headers
) -> None:
    reply = sms(client, carrier, "START 3")["reply"]
    assert "marketing calls and texts are blocked except for education (3)" in reply


@pytest.mark.parametrize("text", ["START", "UNSTOP", "STOP DND", "start!", "STOP DND, thank you"])
def test_start_alone_unstop_and_stop_dnd_deregister(
    client: TestClient, carrier: Headers, operator: Headers, text: str
) -> None:
    sms(client, carrier, "STOP")
    assert status(client, operator) == "blocked"
    body = sms(client, carrier, text)
    assert body["action"] == "deregistered"
    assert "STOP" in body["reply"]
    assert status(client, operator) == "callable"
    assert client.get(f"/v1/registrations/{NUMBER}").json()["registered"] is False


def test_deregistering_a_number_that_is_not_registered_is_still_deregistered(
    client: TestClient, carrier: Headers, operator: Headers
) -> None:
    assert sms(client, carrier, "START")["action"] == "deregistered"
    assert status(client, operator) == "callable"


@pytest.mark.parametrize("text", ["HELP", "info", "ＨＥＬＰ"])
def test_help_changes_nothing(
    client: TestClient, carrier: Headers, operator: Headers, text: str
) -> None:
    body = sms(client, carrier, text)
    assert body["action"] == "help"
    assert "STOP" in body["reply"] and "START" in body["reply"]
    assert status(client, operator) == "callable"


@pytest.mark.parametrize("text", ["帮助", "幫助"])
def test_chinese_help_answers_in_chinese_and_changes_nothing(
    client: TestClient, carrier: Headers, operator: Headers, text: str
) -> None:
    body = sms(client, carrier, text, sender="+8613800138000")
    assert body["action"] == "help"
    assert "退订" in body["reply"] and "START" in body["reply"]
    assert not any("a" <= c <= "z" for c in body["reply"])
    assert status(client, operator, "+8613800138000") == "callable"


def test_the_chinese_reply_points_at_chinese_help(client: TestClient, carrier: Headers) -> None:
    """HELP is answered in English, so the reply to 退订 names 帮助, answered in Chinese."""
    sender = "+8613800138000"
    reply = sms(client, carrier, "退订", sender=sender)["reply"]
    assert "帮助" in reply and "HELP" not in reply
    assert sms(client, carrier, "帮助", sender=sender)["reply"].startswith("拒收")


@pytest.mark.parametrize(
    "text",
    [
        "please don't stop",
        "hello",
        "",
        "STOPPED",
        "START 9",
        "STOP 1",
        "STOP STOP DND",
        "CANCEL STOP",
        "STOP me now",
        "Please stop",
    ],
)
def test_anything_else_is_unknown_with_the_help_text_and_changes_nothing(
    client: TestClient, carrier: Headers, operator: Headers, text: str
) -> None:
    body = sms(client, carrier, text)
    assert body["action"] == "unknown"
    assert "STOP" in body["reply"] and "START" in body["reply"]
    assert status(client, operator) == "callable"


def test_a_chinese_number_gets_its_unknown_reply_in_chinese(
    client: TestClient, carrier: Headers
) -> None:
    """A text with no keyword from +86 is answered with the Chinese instructions (TD, 退订);
    an English keyword still gets its English reply."""
    chinese = "+8613800138000"
    body = sms(client, carrier, "hi", sender=chinese)
    assert body["action"] == "unknown" and "退订" in body["reply"]
    assert "STOP" in sms(client, carrier, "hi")["reply"]
    assert sms(client, carrier, "T", sender=chinese)["action"] == "registered"
    assert sms(client, carrier, "STOP", sender=chinese)["reply"].startswith("You are on")


@pytest.mark.parametrize(
    ("grace_days", "english", "chinese", "after"),
    [
        (7, "within 7 days", "在7天内", "7 days after joining"),
        (1, "within 1 day", "在1天内", "1 day after joining"),
        (31, "within a month", "在一个月内", "a month after joining"),
    ],
)
def test_the_replies_state_the_grace_the_registry_gives(
    spare: Any,
    carrier: Headers,
    grace_days: int,
    english: str,
    chinese: str,
    after: str,
) -> None:
    """The grace in the replies is DNC_GRACE_DAYS, as the registration's effective_at."""
    api = spare(grace_days=grace_days)
    body = sms(api, carrier, "STOP")
    record = api.get(f"/v1/registrations/{NUMBER}").json()
    given = datetime.fromisoformat(record["effective_at"]) - datetime.fromisoformat(
        record["registered_at"]
    )
    assert given.days == grace_days
    assert english in body["reply"]
    assert chinese in sms(api, carrier, "退订", sender="+8613800138000")["reply"]
    assert after in sms(api, carrier, "HELP")["reply"]
    assert after in sms(api, carrier, "hello")["reply"]
    if grace_days != 31:
        assert "month" not in body["reply"] + sms(api, carrier, "HELP")["reply"]


def test_two_opt_out_words_register_and_cancel_stop_does_not(
    client: TestClient, carrier: Headers, operator: Headers
) -> None:
    assert sms(client, carrier, "CANCEL STOP")["action"] == "unknown"
    assert status(client, operator) == "callable"
    assert sms(client, carrier, "STOP UNSUBSCRIBE")["action"] == "registered"
    assert status(client, operator) == "blocked"


def test_an_out_of_range_category_leaves_the_registration_as_it_was(
    client: TestClient, carrier: Headers, operator: Headers
) -> None:
    sms(client, carrier, "START 2")
    body = sms(client, carrier, "START 2,9")
    assert body["action"] == "unknown"
    assert "1 to 8" in body["reply"]
    assert status(client, operator, category=2) == "callable"
    assert status(client, operator, category=8) == "blocked"


def test_national_format_sender_is_read_against_the_region(
    client: TestClient, carrier: Headers, operator: Headers
) -> None:
    assert sms(client, carrier, "STOP", sender="(212) 555-1234")["action"] == "registered"
    assert status(client, operator) == "blocked"
    answer = client.post(
        "/v1/sms/inbound?region=CN",
        json={"from": "138 0013 8000", "to": "10086", "text": "退订"},
        headers=carrier,
    )
    assert answer.json()["action"] == "registered"
    assert status(client, operator, "+8613800138000") == "blocked"


def test_state_changes_are_audited_with_the_short_code(
    client: TestClient, carrier: Headers, redis_client: Any
) -> None:
    sms(client, carrier, "STOP")
    sms(client, carrier, "START 3")
    sms(client, carrier, "HELP")  # no change, no entry
    sms(client, carrier, "UNSTOP")
    entries = [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in redis_client.xrange(keys.AUDIT)
    ]
    actions = [e["action"] for e in entries if e.get("short_code")]
    assert actions == ["registration.created", "registration.updated", "registration.removed"]
    for entry in entries:
        if entry.get("short_code"):
            assert entry["short_code"] == SHORT_CODE
            assert entry["number"] == NUMBER
            assert entry["source"].endswith(":sms")
    assert [e["keyword"] for e in entries if e.get("short_code")] == ["STOP", "START", "UNSTOP"]


def test_the_registration_source_is_the_carrier_and_sms(
    client: TestClient, carrier: Headers, redis_client: Any
) -> None:
    sms(client, carrier, "STOP")
    value = int(NUMBER[1:])
    raw = redis_client.hget(keys.details(keys.bucket_of(value)), keys.member_of(value))
    assert raw is not None and raw.decode().endswith(":sms")


# -- who may call, and bad envelopes ---------------------------------------------------------


def test_an_operator_key_is_forbidden(client: TestClient, operator: Headers) -> None:
    answer = client.post(
        "/v1/sms/inbound", json={"from": NUMBER, "to": SHORT_CODE, "text": "STOP"}, headers=operator
    )
    assert_error(answer, 403, "forbidden")
    assert status(client, operator) == "callable"


def test_no_key_is_401(client: TestClient) -> None:
    answer = client.post("/v1/sms/inbound", json={"from": NUMBER, "to": SHORT_CODE, "text": "STOP"})
    assert_error(answer, 401, "missing_key")
    bad = {"Authorization": "Bearer nope"}
    answer = client.post(
        "/v1/sms/inbound", json={"from": NUMBER, "to": SHORT_CODE, "text": "STOP"}, headers=bad
    )
    assert_error(answer, 401, "unknown_key")


def test_an_administrator_key_may_forward_texts(client: TestClient, operator: Headers) -> None:
    assert sms(client, ADMIN, "STOP")["action"] == "registered"
    assert status(client, operator) == "blocked"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"from": "12345", "to": SHORT_CODE, "text": "STOP"}, "invalid_number"),
        ({"from": "not a number", "to": SHORT_CODE, "text": "STOP"}, "invalid_number"),
        ({"from": "9" * 400, "to": SHORT_CODE, "text": "STOP"}, "invalid_number"),
        ({"from": "", "to": SHORT_CODE, "text": "STOP"}, "invalid_number"),
        ({"from": NUMBER, "to": "12", "text": "STOP"}, "invalid_short_code"),
        ({"from": NUMBER, "to": "short", "text": "STOP"}, "invalid_short_code"),
        ({"from": NUMBER, "to": "1234567890123456", "text": "STOP"}, "invalid_short_code"),
        ({"from": NUMBER, "to": SHORT_CODE}, "invalid_request"),
        ({"to": SHORT_CODE, "text": "STOP"}, "invalid_request"),
        ({"from": NUMBER, "to": SHORT_CODE, "text": 7}, "invalid_request"),
        ({"from": 12125551234, "to": SHORT_CODE, "text": "STOP"}, "invalid_request"),
        ({"from": NUMBER, "to": SHORT_CODE, "text": "STOP", "extra": 1}, "invalid_request"),
        ({"from": NUMBER, "to": SHORT_CODE, "text": "x" * 10_001}, "invalid_request"),
        ([NUMBER, SHORT_CODE, "STOP"], "invalid_request"),
    ],
)
def test_bad_envelopes_are_400_and_change_nothing(
    client: TestClient, carrier: Headers, operator: Headers, body: object, code: str
) -> None:
    answer = client.post("/v1/sms/inbound", json=body, headers=carrier)
    assert_error(answer, 400, code)
    assert status(client, operator) == "callable"


def test_a_body_that_is_not_json_is_a_4xx(client: TestClient, carrier: Headers) -> None:
    answer = client.post(
        "/v1/sms/inbound",
        content=b"from=+12125551234&text=STOP",
        headers={**carrier, "Content-Type": "application/json"},
    )
    assert 400 <= answer.status_code < 500
    assert set(answer.json()) == {"error"}


def test_a_bad_region_is_400(client: TestClient, carrier: Headers) -> None:
    answer = client.post(
        "/v1/sms/inbound?region=XX",
        json={"from": NUMBER, "to": SHORT_CODE, "text": "STOP"},
        headers=carrier,
    )
    assert_error(answer, 400, "invalid_region")


# -- content type and size ------------------------------------------------------------------


ENVELOPE = b'{"from": "+12125551234", "to": "55555", "text": "STOP"}'


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_json_sent_as_another_content_type_is_read_as_json(
    client: TestClient, carrier: Headers, operator: Headers, content_type: str | None
) -> None:
    """curl -d sends a form type unless told otherwise: a JSON object is still JSON."""
    headers = {**carrier, **({"Content-Type": content_type} if content_type else {})}
    answer = client.post("/v1/sms/inbound", content=ENVELOPE, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["action"] == "registered"
    assert status(client, operator) == "blocked"


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", None])
def test_a_body_that_is_no_json_object_is_a_415_naming_application_json(
    client: TestClient, carrier: Headers, operator: Headers, content_type: str | None
) -> None:
    headers = {**carrier, **({"Content-Type": content_type} if content_type else {})}
    form = b"from=%2B12125551234&to=55555&text=STOP"
    answer = client.post("/v1/sms/inbound", content=form, headers=headers)
    error = assert_error(answer, 415, "unsupported_media_type")
    assert "application/json" in error["message"]
    assert "dictionary" not in error["message"]
    assert status(client, operator) == "callable"


def test_json_with_a_charset_is_json(client: TestClient, carrier: Headers) -> None:
    headers = {**carrier, "Content-Type": "application/json; charset=utf-8"}
    answer = client.post("/v1/sms/inbound", content=ENVELOPE, headers=headers)
    assert answer.status_code == 200, answer.text


def test_a_body_of_megabytes_is_a_413_before_it_is_read(
    client: TestClient, carrier: Headers
) -> None:
    headers = {**carrier, "Content-Type": "application/json"}
    answer = client.post("/v1/sms/inbound", content=b" " * 20_000_000, headers=headers)
    error = assert_error(answer, 413, "body_too_large")
    assert "scrub" in error["message"]  # the one endpoint that takes large bodies
    assert error["details"]["limit_bytes"] == 128 * 1024

    def chunks() -> Any:  # no Content-Length: counted as it arrives
        for _ in range(200):
            yield b" " * 100_000

    answer = client.post("/v1/sms/inbound", content=chunks(), headers=headers)
    assert_error(answer, 413, "body_too_large")


def test_the_longest_text_fits_the_body_limit_however_it_is_escaped(
    client: TestClient, carrier: Headers
) -> None:
    # 10,000 emoji, each a JSON surrogate pair as ensure_ascii encoders write them.
    text = "\\ud83d\\ude00" * 10_000
    body = b'{"from": "+12125551234", "to": "55555", "text": "' + text.encode() + b'"}'
    assert len(body) > 64 * 1024
    headers = {**carrier, "Content-Type": "application/json"}
    answer = client.post("/v1/sms/inbound", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["action"] == "unknown"

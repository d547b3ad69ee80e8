"""The subscriber page's forms posted without JavaScript (registry/api/forms.py).

A browser with scripts off posts each form URL-encoded to its `action` and shows
the HTML that comes back. These tests post what such a browser posts, through the
real app and a real Redis, and read the answer pages as text. tests/test_pages.py
drives the same forms in Chromium with JavaScript off.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import ADMIN, assert_error, ready_client
from fastapi.testclient import TestClient
from httpx import Response

from registry.config import Settings

NUMBER = "+12125551234"
FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    return tmp_path / "outbox.jsonl"


@pytest.fixture
def web(settings: Settings, outbox: Path) -> Iterator[TestClient]:
    api = ready_client(settings.with_(notifier=f"file:{outbox}", status_checks_per_minute=3))
    yield api
    api.__exit__(None, None, None)


def codes(outbox: Path) -> list[str]:
    lines = outbox.read_text().splitlines() if outbox.exists() else []
    return [json.loads(line)["code"] for line in lines]


def filed(answer: Response) -> bool:
    """A complaint form's answer: a 303 to the report's own page (a reload reads it again,
    and files nothing more), which shows the complaint recorded."""
    first = answer.history[0] if answer.history else answer
    return (
        first.status_code == 303
        and first.headers["location"].startswith("/complaints/cmp_")
        and first.headers["cache-control"] == "no-store"
        and answer.status_code == 200
    )


def shown(answer: Response) -> str:
    """The answer page's message, tags stripped."""
    assert answer.headers["content-type"].startswith("text/html"), answer.text
    assert answer.headers["content-security-policy"].startswith("default-src 'self';")
    found = re.search(r'<div class="result" id="answer">(.*?)</div>\s*<p><a', answer.text, re.S)
    assert found, answer.text
    return " ".join(re.sub(r"<[^>]+>", " ", found[1]).split())


def code_form(answer: Response) -> str:
    found = re.search(r'<form method="post" action="([^"]+)">', answer.text)
    assert found, answer.text
    return found[1]


def look_up(client: TestClient, number: str = NUMBER) -> str:
    return str(client.get(f"/v1/numbers/{number}", headers=ADMIN).json()["status"])


def test_a_subscriber_registers_with_a_code_and_the_number_is_blocked_at_once(
    web: TestClient, outbox: Path
) -> None:
    form = "number=%28212%29+555-1234&region=us&channels=voice&channels=sms&allow_categories=2"
    sent = web.post("/forms/registrations", content=form, headers=FORM)
    assert sent.status_code == 202
    assert "We sent a six-digit code to (212) 555-1234" in shown(sent)
    confirm = code_form(sent)
    assert re.fullmatch(r"/forms/registrations/[\w-]+/confirm", confirm)
    [code] = codes(outbox)
    assert look_up(web) == "callable"

    wrong = web.post(confirm, data={"code": "000000" if code != "000000" else "111111"})
    assert wrong.status_code == 400
    assert "That is not the code sent; 4 tries left." in shown(wrong)
    assert code_form(wrong) == confirm  # typed again on the same page
    # Announced, and tied to the field it is about, as the page with scripts ties it.
    assert '<p class="error" role="alert" id="code-error">' in wrong.text
    assert 'aria-invalid="true" aria-describedby="code-error"' in wrong.text
    unreadable = web.post(confirm, data={"code": "12"})
    assert unreadable.status_code == 400 and 'aria-describedby="code-error"' in unreadable.text

    done = web.post(confirm, data={"code": f"{code[:3]} {code[3:]}"})
    assert done.status_code == 201
    effective = (datetime.now(UTC) + timedelta(days=31)).strftime("%d %B %Y")
    assert shown(done).startswith(f"{NUMBER} is registered.")
    assert effective in shown(done)
    # What was chosen, to check: the boxes the form ticked, as the script's page says them.
    assert "Blocked: calls and text messages." in shown(done)
    assert "Offers you still accept: 2. real estate." in shown(done)
    assert look_up(web) == "blocked"
    # The preferences the form carried: category 2 still allowed, the rest blocked.
    allowed = web.get(f"/v1/numbers/{NUMBER}?category=2", headers=ADMIN).json()
    assert allowed["reason"] == "category_allowed"

    again = web.post(confirm, data={"code": code})
    assert again.status_code == 410
    assert "already used" in shown(again)


def test_the_status_check_deregistration_and_its_errors(web: TestClient, outbox: Path) -> None:
    absent = web.post("/forms/status", data={"number": NUMBER})
    assert (absent.status_code, shown(absent)) == (200, f"{NUMBER} is not registered.")
    invalid = web.post("/forms/status", data={"number": "12"})
    assert invalid.status_code == 400
    # In the subscriber's words, not the API's reason code.
    assert shown(invalid).startswith("That phone number is not valid: it has too few digits.")
    assert "too_short" not in shown(invalid)
    assert web.post("/forms/status", data={"number": ""}).status_code == 400

    nothing = web.post("/forms/registrations", data={"number": NUMBER})  # no box ticked
    assert nothing.status_code == 400
    assert shown(nothing) == "Tick calls, text messages or both: what should stop?"
    assert codes(outbox) == []
    sent = web.post("/forms/registrations", data={"number": NUMBER, "channels": "sms"})
    done = web.post(code_form(sent), data={"code": codes(outbox)[-1]})
    # Texts only, and nothing accepted: not "telemarketers stop calling it".
    assert "Blocked: text messages. Every kind of telemarketing is blocked." in shown(done)
    assert "calling" not in shown(done)
    present = web.post("/forms/status", data={"number": "212 555 1234", "region": "US"})
    assert shown(present).startswith(f"{NUMBER} is registered. Registered on ")

    removal = web.post("/forms/deregistrations", data={"number": NUMBER})
    assert removal.status_code == 202
    gone = web.post(code_form(removal), data={"code": codes(outbox)[-1]})
    assert (gone.status_code, shown(gone).split(".")[0]) == (
        200,
        f"{NUMBER} is not on the register now",
    )
    assert look_up(web) == "callable"

    # The status check's own limit (3 a minute here, 2 used) holds for the form as for the API.
    assert web.post("/forms/status", data={"number": NUMBER}).status_code == 200
    limited = web.post("/forms/status", data={"number": NUMBER})
    assert limited.status_code == 429
    assert "Too many requests from your connection. Please wait" in shown(limited)
    assert 1 <= int(limited.headers["retry-after"]) <= 60  # as the API's own 429


def test_a_number_out_of_codes_is_told_the_keyword_for_what_the_form_was_doing(
    settings: Settings, outbox: Path
) -> None:
    """Leaving, the way in with no code is START; STOP would join the registry instead."""
    web = ready_client(settings.with_(notifier=f"file:{outbox}", codes_per_number_per_hour=1))
    try:
        assert web.post("/forms/registrations", data={"number": NUMBER, "channels": "sms"})
        joining = web.post("/forms/registrations", data={"number": NUMBER, "channels": "sms"})
        assert joining.status_code == 429
        assert "or text STOP from that phone" in shown(joining)
        leaving = web.post("/forms/deregistrations", data={"number": NUMBER})
        assert leaving.status_code == 429
        assert "or text START from that phone" in shown(leaving)
        assert "takes it off the registry" in shown(leaving) and "STOP" not in shown(leaving)
        zh = web.post("/forms/deregistrations", data={"number": NUMBER, "lang": "zh"})
        assert "发送“START”，无需验证码即可取消登记" in shown(zh) and "退订" not in shown(zh)
    finally:
        web.__exit__(None, None, None)


def test_a_complaint_on_a_channel_the_registration_leaves_open_is_not_called_unregistered(
    web: TestClient,
) -> None:
    carrier = web.post("/v1/operators", json={"name": "c", "role": "carrier"}, headers=ADMIN)
    key = {"Authorization": f"Bearer {carrier.json()['api_key']}"}
    texts_only = {"channels": ["sms"]}
    assert web.put(f"/v1/registrations/{NUMBER}", json=texts_only, headers=key).status_code == 201
    time.sleep(1.1)  # occurred_at has whole seconds: after the registration's
    fields = {
        "number": NUMBER,
        "caller": "+13105550000",
        "occurred_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "channel": "voice",
    }
    report = web.post("/forms/complaints", data=fields)
    assert filed(report), shown(report)
    assert "your registration did not cover it" in shown(report)
    assert "or not for this kind of contact" in shown(report)


@pytest.mark.parametrize(
    "text",
    ["营销电话" * 500, "📞" * 2000, "ab\r\n" * 600],
    ids=["chinese", "emoji", "line-breaks"],
)
def test_the_complaint_forms_longest_text_is_taken(web: TestClient, text: str) -> None:
    """All that its textarea's maxlength (2,000) lets a browser post: percent-encoded
    bytes of wide characters, and line breaks that a textarea counts once but a form
    posts as CRLF."""
    fields = {
        "number": NUMBER,
        "caller": "+13105550000",
        "occurred_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "channel": "voice",
        "category": "1",
        "text": text,
    }
    report = web.post("/forms/complaints", data=fields)
    assert filed(report), shown(report)


def test_the_status_form_reads_a_number_written_with_slashes(web: TestClient) -> None:
    carrier = web.post("/v1/operators", json={"name": "c", "role": "carrier"}, headers=ADMIN)
    key = {"Authorization": f"Bearer {carrier.json()['api_key']}"}
    assert web.put("/v1/registrations/+493012345678", headers=key).status_code == 201
    answer = web.post("/forms/status", data={"number": "030/12345678", "region": "DE"})
    assert answer.status_code == 200, shown(answer)
    assert shown(answer).startswith("+493012345678 is registered.")


def test_a_complaint_takes_the_local_time_in_the_zone_the_form_names(web: TestClient) -> None:
    carrier = web.post("/v1/operators", json={"name": "c", "role": "carrier"}, headers=ADMIN)
    key = {"Authorization": f"Bearer {carrier.json()['api_key']}"}
    assert web.put(f"/v1/registrations/{NUMBER}", headers=key).status_code == 201
    # Half an hour ago, as the clock reads in India: five and a half hours ahead of UTC.
    then = datetime.now(UTC) - timedelta(minutes=30)
    local = (then + timedelta(hours=5, minutes=30)).strftime("%Y-%m-%dT%H:%M")
    fields = {"number": NUMBER, "caller": "+13105550000", "occurred_at": local, "channel": "voice"}
    report = web.post("/forms/complaints", data={**fields, "utc_offset": "+05:30"})
    assert filed(report)
    assert "Thank you: your report was recorded." in shown(report)
    assert "the number was not registered then" in shown(report)  # before the carrier's PUT
    # The same wall-clock time read as UTC would be five hours ahead: in the future.
    future = web.post("/forms/complaints", data={**fields, "utc_offset": "+00:00"})
    assert future.status_code == 400
    assert shown(future) == (  # for the person at the form, not the API's field names
        "The time is not right: enter the date and time it happened, no later than now."
    )

    missing = web.post("/forms/complaints", data={**fields, "caller": "", "utc_offset": "+05:30"})
    assert missing.status_code == 400 and "Caller" in shown(missing)
    # Seconds and their fraction (a browser's step="any" field) take the zone just the same.
    precise = {**fields, "occurred_at": local + ":07.250", "utc_offset": "+05:30"}
    assert filed(web.post("/forms/complaints", data=precise))
    unknown = web.post(
        "/forms/complaints", data={**fields, "category": "99999", "utc_offset": "+05:30"}
    )
    assert unknown.status_code == 400
    assert shown(unknown).startswith("Category 99999 is not a code from")
    # Posted without the page's radio or zone (by hand): asked, not guessed.
    zone = {**fields, "utc_offset": "+05:30"}
    no_channel = web.post(
        "/forms/complaints", data={k: v for k, v in zone.items() if k != "channel"}
    )
    assert no_channel.status_code == 400 and "a call or a text" in shown(no_channel)
    no_zone = web.post("/forms/complaints", data=fields)
    assert no_zone.status_code == 400 and "time zone" in shown(no_zone)
    explicit = {**fields, "occurred_at": local + ":00+05:30"}  # a zone in the time itself
    assert filed(web.post("/forms/complaints", data=explicit))


def test_a_form_that_cannot_be_read_gets_a_page_not_a_500(web: TestClient, outbox: Path) -> None:
    crowded = "&".join(["channels=sms"] * 65) + f"&number={NUMBER}"
    answer = web.post("/forms/registrations", content=crowded, headers=FORM)
    assert answer.status_code == 400
    assert "more than 64 fields" in shown(answer)
    twice = web.post("/forms/status", content=f"number=%2B1212&number={NUMBER}", headers=FORM)
    assert twice.status_code == 400
    assert "The form gives the field number more than once" in shown(twice)
    huge = web.post("/forms/complaints", data={"number": NUMBER, "text": "x" * 40_000})
    assert huge.status_code == 413
    assert "over 32768 bytes" in shown(huge)
    assert codes(outbox) == []


def test_an_expired_code_page_speaks_to_a_person_not_an_api_client(
    web: TestClient, outbox: Path
) -> None:
    sent = web.post("/forms/registrations", data={"number": NUMBER, "channels": "sms"})
    confirm = code_form(sent)
    assert web.post(confirm, data={"code": codes(outbox)[-1]}).status_code == 201
    again = web.post(confirm, data={"code": codes(outbox)[-1]})  # used already
    assert again.status_code == 410
    assert "already used" in shown(again) and "/v1/" not in shown(again)
    assert "registration it confirmed stands" in shown(again)


def test_forms_posted_from_another_site_are_refused_before_anything_is_sent(
    web: TestClient, outbox: Path
) -> None:
    for headers in ({"origin": "https://elsewhere.example"}, {"sec-fetch-site": "cross-site"}):
        refused = web.post("/forms/registrations", data={"number": NUMBER}, headers=headers)
        assert refused.status_code == 403
        assert "sent from another site" in shown(refused)
    assert codes(outbox) == []
    same = {"origin": "http://testserver", "sec-fetch-site": "same-origin"}
    assert web.post("/forms/deregistrations", data={"number": NUMBER}, headers=same).is_success
    assert len(codes(outbox)) == 1
    unknown = web.post("/forms/consents/abc/confirm", data={"code": "123456"})
    assert unknown.status_code == 404


def test_an_answer_reopened_from_the_history_goes_back_to_the_page(web: TestClient) -> None:
    """A GET of a form's address (a bookmark, the history, a reload after a redirect) is
    no JSON 405: the browser is sent to the page, and the answer is not shown again."""
    for path in ("/forms/status", "/forms/registrations", "/forms/registrations/abc/confirm"):
        for method in ("GET", "HEAD"):
            answer = web.request(method, path, follow_redirects=False)
            assert answer.status_code == 303, (method, path)
            assert answer.headers["location"] == "/"
    # Answers that show a number are kept out of the browser's cache.
    answer = web.post("/forms/status", data={"number": NUMBER})
    assert answer.headers["cache-control"] == "no-store"
    status = web.get(f"/v1/registrations/{NUMBER}")
    assert status.status_code == 200 and status.headers["cache-control"] == "no-store"


def test_a_browser_that_mistypes_an_address_gets_a_page_an_api_client_json(
    web: TestClient,
) -> None:
    browser = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    for path in ("/register", "/index.html", "/forms"):
        answer = web.get(path, headers=browser)
        assert answer.status_code == 404
        assert "There is no page at this address" in shown(answer)
        assert 'href="/portal"' in answer.text
        assert_error(web.get(path), 404, "not_found")  # curl's Accept: */*
    # The API's own addresses answer in the contract's shape whatever the client accepts.
    assert_error(web.get("/v1/nothing", headers=browser), 404, "not_found")
    assert_error(web.get("/assets/nothing.js", headers=browser), 404, "not_found")


def test_the_page_names_the_region_a_national_number_is_read_in(
    web: TestClient, settings: Settings
) -> None:
    assert "is read as a US number" in web.get("/").text
    china = ready_client(settings.with_(default_region="CN"))
    try:
        page = china.get("/").text
        assert "is read as a CN number" in page and "{{" not in page
    finally:
        china.__exit__(None, None, None)


def test_a_report_is_followed_from_the_link_its_page_gives(web: TestClient) -> None:
    then = (datetime.now(UTC) - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")
    fields = {"number": NUMBER, "caller": "+13105550000", "occurred_at": then, "channel": "sms"}
    # A browser that asks for Chinese, on the English page: the report stays in English.
    report = web.post(
        "/forms/complaints",
        data={**fields, "utc_offset": "+00:00", "lang": "en"},
        headers={"Accept-Language": "zh-CN"},
    )
    assert filed(report)
    (link,) = re.findall(r'href="(/complaints/cmp_[0-9a-f]{16})\?lang=en"', report.text)
    complaint_id = link.rsplit("/", 1)[1]
    link += "?lang=en"
    assert "It is being looked at." in web.get(link, headers={"Accept-Language": "zh-CN"}).text
    page = web.get(link)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert f"Report {complaint_id}, received on" in shown(page)
    assert "It is being looked at." in page.text and NUMBER not in page.text

    body = {"outcome": "sender_suspended", "reply": "<b>Cut off</b> today.\n\nSorry."}
    answer = web.post(f"/v1/complaints/{complaint_id}/resolution", json=body, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    page = web.get(link)
    assert "The caller&#x27;s service was suspended." in page.text
    # The reply is text, not HTML, and its lines stay lines.
    assert "<p>&lt;b&gt;Cut off&lt;/b&gt; today.</p>\n" in page.text
    assert "<p>Sorry.</p>" in page.text

    missing = web.get("/complaints/cmp_0123456789abcdef")
    assert missing.status_code == 404 and "We have no report with that reference." in missing.text


def test_reloading_a_complaints_answer_files_nothing_more(web: TestClient) -> None:
    """The answer was the POST's own page: a reload (or Back and Forward) posted the form
    again and filed the complaint twice, as a browser audit found with scripts off."""
    then = (datetime.now(UTC) - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")
    fields = {"number": NUMBER, "caller": "+13105550000", "occurred_at": then, "channel": "sms"}
    report = web.post("/forms/complaints", data={**fields, "utc_offset": "+00:00"})
    assert filed(report)
    for _ in range(2):  # what a reload asks for now: the page it was sent to
        again = web.get(str(report.url))
        assert again.status_code == 200
        assert "Thank you: your report was recorded." in shown(again)
    queue = web.get("/v1/complaints", headers=ADMIN).json()
    assert queue["open"] == 1
    # The note is the form's answer only: the report's page without it follows the report.
    plain = web.get(str(report.url).split("&recorded=")[0])
    assert "Thank you" not in shown(plain) and "It is being looked at." in shown(plain)


def test_the_follow_form_takes_a_reference_to_its_report(web: TestClient) -> None:
    then = (datetime.now(UTC) - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")
    fields = {"number": NUMBER, "caller": "+13105550000", "occurred_at": then, "channel": "voice"}
    report = web.post("/forms/complaints", data={**fields, "utc_offset": "+00:00"})
    (complaint_id,) = re.findall(r"Its reference is (cmp_[0-9a-f]{16})", report.text)
    page = web.get("/complaints", params={"reference": f"  {complaint_id} "})
    assert page.status_code == 200 and f"Report {complaint_id}, received on" in shown(page)
    empty = web.get("/complaints", params={"reference": ""})
    assert empty.status_code == 400 and "Enter the reference" in shown(empty)
    unknown = web.get("/complaints", params={"reference": "cmp_nope"})
    assert unknown.status_code == 404
    # As people paste it: the report's address, or the sentence that gave the reference.
    for pasted in (
        f"https://registry.example/complaints/{complaint_id}?lang=en",
        f"Its reference is {complaint_id.upper()}.",
    ):
        page = web.get("/complaints", params={"reference": pasted})
        assert page.status_code == 200 and f"Report {complaint_id}, received on" in shown(page)
    # A `/` in what is no reference asked the API for a path that does not exist.
    for odd in ("a/b", "../v1/stats", "cmp_0123/4567"):
        page = web.get("/complaints", params={"reference": odd})
        assert page.status_code == 404
        assert "We have no report with that reference." in shown(page), odd
    home = web.get("/")
    assert 'action="/complaints"' in home.text and 'name="reference"' in home.text

"""The subscriber page in Simplified Chinese (registry/api/language.py): chosen by `?lang=`
or the browser's Accept-Language, and kept by its forms' answers without JavaScript.

tests/test_pages.py drives the Chinese page's script in Chromium.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import ADMIN, ready_client
from fastapi.testclient import TestClient
from test_forms import code_form, codes, filed, shown

from registry.api import language
from registry.config import Settings

NUMBER = "+8613800138000"
WEB = Path(__file__).resolve().parents[1] / "registry" / "web"


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    return tmp_path / "outbox.jsonl"


@pytest.fixture
def web(settings: Settings, outbox: Path) -> Iterator[TestClient]:
    api = ready_client(settings.with_(notifier=f"file:{outbox}"))
    yield api
    api.__exit__(None, None, None)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("fr-FR, zh;q=0.5, en;q=0.4", "zh"),
        ("fr-FR, en;q=0.5, zh;q=0.4", "en"),
        ("zh-TW", "zh"),
        ("ZH-hans-CN", "zh"),
        ("zh;q=0, en;q=0.1", "en"),
        ("de, fr", "en"),
        ("*", "en"),
        ("", "en"),
        ("zh;q=bad, en;q=0.2", "en"),
        ("zh;q=nan", "en"),
        ("zh;q=2", "en"),
        ("zh;foo=1;q=0.1, en;q=0.5", "en"),
    ],
)
def test_accept_language_chooses_the_first_ranked_language_the_pages_have(
    header: str, expected: str
) -> None:
    assert language.preferred(header) == expected


def test_a_lang_parameter_wins_over_the_browser_and_an_unknown_one_is_ignored() -> None:
    chinese_browser = {"accept-language": "zh-CN"}
    assert language.chosen("en", chinese_browser) == "en"
    assert language.chosen(" ZH-Hans ", {}) == "zh"
    assert language.chosen("xx", chinese_browser) == "zh"
    assert language.chosen(None, {}) == "en"
    assert language.chosen("zhxx", {}) == "en" and language.chosen("chinese", {}) == "en"


def test_the_page_comes_in_the_language_asked_for(web: TestClient) -> None:
    chinese = web.get("/", headers={"accept-language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert chinese.status_code == 200
    assert '<html lang="zh-Hans">' in chinese.text and "登记您的号码" in chinese.text
    assert chinese.headers["content-language"] == "zh-Hans"
    assert chinese.headers["vary"] == "Accept-Language"
    assert "3. 教育" in chinese.text  # the categories in Chinese too
    assert "{{" not in chinese.text
    # The switch to English, and `?lang=` over the browser's choice.
    assert 'href="/?lang=en"' in chinese.text
    english = web.get("/?lang=en", headers={"accept-language": "zh-CN"})
    assert '<html lang="en">' in english.text and "Register your number" in english.text
    assert english.headers["content-language"] == "en"
    assert 'href="/?lang=zh"' in english.text
    assert '<html lang="en">' in web.get("/").text  # no preference: English


class _Shape(HTMLParser):
    """What a page does, without its words: each element with its id, name, type, value,
    action and the like, in document order."""

    KEPT = ("id", "name", "type", "value", "action", "method", "for", "class", "required")

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, tuple[tuple[str, str | None], ...]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # The Chinese page's actions say its language where the form's body is not read.
        kept = tuple(
            (k, v.removesuffix("?lang=zh") if k == "action" and v else v)
            for k, v in attrs
            if k in self.KEPT
            and not (tag == "input" and k == "value" and ("name", "lang") in attrs)
        )
        if tag == "p" and dict(kept).get("class") == "language":
            return
        if tag == "a" and dict(kept).get("id") == "language":
            return
        self.elements.append((tag, kept))


def _shape(name: str) -> list[tuple[str, tuple[tuple[str, str | None], ...]]]:
    parser = _Shape()
    parser.feed((WEB / name).read_text(encoding="utf-8"))
    return parser.elements


def test_the_chinese_page_has_every_form_field_and_id_of_the_english_one() -> None:
    """A field added to one page and not the other would be a form the script or the
    forms without JavaScript cannot read in one language."""
    assert _shape("index.zh.html") == _shape("index.html")
    english = (WEB / "index.html").read_text(encoding="utf-8")
    chinese = (WEB / "index.zh.html").read_text(encoding="utf-8")
    assert sorted(re.findall(r"\{\{\w+\}\}", chinese)) == sorted(
        re.findall(r"\{\{\w+\}\}", english)
    )
    # Every form asks for its answer in its page's language, whatever the browser's.
    assert chinese.count("<form") == chinese.count('name="lang" value="zh"') + 2  # code steps
    assert english.count("<form") == english.count('name="lang" value="en"') + 2


def test_the_chinese_portal_has_every_field_and_id_of_the_english_one(web: TestClient) -> None:
    """The portal's script fills the same ids on both; its query fields, categories and
    links come in the page's language."""
    assert _shape("portal.zh.html") == _shape("portal.html")
    assert _shape("query-fields.zh.html") == _shape("query-fields.html")
    chinese = web.get("/portal", headers={"accept-language": "zh-CN"})
    assert '<html lang="zh-Hans">' in chinese.text and "运营方门户" in chinese.text
    assert chinese.headers["content-language"] == "zh-Hans"
    assert chinese.headers["vary"] == "Accept-Language"
    assert "3. 教育" in chinese.text and "电话和短信" in chinese.text and "{{" not in chinese.text
    assert 'href="/portal?lang=en"' in chinese.text and 'href="/?lang=zh"' in chinese.text
    english = web.get("/portal?lang=en", headers={"accept-language": "zh-CN"})
    assert '<html lang="en">' in english.text and "Operator portal" in english.text
    assert "Calls and text messages" in english.text and 'href="/portal?lang=zh"' in english.text
    assert '<html lang="en">' in web.get("/portal").text
    # The Chinese subscriber page sends telemarketers to the Chinese portal.
    assert 'href="/portal?lang=zh"' in web.get("/?lang=zh").text


def test_without_javascript_a_chinese_subscriber_registers_and_checks_in_chinese(
    web: TestClient, outbox: Path
) -> None:
    form = {"number": "138 0013 8000", "region": "CN", "channels": "sms", "lang": "zh"}
    sent = web.post("/forms/registrations", data=form)
    assert sent.status_code == 202
    assert sent.headers["content-language"] == "zh-Hans"
    assert "我们已向 138 0013 8000 发送六位验证码" in shown(sent)
    assert '<html lang="zh-Hans">' in sent.text and "返回登记页面" in sent.text
    assert 'href="/?lang=zh#register"' in sent.text
    assert '<input type="hidden" name="lang" value="zh">' in sent.text  # the code step too

    wrong = web.post(code_form(sent), data={"code": "abc", "lang": "zh"})
    assert wrong.status_code == 400 and "验证码是我们发送的短信中的六位数字" in shown(wrong)
    done = web.post(code_form(sent), data={"code": codes(outbox)[-1], "lang": "zh"})
    assert done.status_code == 201
    # The date in Beijing time, mainland China's one zone.
    effective = (datetime.now(UTC) + timedelta(days=31)).astimezone(timezone(timedelta(hours=8)))
    assert shown(done).startswith(f"{NUMBER} 已登记。 已拒绝：短信。 已拒绝所有类别的营销。")
    assert f"{effective.year}年{effective.month}月{effective.day}日" in shown(done)

    status = web.post("/forms/status", data={"number": NUMBER, "lang": "zh"})
    assert shown(status).startswith(f"{NUMBER} 已登记。 登记于 ")
    invalid = web.post("/forms/status", data={"number": "12", "lang": "zh"})
    assert invalid.status_code == 400
    assert shown(invalid).startswith("号码无效：位数太少。")
    empty = web.post("/forms/status", data={"number": "", "lang": "zh"})
    assert shown(empty) == "请填写手机号码。"
    # No `lang` field: the browser's language.
    browser = web.post(
        "/forms/status", data={"number": NUMBER}, headers={"accept-language": "zh-CN"}
    )
    assert "已登记" in shown(browser)
    english = web.post("/forms/status", data={"number": NUMBER})
    assert shown(english).startswith(f"{NUMBER} is registered.")


def test_a_national_number_without_a_region_is_said_to_be_read_in_the_default_one(
    web: TestClient,
) -> None:
    """No region was chosen: the answer without JavaScript says which one the number was
    read in, in the script's words, not "the region chosen"."""
    chinese = web.post("/forms/status", data={"number": "138 0013 8000", "lang": "zh"})
    assert chinese.status_code == 400
    assert "所选地区（未选时为本登记处默认地区）没有这样的号码" in shown(chinese)
    english = web.post("/forms/status", data={"number": "138 0013 8000"})
    said = html.unescape(shown(english))
    assert "in the region it was read in (without a region given, the registry's own)" in said


def test_a_chinese_report_is_followed_in_chinese(web: TestClient) -> None:
    then = (datetime.now(UTC) - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")
    fields = {"number": NUMBER, "caller": "【某某银行】", "occurred_at": then, "channel": "sms"}
    report = web.post("/forms/complaints", data={**fields, "utc_offset": "+08:00", "lang": "zh"})
    assert filed(report), report.text
    assert "谢谢：您的举报已记录。" in shown(report)
    assert "发生时您的登记并不涵盖此事" in shown(report)
    (link,) = re.findall(r'href="(/complaints/cmp_[0-9a-f]{16}\?lang=zh)"', report.text)
    complaint_id = link.split("/")[2].split("?")[0]
    page = web.get(link)
    assert f"举报 {complaint_id}，受理于" in shown(page) and "正在处理中" in shown(page)

    body = {"outcome": "referred_to_regulator", "reply": "已转交通信管理局。"}
    resolved = web.post(f"/v1/complaints/{complaint_id}/resolution", json=body, headers=ADMIN)
    assert resolved.status_code == 200, resolved.text
    page = web.get(link)
    assert "举报已移交监管部门。" in shown(page) and "已转交通信管理局。" in shown(page)
    follow = web.get("/complaints", params={"reference": complaint_id, "lang": "zh"})
    assert "举报已移交监管部门。" in shown(follow)
    missing = web.get("/complaints/cmp_0123456789abcdef?lang=zh")
    assert missing.status_code == 404 and "没有该编号的举报" in shown(missing)
    no_zone = web.post("/forms/complaints", data={**fields, "lang": "zh"})
    assert no_zone.status_code == 400 and shown(no_zone) == "请选择时间所在的时区。"


def test_a_refusal_the_chinese_pages_have_no_words_for_quotes_the_api(web: TestClient) -> None:
    then = (datetime.now(UTC) - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S+08:00")
    fields = {"number": NUMBER, "caller": "+13105550000", "occurred_at": then, "lang": "zh"}
    answer = web.post("/forms/complaints", data={**fields, "channel": "fax"})
    assert answer.status_code == 400
    assert re.fullmatch(r"请求未被接受（channel .*fax.* is not one of voice, sms）", shown(answer))
    late = web.post("/forms/complaints", data={**fields, "channel": "sms", "occurred_at": "x"})
    assert late.status_code == 400 and shown(late).startswith("时间不正确")


def test_the_english_page_answers_in_english_to_a_browser_that_prefers_chinese(
    web: TestClient,
) -> None:
    chinese_browser = {"accept-language": "zh-CN,zh;q=0.9"}
    answer = web.post(
        "/forms/status", data={"number": NUMBER, "lang": "en"}, headers=chinese_browser
    )
    assert shown(answer) == f"{NUMBER} is not registered."
    assert 'href="/?lang=en#status"' in answer.text  # back to the page it came from
    assert answer.headers["content-language"] == "en"
    assert answer.headers["vary"] == "Accept-Language"


def test_a_wrong_code_in_chinese_counts_the_tries_down_and_then_asks_to_start_again(
    web: TestClient, outbox: Path
) -> None:
    sent = web.post("/forms/registrations?lang=zh", data={"number": NUMBER, "channels": "sms"})
    right = codes(outbox)[-1]
    wrong = "000000" if right != "000000" else "111111"
    for left in (4, 3, 2, 1):
        answer = web.post(code_form(sent), data={"code": wrong, "lang": "zh"})
        assert shown(answer).startswith(
            f"验证码不正确。请核对我们发送的短信，重新输入六位数字。剩余次数：{left}。"
        )
        assert "。." not in answer.text
    void = web.post(code_form(sent), data={"code": wrong, "lang": "zh"})
    assert shown(void).startswith("验证码不正确，且已无剩余次数，该申请已作废。")
    assert "<form" not in void.text  # no code form to be refused again
    english = web.post("/forms/registrations", data={"number": "+12125550100", "channels": "sms"})
    for _ in range(4):
        last = web.post(code_form(english), data={"code": wrong})
    assert shown(last).startswith("That is not the code sent; 1 try left.")
    assert "<form" in last.text
    last = web.post(code_form(english), data={"code": wrong})
    assert "the request is now void" in shown(last) and "<form" not in last.text


def test_the_chinese_page_reads_a_time_without_a_zone_as_beijing_time(web: TestClient) -> None:
    page = web.get("/?lang=zh").text
    assert '<option value="+08:00" selected>北京时间（UTC+08:00）</option>' in page
    assert '<option value="+00:00" selected>' in web.get("/?lang=en").text
    # The form posts to ?lang=zh: a refusal that reads no field still answers in Chinese.
    assert 'action="/forms/complaints?lang=zh"' in page
    refused = web.post(
        "/forms/complaints?lang=zh",
        data={"number": NUMBER},
        headers={"origin": "https://x.example"},
    )
    assert refused.status_code == 403 and "此表单来自其他网站" in refused.text

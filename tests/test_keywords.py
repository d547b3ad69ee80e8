"""Inbound SMS keywords (CONTRACT section 6, Carriers): parsing and replies, pure."""

from __future__ import annotations

import dataclasses

import pytest

from registry import keywords as kw
from registry.keywords import ALLOW, CHINESE, ENGLISH, HELP, OPT_IN, OPT_OUT, UNKNOWN

OPT_OUT_WORDS = [
    "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "TD", "退订",
    "取消",
]  # fmt: skip


def full_width(text: str) -> str:
    """ASCII letters, digits and punctuation as their full-width forms (U+FF01...)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


# -- full block ------------------------------------------------------------------------------


@pytest.mark.parametrize("word", OPT_OUT_WORDS)
def test_every_opt_out_keyword_is_a_full_block(word: str) -> None:
    assert kw.parse(word).kind == OPT_OUT


@pytest.mark.parametrize("word", [w for w in OPT_OUT_WORDS if w.isascii()])
@pytest.mark.parametrize("variant", [str.lower, str.title, full_width, lambda w: f"  {w}\t\n"])
def test_keywords_ignore_case_width_and_surrounding_space(word: str, variant: object) -> None:
    assert callable(variant)
    assert kw.parse(variant(word)).kind == OPT_OUT


def test_full_width_stop_and_full_width_space() -> None:
    assert kw.parse("ＳＴＯＰ").kind == OPT_OUT
    assert kw.parse("\u3000ｓｔｏｐ\u3000").kind == OPT_OUT


@pytest.mark.parametrize(
    "text", ["START 0", "start 0", "START0", "ＳＴＡＲＴ　０", "START 0 thanks"]
)
def test_start_zero_is_a_full_block(text: str) -> None:
    intent = kw.parse(text)
    assert intent.kind == OPT_OUT and intent.categories == ()


@pytest.mark.parametrize(
    "text",
    [
        "Stop. Thank you",
        "STOP please",
        "stop!!",
        "Stop.",
        "STOP, thanks",
        "STOP THANK YOU!",
        "stop pls",
        "STOP 🙏",
        '"STOP"',
        "Quit. Thanks",
        "unsubscribe please",
        "退订，谢谢",
        "退订。",
        "退订谢谢",
        "退订吧",
        "td 谢谢",
    ],
)
def test_punctuation_and_courtesy_words_after_the_keyword_are_ignored(text: str) -> None:
    assert kw.parse(text).kind == OPT_OUT


# Reasonable opt-outs an audit found answered "unknown": each must be a full block.
AUDITED_OPT_OUTS = [
    "Stop thank you very much",
    "STOP, thanks very much",
    "Stop thanks a lot",
    "STOP thank u",
    "Stop please and thank you",
    "STOP kindly",
    "退订，谢谢啦",
    "STOP STOP",
    "STOP, STOP",
    "Stop stop stop",
    "退訂",
]


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        # Two opt-out words: the same request twice (TD is short for 退订).
        ("STOP UNSUBSCRIBE", "STOP"),
        ("UNSUBSCRIBE STOP", "UNSUBSCRIBE"),
        ("STOP QUIT", "STOP"),
        ("Stop TD", "STOP"),
        ("TD STOP", "TD"),
        ("退订 TD", "退订"),
        ("TD 退订", "TD"),
        ("STOP 退订", "STOP"),
        ("unsubscribe me", "UNSUBSCRIBE"),
        ("Unsubscribe me, thanks", "UNSUBSCRIBE"),
        # What Chinese marketing texts tell their readers to send ("回T退订"), as sent.
        ("T", "T"),
        ("t", "T"),
        ("Ｔ", "T"),
        ("回T", "T"),
        ("回复TD退订", "TD"),
        ("TD退订", "TD"),
        ("退订回T", "退订"),
        ("取消订阅", "取消订阅"),
        ("取消订阅，谢谢", "取消订阅"),
        # A phone's signature, and punctuation however long.
        ("STOP\nSent from my iPhone", "STOP"),
        ("Stop\n\nSent with Yahoo Mail", "STOP"),
        ("STOP " + "!" * 1700, "STOP"),
        ("STOP" + "😀" * 9996, "STOP"),
    ],
)
def test_opt_outs_found_by_the_second_audit_are_a_full_block(text: str, keyword: str) -> None:
    intent = kw.parse(text)
    assert (intent.kind, intent.keyword) == (OPT_OUT, keyword)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("START 2,5\nSent from my iPhone", ALLOW),
        ("START\nSent from my iPhone", OPT_IN),
        ("UNSTOP\n\nSent with Yahoo Mail", OPT_IN),
        ("HELP\nSent from my iPhone", HELP),
        ("帮助\nSent from my iPhone", HELP),
        ("STOP DND\nSent via Android", OPT_IN),
        ("START 0\nSent from my iPhone", OPT_OUT),
    ],
)
def test_a_signature_last_line_is_ignored_after_any_keyword(text: str, kind: str) -> None:
    assert kw.parse(text).kind == kind
    assert kw.parse(text) == kw.parse(text.split("\n")[0])


@pytest.mark.parametrize(
    "text", ["Sent from my iPhone", "HELP Sent from my iPhone", "START\nSent from my iPhone\n2"]
)
def test_a_signature_is_a_last_line_of_its_own(text: str) -> None:
    assert kw.parse(text).kind == UNKNOWN


def test_chinese_marketing_replies_are_answered_in_chinese() -> None:
    for text in ("T", "回T", "取消订阅"):
        assert "拒收" in kw.reply(kw.REGISTERED, kw.parse(text))


def test_a_text_with_no_keyword_is_answered_in_the_language_asked_for() -> None:
    assert kw.parse("hi", CHINESE).language == CHINESE
    assert kw.parse("hi").language == ENGLISH
    # A longer word that starts with a Chinese keyword (T, TD) is no keyword, nor Chinese.
    for text in ("Thanks", "Test", "This is spam", "Today?", "TDX"):
        assert kw.parse(text) == kw.Intent(UNKNOWN, ENGLISH), text
    assert kw.parse("STOP", CHINESE).language == ENGLISH  # the keyword's language wins


def test_start_with_zeros_only_is_a_full_block_however_many() -> None:
    assert kw.parse("START 0000").kind == OPT_OUT


@pytest.mark.parametrize("text", AUDITED_OPT_OUTS)
def test_reasonable_opt_outs_found_by_the_audit_are_a_full_block(text: str) -> None:
    assert kw.parse(text).kind == OPT_OUT


@pytest.mark.parametrize(
    "text",
    [
        "STOP and thanks",
        "STOP. Thank you so much!",
        "STOP thank you, very much",
        "stop thankyou",
        "STOP many thanks",
        "STOP ty",
        "STOP tysm",
        "STOP kindly & thank u 🙏",
        "STOP ok thx",
        "unsubscribe, thanks a lot",
        "退订，谢谢了",
        "退订，多谢",
        "退订，麻烦了",
        "退订 谢谢您！",
        "退訂，謝謝",
        "退訂，多謝",
        "退订退订",
        "退订 退訂",
        "TD TD",
        "quit quit quit",
        "STOP ALL, STOP ALL",
        "STOPALL STOP",
        "ＳＴＯＰ　ＳＴＯＰ",
    ],
)
def test_courtesy_words_in_any_order_and_repeats_are_ignored(text: str) -> None:
    assert kw.parse(text).kind == OPT_OUT


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("STOP 1", UNKNOWN),  # STOP takes no category
        ("STOP STOP 1", UNKNOWN),
        ("START 2,3", ALLOW),
        ("START 2,3 thank you very much", ALLOW),
        ("START 2 START", UNKNOWN),  # only opt-out words repeat
        ("START START", UNKNOWN),
        ("HELP HELP", UNKNOWN),  # the unknown reply carries the help text all the same
        ("STOP DND", OPT_IN),
        ("STOP DND, thank you very much", OPT_IN),
        ("STOP STOP DND", UNKNOWN),  # both a STOP and its opposite: ask again
        ("STOP DND STOP", UNKNOWN),
        ("STOP START", UNKNOWN),
        ("CANCEL STOP", UNKNOWN),  # may mean "undo my STOP": another word is not a repeat
        ("STOP CANCEL", UNKNOWN),
        ("STOP you", UNKNOWN),  # courtesy words are phrases: "thank you", not any "you"
        ("STOP a lot", UNKNOWN),
        ("STOP thanks a lottery", UNKNOWN),
        ("STOP pleasethanks", UNKNOWN),  # courtesy words are whole words
        ("STOP okty", UNKNOWN),
        ("STOPSTOP", UNKNOWN),
        ("STOP stopped", UNKNOWN),
        ("STOP thanks but no", UNKNOWN),
        ("STOP please, I mean START", UNKNOWN),
        ("退订吗", UNKNOWN),  # a question, not a request
        ("退订不了", UNKNOWN),
        ("退订 取消", UNKNOWN),  # 取消 may undo, as CANCEL
        ("取消 退订", UNKNOWN),
        ("STOP me now", UNKNOWN),  # "me" only after UNSUBSCRIBE
        ("STOP\nSent from my iPhone\nSTART", UNKNOWN),  # a signature is its last line
        ("T 2", UNKNOWN),
        ("TEST", UNKNOWN),
        ("THANKS", UNKNOWN),
    ],
)
def test_leniency_does_not_change_the_meaning(text: str, kind: str) -> None:
    assert kw.parse(text).kind == kind


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("OPT OUT", "OPTOUT"),
        ("opt-out please", "OPTOUT"),
        ("Opt_Out.", "OPTOUT"),
        ("revoke, thanks", "REVOKE"),
        ("退 订", "退订"),
        ("取 消，谢谢", "取消"),
    ],
)
def test_keywords_written_in_two_parts_and_the_fcc_words(text: str, keyword: str) -> None:
    intent = kw.parse(text)
    assert (intent.kind, intent.keyword) == (OPT_OUT, keyword)


@pytest.mark.parametrize("text", ["OPTIONS", "opt outs", "OPT OUTSIDE", "REVOKED", "OPT IN"])
def test_longer_words_are_no_opt_out(text: str) -> None:
    assert kw.parse(text).kind == UNKNOWN


def test_the_replies_say_what_to_expect_and_where_to_complain() -> None:
    for language in (ENGLISH, CHINESE):
        stop = kw.reply(kw.REGISTERED, kw.parse("STOP" if language == ENGLISH else "退订"))
        # In force at once (scrubs see it), a month's grace for liability, consents ended.
        english = "at once" in stop and "month" in stop and "consents" in stop.lower()
        chinese = "即时生效" in stop and "一个月" in stop and "同意" in stop
        assert english or chinese, stop
        text = kw.help_text(language)
        assert "Complain" in text or "投诉" in text
        # With the registry's address configured (DNC_PUBLIC_URL), the text names it.
        site = "https://donotcall.example.gov"
        assert site in kw.help_text(language, site)
        assert site in kw.reply(kw.HELP, kw.parse("HELP" if language == ENGLISH else "帮助"), site)
        assert site in kw.reply(kw.UNKNOWN, kw.parse("hello"), site)


@pytest.mark.parametrize(
    ("days", "within", "after"),
    [
        (31, ("within a month", "在一个月内"), ("a month after joining", "加入一个月后")),
        (30, ("within a month", "在一个月内"), ("a month after joining", "加入一个月后")),
        (7, ("within 7 days", "在7天内"), ("7 days after joining", "加入7天后")),
        (1, ("within 1 day", "在1天内"), ("1 day after joining", "加入1天后")),
        (90, ("within 90 days", "在90天内"), ("90 days after joining", "加入90天后")),
        (0, ("must stop calls and marketing texts to this number now", "须立即停止"),
         ("texted after joining", "加入后仍收到")),
    ],
)  # fmt: skip
def test_the_replies_state_the_grace_in_days_unless_it_is_a_month(
    days: int, within: tuple[str, str], after: tuple[str, str]
) -> None:
    for language, stop, help_word in ((ENGLISH, "STOP", "HELP"), (CHINESE, "退订", "帮助")):
        index = 0 if language == ENGLISH else 1
        registered = kw.reply(kw.REGISTERED, kw.parse(stop), grace_days=days)
        assert within[index] in registered, registered
        assert after[index] in kw.reply(kw.HELP, kw.parse(help_word), grace_days=days)
        assert after[index] in kw.reply(kw.UNKNOWN, kw.parse("hello", language), grace_days=days)
        assert after[index] in kw.help_text(language, grace_days=days)
        if days not in (30, 31):
            assert "month" not in registered and "一个月" not in registered


@pytest.mark.parametrize(
    ("channels", "english", "chinese"),
    [
        (("sms",), "marketing texts are blocked except for", "拒收商业短信；营销电话未拒收"),
        (("voice",), "marketing calls are blocked except for", "拒收营销电话；商业短信未拒收"),
        (
            ("voice", "sms"),
            "marketing calls and texts are blocked except",
            "拒收营销电话和商业短信",
        ),
        (
            ("sms", "voice"),
            "marketing calls and texts are blocked except",
            "拒收营销电话和商业短信",
        ),
    ],
)
def test_a_partial_block_reply_names_the_channels_it_blocks(
    channels: tuple[str, ...], english: str, chinese: str
) -> None:
    for action in (kw.REGISTERED, kw.PREFERENCES_UPDATED):
        text = kw.reply(action, kw.parse("START 3"), channels=channels)
        assert english in text and "education (3)" in text
        # No Chinese keyword allows categories; the replies have the words all the same.
        chinese_intent = dataclasses.replace(kw.parse("START 3"), language=CHINESE)
        text = kw.reply(action, chinese_intent, channels=channels)
        assert chinese in text and "教育（3）" in text
    texts_only = kw.reply(kw.PREFERENCES_UPDATED, kw.parse("START 3"), channels=("sms",))
    assert "calls are not blocked" in texts_only


def test_traditional_characters_are_the_same_keyword() -> None:
    intent = kw.parse("退訂")
    assert intent == kw.parse("退订")
    assert intent.keyword == "退订" and intent.language == CHINESE


@pytest.mark.parametrize("text", ["STOP ALL", "stop all please"])
def test_stop_all_with_a_space_is_stopall(text: str) -> None:
    assert kw.parse(text).kind == OPT_OUT


# -- partial block ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "categories"),
    [
        ("START 2", (2,)),
        ("start 2,5", (2, 5)),
        ("START 2, 5", (2, 5)),
        ("START 2 5", (2, 5)),
        ("START 5,2,5", (2, 5)),
        ("START 2，5", (2, 5)),  # full-width comma
        ("ＳＴＡＲＴ　２，５", (2, 5)),  # all full-width
        ("START 2、5", (2, 5)),  # Chinese enumeration comma
        ("START 2;5", (2, 5)),
        ("START2", (2,)),
        ("START 1,2,3,4,5,6,7,8", (1, 2, 3, 4, 5, 6, 7, 8)),
        ("START 02", (2,)),
        ("START 2, thanks", (2,)),
        ("START 2 5 please.", (2, 5)),
    ],
)
def test_start_with_categories_is_a_partial_block(text: str, categories: tuple[int, ...]) -> None:
    intent = kw.parse(text)
    assert intent.kind == ALLOW
    assert intent.categories == categories


@pytest.mark.parametrize(
    "text", ["START 9", "START 2,9", "START 0,2", "START 12", "START 999999999"]
)
def test_out_of_range_categories_are_unknown_and_say_why(text: str) -> None:
    intent = kw.parse(text)
    assert intent.kind == UNKNOWN
    assert intent.problem == "bad_category"
    assert "1 to 8" in kw.reply(kw.UNKNOWN, intent)


def test_a_huge_category_number_is_out_of_range_not_an_error() -> None:
    assert kw.parse("START " + "9" * 5000).kind == UNKNOWN


@pytest.mark.parametrize("text", ["START 2-5", "START 2,,5", "START two"])
def test_category_lists_that_cannot_be_read_are_unknown(text: str) -> None:
    assert kw.parse(text).kind == UNKNOWN


# -- leaving the registry --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["START", "start", "Start!", "UNSTOP", "unstop please", "STOP DND", "stop dnd", "STOP  DND."],
)
def test_start_alone_unstop_and_stop_dnd_deregister(text: str) -> None:
    assert kw.parse(text).kind == OPT_IN


def test_stop_dnd_is_not_a_stop_and_start_two_is_not_a_start_alone() -> None:
    assert kw.parse("STOP DND").kind == OPT_IN
    assert kw.parse("STOP DND thanks").kind == OPT_IN
    assert kw.parse("START 2").kind == ALLOW
    assert kw.parse("START 2 thanks").kind == ALLOW


# -- help and unknown ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["HELP", "help", "Info", "INFO?", "ｈｅｌｐ", "help please", "HELP, thank you"]
)
def test_help_and_info(text: str) -> None:
    assert kw.parse(text).kind == HELP


@pytest.mark.parametrize("text", ["帮助", "幫助", "帮助？", "帮助，谢谢", "幫助，謝謝"])
def test_chinese_help_is_answered_in_chinese(text: str) -> None:
    intent = kw.parse(text)
    assert intent.kind == HELP and intent.language == CHINESE
    assert kw.reply(kw.HELP, intent) == kw.help_text(CHINESE)


def test_english_help_stays_english() -> None:
    """HELP cannot tell which language an earlier keyword was in; 帮助 is the Chinese one."""
    assert kw.parse("HELP").language == ENGLISH


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "please don't stop",
        "Please stop",
        "I want to stop",
        "STOPPED",
        "stopwatch",
        "ENDING",
        "Information",
        "TDX",
        "STOP 2",
        "STOP me now",
        "STOP DNDX",
        "HELP me",
        "hello",
        "你好",
        "退订 abc",
        "帮助我",
        "请退订",
        "x" * (kw.MAX_TEXT + 1),
    ],
)
def test_anything_else_is_unknown(text: str) -> None:
    assert kw.parse(text).kind == UNKNOWN


# -- language --------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["TD", "td", "退订", "退订，谢谢", "ＴＤ"])
def test_chinese_keywords_are_answered_in_chinese(text: str) -> None:
    intent = kw.parse(text)
    assert intent.language == CHINESE
    assert "拒收" in kw.reply(kw.REGISTERED, intent)


@pytest.mark.parametrize("text", ["STOP", "START 2", "HELP", "UNSTOP", "nonsense"])
def test_other_keywords_are_answered_in_english(text: str) -> None:
    assert kw.parse(text).language == ENGLISH


def test_chinese_replies_point_at_chinese_help() -> None:
    """HELP would be answered in English, so a Chinese reply names 帮助."""
    allowing = kw.Intent(ALLOW, CHINESE, "START", (2,))
    for text in (
        kw.reply(kw.REGISTERED, kw.parse("退订")),
        kw.reply(kw.REGISTERED, kw.parse("TD")),
        kw.reply(kw.REGISTERED, allowing),
        kw.reply(kw.PREFERENCES_UPDATED, allowing),
    ):
        assert "帮助" in text and "HELP" not in text


def test_unknown_chinese_text_is_answered_in_chinese() -> None:
    intent = kw.parse("这是什么")
    assert intent.kind == UNKNOWN and intent.language == CHINESE
    assert kw.reply(kw.UNKNOWN, intent).startswith("抱歉")


# -- replies ---------------------------------------------------------------------------------


def test_help_reply_explains_every_keyword_and_category() -> None:
    text = kw.reply(kw.HELP, kw.parse("HELP"))
    for word in ("STOP", "START"):
        assert word in text
    for code in range(1, 9):
        assert str(code) in text
    assert "real estate" in text


def test_unknown_reply_carries_the_help_text() -> None:
    text = kw.reply(kw.UNKNOWN, kw.parse("what?"))
    assert text.startswith("Sorry")
    assert kw.help_text(ENGLISH) in text


def test_partial_block_reply_names_the_allowed_categories() -> None:
    intent = kw.parse("START 2,5")
    for action in (kw.REGISTERED, kw.PREFERENCES_UPDATED):
        text = kw.reply(action, intent)
        assert "real estate (2)" in text and "consumer goods/cars (5)" in text
    chinese = kw.reply(kw.REGISTERED, kw.Intent(ALLOW, CHINESE, "START", (2,)))
    assert "房地产" in chinese


def test_every_action_has_a_reply_in_both_languages() -> None:
    for language in (ENGLISH, CHINESE):
        for kind, categories in ((OPT_OUT, ()), (ALLOW, (1,)), (OPT_IN, ()), (HELP, ())):
            intent = kw.Intent(kind, language, "X", categories)
            for action in kw.ACTIONS:
                assert kw.reply(action, intent).strip()


def test_replies_differ_by_action() -> None:
    stop = kw.parse("STOP")
    texts = {kw.reply(action, stop) for action in kw.ACTIONS}
    assert len(texts) == len(kw.ACTIONS)


# -- short codes -----------------------------------------------------------------------------


@pytest.mark.parametrize("to", ["12345", "106", "123456789012345", "+12025550100", " 55555 "])
def test_short_codes_and_long_numbers_are_accepted(to: str) -> None:
    assert kw.short_code(to) == to.strip()


def test_a_full_width_short_code_is_read_as_its_digits() -> None:
    """As `from` and the keyword itself: a phone may send any width."""
    assert kw.short_code("１２３４５") == "12345"


@pytest.mark.parametrize("to", ["", "12", "1234567890123456", "abc", "12-34", "+0123", "１２"])
def test_other_destinations_are_not_short_codes(to: str) -> None:
    assert kw.short_code(to) is None

"""Inbound SMS keywords to a carrier's short code: what the subscriber asked, and the reply.

Pure functions, no I/O. The carrier route (registry/api/carrier.py) reads the
`Intent`, changes the registration, and sends back `reply(...)`.

Opt-out rules ask for "any reasonable means", so matching is lenient where it
cannot hurt: case, width (NFKC, so full-width ＳＴＯＰ is STOP), Traditional or
Simplified characters (退訂 is 退订), surrounding spaces and punctuation,
courtesy words after the keyword in any order ("Stop please and thank you",
"退订，谢谢啦") and opt-out words repeating the request ("STOP STOP", "退订 TD") are
ignored. It is strict where leniency would change the meaning: the keyword must
come first ("please don't stop" is not a STOP), `STOP DND` and `START 2` are
keywords of their own, CANCEL repeats only itself ("CANCEL STOP" may mean undo
the stop), and any other word after a keyword makes the message unknown (the
reply then explains the keywords).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from registry.rules import CATEGORIES

# What the subscriber asked for.
OPT_OUT = "opt_out"  # a full block: STOP and friends, START 0
ALLOW = "allow"  # a partial block: START n[,m...]
OPT_IN = "opt_in"  # leave the registry: START alone, UNSTOP, STOP DND
HELP = "help"
UNKNOWN = "unknown"

# The `action` answered to the carrier, after the route has acted on the intent.
REGISTERED = "registered"
PREFERENCES_UPDATED = "preferences_updated"
DEREGISTERED = "deregistered"
ACTIONS = (REGISTERED, PREFERENCES_UPDATED, DEREGISTERED, HELP, UNKNOWN)

ENGLISH, CHINESE = "en", "zh"

# REVOKE and OPT OUT complete the words the FCC's revocation rule names (47 CFR
# 64.1200(a)(12): stop, quit, end, revoke, opt out, cancel, unsubscribe); 取消 is
# "cancel".
# T, TD and 退订 are what Chinese marketing texts tell their readers to reply ("回T退订");
# 取消订阅 is "cancel the subscription".
_OPT_OUT_WORDS = (
    "STOPALL", "STOP", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "TD",
    "T", "退订", "取消订阅", "取消",
)  # fmt: skip
_HELP_WORDS = ("HELP", "INFO", "帮助")
_CHINESE_WORDS = ("TD", "T", "退订", "取消订阅", "取消", "帮助")
# Longest first, so STOPALL is not read as STOP followed by ALL, nor TD as T.
_KEYWORD = re.compile(
    r"(STOPALL|STOP|UNSUBSCRIBE|CANCEL|END|QUIT|REVOKE|OPTOUT|TD|UNSTOP|START|HELP|INFO|T"
    r"|退订|取消订阅|取消|帮助)"
)
# "回复TD退订", "回T": the reader replying with the instruction the text gave, verb and all.
_REPLY_VERB = re.compile(r"^回复?(?=TD|T(?![A-Z0-9])|退订)")
# Keywords written in two parts: OPT OUT, OPT-OUT, 退 订 are OPTOUT and 退订.
_SPLIT_KEYWORD = re.compile(r"^(?:OPT[\s_-]*OUT(?![A-Z0-9])|退\s+订|取\s+消)")
# Traditional characters of the Chinese keywords and courtesy words, folded to the
# Simplified ones the way NFKC folds width (NFKC leaves both scripts as they are).
_SIMPLIFIED = str.maketrans("訂幫謝請煩", "订帮谢请烦")
# Categories after START: digits separated by commas (full-width ones are commas after
# NFKC), the Chinese enumeration comma, semicolons or spaces.
_CATEGORY_LIST = re.compile(r"\s*([0-9]+(?:\s*[,、;]\s*[0-9]+|\s+[0-9]+)*)")
_CATEGORY_SPLIT = re.compile(r"[\s,、;]+")
_STOP_DND = re.compile(r"\s*DND(?![A-Z0-9])")
_STOP_ALL = re.compile(r"\s+ALL(?![A-Z0-9])")
# Courtesy words that may follow a keyword, in any order, without changing it. English
# ones are whole words: thanks with an optional "very much" or "a lot" after them,
# please, kindly, and, ok. Chinese ones (谢谢啦 is 谢谢 and a particle): thanks, please,
# "sorry to trouble you" and sentence particles (退订吧, 退订了); 吗 and 呢 make a question.
_COURTESY = (
    r"(?:(?:MANY\s+)?(?:THANK\s*(?:YOU|U|YA)|THANKS|THANX|THNX|THX|TYSM|TYVM|TY)"
    r"(?:[\W_]*(?:(?:VERY|SO)\s+MUCH|A\s+LOT|A\s+BUNCH|LOTS))?"
    r"|PLEASE|PLZ|PLS|KINDLY|AND|OKAY|OK)(?![A-Z0-9])"
    r"|谢谢[您你]?|多谢|感谢[您你]?|谢了|麻烦[您你了]|辛苦了|请|[吧了啊呀哦啦喔嘛]"
)


# After an opt-out word, another may follow (STOP STOP, 退订退订, STOP UNSUBSCRIBE, 退订 TD):
# the same request twice. Not CANCEL or 取消, which may mean "undo my STOP", unless it is
# the keyword itself repeated. STOP and STOP ALL are one word.
def _word(word: str) -> str:
    return f"{word}(?![A-Z0-9])" if word.isascii() else word


_SAME_REQUEST = "|".join(
    r"STOP(?:\s*ALL)?(?![A-Z0-9])" if word == "STOP" else _word(word)
    for word in _OPT_OUT_WORDS
    if word not in ("STOPALL", "CANCEL", "取消")
)
# What else may follow an opt-out word: the reply instruction a Chinese marketing text
# ends with (退订回T); "me" after UNSUBSCRIBE.
_OPT_OUT_EXTRAS = r"回复?(?:TD|T)(?![A-Z0-9])"
# A phone's signature, as the last line of a text ("Sent from my iPhone", "Sent with Yahoo
# Mail"): not the subscriber's words, whatever the keyword before it.
_SIGNATURE = re.compile(r"SENT\s+(?:FROM|WITH|VIA)\s.*")
# CANCEL and 取消 may only repeat themselves: "CANCEL STOP" may mean "undo my STOP".
_TAIL_WORDS = {
    "CANCEL": _word("CANCEL"),
    "取消": "取消",
    "UNSUBSCRIBE": f"{_SAME_REQUEST}|ME(?![A-Z0-9])",
}


def _tail(repeat: str | None = None) -> re.Pattern[str]:
    """What may follow a keyword: `[\\W_]` (any character that is not a letter or a digit
    in any script: punctuation, spaces, emoji), courtesy words, and for an opt-out word
    the words that repeat its request."""
    if repeat is None:
        return re.compile(rf"(?:[\W_]|{_COURTESY})*")
    return re.compile(rf"(?:{_OPT_OUT_EXTRAS}|[\W_]|{_COURTESY}|{repeat})*")


_COURTESY_TAIL = _tail()
_OPT_OUT_TAILS = {
    keyword: _tail(_TAIL_WORDS.get(keyword, _SAME_REQUEST)) for keyword in _OPT_OUT_WORDS
}
_LEADING_PUNCTUATION = re.compile(r"^[\W_]+")
# An SMS of ten concatenated segments; anything longer is not a keyword.
MAX_TEXT = 1600


@dataclass(frozen=True)
class Intent:
    """What an inbound text asks for.

    `categories` are the allowed category codes of an ALLOW (sorted, no repeats);
    `problem` says why an UNKNOWN text was not understood when it looked like a
    keyword (`bad_category`), so the reply can say what to send instead.
    """

    kind: str
    language: str = ENGLISH
    keyword: str = ""
    categories: tuple[int, ...] = ()
    problem: str | None = None


_SHORT_CODE = re.compile(r"[0-9]{3,15}|\+[1-9][0-9]{2,14}")


def short_code(to: str) -> str | None:
    """The short code (3 to 15 digits) or long number (E.164) a text was sent to, if it is one."""
    code = unicodedata.normalize("NFKC", to).strip()  # full-width digits, as `from` takes them
    return code if _SHORT_CODE.fullmatch(code) else None


def normalize(text: str) -> str:
    """NFKC (full-width letters, digits and commas become ASCII), Simplified keyword
    characters, upper case, trimmed."""
    return unicodedata.normalize("NFKC", text).translate(_SIMPLIFIED).upper().strip()


def parse(text: str, language: str = ENGLISH) -> Intent:
    """Read one inbound text. Never raises: anything not understood is UNKNOWN.

    `language`: the reply's for a text with no keyword and no Chinese in it (the
    sender's country's, say); a keyword's own language wins.
    """
    folded = _LEADING_PUNCTUATION.sub("", _without_signature(normalize(text)))
    folded = _REPLY_VERB.sub("", folded, count=1)
    folded = _SPLIT_KEYWORD.sub(lambda m: re.sub(r"[\s_-]", "", m.group(0)), folded, count=1)
    if len(folded) > MAX_TEXT:
        # Only what says something counts: "STOP!!!!..." is a STOP however long.
        folded = _without_trailing_symbols(folded)
    if len(folded) > MAX_TEXT:
        return Intent(UNKNOWN, _language_of_text(folded[:MAX_TEXT], language))
    match = _KEYWORD.match(folded)
    if match is None:
        return Intent(UNKNOWN, _language_of_text(folded, language))
    keyword, rest = match.group(1), folded[match.end() :]
    if keyword.isascii() and rest[:1].isascii() and rest[:1].isalpha():
        # STOPPED, ENDING, TDX, THANKS: a longer word, not the keyword, nor its language.
        return Intent(UNKNOWN, _language_of_text(folded, language))
    language = CHINESE if keyword in _CHINESE_WORDS else ENGLISH
    intent = Intent(UNKNOWN, language, keyword)
    if keyword == "STOP" and (dnd := _STOP_DND.match(rest)):
        intent, rest = Intent(OPT_IN, language, "STOP DND"), rest[dnd.end() :]
    elif keyword == "STOP" and (every := _STOP_ALL.match(rest)):
        intent, rest = Intent(OPT_OUT, language, "STOPALL"), rest[every.end() :]
    elif keyword == "START" and (listed := _CATEGORY_LIST.match(rest)):
        intent, rest = _start_with_categories(listed.group(1), language), rest[listed.end() :]
    elif keyword == "START" or keyword == "UNSTOP":
        intent = Intent(OPT_IN, language, keyword)
    elif keyword in _OPT_OUT_WORDS:
        intent = Intent(OPT_OUT, language, keyword)
    elif keyword in _HELP_WORDS:
        intent = Intent(HELP, language, keyword)
    tail = _OPT_OUT_TAILS.get(intent.keyword) if intent.kind == OPT_OUT else None
    if not (tail or _COURTESY_TAIL).fullmatch(rest):
        return Intent(UNKNOWN, language, keyword)
    return intent


def _start_with_categories(listed: str, language: str) -> Intent:
    codes = [code for code in _CATEGORY_SPLIT.split(listed) if code]
    # Three digits past the zeros are enough to tell any code; longer ones are out of range.
    values = [int(code) if len(code.lstrip("0")) <= 3 else -1 for code in codes]
    if values and all(v == 0 for v in values):
        return Intent(OPT_OUT, language, "START 0")
    if any(v not in CATEGORIES for v in values):
        # 0 mixed with categories, or a code outside 1-8: ask again, change nothing.
        return Intent(UNKNOWN, language, "START", problem="bad_category")
    return Intent(ALLOW, language, "START", tuple(sorted(set(values))))


def _language_of_text(folded: str, otherwise: str = ENGLISH) -> str:
    """Unknown texts are answered in Chinese when they are written in Chinese."""
    return CHINESE if any("\u4e00" <= c <= "\u9fff" for c in folded) else otherwise


def _without_signature(folded: str) -> str:
    """`folded` without its last line when that line is a phone's signature."""
    head, newline, last = folded.rpartition("\n")
    return head if newline and _SIGNATURE.fullmatch(last.strip()) else folded


def _without_trailing_symbols(folded: str) -> str:
    """`folded` without the characters `[\\W_]` matches at its end; a loop, where a regex
    anchored at the end would backtrack from every position of a long run."""
    end = len(folded)
    while end and not folded[end - 1].isalnum():
        end -= 1
    return folded[:end]


# -- replies -------------------------------------------------------------------------------

_CATEGORY_NAMES = {
    ENGLISH: {
        1: "banking/insurance/finance",
        2: "real estate",
        3: "education",
        4: "health",
        5: "consumer goods/cars",
        6: "telecom/media/IT",
        7: "tourism",
        8: "food/drink",
    },
    CHINESE: {
        1: "金融保险",
        2: "房地产",
        3: "教育",
        4: "医疗健康",
        5: "消费品和汽车",
        6: "通信广播娱乐IT",
        7: "旅游休闲",
        8: "餐饮",
    },
}

_HELP = {
    ENGLISH: (
        "Do-not-call registry: reply STOP to block all telemarketing calls and marketing "
        "texts; START 1,2 (codes 1-8) to accept only those categories: {categories}; "
        "START to leave the registry. Still called or texted {after} joining? "
        "Complain at {site}. Free of charge."
    ),
    CHINESE: (
        "拒收营销服务：回复TD或退订，拒收全部营销电话和商业短信；回复START 1,2（代码1-8）"
        "只接收所列类别：{categories}；回复START退出拒收名单。加入{after}仍收到营销电话或短信，"
        "可在{site}投诉。本服务免费。"
    ),
}

_TEXTS = {
    ENGLISH: {
        # In force at once for every telemarketer that checks the registry; {within} is
        # the grace before one that has not checked yet is liable (DNC_GRACE_DAYS).
        REGISTERED: "You are on the do-not-call registry now: telemarketers see it at once "
        "and must stop calls and marketing texts to this number {within}. Consents "
        "telemarketers hold from you end now. Reply START to leave, HELP for help.",
        "allowing": "Your do-not-call preferences are saved: {blocked}. Reply STOP to "
        "block everything, START to leave, HELP for help.",
        DEREGISTERED: "This number is not on the do-not-call registry: telemarketing calls "
        "and texts may resume. Reply STOP to register again.",
        UNKNOWN: "Sorry, we did not understand that. ",
        "bad_category": "Categories are codes 1 to 8 (0 alone blocks everything); "
        "nothing was changed. ",
    },
    CHINESE: {
        REGISTERED: "您已加入拒收名单，即时生效：营销方查询即可看到，"
        "须{within}停止向本号码拨打营销电话和发送商业短信；营销方此前登记的您的同意一并终止。"
        "回复START退出，回复帮助查看说明。",
        "allowing": "您的拒收设置已保存：{blocked}。"
        "回复TD拒收全部，回复START退出，回复帮助查看说明。",
        DEREGISTERED: "本号码已不在拒收名单中，营销电话和短信可能恢复。回复TD重新拒收。",
        UNKNOWN: "抱歉，无法识别您的指令。",
        "bad_category": "类别代码为1至8（单独回复0为全部拒收），设置未作更改。",
    },
}


# What a partial block blocks, by the channels it blocks: a number registered for texts
# only is told its calls are not blocked, not that "marketing" is.
_BLOCKED = {
    ENGLISH: {
        ("voice", "sms"): "marketing calls and texts are blocked except for {allowed}",
        ("voice",): "marketing calls are blocked except for {allowed}; texts are not blocked",
        ("sms",): "marketing texts are blocked except for {allowed}; calls are not blocked",
    },
    CHINESE: {
        ("voice", "sms"): "除{allowed}外，拒收营销电话和商业短信",
        ("voice",): "除{allowed}外，拒收营销电话；商业短信未拒收",
        ("sms",): "除{allowed}外，拒收商业短信；营销电话未拒收",
    },
}

# Where to complain when the registry's address is not configured (DNC_PUBLIC_URL).
_SITE = {ENGLISH: "the registry's website", CHINESE: "拒收平台网站"}
# DNC_GRACE_DAYS's default: what the registration's effective_at is, and the replies say.
GRACE_DAYS = 31
BOTH_CHANNELS = ("voice", "sms")


def help_text(
    language: str = ENGLISH, site: str | None = None, grace_days: int = GRACE_DAYS
) -> str:
    names = _CATEGORY_NAMES[language]
    separator = "、" if language == CHINESE else ", "
    listed = separator.join(f"{code} {name}" for code, name in names.items())
    where = _SITE[language] if site is None else site
    after = _grace(grace_days, language)[1]
    return _HELP[language].format(categories=listed, site=where, after=after)


def reply(
    action: str,
    intent: Intent,
    site: str | None = None,
    *,
    grace_days: int = GRACE_DAYS,
    channels: tuple[str, ...] = BOTH_CHANNELS,
) -> str:
    """The text to send back for what was done (`action`, one of ACTIONS) about `intent`;
    `site`, the registry's address, is where the help text sends complaints; `grace_days`
    the time telemarketers have to stop (DNC_GRACE_DAYS); `channels` what the number's
    registration blocks now ("voice", "sms"), which a partial block's reply names."""
    texts, language = _TEXTS[intent.language], intent.language
    # START n: a registration allowing those categories, new (REGISTERED) or changed.
    if action == PREFERENCES_UPDATED or (action == REGISTERED and intent.kind == ALLOW):
        allowed = _allowed(intent.categories, language)
        blocked = _BLOCKED[language][_channels(channels)].format(allowed=allowed)
        return texts["allowing"].format(blocked=blocked)
    if action == REGISTERED:
        return texts[REGISTERED].format(within=_grace(grace_days, language)[0])
    if action == DEREGISTERED:
        return texts[DEREGISTERED]
    if action == HELP:
        return help_text(language, site, grace_days)
    lead = texts["bad_category"] if intent.problem == "bad_category" else texts[UNKNOWN]
    return lead + help_text(language, site, grace_days)


def _channels(channels: tuple[str, ...]) -> tuple[str, ...]:
    """The channels in the order _BLOCKED names them; none (no such registration) as both."""
    named = tuple(channel for channel in BOTH_CHANNELS if channel in channels)
    return named or BOTH_CHANNELS


def _grace(days: int, language: str) -> tuple[str, str]:
    """The grace period in the replies' words: how soon telemarketers must stop ("within
    a month"), and how long after joining a call is a breach ("a month after")."""
    if language == CHINESE:
        if days in (30, 31):
            return "在一个月内", "一个月后"
        return ("立即", "后") if days == 0 else (f"在{days}天内", f"{days}天后")
    if days in (30, 31):
        return "within a month", "a month after"
    if days == 0:
        return "now", "after"
    return (
        f"within {days} day{'s' if days != 1 else ''}",
        f"{days} day{'s' if days != 1 else ''} after",
    )


def _allowed(categories: tuple[int, ...], language: str) -> str:
    names = _CATEGORY_NAMES[language]
    if language == CHINESE:
        return "、".join(f"{names[c]}（{c}）" for c in categories)
    return ", ".join(f"{names[c]} ({c})" for c in categories)

"""The subscriber pages' language: English, or Simplified Chinese for China's platform.

A page is asked for in a language with `?lang=zh` (the pages' own switch, and the
hidden `lang` field of their forms, so an answer comes in the page's language);
without one, the browser's `Accept-Language` chooses, and English is the default.
The API itself answers in English: its messages are for programmers, and the
pages put them in the subscriber's words.
"""

from __future__ import annotations

from collections.abc import Mapping

LANGUAGES = ("en", "zh")
DEFAULT = "en"
# The `lang` values taken, and the language each asks for; anything else is ignored.
ASKED = {"en": "en", "zh": "zh", "zh-hans": "zh", "zh-cn": "zh"}
# What a page's <html lang> and Content-Language say.
TAGS = {"en": "en", "zh": "zh-Hans"}


def chosen(asked: str | None, headers: Mapping[str, str]) -> str:
    """`asked` (a `lang` parameter or field) if it names one of LANGUAGES, else the
    browser's preference among them, else DEFAULT."""
    if asked is not None and (found := ASKED.get(asked.strip().lower())):
        return found
    return preferred(headers.get("accept-language", ""))


def preferred(header: str) -> str:
    """The language of LANGUAGES an `Accept-Language` header ranks first (RFC 9110: the
    highest q, the earlier on a tie); DEFAULT when it names none of them.

    >>> preferred("zh-CN,zh;q=0.9,en;q=0.8")
    'zh'
    >>> preferred("fr-FR, en;q=0.5, zh;q=0.4")
    'en'
    """
    best, best_q = DEFAULT, 0.0
    for item in header.split(",")[:32]:
        tag, _, parameters = item.strip().partition(";")
        short = tag.strip().lower().split("-")[0]
        if short not in LANGUAGES:
            continue  # "*" included: any language, so the default, which `best` already is
        q = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0  # a weight that cannot be read counts for nothing
        if best_q < q <= 1.0:
            best, best_q = short, q
    return best

"""Complaints: who called, when, and whether the registry already protected the number then.

A complaint is evidence for a regulator, so the two flags it carries are decided
here, from plain values, the moment it arrives: `registered_at_time` (the number
was registered, blocking that channel, when the call or message came) and
`within_grace` (the call came before the registration's `effective_at` =
`registered_at` + DNC_GRACE_DAYS, so the sender was not yet liable; CONTRACT
section 3 marks every complaint about a call before `effective_at` so, a call
before the registration itself included).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime

from registry import numbers as nums
from registry import rules

# How far ahead of the server's clock `occurred_at` may be: phones' clocks drift.
CLOCK_SKEW_SECONDS = 300
MAX_TEXT_CHARS = 2000
# An SMS alphanumeric sender id is at most 11 GSM characters with at least one letter;
# short codes are 3 to 8 digits. Anything else must be a valid phone number.
_SENDER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 .&_+-]{0,10}$")
_LETTER = re.compile(r"[A-Za-z]")
_SHORT_CODE = re.compile(r"^[0-9]{3,8}$")
# China's commercial SMS come from 106 port numbers (106 and up to 17 more digits) and must
# carry a signature in 【】 naming the sender (MIIT): a subscriber names either.
_PORT = re.compile(r"^106[0-9]{2,17}$")
_SIGNATURE = re.compile(r"^【\s*([^\W_][\w .&·()-]{0,19}?)\s*】$")
_DIGIT_GAPS = re.compile(r"[\s-]")


# The caller of a call or text that showed no number: kept out of the callers' ranking,
# counted on its own. Lower case, so no sender id (upper-cased) can be it.
WITHHELD = "withheld"
# What a subscriber writes for it, lower case and letters only.
_WITHHELD_WORDS = frozenset(
    {"withheld", "numberwithheld", "private", "privatenumber", "anonymous", "unknown",
     "unknowncaller", "unknownnumber", "nocallerid", "hidden", "hiddennumber", "restricted",
     "unavailable", "blocked", "notshown", "未知", "未知号码", "未知来电", "隐藏号码", "私人号码",
     "匿名", "无号码", "号码隐藏"}
)  # fmt: skip


class ComplaintError(ValueError):
    """A complaint field the caller must send differently; `code` names which."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Liability:
    registered_at_time: bool
    within_grace: bool


def caller(raw: str, region: str) -> str:
    """The sender as the report counts it: E.164, a short code, or an upper-case sender id;
    WITHHELD for a call that showed none ("withheld", "private", "未知号码", ...; an
    empty caller is a mistake, not a withheld one).

    Sender ids are upper-cased so `AcmeBank` and `ACMEBANK` count as one sender.
    """
    text = raw.strip()
    letters = "".join(filter(str.isalpha, unicodedata.normalize("NFKC", text).lower()))
    if letters in _WITHHELD_WORDS and len(letters) >= len(text) - 2:
        return WITHHELD
    value, reason = nums.normalize(text, region)
    if reason is None:
        return f"+{value}"
    digits = _DIGIT_GAPS.sub("", unicodedata.normalize("NFKC", text))
    if _SHORT_CODE.match(digits) or _PORT.match(digits):
        return digits
    if _SENDER_ID.match(text) and _LETTER.search(text):
        return text.upper()
    signature = _SIGNATURE.match(unicodedata.normalize("NFKC", text))
    if signature:
        return f"【{signature.group(1).upper()}】"
    raise ComplaintError(
        "invalid_caller",
        f"caller {raw[:64]!r} is neither a valid phone number ({reason}), a 3-8 digit short "
        "code or a 106 port number (up to 20 digits), an SMS sender id (1-11 letters, "
        "digits, spaces or .&_+- with a letter), nor a signature in 【】 (1-20 characters)",
    )


def occurred_at(raw: str, now: float) -> float:
    """`occurred_at` as epoch seconds: ISO 8601 with a UTC offset, not in the future."""
    try:
        # RFC 3339 lets the T and the Z be lower case; Python reads only the upper ones.
        when = datetime.fromisoformat(raw.strip().upper()) if len(raw) <= 64 else None
    except ValueError:
        when = None
    if when is None:
        raise ComplaintError(
            "invalid_time",
            f"occurred_at {raw[:64]!r} is not an ISO 8601 time; send e.g. 2026-11-29T14:05:00Z",
        )
    if when.tzinfo is None:
        raise ComplaintError(
            "invalid_time",
            f"occurred_at {raw[:64]!r} has no UTC offset; add Z or +hh:mm, e.g. 14:05:00-05:00",
        )
    try:
        # In UTC, year 1 with a positive offset is year 0 (9999 with a negative one, year
        # 10000): no datetime holds it, and the record could never be written back out.
        at = when.astimezone(UTC).timestamp()
    except OverflowError:
        raise ComplaintError(
            "invalid_time", f"occurred_at {raw[:64]!r} is outside the years 1 to 9999 in UTC"
        ) from None
    if at > now + CLOCK_SKEW_SECONDS:
        raise ComplaintError("invalid_time", f"occurred_at {raw[:64]!r} is in the future")
    return at


def text(raw: str | None) -> str | None:
    return _free_text("text", raw, MAX_TEXT_CHARS)


def _free_text(field: str, raw: str | None, most: int) -> str | None:
    """A field of free text: stripped, None when blank, `{field}_too_long` past `most`.

    A line break is one character, as a browser's textarea counts it against its
    maxlength, though a form posts it as CRLF."""
    if raw is None or not raw.strip():
        return None
    raw = raw.replace("\r\n", "\n")
    if len(raw) > most:
        raise ComplaintError(
            f"{field}_too_long", f"{field} is {len(raw)} characters; at most {most}, shorten it"
        )
    return raw.strip()


def liability(
    registered: bool,
    registered_at: int | None,
    blocks_channel: bool,
    occurred: float,
    grace_days: int,
) -> Liability:
    """The flags of a complaint about `occurred`, from the number's registration that stood
    then (RegistrationStore.in_force: ended since, or the current one).

    A bulk-loaded number has no known `registered_at`: it counts as registered before any
    complaint and past its grace (lists are loaded from registries that already enforce them).
    """
    if not registered:
        return Liability(False, False)
    if registered_at is None:
        return Liability(blocks_channel, False)
    within_grace = occurred < rules.effective_at(registered_at, grace_days)
    return Liability(blocks_channel and occurred >= registered_at, within_grace)


# How an administrator closed a complaint (POST /v1/complaints/{id}/resolution), as the
# complainant is told it: the sender was warned or had its service suspended (MIIT's
# draft, Article 40: the operators "take the necessary measures"), the registry found no
# breach (not registered then, in the grace, or a consent), the complaint went to the
# regulator, or it did not say enough to act on.
OUTCOMES = (
    "sender_warned",
    "sender_suspended",
    "no_breach_found",
    "referred_to_regulator",
    "insufficient_detail",
)
MAX_REPLY_CHARS = 1000


def outcome(raw: str) -> str:
    if raw not in OUTCOMES:
        raise ComplaintError(
            "invalid_outcome", f"outcome {raw[:32]!r} is not one of {', '.join(OUTCOMES)}"
        )
    return raw


def reply(raw: str | None) -> str | None:
    """What the complainant is told beside the outcome: plain text, or nothing."""
    if raw is not None:
        raw = raw.replace("\r\n", "\n").replace("\r", "\n")  # a browser's textarea sends CRLF
    found = _free_text("reply", raw, MAX_REPLY_CHARS)
    if found and any(_unprintable(c) and c not in "\n\t" for c in found):
        raise ComplaintError(
            "invalid_reply",
            "reply holds control characters or broken UTF-16; send plain text (newlines allowed)",
        )
    return found


def _unprintable(c: str) -> bool:
    """A control, a format (direction overrides) or a lone surrogate character."""
    return unicodedata.category(c) in ("Cc", "Cf", "Cs")

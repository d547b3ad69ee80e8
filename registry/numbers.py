"""Normalization of phone numbers to E.164, with exactly `phonenumbers`' validity.

A number travels through the registry as an integer: the digits of its E.164
form (`+12125551234` is 12125551234). Country codes never start with 0, so the
integer keeps every digit, fits in int64 (E.164 has at most 15 digits), and
lets the hot paths work on numpy arrays instead of strings.

`normalize` is the exact path: phonenumbers itself, one input at a time.
`normalize_many` first gives a whole batch to `registry.fastnumbers`, which
answers the common shapes with numpy and the same answers (tests/test_numbers_fast.py
holds it to `normalize` on a million inputs), and sends the rest to `normalize`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import phonenumbers
from phonenumbers import NumberParseException, ValidationResult

from registry import fastnumbers
from registry import parse_machines as machines

# Why an input is not a number the registry can hold; the codes the API reports.
EMPTY = "empty"
NOT_A_NUMBER = "not_a_number"
INVALID_COUNTRY_CODE = "invalid_country_code"
TOO_SHORT = "too_short"
TOO_LONG = "too_long"
INVALID_LENGTH = "invalid_length"
INVALID_FOR_REGION = "invalid_for_region"

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: INVALID_COUNTRY_CODE,
    NumberParseException.NOT_A_NUMBER: NOT_A_NUMBER,
    NumberParseException.TOO_SHORT_AFTER_IDD: TOO_SHORT,
    NumberParseException.TOO_SHORT_NSN: TOO_SHORT,
    NumberParseException.TOO_LONG: TOO_LONG,
}
_POSSIBLE_REASONS = {
    ValidationResult.TOO_SHORT: TOO_SHORT,
    ValidationResult.TOO_LONG: TOO_LONG,
    ValidationResult.INVALID_COUNTRY_CODE: INVALID_COUNTRY_CODE,
    ValidationResult.INVALID_LENGTH: INVALID_LENGTH,
}
_FAST_REASONS: dict[int, str | None] = {
    fastnumbers.UNDECIDED: None,
    fastnumbers.VALID: None,
    machines.TOO_SHORT: TOO_SHORT,
    machines.TOO_LONG: TOO_LONG,
    machines.INVALID_LENGTH: INVALID_LENGTH,
    machines.INVALID_FOR_REGION: INVALID_FOR_REGION,
}
# Longer than any phone number in any format phonenumbers accepts; saves parsing junk.
_MAX_INPUT_CHARS = 250
_E164 = phonenumbers.PhoneNumberFormat.E164
# phonenumbers compiles its metadata regexes through `re`, whose cache holds 512; input
# that mixes regions needs more and recompiles them over and over (4x slower per number).
if hasattr(phonenumbers, "enable_pattern_cache"):
    phonenumbers.enable_pattern_cache()


class RegionError(ValueError):
    """The region given for national-format numbers is not a known region code."""


def check_region(region: str | None, default: str) -> str:
    """The upper-case region code to read national numbers against."""
    if region is None or region == "":
        return default
    code = region.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise RegionError(f"region {region!r} is not an ISO 3166 region code such as US or CN")
    return code


def normalize(text: str, region: str) -> tuple[int, str | None]:
    """One input to (E.164 digits as an int, None) or (0, reason)."""
    if not text or text.isspace():
        return 0, EMPTY
    if len(text) > _MAX_INPUT_CHARS:
        return 0, TOO_LONG
    try:
        parsed = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        return 0, _PARSE_REASONS.get(exc.error_type, NOT_A_NUMBER)
    if phonenumbers.is_valid_number(parsed):
        return int(phonenumbers.format_number(parsed, _E164)[1:]), None
    reason = _POSSIBLE_REASONS.get(phonenumbers.is_possible_number_with_reason(parsed))
    return 0, reason or INVALID_FOR_REGION


def normalize_many(texts: Sequence[str], region: str) -> tuple[np.ndarray, list[str | None]]:
    """A batch of inputs to an int64 array of E.164 digits (0 when invalid) and reasons.

    The fast path answers the common shapes for the whole batch at once; whatever it
    is not certain of goes through `normalize`, one input at a time.
    """
    numbers, verdicts = fastnumbers.classify(texts, region)
    reasons: list[str | None] = [_FAST_REASONS[v] for v in verdicts.tolist()]
    cache: dict[str, tuple[int, str | None]] = {}
    for i in np.flatnonzero(verdicts == fastnumbers.UNDECIDED).tolist():
        text = texts[i]
        hit = cache.get(text)
        if hit is None:
            hit = cache[text] = normalize(text, region)
        numbers[i], reasons[i] = hit
    return numbers, reasons


def e164(number: int) -> str:
    return f"+{number}"


def e164_many(numbers: np.ndarray) -> list[str]:
    """E.164 strings for an int64 array; invalid (0) entries become ''."""
    return ["" if n == 0 else f"+{n}" for n in numbers.tolist()]


def prefix_range(prefix: str) -> tuple[int, int]:
    """The half-open range of E.164 integers under a prefix such as `+1212`.

    E.164 numbers have different lengths, so a prefix covers one range per
    possible length; callers test membership with `in_prefix` instead.
    """
    digits = prefix.removeprefix("+")
    if not digits.isdigit() or len(digits) > 15 or digits[0] == "0":
        raise ValueError(f"prefix {prefix!r} is not '+' followed by 1 to 15 digits")
    value = int(digits)
    return value, len(digits)


def in_prefixes(numbers: np.ndarray, prefixes: Sequence[str]) -> np.ndarray:
    """Boolean mask: which E.164 integers fall under any of the prefixes."""
    if not prefixes:
        return np.ones(len(numbers), dtype=bool)
    mask = np.zeros(len(numbers), dtype=bool)
    lengths = _digit_count(numbers)
    for prefix in prefixes:
        value, width = prefix_range(prefix)
        for length in range(width, 16):
            scale = 10 ** (length - width)
            mask |= (lengths == length) & (numbers // scale == value)
    return mask


def _digit_count(numbers: np.ndarray) -> np.ndarray:
    counts = np.zeros(len(numbers), dtype=np.int64)
    for power in range(1, 16):
        counts += numbers >= 10 ** (power - 1)
    return counts

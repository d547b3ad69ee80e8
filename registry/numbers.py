"""Normalization of phone numbers to E.164, with exactly `phonenumbers`' validity.

A number travels through the registry as an integer: the digits of its E.164
form (`+12125551234` is 12125551234). Country codes never start with 0, so the
integer keeps every digit, fits in int64 (phonenumbers accepts up to 19 digits,
keys.MAX_DIGITS, where E.164 says 15), and
lets the hot paths work on numpy arrays instead of strings.

`normalize_exact` is the exact path: phonenumbers itself, one input at a time.
Everything else first asks `registry.fastnumbers`, which answers the common shapes
with the same answers (tests/test_numbers_fast.py holds it to `normalize_exact` on a
million inputs), and sends the rest to `normalize_exact`: `normalize` for one input
(a walk in plain Python), `normalize_many` for a batch of strings and
`normalize_lines` for the lines of a byte buffer (numpy over the whole batch).

Batches report why each input is invalid as an int8 code into REASONS: a million
Python strings would cost more than the normalization.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Sequence

import numpy as np
import phonenumbers
from phonenumbers import NumberParseException, ValidationResult

from registry import fastnumbers
from registry import parse_machines as machines
from registry.store.keys import in_prefixes as in_prefixes  # prefixes: the store's arithmetic
from registry.store.keys import prefix_range as prefix_range

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
# The reason codes of the batch functions: REASONS[code], 0 (None) for a valid number.
REASONS: tuple[str | None, ...] = (
    None,
    EMPTY,
    NOT_A_NUMBER,
    INVALID_COUNTRY_CODE,
    TOO_SHORT,
    TOO_LONG,
    INVALID_LENGTH,
    INVALID_FOR_REGION,
)
_REASON_CODES = {reason: code for code, reason in enumerate(REASONS)}
_REASON_NAMES = np.array(REASONS, dtype=object)
# The code of each fast verdict, at verdict + 1 (the verdicts run from UNDECIDED, -1, up).
_VERDICT_CODES = np.array(
    [_REASON_CODES[_FAST_REASONS[verdict]] for verdict in sorted(_FAST_REASONS)], dtype=np.int8
)
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
    # Full-width letters too (ＣＮ), as a number's full-width digits are read.
    code = unicodedata.normalize("NFKC", region).strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise RegionError(f"region {region!r} is not an ISO 3166 region code such as US or CN")
    return code


def normalize(text: str, region: str) -> tuple[int, str | None]:
    """One input to (E.164 digits as an int, None) or (0, reason).

    The common shapes are answered by a walk of the fast path's table (about 2 µs);
    the rest by phonenumbers (about 20 µs).
    """
    value, verdict = fastnumbers.classify_one(text, region)
    if verdict == fastnumbers.UNDECIDED:
        return normalize_exact(text, region)
    return value, _FAST_REASONS[verdict]


def normalize_exact(text: str, region: str) -> tuple[int, str | None]:
    """`normalize` by phonenumbers itself: the reference every fast path is held to."""
    if not text or text.isspace():
        return 0, EMPTY
    if len(text) > _MAX_INPUT_CHARS:
        # Before the cache: anyone may send a 128 KiB "number", and 4,096 of them kept as
        # its keys would hold half a gigabyte in each worker.
        return 0, TOO_LONG
    return _parsed(text, region)


# A look-up repeated (a client polling the same number) skips phonenumbers. Only inputs
# of at most _MAX_INPUT_CHARS reach it.
@functools.lru_cache(maxsize=4096)
def _parsed(text: str, region: str) -> tuple[int, str | None]:
    try:
        parsed = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        return 0, _PARSE_REASONS.get(exc.error_type, NOT_A_NUMBER)
    if phonenumbers.is_valid_number(parsed):
        return int(phonenumbers.format_number(parsed, _E164)[1:]), None
    reason = _POSSIBLE_REASONS.get(phonenumbers.is_possible_number_with_reason(parsed))
    return 0, reason or INVALID_FOR_REGION


def normalize_many(texts: Sequence[str], region: str) -> tuple[np.ndarray, list[str | None]]:
    """A batch of inputs to an int64 array of E.164 digits (0 when invalid) and reasons."""
    numbers, codes = normalize_codes(texts, region)
    return numbers, reason_names(codes)


def normalize_codes(texts: Sequence[str], region: str) -> tuple[np.ndarray, np.ndarray]:
    """A batch of inputs to an int64 array of E.164 digits (0 when invalid) and an int8
    array of reason codes (REASONS).

    The fast path answers the common shapes for the whole batch at once; whatever it
    is not certain of goes through phonenumbers, one input at a time.
    """
    numbers, verdicts = fastnumbers.classify(texts, region)
    codes = _VERDICT_CODES[verdicts + 1]
    known: dict[str, tuple[int, int]] = {}
    for i in np.flatnonzero(verdicts == fastnumbers.UNDECIDED).tolist():
        text = texts[i]
        answer = known.get(text)
        if answer is None:
            answer = known[text] = _coded(normalize_exact(text, region))
        numbers[i], codes[i] = answer
    return numbers, codes


def normalize_lines(
    buffer: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    region: str,
    canonical: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """`normalize_codes` of the lines `buffer[starts[i]:ends[i]]` of a uint8 buffer (a
    text/plain body), read as UTF-8, without making a string of each.

    A line that is not UTF-8 raises UnicodeDecodeError, as decoding it would (the
    scrub refuses such a body before it gets here). `canonical`: as for
    fastnumbers.classify_lines (False for the lines phonenumbers answers).
    """
    starts, ends = np.asarray(starts), np.asarray(ends)
    numbers, verdicts = fastnumbers.classify_lines(buffer, starts, ends, region, canonical)
    codes = _VERDICT_CODES[verdicts + 1]
    undecided = np.flatnonzero(verdicts == fastnumbers.UNDECIDED)
    known: dict[bytes, tuple[int, int]] = {}
    for i, start, end in zip(
        undecided.tolist(), starts[undecided].tolist(), ends[undecided].tolist(), strict=True
    ):
        line = buffer[start:end].tobytes()
        answer = known.get(line)
        if answer is None:
            answer = known[line] = _coded(normalize_exact(line.decode(), region))
        numbers[i], codes[i] = answer
    return numbers, codes


def reason_names(codes: np.ndarray) -> list[str | None]:
    """The reason of each code of `normalize_codes` or `normalize_lines` (None if valid)."""
    names: list[str | None] = _REASON_NAMES[codes].tolist()
    return names


def _coded(answer: tuple[int, str | None]) -> tuple[int, int]:
    return answer[0], _REASON_CODES[answer[1]]


def e164(number: int) -> str:
    return f"+{number}"


def e164_many(numbers: np.ndarray) -> list[str]:
    """E.164 strings for an int64 array; invalid (0) entries become ''."""
    return ["" if n == 0 else f"+{n}" for n in numbers.tolist()]

"""Numbers (CONTRACT section 2): E.164 out, and exactly `phonenumbers`' idea of valid."""

from __future__ import annotations

import random

import numpy as np
import phonenumbers
import pytest
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

from registry import numbers as nums
from registry.store.keys import MAX_DIGITS

REASONS = {
    nums.EMPTY,
    nums.NOT_A_NUMBER,
    nums.INVALID_COUNTRY_CODE,
    nums.TOO_SHORT,
    nums.TOO_LONG,
    nums.INVALID_LENGTH,
    nums.INVALID_FOR_REGION,
}


def library_e164(text: str, region: str) -> str | None:
    """The reference: what phonenumbers itself says, or None when it is not a valid number."""
    try:
        parsed = phonenumbers.parse(text, region)
    except NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


def e164_of(text: str, region: str) -> str | None:
    value, reason = nums.normalize(text, region)
    if reason is None:
        assert value > 0
        return nums.e164(value)
    assert value == 0
    return None


# -- valid inputs in every accepted shape ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("+12125551234", "US", "+12125551234"),
        ("+1 212 555 1234", "CN", "+12125551234"),  # E.164 ignores the region
        ("(212) 555-1234", "US", "+12125551234"),
        ("212.555.1234", "US", "+12125551234"),
        ("212-555-1234", "US", "+12125551234"),
        ("12125551234", "US", "+12125551234"),  # digits with the country code
        ("1 (212) 555-1234", "US", "+12125551234"),
        ("tel:+1-212-555-1234", "US", "+12125551234"),  # RFC 3966
        ("  +1 212 555 1234  ", "US", "+12125551234"),
        (
            "\uff0b\uff11\uff12\uff11\uff12\uff15\uff15\uff15\uff11\uff12\uff13\uff14",
            "US",
            "+12125551234",
        ),
        ("010 1234 5678", "CN", "+861012345678"),  # Beijing, national format
        ("010-12345678", "CN", "+861012345678"),
        ("13800138000", "CN", "+8613800138000"),  # a Chinese mobile
        ("+86 10 1234 5678", "US", "+861012345678"),
        ("8613800138000", "CN", "+8613800138000"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("+44 20 7946 0958", "US", "+442079460958"),
    ],
)
def test_valid_inputs_become_e164(text: str, region: str, expected: str) -> None:
    assert library_e164(text, region) == expected  # the reference agrees
    assert e164_of(text, region) == expected


def test_the_same_digits_read_against_different_regions_are_different_numbers() -> None:
    # A national number means nothing without its region.
    assert e164_of("010 1234 5678", "CN") == "+861012345678"
    assert e164_of("010 1234 5678", "US") is None
    assert e164_of("(212) 555-1234", "CN") == "+862125551234"  # Shanghai, not New York


# -- invalid inputs, each with its reason ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "region", "reason"),
    [
        ("", "US", nums.EMPTY),
        ("   ", "US", nums.EMPTY),
        ("\t\n", "US", nums.EMPTY),
        ("abc", "US", nums.NOT_A_NUMBER),
        ("call me maybe", "US", nums.NOT_A_NUMBER),
        ("1", "US", nums.NOT_A_NUMBER),
        ("+999 1234567", "US", nums.INVALID_COUNTRY_CODE),  # no country has code 999
        ("+1212555", "US", nums.TOO_SHORT),
        ("+1234", "US", nums.TOO_SHORT),
        ("+12125551234567", "US", nums.TOO_LONG),
        ("1" * 20, "US", nums.TOO_LONG),
        ("2" * 251, "US", nums.TOO_LONG),  # longer than phonenumbers parses at all
        ("+6122222222222", "US", nums.INVALID_LENGTH),  # Australia: a length it never uses
        ("+1 123 555 1234", "US", nums.INVALID_FOR_REGION),  # no US area code starts with 1
        ("0101234", "CN", nums.INVALID_FOR_REGION),
    ],
)
def test_invalid_inputs_get_a_reason(text: str, region: str, reason: str) -> None:
    assert library_e164(text, region) is None
    assert nums.normalize(text, region) == (0, reason)


def test_the_invalid_length_example_is_what_phonenumbers_calls_invalid_length() -> None:
    parsed = phonenumbers.parse("+6122222222222", None)
    assert phonenumbers.is_possible_number_with_reason(parsed) == ValidationResult.INVALID_LENGTH


def test_an_unknown_region_makes_national_numbers_unreadable() -> None:
    assert nums.normalize("(212) 555-1234", "ZZ") == (0, nums.INVALID_COUNTRY_CODE)
    # ...while a number with its country code needs no region.
    assert e164_of("+12125551234", "ZZ") == "+12125551234"


def test_the_length_limit_is_exactly_phonenumbers_own() -> None:
    padded = "+1 212 555 1234".ljust(250)
    assert e164_of(padded, "US") == library_e164(padded, "US") == "+12125551234"
    assert library_e164(padded + " ", "US") is None
    assert nums.normalize(padded + " ", "US") == (0, nums.TOO_LONG)


# -- a randomized differential check against phonenumbers ---------------------------------

REGIONS = ["US", "CN", "GB", "DE", "FR", "IN", "AU", "JP", "BR", "RU", "CA", "MX", "ZA", "SG"]
COUNTRY_CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
JUNK = "0123456789+-() .abcxyzEXT#*;:/\uff11\uff12\u0661\u0662\u00a0"


def _digits(rng: random.Random, low: int, high: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(rng.randint(low, high)))


def _formatted(rng: random.Random, digits: str) -> str:
    """Digits broken up the way people write them."""
    out = []
    for i, digit in enumerate(digits):
        if i and rng.random() < 0.25:
            out.append(rng.choice([" ", "-", ".", ") ", " ("]))
        out.append(digit)
    return "".join(out)


def _mutated_example(rng: random.Random, region: str) -> str:
    """A real example number of the region, changed a little (often still valid)."""
    kind = rng.choice(
        [phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE]
    )
    example = phonenumbers.example_number_for_type(region, kind)
    assert example is not None
    digits = str(example.national_number)
    position = rng.randrange(len(digits))
    choice = rng.random()
    if choice < 0.4:
        digits = digits[:position] + rng.choice("0123456789") + digits[position + 1 :]
    elif choice < 0.55:
        digits = digits[:position] + digits[position + 1 :]
    elif choice < 0.7:
        digits = digits[:position] + rng.choice("0123456789") + digits[position:]
    if rng.random() < 0.5:
        return f"+{example.country_code} {_formatted(rng, digits)}"
    return _formatted(rng, digits)


def random_inputs(seed: int, count: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    inputs = []
    for _ in range(count):
        region = rng.choice(REGIONS)
        shape = rng.randrange(6)
        if shape == 0:  # E.164 with a real country code
            text = f"+{rng.choice(COUNTRY_CODES)}{_digits(rng, 3, 14)}"
        elif shape == 1:  # digits with a country code, no '+'
            text = f"{rng.choice(COUNTRY_CODES)}{_digits(rng, 5, 13)}"
        elif shape == 2:  # a national format
            text = _formatted(rng, _digits(rng, 4, 13))
        elif shape == 3:  # a mutated real number
            text = _mutated_example(rng, region)
        elif shape == 4:  # junk
            text = "".join(rng.choice(JUNK) for _ in range(rng.randint(0, 30)))
        else:  # RFC 3966, or an arbitrary '+' and digits
            text = rng.choice(["tel:+", "+", "00", "011"]) + _digits(rng, 1, 17)
        inputs.append((text, region))
    return inputs


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_validity_and_e164_agree_with_phonenumbers_on_random_inputs(seed: int) -> None:
    inputs = random_inputs(seed, 1500)
    valid = 0
    for text, region in inputs:
        expected = library_e164(text, region)
        value, reason = nums.normalize(text, region)
        if expected is None:
            assert value == 0 and reason in REASONS, (text, region, reason)
        else:
            valid += 1
            assert reason is None and nums.e164(value) == expected, (text, region, reason)
    # The generator must exercise both answers, or the check proves little.
    assert 200 < valid < len(inputs) - 200


def test_normalize_many_answers_as_normalize_does_one_by_one() -> None:
    inputs = [text for text, _ in random_inputs(7, 2000)]
    inputs += inputs[:100]  # repeats take the batch's cache
    numbers, reasons = nums.normalize_many(inputs, "US")
    assert numbers.dtype == np.int64 and len(numbers) == len(reasons) == len(inputs)
    for i, text in enumerate(inputs):
        assert (int(numbers[i]), reasons[i]) == nums.normalize(text, "US")


def test_normalize_many_of_nothing() -> None:
    numbers, reasons = nums.normalize_many([], "US")
    assert len(numbers) == 0 and reasons == []


def test_e164_many_leaves_invalid_entries_empty() -> None:
    numbers, _ = nums.normalize_many(["(212) 555-1234", "junk", "+861012345678"], "US")
    assert nums.e164_many(numbers) == ["+12125551234", "", "+861012345678"]


# -- regions --------------------------------------------------------------------------------


def test_check_region_falls_back_to_the_default() -> None:
    assert nums.check_region(None, "US") == "US"
    assert nums.check_region("", "CN") == "CN"


@pytest.mark.parametrize(
    ("raw", "code"),
    [("CN", "CN"), ("cn", "CN"), (" gb ", "GB"), ("ＣＮ", "CN"), ("ｃｎ\u3000", "CN")],
)
def test_check_region_reads_region_codes(raw: str, code: str) -> None:
    assert nums.check_region(raw, "US") == code


@pytest.mark.parametrize("raw", ["ZZ", "USA", "001", "1", "U", "china"])
def test_check_region_rejects_what_is_not_a_region(raw: str) -> None:
    with pytest.raises(nums.RegionError, match="region"):
        nums.check_region(raw, "US")


# -- prefixes -------------------------------------------------------------------------------


def _array(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def test_in_prefixes_matches_leading_digits_of_any_prefix() -> None:
    numbers = _array(12125551234, 12135551234, 16465551234, 861012345678, 442079460958, 0)
    assert nums.in_prefixes(numbers, ["+1212"]).tolist() == [1, 0, 0, 0, 0, 0]
    assert nums.in_prefixes(numbers, ["+1212", "+1646"]).tolist() == [1, 0, 1, 0, 0, 0]
    assert nums.in_prefixes(numbers, ["+1"]).tolist() == [1, 1, 1, 0, 0, 0]
    assert nums.in_prefixes(numbers, ["+86", "+44"]).tolist() == [0, 0, 0, 1, 1, 0]
    assert nums.in_prefixes(numbers, ["+12125551234"]).tolist() == [1, 0, 0, 0, 0, 0]


def test_in_prefixes_without_prefixes_admits_everything() -> None:
    assert nums.in_prefixes(_array(12125551234, 861012345678), []).tolist() == [True, True]


def test_a_prefix_longer_than_the_number_does_not_match() -> None:
    assert nums.in_prefixes(_array(861012345), ["+8610123456"]).tolist() == [False]


def test_in_prefixes_agrees_with_string_prefixes_on_random_numbers() -> None:
    rng = random.Random(11)
    heads = ["1", "12", "4420", "442", "86138", "8613", "7", "9"]
    numbers = _array(
        *(int(rng.choice(heads) + _digits(rng, 4, 10)) for _ in range(3000)),
    )
    prefixes = ["+1", "+4420", "+86138", "+7"]
    expected = [any(f"+{n}".startswith(p) for p in prefixes) for n in numbers.tolist()]
    assert nums.in_prefixes(numbers, prefixes).tolist() == expected


@pytest.mark.parametrize(
    "prefix",
    # Digits str.isdigit takes and accounts' prefixes do not: superscripts, other scripts'.
    ["+", "", "+0", "+01", "+12a", "+1234567890123456", "abc", "+²", "+١٢١٢", "+１２１２"],
)
def test_prefix_range_rejects_what_is_not_plus_and_digits(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        nums.prefix_range(prefix)


def test_every_number_phonenumbers_calls_valid_fits_the_registry() -> None:
    """keys.MAX_DIGITS bounds every valid number (country code and longest national
    form), and the largest any country code allows still fits in int64."""
    longest, largest = 0, 0
    descs = ("fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost")
    descs += ("personal_number", "voip", "pager", "uan", "voicemail")
    for region in phonenumbers.SUPPORTED_REGIONS:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        code = metadata.country_code
        for name in descs:
            desc = getattr(metadata, name)
            if desc is not None and desc.national_number_pattern and desc.possible_length:
                national = max(desc.possible_length)
                longest = max(longest, len(str(code)) + national)
                largest = max(largest, (code + 1) * 10**national - 1)
    assert longest == MAX_DIGITS
    assert largest < 2**63


def test_in_prefixes_holds_numbers_longer_than_fifteen_digits() -> None:
    numbers = _array(49914776980492687, 6200180312345678901, 8100371234567890123, 4930123456)
    assert nums.in_prefixes(numbers, ["+49"]).tolist() == [1, 0, 0, 1]
    assert nums.in_prefixes(numbers, ["+4991477698049"]).tolist() == [1, 0, 0, 0]
    assert nums.in_prefixes(numbers, ["+62001803", "+81"]).tolist() == [0, 1, 1, 0]


def test_long_inputs_are_answered_without_being_kept() -> None:
    """Anyone may send a 128 KiB "number" (a status check, a complaint): kept as keys of
    the parse cache, 4,096 of them would hold half a gigabyte in each worker."""
    before = nums._parsed.cache_info().currsize
    for i in range(50):
        assert nums.normalize(f"{i}" + "9" * 100_000, "US") == (0, nums.TOO_LONG)
        assert nums.normalize(" " * 100_000 + str(i), "US") == (0, nums.TOO_LONG)
    assert nums.normalize(" " * 100_000, "US") == (0, nums.EMPTY)
    assert nums._parsed.cache_info().currsize == before

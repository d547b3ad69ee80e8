"""The fast paths of normalization (CONTRACT section 2): the same answer as phonenumbers, always.

`normalize_many` (strings) and `normalize_lines` (the lines of a text/plain body)
answer most of a batch with numpy through `registry.fastnumbers`; `normalize` answers
one input by walking the same table in plain Python. All send the rest to
`normalize_exact`, phonenumbers itself. Here every answer of the three, fast or not,
is held to `normalize_exact`: the E.164 integer, validity and the reason, on
hand-picked traps, on scrub bodies written every way, and on a differential corpus
of a million inputs.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import time
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import phonenumbers
import pytest
from phonenumbers import PhoneMetadata, PhoneNumberFormat, PhoneNumberType

from registry import digit_automata, fastnumbers, number_metadata, parse_machines
from registry import numbers as nums
from registry.api.errors import ApiError
from registry.api.scrub import PlainLines, parse_plain
from registry.machine_cache import MachineCache

FORMATS = (
    PhoneNumberFormat.E164,
    PhoneNumberFormat.NATIONAL,
    PhoneNumberFormat.INTERNATIONAL,
    PhoneNumberFormat.RFC3966,
)
READ_AGAINST = ("US", "CN", "GB", "IN", "DE")
SEPARATORS = " -.()"
Answer = tuple[int, str | None]


def exact(texts: Sequence[str], region: str) -> list[Answer]:
    """The reference: phonenumbers itself, one input at a time."""
    return [nums.normalize_exact(text, region) for text in texts]


def answers(texts: list[str], region: str) -> list[Answer]:
    numbers, reasons = nums.normalize_many(texts, region)
    return list(zip(numbers.tolist(), reasons, strict=True))


def one_by_one(texts: list[str], region: str) -> list[Answer]:
    return [nums.normalize(text, region) for text in texts]


def line_answers(
    buffer: np.ndarray, starts: np.ndarray, ends: np.ndarray, region: str
) -> list[Answer]:
    numbers, codes = nums.normalize_lines(buffer, starts, ends, region)
    return list(zip(numbers.tolist(), nums.reason_names(codes), strict=True))


def scrub_lines(body: bytes, region: str) -> tuple[list[str], list[Answer]]:
    """The lines of a text/plain scrub body as the API reads them (parse_plain's rules), and
    what normalize_lines answers for them, straight from the body's buffer."""
    source = PlainLines(body, 10**9)
    lines = parse_plain(body, 10**9)
    assert source.texts(0, len(source)) == lines
    return lines, line_answers(source.buf, source.starts, source.ends, region)


def scrub_body(rng: random.Random, texts: Sequence[str]) -> bytes:
    """The texts as a text/plain body, written as clients write one: \\n, \\r\\n or \\r
    line ends, spaces and tabs around a number, blank lines here and there."""
    parts = []
    for text in texts:
        before, after = rng.choice(["", "", " ", "\t", "  "]), rng.choice(["", "", " ", "\t "])
        parts.append(before + text + after + rng.choice(["\n", "\n", "\r\n", "\r"]))
        if rng.random() < 0.02:
            parts.append(rng.choice(["\n", " \n", "\r\n", "\t\r"]))
    return "".join(parts).encode()


def fast_share(texts: list[str], region: str) -> float:
    _, verdicts = fastnumbers.classify(texts, region)
    return float((verdicts != fastnumbers.UNDECIDED).mean())


def walked(text: str, region: str) -> bool:
    """Whether `normalize` answers without phonenumbers."""
    return fastnumbers.classify_one(text, region)[1] != fastnumbers.UNDECIDED


# -- hand-picked traps ------------------------------------------------------------------------

TRAPS = [
    # NANP: the trunk prefix 1, the country code without '+', the IDD 011, other NANP regions
    ("(212) 555-1234", "US"),
    ("1-212-555-1234", "US"),
    ("1 (212) 555-1234", "US"),
    ("12125551234", "US"),
    ("11 212 555 1234", "US"),
    ("+1 212 555 1234", "US"),
    ("011 44 20 7946 0958", "US"),
    ("011 1 212 555 1234", "US"),
    ("(416) 555-0123", "CA"),
    ("416 234 5678", "US"),
    ("+1 268 464 1234", "US"),
    ("464 1234", "AG"),
    ("1 268 464 1234", "AG"),
    ("800 253 0000", "US"),
    ("+1 800 253 0000", "GB"),
    # +7: Russia and Kazakhstan share it, told apart by leading digits; trunk prefix 8
    ("+7 495 123-45-67", "US"),
    ("+7 701 123 4567", "US"),
    ("8 (495) 123-45-67", "RU"),
    ("8 701 123 4567", "KZ"),
    ("8 701 123 4567", "RU"),
    ("7 495 123 4567", "RU"),
    ("810 1 212 555 1234", "RU"),
    # +44 with Guernsey, Jersey and the Isle of Man; the (0) people write in it
    ("+44 1481 256789", "US"),
    ("+44 1534 456789", "US"),
    ("+44 1624 456789", "US"),
    ("+44 7781 123456", "US"),
    ("01481 256789", "GG"),
    ("01481 256789", "GB"),
    ("256789", "GG"),
    ("+44 (0) 20 7946 0958", "US"),
    ("020 7946 0958", "GB"),
    ("44 20 7946 0958", "GB"),
    ("0044 20 7946 0958", "GB"),
    ("180020 20 7946 0958", "GB"),
    # Italy keeps its leading zero
    ("+39 06 6982 1234", "US"),
    ("06 6982 1234", "IT"),
    ("+39 312 345 6789", "US"),
    ("39 06 6982 1234", "IT"),
    # Argentina: mobile 9, and the national 0 ... 15 form rewritten by a transform rule
    ("+54 9 11 2345 6789", "US"),
    ("+54 11 2345-6789", "US"),
    ("011 15 2345-6789", "AR"),
    ("011 2345-6789", "AR"),
    ("9 11 2345 6789", "AR"),
    # Mexico and its retired prefixes
    ("+52 55 1234 5678", "US"),
    ("55 1234 5678", "MX"),
    ("044 55 1234 5678", "MX"),
    ("01 55 1234 5678", "MX"),
    ("+52 1 55 1234 5678", "US"),
    # China: a carrier code before the number, Beijing's leading 0
    ("010 1234 5678", "CN"),
    ("17951 13800138000", "CN"),
    ("13800138000", "CN"),
    ("86 138 0013 8000", "CN"),
    # Brazil: carrier codes and a transform rule
    ("(11) 96123-4567", "BR"),
    ("0 21 11 96123-4567", "BR"),
    ("+55 11 96123-4567", "US"),
    # extensions and second numbers: not the fast path's shape
    ("+1 212 555 1234 ext. 56", "US"),
    ("212-555-1234 x12", "US"),
    ("(212) 555-1234;ext=5", "US"),
    ("212-555-1234 / x 13", "US"),
    ("212-555-1234#", "US"),
    # full-width and other non-ASCII digits
    ("\uff0b\uff11\uff12\uff11\uff12\uff15\uff15\uff15\uff11\uff12\uff13\uff14", "US"),
    ("\uff08\uff12\uff11\uff12\uff09 555-1234", "US"),
    ("\u0662\u0661\u0662\u0665\u0665\u0665\u0661\u0662\u0663\u0664", "US"),
    ("+1 212 555 1234\u00a0", "US"),
    # RFC 3966
    ("tel:+1-212-555-1234", "US"),
    ("TEL:+1-212-555-1234", "US"),
    ("tel:+44-20-7946-0958", "US"),
    ("tel:212-555-1234;phone-context=+1", "US"),
    ("tel:+1-212-555-1234;isub=12", "US"),
    # '+' in odd places, junk around, lengths at the edges
    ("++1 212 555 1234", "US"),
    ("212+555+1234", "US"),
    ("2125551234+", "US"),
    ("(+1) 212 555 1234", "US"),
    ("+ 1 212 555 1234", "US"),
    ("-- 212 555 1234 --", "US"),
    ("+0 212 555 1234", "US"),
    ("+999 1234567", "US"),
    ("+12", "US"),
    ("12", "US"),
    ("+1 2", "US"),
    ("+1" + "2" * 17, "US"),
    ("+49 30 1234567890123", "US"),
    ("2" * 19, "US"),
    (" " * 30 + "+1 212 555 1234", "US"),
    ("+1 212 555 1234".ljust(250), "US"),
    ("+1 212 555 1234".ljust(251), "US"),
    ("", "US"),
    ("   ", "US"),
    # national input against regions without a national machine, or none at all
    ("(212) 555-1234", "ZZ"),
    ("+1 212 555 1234", "ZZ"),
    ("+800 1234 5678", "001"),
]


def test_traps_agree_with_phonenumbers_on_every_path() -> None:
    by_region: dict[str, list[str]] = defaultdict(list)
    for text, region in TRAPS:
        by_region[region].append(text)
    for region, texts in by_region.items():
        assert answers(texts, region) == exact(texts, region), region
        assert one_by_one(texts, region) == exact(texts, region), region
        lines, got = scrub_lines("\n".join(texts).encode(), region)
        assert got == exact(lines, region), region


@pytest.mark.parametrize(
    ("text", "region"),
    [
        ("+12125551234", "US"),
        ("(212) 555-1234", "US"),
        ("212.555.1234", "US"),
        ("212-555-1234", "US"),
        ("2125551234", "US"),
        ("1-212-555-1234", "US"),
        ("+1 212-555-1234", "US"),
        ("tel:+1-212-555-1234", "US"),
        ("011 44 20 7946 0958", "US"),  # after an international prefix, read as '+' input
        ("0044 20 7946 0958", "GB"),
        ("020 7946 0958", "GB"),
        ("010 1234 5678", "CN"),
        ("+1 123 555 1234", "US"),  # certainly invalid: the fast path gives the reason too
        ("+1212555", "US"),
    ],
)
def test_the_hot_shapes_take_the_fast_path(text: str, region: str) -> None:
    assert fast_share([text], region) == 1.0
    assert walked(text, region)  # the batch built the machines the walk needs
    assert answers([text], region) == exact([text], region)
    assert one_by_one([text], region) == exact([text], region)
    assert scrub_lines(text.encode(), region)[1] == exact([text], region)


@pytest.mark.parametrize(
    ("text", "region"),
    [
        ("\uff0b\uff11\uff12\uff11\uff12\uff15\uff15\uff15\uff11\uff12\uff13\uff14", "US"),
        ("212-555-1234 x12", "US"),
        ("tel:212-555-1234;phone-context=+1", "US"),
        ("011 15 2345-6789", "AR"),  # rewritten by a transform rule
        ("2125551234+", "US"),
        ("", "US"),
    ],
)
def test_what_the_fast_path_cannot_be_sure_of_goes_to_phonenumbers(text: str, region: str) -> None:
    assert fast_share([text], region) == 0.0
    assert not walked(text, region)
    assert answers([text], region) == exact([text], region)
    assert one_by_one([text], region) == exact([text], region)


def test_a_batch_mixing_country_codes_builds_what_it_needs() -> None:
    texts = ["+86 138 0013 8000", "+7 701 123 4567", "+230 5251 2345", "(212) 555-1234"] * 3
    assert answers(texts, "US") == exact(texts, "US")


def test_one_input_never_waits_for_a_machine_to_be_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastnumbers, "_tables", fastnumbers._Tables())
    texts = ["(212) 555-1234", "+44 20 7946 0958"]
    assert not walked(texts[0], "US")  # phonenumbers answers it, without a build in between
    assert one_by_one(texts, "US") == exact(texts, "US")
    fastnumbers.warm("US")
    assert walked(texts[0], "US")
    assert not walked(texts[1], "US")  # +44's machine is not built yet
    fastnumbers.classify(texts, "US")
    assert walked(texts[1], "US")
    assert one_by_one(texts, "US") == exact(texts, "US")


def test_reason_codes_name_the_reasons() -> None:
    texts = [
        "(212) 555-1234",
        "",
        "junk",
        "+999 1234567",
        "+12",
        "+1" + "2" * 17,
        "+1 123 555 1234",
    ]
    numbers, codes = nums.normalize_codes(texts, "US")
    assert codes.dtype == np.int8
    assert nums.REASONS[0] is None
    assert list(zip(numbers.tolist(), nums.reason_names(codes), strict=True)) == exact(texts, "US")
    assert answers(texts, "US") == exact(texts, "US")


# -- the lines of a buffer ----------------------------------------------------------------------

LINES = ["+12125551234", "(212) 555-1234", "2125551234", "tel:+1-212-555-1234", "+1 123 555 1234"]


def packed(texts: Sequence[str], gaps: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The texts in one buffer, each followed by so many bytes of '9' (no separators)."""
    body, starts, ends = b"", [], []
    for text, gap in zip(texts, gaps, strict=True):
        starts.append(len(body))
        body += text.encode()
        ends.append(len(body))
        body += b"9" * gap
    return np.frombuffer(body, dtype=np.uint8), np.array(starts), np.array(ends)


@pytest.mark.parametrize(
    "layout",
    ["one shape at a fixed step", "one shape, uneven gaps", "mixed shapes", "no gaps at all"],
)
def test_lines_read_only_their_own_bytes_in_any_layout(layout: str) -> None:
    rng = random.Random(layout)
    count = 3000
    shapes = LINES[:1] if layout.startswith("one shape") else LINES
    texts = [rng.choice(shapes).replace("555", f"{rng.randrange(200, 999)}") for _ in range(count)]
    gaps = {
        "one shape at a fixed step": [1] * count,
        "one shape, uneven gaps": [rng.randrange(3) for _ in range(count)],
        "mixed shapes": [rng.randrange(1, 4) for _ in range(count)],
        "no gaps at all": [0] * count,
    }[layout]
    buffer, starts, ends = packed(texts, gaps)
    expected = exact(texts, "US")
    assert line_answers(buffer, starts, ends, "US") == expected
    shuffled = rng.sample(range(count), count)  # any order, and bounds of any integer type
    got = line_answers(
        buffer, starts[shuffled].astype(np.int32), ends[shuffled].astype(np.int32), "US"
    )
    assert got == [expected[i] for i in shuffled]


def test_lines_can_overlap_repeat_or_be_empty() -> None:
    buffer, _, _ = packed(["+12125551234(212) 555-1234"], [0])
    starts = np.array([0, 0, 12, 0, 5, 26, 12])
    ends = np.array([12, 12, 26, 26, 12, 26, 26])
    texts = [buffer[a:b].tobytes().decode() for a, b in zip(starts, ends, strict=True)]
    assert line_answers(buffer, starts, ends, "US") == exact(texts, "US")
    assert line_answers(buffer, starts[:0], ends[:0], "US") == []


def test_lines_beyond_ascii_are_read_as_utf8() -> None:
    texts = [
        "\uff0b\uff11\uff12\uff11\uff12\uff15\uff15\uff15\uff11\uff12\uff13\uff14",
        "\u0662\u0661\u0662\u0665\u0665\u0665\u0661\u0662\u0663\u0664",
        "+1 212 555 1234\u00a0x",
        "\U0001f4de 212 555 1234",
        "212\u2013555\u20131234",
        "(212) 555-1234",
    ]
    buffer, starts, ends = packed(texts, [1] * len(texts))
    assert line_answers(buffer, starts, ends, "US") == exact(texts, "US")
    body = "\ufeff" + "\r\n".join(f"\u3000{text} " for text in texts)  # a BOM, Unicode spaces
    lines, got = scrub_lines(body.encode(), "US")
    assert len(lines) == len(texts)
    assert got == exact(lines, "US")


def test_a_line_that_is_not_utf8_is_refused_as_decoding_it_would_be() -> None:
    body = b"(212) 555-1234\n\xff212 555 1234\n+1 212 555 \xc3\n"
    with pytest.raises(ApiError) as refused:  # the scrub refuses the body, as before
        PlainLines(body, 10**9)
    assert refused.value.status == 400
    buffer = np.frombuffer(body, dtype=np.uint8)
    starts, ends = np.array([0, 15, 28]), np.array([14, 27, 41])
    for a, b in zip(starts[1:], ends[1:], strict=True):
        with pytest.raises(UnicodeDecodeError):
            body[a:b].decode()
        with pytest.raises(UnicodeDecodeError):
            nums.normalize_lines(buffer, np.array([0, a]), np.array([14, b]), "US")
    assert line_answers(buffer, starts[:1], ends[:1], "US") == exact(["(212) 555-1234"], "US")


def test_metadata_beyond_the_compiled_regex_subset_is_left_to_phonenumbers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unsupported(country_code: int) -> None:
        raise digit_automata.UnsupportedPattern("a future metadata regex")

    monkeypatch.setattr(number_metadata, "valid_nsn", unsupported)
    monkeypatch.setattr(parse_machines, "cache", MachineCache(None))  # kept machines: none
    monkeypatch.setattr(fastnumbers, "_tables", fastnumbers._Tables())
    texts = ["(212) 555-1234", "+44 20 7946 0958", "junk"]
    try:
        parse_machines.national_machine.cache_clear()
        parse_machines.international_machine.cache_clear()
        assert fast_share(texts, "US") == 0.0
        assert not any(walked(text, "US") for text in texts)
        assert answers(texts, "US") == exact(texts, "US")
        assert one_by_one(texts, "US") == exact(texts, "US")
    finally:
        parse_machines.national_machine.cache_clear()
        parse_machines.international_machine.cache_clear()


# -- the differential corpus --------------------------------------------------------------------

CORPUS_SIZE = 1_000_000


def examples() -> list[tuple[phonenumbers.PhoneNumber, str]]:
    """Every example number phonenumbers has, with the region it belongs to ('001' non-geo)."""
    found = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in PhoneNumberType.values():
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                found.append((number, region))
    for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        metadata = PhoneMetadata.metadata_for_nongeo_region(code)
        for name in ("general_desc", "toll_free", "premium_rate", "shared_cost", "voip", "uan"):
            desc = getattr(metadata, name)
            if desc is not None and desc.example_number:
                found.append((phonenumbers.parse(f"+{code}{desc.example_number}"), "001"))
    return found


def mutate(rng: random.Random, text: str) -> str:
    """A digit changed, added or removed, separators reshuffled, or a prefix put in front."""
    spots = [i for i, ch in enumerate(text) if ch.isdigit()] or [0]
    spot = rng.choice(spots)
    digit = rng.choice("0123456789")
    choice = rng.randrange(7)
    if choice == 0:
        return text[:spot] + digit + text[spot + 1 :]
    if choice == 1:
        return text[:spot] + digit + text[spot:]
    if choice == 2:
        return text[:spot] + text[spot + 1 :]
    if choice == 3:
        return "".join(rng.choice(SEPARATORS) if ch in SEPARATORS else ch for ch in text)
    if choice == 4:
        bare = [ch for ch in text if ch not in SEPARATORS]
        for _ in range(rng.randint(0, 4)):
            bare.insert(rng.randint(1, max(1, len(bare))), rng.choice(SEPARATORS))
        return "".join(bare)
    if choice == 5:
        return rng.choice(["0", "1", "8", "00", "011", "+", "+0", "06", "9"]) + text
    return text.replace("+", "", 1) if "+" in text else "+" + text


def us_shapes(rng: random.Random) -> str:
    npa, nxx, line = rng.randint(200, 999), rng.randint(200, 999), f"{rng.randrange(10000):04d}"
    return rng.choice(
        [
            f"+1{npa}{nxx}{line}",
            f"({npa}) {nxx}-{line}",
            f"{npa}.{nxx}.{line}",
            f"{npa}-{nxx}-{line}",
            f"{npa}{nxx}{line}",
            f"1-{npa}-{nxx}-{line}",
            f"1{npa}{nxx}{line}",
            f"+1 {npa}-{nxx}-{line}",
            f"tel:+1-{npa}-{nxx}-{line}",
        ]
    )


JUNK = "abcxyzEXT#*;:/,\t\n\u00a0\uff11\uff12\u0661\U0001f4de\u4e2d" + SEPARATORS + "0123456789+"


def junk(rng: random.Random) -> str:
    shape = rng.randrange(5)
    if shape == 0:
        return rng.choice(["", " ", "\t", "\n", "  \n ", "+", "()", "tel:", "-"])
    if shape == 1:
        return "".join(rng.choice(JUNK) for _ in range(rng.randint(1, 30)))
    if shape == 2:
        return "".join(rng.choice("0123456789 -") for _ in range(rng.randint(30, 300)))
    if shape == 3:
        return rng.choice(["call me", "STOP", "n/a", "none", "\U0001f4de 212 555 1234"])
    return "".join(rng.choice(JUNK) for _ in range(rng.randint(1, 8))) + us_shapes(rng)


def differential_corpus(
    seed: int, size: int, regions: Sequence[str] | None = None
) -> list[tuple[str, str]]:
    """Every example in every format, random digits, US shapes, junk, and examples changed
    a little. With `regions`, a sample read against those only: building the machines
    of every region takes seconds."""
    rng = random.Random(seed)
    formatted = []
    for number, own in examples():
        for fmt in FORMATS:
            text = phonenumbers.format_number(number, fmt)
            formatted += [(text, region) for region in (own, *READ_AGAINST)]
    if regions is None:
        regions = sorted(phonenumbers.SUPPORTED_REGIONS)
        corpus = list(formatted)
    else:
        formatted = [(text, region) for text, region in formatted if region in regions]
        corpus = rng.sample(formatted, size // 4)
    for _ in range(size // 5):  # random digit strings, with and without '+'
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 17)))
        region = rng.choice(READ_AGAINST) if rng.random() < 0.5 else rng.choice(regions)
        corpus.append((rng.choice(["", "+"]) + digits, region))
    corpus += [(us_shapes(rng), "US") for _ in range(size // 5)]
    corpus += [(junk(rng), rng.choice(READ_AGAINST)) for _ in range(size // 20)]
    while len(corpus) < size:  # the rest: examples, changed a little
        text, region = rng.choice(formatted)
        for _ in range(rng.choice([1, 1, 1, 2])):
            text = mutate(rng, text)
        corpus.append((text, region))
    return corpus[:size]


def _reference(pairs: list[tuple[str, str]]) -> list[Answer]:
    return [nums.normalize_exact(text, region) for text, region in pairs]


def by_region(corpus: list[tuple[str, str]]) -> dict[str, list[int]]:
    rows: dict[str, list[int]] = defaultdict(list)
    for i, (_, region) in enumerate(corpus):
        rows[region].append(i)
    return rows


def lines_disagreeing(
    corpus: list[tuple[str, str]], expected: list[Answer], seed: int
) -> tuple[int, list[tuple[str, str, Answer, Answer]]]:
    """The corpus as scrub bodies, one per region and per PlainLines branch (plain ASCII
    or not), through normalize_lines; the lines whose answer is not phonenumbers'."""
    rng = random.Random(seed)
    known = {(corpus[i][0], corpus[i][1]): answer for i, answer in enumerate(expected)}
    count, wrong = 0, []
    for region, rows in by_region(corpus).items():
        texts = [corpus[i][0] for i in rows]
        for plain in (True, False):
            body = scrub_body(rng, [t for t in texts if (t.isascii() and t.isprintable()) == plain])
            lines, got = scrub_lines(body, region)
            count += len(lines)
            for line, answer in zip(lines, got, strict=True):
                want = known.get((line, region)) or nums.normalize_exact(line, region)
                if answer != want:
                    wrong.append((line, region, answer, want))
    return count, wrong


def test_every_path_agrees_with_phonenumbers_on_a_smaller_corpus() -> None:
    corpus = differential_corpus(seed=20240602, size=20_000, regions=READ_AGAINST)
    expected = _reference(corpus)
    for region, rows in by_region(corpus).items():
        texts = [corpus[i][0] for i in rows]
        assert answers(texts, region) == [expected[i] for i in rows], region
        assert one_by_one(texts, region) == [expected[i] for i in rows], region
    lines, wrong = lines_disagreeing(corpus, expected, seed=2)
    assert lines > 0.95 * len(corpus)
    assert not wrong, f"{len(wrong)} disagreements, e.g. {wrong[:5]}"
    walks = sum(walked(text, region) for text, region in corpus)
    assert walks / len(corpus) > 0.6


@pytest.mark.slow
def test_normalize_many_agrees_with_phonenumbers_on_a_million_inputs() -> None:
    """And so do normalize_lines, on the corpus written as scrub bodies, and normalize."""
    began = time.perf_counter()
    corpus = differential_corpus(seed=20240601, size=CORPUS_SIZE)
    assert len(corpus) == CORPUS_SIZE
    # The reference, one input at a time, in worker processes while this one runs the batches.
    step = 20_000
    pieces = [corpus[i : i + step] for i in range(0, len(corpus), step)]
    with multiprocessing.get_context("fork").Pool(max(1, os.cpu_count() or 1)) as pool:
        pending = pool.map_async(_reference, pieces)
        got: list[Answer] = [(0, None)] * len(corpus)
        decided = 0
        for region, rows in by_region(corpus).items():
            texts = [corpus[i][0] for i in rows]
            _, verdicts = fastnumbers.classify(texts, region)
            decided += int((verdicts != fastnumbers.UNDECIDED).sum())
            for i, answer in zip(rows, answers(texts, region), strict=True):
                got[i] = answer
        expected = [answer for piece in pending.get() for answer in piece]

    wrong = [(corpus[i], got[i], expected[i]) for i in range(len(corpus)) if got[i] != expected[i]]
    assert not wrong, f"{len(wrong)} disagreements, e.g. {wrong[:5]}"
    valid = sum(1 for value, _ in expected if value)
    # Every machine is built by now: the walk of one input takes its share.
    walks = sum(walked(text, region) for text, region in corpus)
    one = [nums.normalize(text, region) for text, region in corpus]
    wrong = [(corpus[i], one[i], expected[i]) for i in range(len(corpus)) if one[i] != expected[i]]
    assert not wrong, f"normalize: {len(wrong)} disagreements, e.g. {wrong[:5]}"
    lines, wrong_lines = lines_disagreeing(corpus, expected, seed=20240601)
    assert not wrong_lines, f"normalize_lines: {len(wrong_lines)} disagreements, {wrong_lines[:5]}"
    print(
        f"\ndifferential corpus: {len(corpus)} inputs, {valid} valid, "
        f"{decided} ({decided / len(corpus):.1%}) answered by the fast path, "
        f"{walks} ({walks / len(corpus):.1%}) by the walk of one input; "
        f"{lines} scrub lines; {time.perf_counter() - began:.0f} s"
    )
    # The corpus must exercise both answers, and the fast path must carry most of it.
    assert 0.2 < valid / len(corpus) < 0.8
    assert decided / len(corpus) > 0.6
    assert walks / len(corpus) > 0.6
    assert lines > 0.95 * len(corpus)

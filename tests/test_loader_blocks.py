"""FTC and E.164 files read in blocks (loader.blocks) against the per-line path.

The block path must be invisible: for every file, cut into blocks of any size,
`Source.chunks` gives the numbers, the rejects (line, input, reason) and the
counts that `Source.records` and one `normalize` give, line by line. The files
mix conforming lines with every odd line we could think of. Pure parsing: no Redis.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from loader import blocks
from loader.formats import Source, normalize, open_source

Outcome = tuple[list[int], list[tuple[int, str, str | None]], int]

FTC_ODD = [
    b"",
    b"   ",
    b"\t",
    b"\r",
    b" 212,5551234 ",
    b"\t415,5552671",
    b"212,5551234\r\r",
    b"212,5551234\x0c",
    b"212,5551234\xc2\xa0",  # a no-break space, which str.strip drops
    b"000,5551234",
    b"123,5551234",
    b"199,5551234",
    b"212,0551234",
    b"212,1551234",
    b"212,555123",
    b"212,55512345",
    b"212 ,5551234",
    b"212, 5551234",
    b"212,555,1234",
    b",2125551234",
    b"2125551234,",
    b"2125551234",
    b"1212,5551234",
    b"12,5551234",
    b"abc,defghij",
    b"212,555123a",
    b"212;5551234",
    b"\xff\xfe212,5551234",
    b"21\xff,5551234",
    b"\xef\xbb\xbf212,5551234",  # a BOM that is not on line 1
    "２１２,５５５１２３４".encode(),  # full-width digits, which phonenumbers reads
    b"+12125551234",
    b"800,5551234",
    b"911,5551234",
    b"9" * 5000,
    b"212," + b"5" * 3000,
]

E164_ODD = [
    b"",
    b"  ",
    b"\r",
    b" +12125551234",
    b"+12125551234 ",
    b"+12125551234\r\r",
    b"+1 212 555 1234",
    b"(212) 555-1234",
    b"212.555.1236",
    b"tel:+12125551234",
    b"+1212555123x",
    b"++12125551234",
    b"+12125551234+",
    b"+",
    b"+1",
    b"+0123",
    b"+0012125551234",
    b"+99912345",
    b"+1234567890123456",
    b"+123456789012345",
    b"+12345678901234567890",
    b"0",
    b"00",
    b"011442079460958",
    b"0012125551234",
    b"12125551234",
    b"2125551234",
    b"2120001234",
    b"02079460958",
    b"+442079460958",
    b"+861012345678",
    b"+8001234567",
    b"+80012345678",
    b"+3912345",
    b"+390612345678",
    b"+2125551234",
    b"\xff\xfe2125551235",
    b"+1212555\xff1234",
    "+１２１２５５５１２３４".encode(),
    b"hello",
    b"+12125551234,Ann",
    b"1" * 4000,
]


# Lines holding a NUL byte, which go last: in a file's first 8 KiB one marks it binary.
NUL_LINES = [
    b"\x00",
    b"+12125571000\x00",
    b"\x00+12125571001",
    b"212,5571002\x00",
    b"\x00212,5571003",
    b"212,557\x001004",
    b" \x00 ",
]


def ftc_line(rng: random.Random, valid: bool) -> bytes:
    """`ddd,ddddddd`: from area codes that are valid for any exchange 200-999, or any digits."""
    if valid:
        area, local = rng.choice((202, 212, 415, 617, 718)), rng.randrange(2_000_000, 10_000_000)
    else:
        area, local = rng.randrange(1000), rng.randrange(10_000_000)
    return b"%03d,%07d" % (area, local)


def e164_line(rng: random.Random) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:  # +1 and ten digits, mostly valid
        return b"+1%d%07d" % (rng.choice((202, 212, 415, 2, 911)), rng.randrange(10_000_000))
    digits = "".join(rng.choice("0123456789") for _ in range(rng.randrange(1, 18)))
    if kind == 1:  # '+' and any digits
        return b"+" + digits.encode()
    if kind == 2:  # national digits
        return digits.encode()
    return b"+44%d" % rng.randrange(10**9, 10**10)


def mixed_file(path: Path, fmt: str, seed: int, lines: int = 1500) -> Path:
    """Conforming lines, random lines and every odd line, with mixed endings; on some
    seeds a BOM first and no newline after the last line."""
    rng = random.Random(seed)
    odd = FTC_ODD if fmt == "ftc" else E164_ODD
    body = [ftc_line(rng, valid=True) if fmt == "ftc" else b"+12125550100"]  # what auto reads
    for _ in range(lines):
        pick = rng.random()
        if pick < 0.5:
            body.append(ftc_line(rng, valid=True) if fmt == "ftc" else e164_line(rng))
        elif pick < 0.8:
            body.append(ftc_line(rng, valid=False) if fmt == "ftc" else e164_line(rng))
        else:
            body.append(rng.choice(odd))
    body += odd + NUL_LINES
    endings = [rng.choice((b"\n", b"\n", b"\r\n")) for _ in body]
    content = b"".join(line + end for line, end in zip(body, endings, strict=True))
    if seed % 2:
        content = b"\xef\xbb\xbf" + content.rstrip(b"\r\n")
    path.write_bytes(content)
    return path


def per_line(source: Source, region: str) -> Outcome:
    with source.path.open("rb") as file:
        records = list(source.records(file))
    numbers, invalid = normalize(records, region)
    rows = [(record.line, record.input, record.reason) for record in invalid]
    return sorted(numbers.tolist()), rows, len(records)


def in_blocks(source: Source, region: str, block: int, lines: int) -> Outcome:
    numbers: list[int] = []
    rows: list[tuple[int, str, str | None]] = []
    count, position = 0, 0
    with source.path.open("rb") as file:
        for chunk in source.chunks(file, region, lines, block):
            numbers += chunk.numbers.tolist()
            rows += [(record.line, record.input, record.reason) for record in chunk.invalid]
            count += chunk.lines
            assert chunk.position >= position
            position = chunk.position
    assert position == source.path.stat().st_size
    return sorted(numbers), rows, count


@pytest.mark.parametrize("block", [1, 5, 64, blocks.BLOCK])
@pytest.mark.parametrize(
    ("content", "fmt"), [("ftc", "ftc"), ("e164", "e164"), ("ftc", "auto"), ("e164", "auto")]
)
@pytest.mark.parametrize("seed", [1, 2])
def test_blocks_give_what_the_per_line_path_gives(
    tmp_path: Path, content: str, fmt: str, block: int, seed: int
) -> None:
    source = open_source(mixed_file(tmp_path / "in.txt", content, seed), fmt, None, "US")
    assert source.format == content
    expected = per_line(source, "US")
    assert expected[1], "the file has rejects"
    assert in_blocks(source, "US", block, lines=200_000) == expected
    assert in_blocks(source, "US", block, lines=7) == expected


@pytest.mark.parametrize("region", ["US", "GB", "CN", "DE"])
def test_national_lines_are_read_against_the_region(tmp_path: Path, region: str) -> None:
    source = open_source(mixed_file(tmp_path / "in.txt", "e164", seed=3), "e164", None, "US")
    assert in_blocks(source, region, 4096, lines=200_000) == per_line(source, region)


def test_random_ftc_lines_are_judged_as_phonenumbers_judges_them(tmp_path: Path) -> None:
    rng = random.Random(4)
    lines = [ftc_line(rng, valid=False) for _ in range(20_000)]
    source = Source(tmp_path / "in.txt", "ftc")
    source.path.write_bytes(b"\n".join(lines) + b"\n")
    expected = per_line(source, "US")
    assert 0 < len(expected[1]) < len(lines)
    assert in_blocks(source, "US", blocks.BLOCK, lines=200_000) == expected


def read_all(
    path: Path, fmt: str, size: int, region: str = "US"
) -> tuple[list[int], list[tuple[int, str]], int]:
    """The numbers the block path found, the lines it left, and where it stopped."""
    numbers: list[int] = []
    rest: list[tuple[int, str]] = []
    with path.open("rb") as file:
        for block in blocks.read(file, fmt, region, size):
            numbers += block.numbers.tolist()
            rest += block.rest
    return numbers, rest, block.position


def test_conforming_lines_never_take_the_per_line_path(tmp_path: Path) -> None:
    ftc = tmp_path / "ftc.txt"
    ftc.write_bytes(b"\xef\xbb\xbf212,5551234\r\n415,5552671\n202,2000010")
    found = [12125551234, 14155552671, 12022000010]
    assert read_all(ftc, "ftc", size=5) == (found, [], ftc.stat().st_size)

    e164 = tmp_path / "e164.txt"
    e164.write_bytes(b"+12125551234\r\n+442079460958\n2125551234\n12125551234\n")
    numbers = [12125551234, 442079460958, 12125551234, 12125551234]
    assert read_all(e164, "e164", size=7) == (numbers, [], e164.stat().st_size)


def test_odd_lines_come_back_with_their_line_numbers_as_written(tmp_path: Path) -> None:
    path = tmp_path / "ftc.txt"
    path.write_bytes(b"212,5551234\n\n 212,5551235\r\n000,5551234\n\xff,1\n\r\n415,5552671")
    numbers, rest, _ = read_all(path, "ftc", size=3)
    assert numbers == [12125551234, 14155552671]
    assert rest == [(3, " 212,5551235\r"), (4, "000,5551234"), (5, "\udcff,1")]


@pytest.mark.parametrize("fmt", ["ftc", "e164"])
def test_a_line_holding_a_nul_byte_is_never_taken_for_a_number(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "in.txt"
    path.write_bytes(b"\n".join(NUL_LINES) + b"\n")
    numbers, rest, _ = read_all(path, fmt, size=blocks.BLOCK)
    assert numbers == []
    assert len(rest) == len(NUL_LINES)
    _, rows, _ = per_line(Source(path, fmt), "US")
    assert [reason for _, _, reason in rows] == ["nul_byte"] * len(NUL_LINES)

"""The numpy row machinery gives byte for byte what the str and csv-module paths give."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import numpy as np
import pytest

from registry import numbers as nums
from registry import rows
from registry.api.scrub import parse_plain
from registry.rules import STATUS_NAMES

SHAPES = ["+12125551234", "  (212) 555-1234 \t", "", " ", "x", "+4420{i}", "\t212.555.{i}  "]
ENDS = ["\n", "\r\n", "\r"]


def csv_answer(numbers: np.ndarray, status: np.ndarray, texts: list[str]) -> bytes:
    """The contract's answer rows, `input,number,status`, written by the csv module."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for text, number, code in zip(texts, numbers.tolist(), status.tolist(), strict=True):
        writer.writerow([text, f"+{number}" if number else "", STATUS_NAMES[code]])
    return out.getvalue().encode()


def random_body(seed: int, lines: int = 5_000) -> bytes:
    rng = random.Random(seed)
    parts = [rng.choice(SHAPES).format(i=i) + rng.choice(ENDS) for i in range(lines)]
    if rng.random() < 0.5:
        parts[-1] = parts[-1].rstrip("\r\n")  # no line end after the last line
    return "".join(parts).encode()


@pytest.mark.parametrize("seed", range(8))
def test_split_lines_matches_parse_plain(seed: int) -> None:
    body = random_body(seed)
    buf = np.frombuffer(body, dtype=np.uint8)
    assert rows.is_plain_ascii(buf)
    starts, ends = rows.split_lines(buf)
    lines = [body[a:b].decode() for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
    assert lines == parse_plain(body, 10**9)


def test_split_lines_strips_long_runs_of_blanks() -> None:
    body = (
        "+12125551234\n"
        + " " * 30
        + "(212) 555-1234"
        + "\t" * 20
        + "\n"
        + " " * 100
        + "\n x \n\t\t\t\t\t\t\t\t\t+44 20 7946 0000"
    ).encode()
    buf = np.frombuffer(body, dtype=np.uint8)
    starts, ends = rows.split_lines(buf)
    lines = [body[a:b].decode() for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
    assert lines == parse_plain(body, 10**9)
    assert lines == ["+12125551234", "(212) 555-1234", "x", "+44 20 7946 0000"]


def test_non_ascii_bodies_are_not_plain() -> None:
    bodies = ("+1212\u00a0555\n".encode(), b"12\x0c34\n", "退订\n".encode(), b"\x00", b"1\x7f\n")
    for body in bodies:
        assert not rows.is_plain_ascii(np.frombuffer(body, dtype=np.uint8)), body
    assert rows.is_plain_ascii(np.frombuffer(b" ~\t\r\n", dtype=np.uint8))
    assert rows.is_plain_ascii(np.frombuffer(b"", dtype=np.uint8))


@pytest.mark.parametrize("seed", range(4))
def test_plain_answer_matches_the_csv_module(seed: int) -> None:
    body = random_body(seed)
    buf = rows.padded(body)
    starts, ends = rows.split_lines(buf[: len(body)])
    texts = [body[a:b].decode() for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
    rng = np.random.default_rng(seed)
    numbers = rng.choice(np.array([0, 12125551234, 442071234567, 1, 999999999999999]), len(texts))
    status = np.where(numbers == 0, 2, rng.integers(0, 2, len(texts))).astype(np.int8)
    assert rows.fast_rows(buf, starts, ends).all()
    expected = csv_answer(numbers, status, texts)
    assert rows.plain_answer(buf, starts, ends, rows.digits_matrix(numbers), status) == expected


def test_rows_to_quote_or_too_long_are_not_fast() -> None:
    body = b'a,b\n"q"\nplain\n' + b"9" * (rows.MAX_FAST_INPUT + 1) + b"\n"
    buf = rows.padded(body)
    starts, ends = rows.split_lines(buf[: len(body)])
    assert rows.fast_rows(buf, starts, ends).tolist() == [False, False, True, False]


def test_e164_lines() -> None:
    numbers = np.array([1, 12125551234, 999999999999999, 861012345678], dtype=np.int64)
    expected = "".join(f"+{n}\n" for n in numbers.tolist()).encode()
    assert rows.e164_lines(numbers) == expected
    assert rows.e164_lines(numbers[:0]) == b""
    # One width throughout: the matrix has no padding and is written as it is.
    same_width = np.array([12125551234, 14155552671, 19999999999], dtype=np.int64)
    expected = "".join(f"+{n}\n" for n in same_width.tolist()).encode()
    assert rows.e164_lines(same_width) == expected


@pytest.mark.parametrize("end", ["\n", ""])
@pytest.mark.parametrize("invalid_share", [0.0, 0.3])
def test_plain_answer_when_every_number_has_the_same_width(invalid_share: float, end: str) -> None:
    """One country's numbers take the matrix's narrow path (and, all valid, the body's own
    bytes as the input column); invalid rows stay blank."""
    rng = np.random.default_rng(7)
    numbers = rng.integers(12012000000, 19899999999, 3000)
    numbers[rng.random(3000) < invalid_share] = 0
    texts = [f"+{n}" if n else "junk" for n in numbers.tolist()]
    body = ("\n".join(texts) + end).encode()
    buf = rows.padded(body)
    starts, ends = rows.split_lines(buf[: len(body)])
    status = np.where(numbers == 0, 2, rng.integers(0, 2, len(texts))).astype(np.int8)
    expected = csv_answer(numbers, status, texts)
    assert rows.plain_answer(buf, starts, ends, rows.digits_matrix(numbers), status) == expected
    valid = numbers[numbers != 0]
    assert rows.e164_lines(valid) == "".join(f"+{n}\n" for n in valid.tolist()).encode()


def test_csv_rows_fit_their_header() -> None:
    fitted = rows.fit_to_header([["a"], ["a", "b", ""], ["a", "b", " ", ""]], 2)
    assert fitted == [["a", ""], ["a", "b"], ["a", "b"]]
    with pytest.raises(rows.RowTooWide) as caught:
        rows.fit_to_header([["a", "b"], ["a", "b", "c"]], 2)
    assert (caught.value.row, caught.value.cells, caught.value.columns) == (2, 3, 2)


def test_dnc_scrub_refuses_a_csv_row_wider_than_its_header(tmp_path: Path) -> None:
    from registry.scrub_client import BadInput, read_list

    path = tmp_path / "list.csv"
    path.write_text("name,phone\nAnn,+12125550001,extra\n")
    with pytest.raises(BadInput, match="data row 1 has 3 cells"):
        read_list(path, "csv", None, "US")


def _normalized(body: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A body's padded buffer, line bounds, numbers and canonical flags, as a scrub reads them."""
    buf = rows.padded(body)
    starts, ends = rows.split_lines(buf[: len(body)])
    canonical = np.zeros(len(starts), dtype=bool)
    numbers, _ = nums.normalize_lines(buf, starts, ends, "US", canonical)
    return buf, starts, ends, numbers, canonical


@pytest.mark.parametrize("end", ["\n", ""])
@pytest.mark.parametrize("invalid_share", [0.0, 0.2])
def test_an_e164_list_gives_its_own_lines_as_the_digits(invalid_share: float, end: str) -> None:
    """The scrub's digits for a list in E.164 are its lines, and exactly digits_matrix."""
    rng = np.random.default_rng(11)
    drawn = [f"+{n}" for n in rng.integers(12012000000, 19899999999, 20_000).tolist()]
    texts = [t for t, n in zip(drawn, nums.normalize_many(drawn, "US")[0], strict=True) if n][:5000]
    assert len(texts) == 5000
    for i in np.flatnonzero(rng.random(5000) < invalid_share).tolist():
        texts[i] = "+1000555" + texts[i][-4:]  # same width, no valid area code
    buf, starts, ends, found, canonical = _normalized(("\n".join(texts) + end).encode())
    assert (found == 0).any() == (invalid_share > 0)
    assert canonical.tolist() == (found != 0).tolist()
    written = rows.written_digits(buf, starts, ends, found, canonical)
    assert written is not None
    assert np.array_equal(written, rows.digits_matrix(found))
    lines = rows.written_lines(buf, starts, ends)
    assert lines is not None
    if invalid_share == 0:  # the receipt's checksum reads them as they stand
        assert lines.tobytes() + b"\n" == rows.digit_lines(written)


@pytest.mark.parametrize(
    "lines",
    [
        ["(212) 555-1234", "(415) 555-2671"],  # national forms: not the E.164 digits
        ["+12125551234", "+1 4155552671"],  # one line with a space
        ["+12125551234", "+14155552671", "+442071234567"],  # two widths
        ["tel:+12125551234", "tel:+14155552671"],
        ["+12125551234\r", "+14155552671\r"],  # \r\n line ends: two bytes apart
        ["junk", "+1000"],  # nothing valid
    ],
)
def test_other_lists_get_their_digits_made(lines: list[str]) -> None:
    buf, starts, ends, found, canonical = _normalized("\n".join(lines).encode())
    assert rows.written_digits(buf, starts, ends, found, canonical) is None


@pytest.mark.parametrize(
    "body", [b"+12125551234\r\n+14155552671\r\n", b"+1212555\r+1415555\n+1617555\n"]
)
def test_lines_not_one_line_feed_apart_are_not_written_lines(body: bytes) -> None:
    buf = rows.padded(body)
    starts, ends = rows.split_lines(buf[: len(body)])
    assert rows.written_lines(buf, starts, ends) is None


def test_a_number_whose_e164_form_differs_is_not_written_as_it() -> None:
    """'+44 0...': phonenumbers drops the national prefix, so the line is not the E.164."""
    buf, starts, ends, found, canonical = _normalized(b"+4402071234567\n+4402079460000\n")
    assert found.tolist() == [442071234567, 442079460000]
    assert not canonical.any()
    assert rows.written_digits(buf, starts, ends, found, canonical) is None


def test_digits_matrix_holds_numbers_of_every_length_up_to_nineteen_digits() -> None:
    rng = np.random.default_rng(5)
    values = [int(rng.integers(10 ** (d - 1), 10**d)) for d in range(1, 19) for _ in range(3)]
    values += [6200180312345678901, 8100371234567890123, 49914776980492687, 0]
    matrix = rows.digits_matrix(np.array(values, dtype=np.int64))
    got = [bytes(row).lstrip(b"\0").decode() for row in matrix]
    assert got == [f"+{v}" if v else "" for v in values]
    # One width throughout: no padding, the matrix just that wide.
    same = rows.digits_matrix(np.array([49914776980492687, 49914776980492688], dtype=np.int64))
    assert [bytes(row) for row in same] == [b"+49914776980492687", b"+49914776980492688"]

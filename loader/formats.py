"""The input formats of `dnc load`: telling them apart and reading them in chunks.

Every format turns a file into records: the line number, the input as the file
wrote it, and the text to normalize (or, for a line that cannot be a number at
all, the reason). Lines are read as bytes and decoded one at a time, so a line
of junk in a 10-million-line file is one reject, not a crash.

That is the exact path, and CSV files take it. FTC and E.164 files are read in
blocks by `loader.blocks`, which judges the lines in the common shapes with numpy
and hands every other line to the same per-line code; `Source.chunks` gives both
kinds as one stream of chunks, and `Source.records` is the per-line path alone.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np

from loader import blocks
from registry import numbers as nums
from registry.rows import RowTooWide
from registry.tables import column_index, header_is_data, no_column, other_separator, unreadable

FORMATS = ("auto", "e164", "ftc", "csv")
# The US National DNC Registry's flat file: area code, comma, seven-digit number.
_FTC_LINE = re.compile(r"\s*\d{3}\s*,\s*\d{7}\s*")
# Git's rule for "binary": a NUL byte near the start. The share of non-text
# characters catches short junk files that happen to have no NUL.
SNIFF_BYTES = 8192
_LINES_BLOCK = 1 << 16  # bytes a read on the per-line path
_MAX_JUNK_SHARE = 0.3
_TEXT_CONTROLS = frozenset("\t\n\r\f\v")
_NO_NUMBERS = np.zeros(0, dtype=np.int64)
_FORMAT_NAMES = {"e164": "one number a line", "ftc": "an FTC flat file (212,5551234)"}
# Reasons of the rejects file beside those of registry.numbers (`empty`, `too_short`, ...).
NUL_BYTE = "nul_byte"  # no list holds one; the library would read `+12125551234\0` as the number
NOT_FTC_LINE = "not_ftc_line"  # in an FTC file, a line that is no `areacode,number`
TOO_MANY_CELLS = "too_many_cells"  # a CSV row with a value past the header's columns
TOO_FEW_CELLS = "too_few_cells"  # a CSV row that ends before the phone column


class LoadError(Exception):
    """An input file that cannot be loaded as a whole: unreadable, binary, a missing column."""


class Record(NamedTuple):
    line: int  # 1-based line number in the file
    input: str  # what the file says, for the rejects file
    text: str  # what to normalize
    reason: str | None  # set when the line is invalid before normalizing


class Chunk(NamedTuple):
    numbers: np.ndarray  # the valid numbers, E.164 digits, repeats kept
    invalid: list[Record]  # with their reasons, in file order
    lines: int  # lines read that held something: valid and invalid together
    position: int  # bytes of the file read so far


@dataclass(frozen=True)
class Source:
    """A file checked and ready to load: its format and, for csv, the phone column."""

    path: Path
    format: str
    column: int = 0

    def chunks(self, file: BinaryIO, region: str, lines: int, block: int) -> Iterator[Chunk]:
        """The file from its start, normalized a chunk at a time: at most `lines`
        records each, or for FTC and E.164 files the lines of `block` bytes."""
        if self.format == "csv":
            records = self.records(file)
            while chunk := list(islice(records, lines)):
                numbers, invalid = normalize(chunk, region)
                yield Chunk(numbers, invalid, len(chunk), file.tell())
            return
        per_line = _ftc_records if self.format == "ftc" else _plain_records
        for piece in blocks.read(file, self.format, region, block):
            fast, records = piece.numbers, per_line(piece.rest)
            while True:  # the block's valid lines, then its other lines, `lines` at a time
                chunk = list(islice(records, lines))
                numbers, invalid = normalize(chunk, region)
                yield Chunk(
                    np.concatenate([fast, numbers]), invalid, len(fast) + len(chunk), piece.position
                )
                if len(chunk) < lines:
                    break
                fast = _NO_NUMBERS

    def records(self, file: BinaryIO) -> Iterator[Record]:
        """Every line that holds something, read and judged one at a time."""
        lines = _lines(file)
        if self.format == "csv":
            return _csv_records(self.path, lines, self.column)
        if self.format == "ftc":
            return _ftc_records(lines)
        return _plain_records(lines)


def normalize(records: list[Record], region: str) -> tuple[np.ndarray, list[Record]]:
    """The valid numbers of some records, and the invalid records with their reasons."""
    if not records:
        return _NO_NUMBERS, []
    numbers, reasons = nums.normalize_many([record.text for record in records], region)
    invalid = [
        record if record.reason else record._replace(reason=reason)
        for record, number, reason in zip(records, numbers.tolist(), reasons, strict=True)
        if record.reason or number == 0
    ]
    return numbers[numbers != 0], invalid


def open_source(path: Path, fmt: str, column: str | None, region: str) -> Source:
    """Check a file before anything is written: readable, text, known format, column there."""
    try:
        with path.open("rb") as file:
            problem = not_text(
                path,
                file.read(SNIFF_BYTES),
                "one number a line, an FTC flat file (212,5551234) or a CSV with a header row",
            )
            if problem:
                raise LoadError(problem)
            file.seek(0)
            first = first_line(file)
            if fmt == "auto":
                file.seek(0)
                # With --column the file is a CSV by the user's word: no sample to overrule it.
                sample = _first_lines(file, SAMPLE_LINES) if column is None else None
                fmt = "e164" if first is None else detect(first, sample)
                if column is not None and fmt != "csv" and first is not None:
                    raise LoadError(
                        f"{path}: --column applies to CSV files only, and this file reads as "
                        f"{_FORMAT_NAMES[fmt]}; drop --column, or give a CSV with a header row"
                    )
            if fmt != "csv" or first is None:
                return Source(path, fmt)
            file.seek(0)
            header = header_row(path, file)
            index = _column_index(path, header, column)
            if data := header_is_data(header, index, region):
                raise LoadError(f"{path}: {data}")
            return Source(path, fmt, index)
    except OSError as exc:
        raise LoadError(f"{path}: cannot read: {exc.strerror or exc}") from None


# Lines `--format auto` reads after the first, for files whose first line is a title.
SAMPLE_LINES = 20


def detect(first_line: str, sample: list[str] | None = None) -> str:
    """`ftc` for `ddd,ddddddd`; `csv` when the first line is a header row; else `e164`.

    `sample`, the file's first lines that hold something (the first of them
    `first_line`), lets a title or comment line before FTC lines (`# DNC list, area
    code 212, 2026-11-01`) not turn every line into a reject: when the first line is
    neither FTC nor a header row (the contract's rule: a header row with a non-numeric
    field is `csv`, whatever follows) and every other line of the sample is FTC, the
    file is FTC, and the first line its one rejected line.

    A header row has a non-numeric field (`phone`, `Number`, `phone_e164`: a letter)
    and no numeric one: `+12125551234,Ann` and `Ann,020 7946 0018` are rows of data,
    so they are not taken for a header and silently skipped. A field is numeric when
    it could be a number written any way: it starts with a digit, `+` or `(`
    (`1-800-FLOWERS` too, but not an ordinal: `2nd_phone` is a name), or holds seven
    digits or more (`tel:+1-212-555-1234`).
    """
    if _FTC_LINE.fullmatch(first_line):
        return "ftc"
    try:
        fields = [f.strip() for f in next(csv.reader([first_line]), []) if f.strip()]
    except csv.Error:  # not a row of a table, whatever else it is
        return "e164"
    numeric = any(_could_be_a_number(f) for f in fields)
    if fields and not numeric and any(c.isalpha() for f in fields for c in f):
        return "csv"
    rest = (sample or [])[1:]
    if rest and all(_FTC_LINE.fullmatch(line) for line in rest):
        return "ftc"
    return "e164"


# How a number written any way can start: a digit, the international `+`, an area code in
# parentheses. (Full-width digits count among a field's seven digits: str.isdigit.)
_NUMBER_STARTS = frozenset("0123456789+(")
# A column name that starts with an ordinal (`2nd_phone`, `1st phone`, `3rd-party`),
# where a number's letters (1-800-FLOWERS) follow a separator.
_ORDINAL = re.compile(r"\d+(st|nd|rd|th)(\b|_)", re.IGNORECASE)


def _could_be_a_number(field: str) -> bool:
    if sum(c.isdigit() for c in field) >= 7:
        return True
    return field[0] in _NUMBER_STARTS and not _ORDINAL.match(field)


def not_text(path: Path, sample: bytes, what: str) -> str | None:
    """Why a file whose first bytes are `sample` is no list to read, if it is none: the
    common cases named, so the fix is plain. `what` says what to send instead."""
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        return f'{path}: UTF-16 text (Windows\' "Unicode"); save it as UTF-8 and try again'
    if sample.startswith(b"\x1f\x8b"):
        return f"{path}: gzip-compressed; gunzip it first"
    if sample.startswith(b"PK\x03\x04"):
        return f"{path}: a zip file (a spreadsheet?); export the list as CSV or text first"
    if is_binary(sample):
        return f"{path}: binary content, not a list of numbers; send UTF-8 text: {what}"
    return None


def is_binary(sample: bytes) -> bool:
    """Whether a file's first bytes are not text; `dnc scrub` asks too."""
    text = sample.decode("utf-8", "replace")
    junk = sum(1 for c in text if c == "\ufffd" or (c < " " and c not in _TEXT_CONTROLS))
    return b"\0" in sample or junk > _MAX_JUNK_SHARE * len(text)


def _lines(file: BinaryIO) -> Iterator[tuple[int, str]]:
    """(line number, text) with the line ending kept; bytes that are not UTF-8 survive as
    surrogates (PEP 383) so that the line can be reported and rejected, not crash the load.

    Lines end where `loader.blocks` ends them: at `\\n`, `\\r\\n` or a lone `\\r` (old Mac
    files), as universal newlines and the API's scrub do. Read a block at a time, a file
    whose lines end in `\\r` alone is not one line held whole."""
    number = 0
    for data, _ in blocks.complete_lines(file, _LINES_BLOCK):
        for raw in data.splitlines(keepends=True):
            number += 1
            yield number, raw.decode("utf-8", "surrogateescape")


def first_line(file: BinaryIO) -> str | None:
    """The first line that holds something, stripped; None for a file of blank lines."""
    return next((text.strip() for _, text in _lines(file) if text.strip()), None)


def _first_lines(file: BinaryIO, count: int) -> list[str]:
    """The first line that holds something and up to `count` more, stripped."""
    found: list[str] = []
    for _, text in _lines(file):
        if text.strip():
            found.append(text.strip())
            if len(found) > count:
                break
    return found


def header_row(path: Path, file: BinaryIO) -> list[str]:
    """The first row that holds something, read from the file's start; `dnc scrub` asks too."""
    text = ""
    rows = csv.reader((text := line) for _, line in _lines(file))
    try:
        return next((row for row in rows if not _blank(row, text)), [])
    except csv.Error as exc:
        raise LoadError(f"{path}: the header row is not readable as CSV: {exc}") from None


def _blank(row: list[str], text: str) -> bool:
    """Whether a CSV row read from a line `text` (the last line read for it) is a blank
    line: empty or nothing but spaces. That is no row (a spreadsheet's trailing line, a
    gap between blocks). Any other line is one, so a phone cell left empty (`,Ann`, `,`,
    or `""`, an empty cell written out) is a row to reject as `empty`, as the scrub
    endpoint answers it `invalid`. A row of one cell of spaces is a blank line only when
    the line holds no quote: a quoted cell may span lines, a one-cell row without one
    cannot, so its last line read is the whole row."""
    return not row or (len(row) == 1 and not row[0].strip() and '"' not in text)


def _column_index(path: Path, header: list[str], column: str | None) -> int:
    if column is None:
        return 0
    index = column_index(header, column)
    if index is None:
        raise LoadError(f"{path}: {no_column(header, column)}")
    return index


def _record(line: int, given: str, text: str) -> Record:
    """A record to normalize, unless a NUL byte or bytes that are not UTF-8 make it none."""
    if "\0" in given:
        return _rejected(line, given, NUL_BYTE)
    if not _decodable(given):
        return _rejected(line, given, nums.NOT_A_NUMBER)
    return Record(line, given, text, None)


def _rejected(line: int, given: str, reason: str) -> Record:
    """A record invalid before normalizing; a NUL byte in it is the reason given."""
    return Record(line, _printable(given), "", NUL_BYTE if "\0" in given else reason)


def _plain_records(lines: Iterator[tuple[int, str]]) -> Iterator[Record]:
    for line, text in lines:
        stripped = text.strip()
        if stripped:
            yield _record(line, stripped, stripped)


def _ftc_records(lines: Iterator[tuple[int, str]]) -> Iterator[Record]:
    """`212,5551234` is +1 212 555 1234; the library judges the number so built.

    A line in E.164 (`+12125551234`, a list appended to the flat file) names its number
    beyond doubt, and is judged as in a file of one number a line. Any other line that
    is no `areacode,number` is `not_ftc_line`: `2125551234` may be a number, but not
    one this format reads."""
    for line, text in lines:
        stripped = text.strip()
        if not stripped:
            continue
        area, comma, local = stripped.partition(",")
        if comma and "," not in local:
            yield _record(line, stripped, f"+1{area.strip()}{local.strip()}")
        elif not comma and stripped.startswith("+"):
            yield _record(line, stripped, stripped)
        else:
            yield _rejected(line, stripped, NOT_FTC_LINE)


def _csv_records(path: Path, lines: Iterator[tuple[int, str]], column: int) -> Iterator[Record]:
    """The phone column of every row after the header; a row's line is the line it starts on.

    A row that does not fit the header is a reject (_csv_record). What the reader cannot
    get past stops the load: strict, as the API reads a CSV body, since a quote opened and
    never closed would otherwise fold every later row into one rejected cell, and their
    numbers would be neither loaded nor listed as rejects (nor would a reader that skipped
    the bad line know where its row ends). Rows before it may be loaded (a batch at a
    time); the error names its line."""
    text = ""
    rows = csv.reader(((text := line) for _, line in lines), strict=True)
    start, header, width, data_rows = 1, [], -1, 0
    try:
        for row in rows:
            line, start = start, rows.line_num + 1
            # Most rows: one line, as wide as the header, a phone cell, no NUL byte.
            if (
                len(row) == width
                and (field := row[column].strip())
                and start - line == 1
                and data_rows
                and "\0" not in text
            ):
                data_rows += 1
                yield (
                    Record(line, field, field, None)
                    if field.isascii()
                    else _record(line, field, field)
                )
                continue
            if _blank(row, text):
                continue
            if width < 0:
                header, width = row, len(row)
                continue
            data_rows += 1
            yield _csv_record(path, line, header, row, column, data_rows)
    except csv.Error as exc:
        raise LoadError(
            f"{path}, line {start}: not readable as CSV: {unreadable(exc)}; none of its "
            "numbers from there on are loaded (those before may be, a batch at a time): fix "
            "the file and load it again (what is loaded already is counted, not loaded twice)"
        ) from None


def _csv_record(
    path: Path, line: int, header: list[str], row: list[str], column: int, index: int
) -> Record:
    """A data row's phone cell to normalize, or the row rejected: a NUL byte in any cell;
    a value past the header's columns (`too_many_cells`: which column is whose is a guess);
    a row that ends before the phone column (`too_few_cells`). A short row that has its
    phone cell loads, as the scrub endpoint pads it.

    What says the file is read wrong stops the load before the first row: a header and
    first row of one cell holding `;` or tabs (another separator), and a title line over
    an FTC list, which reads as a header of one column, and every row as too wide."""
    field = row[column].strip() if column < len(row) else ""
    if "\0" in ",".join(row):
        return _rejected(line, field, NUL_BYTE)
    if index == 1 and (separated := other_separator(header, row)):
        raise LoadError(f"{path}: {separated}")
    if len(row) > len(header) and any(cell.strip() for cell in row[len(header) :]):
        if index == 1 and len(header) == 1 and _FTC_LINE.fullmatch(",".join(row)):
            raise LoadError(
                f"{path}, line {line}: {RowTooWide(index, len(row), len(header))} (a title "
                "line over an FTC list? remove it, or load with --format ftc)"
            )
        return _rejected(line, field, TOO_MANY_CELLS)
    if column >= len(row):
        return _rejected(line, field, TOO_FEW_CELLS)
    return _record(line, field, field)


def _decodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(text: str) -> str:
    """Undecodable bytes as `\\xff` escapes, so the rejects file itself is valid UTF-8,
    and a NUL byte as `\\x00`, which a reader of the rejects file may not survive."""
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text.replace("\0", "\\x00")

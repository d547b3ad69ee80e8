"""CSV lists in and out. How a list's header is read: which column holds the numbers,
and a file whose columns are not separated by commas; one set of rules for `dnc load`,
`dnc scrub` and the scrub endpoint, so a file is read the same way by all three. And the
rows of the detailed full list, written alike by the API and `dnc export`."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import numpy as np

from registry import numbers as nums
from registry.store.codes import Preferences


def column_index(header: list[str], column: str) -> int | None:
    """Where `column` is in a header row; names and cells are read trimmed (` Phone ` is
    `Phone`), by `dnc load` and `dnc scrub` alike. None when no cell has that name, when
    several do (which one holds the numbers would be a guess, and a wrong guess loads or
    washes the wrong column), or when the name is empty (an unset variable in a script)."""
    names = [name.strip() for name in header]
    wanted = column.strip()
    if not wanted or names.count(wanted) != 1:
        return None
    return names.index(wanted)


def other_separator(header: list[str], first_row: list[str] | None) -> str | None:
    """Why a CSV read with commas is one of another separator, if it is: a header of one
    cell holding `;` or a tab, as the first row is (Excel writes `;` where the decimal
    mark is a comma). Read as it is, every row's one cell is no number."""
    if len(header) != 1 or first_row is None or len(first_row) != 1:
        return None
    for separator, name in ((";", "semicolons"), ("\t", "tabs")):
        if separator in header[0] and separator in first_row[0]:
            return (
                f"the CSV's columns are separated by {name}, not commas (its header reads as "
                f"one column {header[0][:64]!r}); save it as CSV with commas "
                "(Excel: CSV UTF-8, comma delimited)"
            )
    return None


def nul_byte(body: bytes) -> str | None:
    """Where a text body holds a NUL byte, if it does: no list of numbers has one (a binary
    file sent as text), and its echo in the answer could not come back as sent."""
    at = body.find(b"\0")
    if at < 0:
        return None
    line = body.count(b"\n", 0, at) + 1
    return f"the body holds a NUL byte, on line {line}"


# The longest line of a text list, as the longest CSV cell (csv.field_size_limit()): no
# number is this long, and the line would come back whole in the answer's input column.
LINE_LIMIT = 131_072


def line_too_long(length: int, line: int) -> str:
    """Why a text list with a line of `length` bytes, the `line`th not blank, is refused."""
    return (
        f"a line of {length} bytes (line {line} of those not blank) is over the limit of "
        f"{LINE_LIMIT}: a text list is one phone number a line"
    )


class UnreadableCSV(ValueError):
    """A CSV a strict reader cannot get past: the line its row began on, and why."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line, self.reason = line, reason


def strict_rows(text: str) -> Iterator[list[str]]:
    """The rows of a CSV, read strictly: a quote opened and never closed would otherwise
    fold every row after it into one cell, and those rows would be lost without a word.
    What cannot be read is an UnreadableCSV naming the line its row began on (where
    `dnc load` names it too), not the line the reader gave up at (the last one, for a
    quote never closed)."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    try:
        for row in reader:
            yield row
            start = reader.line_num + 1
    except csv.Error as exc:
        raise UnreadableCSV(start, unreadable(exc)) from None


def unreadable(exc: csv.Error) -> str:
    """Why a strict CSV reader stopped, with what most likely caused it."""
    if "field larger than field limit" in str(exc):
        return (
            f"a cell is over {csv.field_size_limit()} characters (a quote opened and never "
            "closed runs on through the rows after it; no cell of a phone list is that long)"
        )
    return f"{exc} (a quote opened and not closed?)"


def header_is_data(header: list[str], index: int, region: str) -> str | None:
    """Why a CSV's first row is a row of data, not its header, if it is: its phone column
    holds a valid phone number, which no column name is. Read as the header, that number
    would be neither scrubbed nor loaded, and the answer a row short with no word said (a
    dial list of numbers alone, saved as .csv)."""
    cell = header[index].strip() if index < len(header) else ""
    if nums.normalize(cell, region)[1] is not None:
        return None
    return (
        f"the first row is data, not a header: its column {index + 1} holds the phone "
        f"number {cell[:32]!r}, which would be neither scrubbed nor listed; start the CSV "
        "with a header row (such as phone,name), or send numbers alone as a plain list"
    )


def no_column(header: list[str], column: str) -> str:
    """Why column_index found no column, in one line."""
    names = ", ".join(repr(name.strip()) for name in header)
    wanted = column.strip()
    if not wanted:
        return f"the column name is empty; name one of {names}"
    count = [name.strip() for name in header].count(wanted)
    if count > 1:
        return f"{count} columns are named {wanted!r}; rename all but one"
    hint = ""
    if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
        hint = " (separated by semicolons or tabs? save it as CSV with commas)"
    return f"no column {column!r} in the header; it has {names}{hint}"


# The full list with each number's preferences (GET /v1/export?detail=true, `dnc export
# --detail`): the blocked channels and the allowed categories, each space-separated.
DETAIL_HEADER = "number,channels,allow_categories\n"


def detail_rows(numbers: np.ndarray, blocked: np.ndarray, allowed: np.ndarray) -> str:
    """`+number,voice sms,2 5` lines (no cell needs quoting)."""
    tails: dict[tuple[int, int], str] = {}
    rows = []
    pairs = zip(blocked.tolist(), allowed.tolist(), strict=True)
    for n, key in zip(numbers.tolist(), pairs, strict=True):
        tail = tails.get(key)
        if tail is None:
            tail = tails[key] = f",{preference_cells(Preferences(*key))}\n"
        rows.append(f"+{n}{tail}")
    return "".join(rows)


def preference_cells(prefs: Preferences) -> str:
    """`voice sms,2 5`: the channels and categories cells of a detail row."""
    codes = " ".join(str(c) for c in prefs.category_codes())
    return f"{' '.join(prefs.channel_names())},{codes}"

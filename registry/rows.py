"""Text rows as numpy arrays: split a body into lines and build answers without a Python
call per row.

A body of a million lines is one uint8 array plus the start and end of each
line. An answer row is laid out in fixed-width slots (input, comma, number,
comma, status, newline) padded with zero bytes, and one pass of bytes.replace
drops the padding and concatenates the rows in order. Questions about the
whole body (any carriage return? any comma?) go to the bytes' own methods,
which memchr answers far faster than a numpy comparison of every byte. Rows
that need CSV quoting (an input holding a comma or a quote) or are very long
are rare and are written by the csv module instead.
"""

from __future__ import annotations

import numpy as np

from registry.store.keys import MAX_DIGITS

_NL, _CR, _SPACE, _TAB, _COMMA, _QUOTE = 10, 13, 32, 9, 44, 34
_MAX_DIGITS = MAX_DIGITS + 1  # "+" and the digits
MAX_FAST_INPUT = 48  # longer inputs take the csv module's path

# Four ASCII digits for every number below 10,000.
_POWERS = 10 ** np.arange(MAX_DIGITS, dtype=np.int64)
_POSITION = np.arange(_MAX_DIGITS, dtype=np.int64)
_QUADS = np.array([list(f"{i:04d}".encode()) for i in range(10_000)], dtype=np.uint8)
_QUADS32 = _QUADS.view(np.uint32).ravel()
_TOP = 10**16  # digits above the two 8-digit halves


def as_bytes(body: np.ndarray) -> bytes:
    """The bytes under a uint8 array: the very object np.frombuffer read, else a copy."""
    base = body.base
    if isinstance(base, bytes) and len(base) == body.nbytes:
        return base
    return body.tobytes()


def is_plain_ascii(body: np.ndarray) -> bool:
    """Printable ASCII, spaces, tabs and line ends only: the bodies split_lines reads
    exactly as the API's str-based parse_plain would."""
    data = as_bytes(body)
    if not data.isascii():
        return False
    # Counting is several times faster than a table look-up per byte. bytes.count walks
    # byte by byte, so it only counts what memchr (`in`) found at all.
    controls = np.count_nonzero(body < 0x20) + (data.count(b"\x7f") if b"\x7f" in data else 0)
    allowed = np.count_nonzero(body == _NL)
    for byte in (b"\t", b"\r"):
        allowed += data.count(byte) if byte in data else 0
    return bool(controls == allowed)


def split_lines(body: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of every non-blank line of a plain-ASCII body, stripped of
    spaces and tabs. Lines end at \\n, \\r\\n or \\r, as in parse_plain."""
    data = as_bytes(body)
    has_cr = b"\r" in data
    breaks = (
        np.flatnonzero((body == _NL) | (body == _CR)) if has_cr else np.flatnonzero(body == _NL)
    )
    starts = np.concatenate(([0], breaks + 1))
    ends = np.concatenate((breaks, [len(body)]))
    if b" " not in data and b"\t" not in data:
        keep = ends > starts
        return starts[keep], ends[keep]
    # Spaces inside lines ("(212) 555-1234") change nothing; only lines that start or
    # end with some move their bounds, a byte a pass, over the lines still moving.
    starts, ends = starts.copy(), ends.copy()
    if _trim(body, starts, ends, 0) and _trim(body, starts, ends, -1):
        keep = ends > starts
        return starts[keep], ends[keep]
    return _strip_every_line(body, starts, ends)  # a line with a long run of blanks


_TRIM_PASSES = 8


def _trim(body: np.ndarray, starts: np.ndarray, ends: np.ndarray, side: int) -> bool:
    """Move each line's start (side 0) or end (side -1) past its spaces and tabs, in place;
    False if some line still has blanks there after _TRIM_PASSES bytes."""
    moving = np.flatnonzero(ends > starts)
    for _ in range(_TRIM_PASSES):
        edge = starts[moving] if side == 0 else ends[moving] - 1
        byte = body[edge]
        moving = moving[(byte == _SPACE) | (byte == _TAB)]
        if len(moving) == 0:
            return True
        if side == 0:
            starts[moving] += 1
        else:
            ends[moving] -= 1
        moving = moving[ends[moving] > starts[moving]]
    return len(moving) == 0


def _strip_every_line(
    body: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    content = np.flatnonzero(~np.isin(body, (_SPACE, _TAB, _NL, _CR)))
    if len(content) == 0:
        return starts[:0], ends[:0]
    first = np.searchsorted(content, starts)
    last = np.searchsorted(content, ends) - 1
    has = first <= last
    return content[first[has]], content[last[has]] + 1


def digits_matrix(numbers: np.ndarray) -> np.ndarray:
    """'+' and the digits of each number, right-aligned in a uint8 matrix padded with
    zeros; a row of zeros where the number is 0 (invalid). The matrix is 20 columns
    wide, or just wide enough when every valid number has the same count of digits
    (a scrub list of one country usually has), which then needs no padding at all."""
    n = len(numbers)
    value = numbers.astype(np.int64)
    out = np.empty((n, _MAX_DIGITS), dtype=np.uint8)
    # Four digits at a time, as one uint32 from a table: the top four digits, then two
    # 8-digit halves, each as two quads. The top is zeros unless a number is that long.
    quads = out.view(np.uint32)
    rest = value
    if n and int(value.max()) >= _TOP:
        top = value // _TOP
        rest = value - top * _TOP
        quads[:, 0] = _QUADS32[top]
    else:
        quads[:, 0] = _QUADS32[0]
    high = (rest // 100_000_000).astype(np.uint32)
    low = (rest - high.astype(np.int64) * 100_000_000).astype(np.uint32)
    for col, half in ((1, high), (3, low)):
        quads[:, col] = _QUADS32[half // 10_000]
        quads[:, col + 1] = _QUADS32[half % 10_000]
    valid = value > 0
    if n and valid.any():
        smallest, largest = int(value[valid].min()), int(value[valid].max())
        width = len(str(smallest))
        if len(str(largest)) == width:
            out = out[:, _MAX_DIGITS - width - 1 :]
            out[:, 0] = ord("+")
            if not valid.all():
                out[~valid] = 0
            return out
    widths = np.searchsorted(_POWERS, value, side="right")
    out[_POSITION[None, :] < (_MAX_DIGITS - widths)[:, None]] = 0
    rows = np.flatnonzero(widths > 0)
    out[rows, _MAX_DIGITS - 1 - widths[rows]] = ord("+")
    return out


STATUS_SLOTS = np.zeros((3, 8), dtype=np.uint8)
for _code, _name in enumerate((b"callable", b"blocked", b"invalid")):
    STATUS_SLOTS[_code, : len(_name)] = np.frombuffer(_name, dtype=np.uint8)
# Each status slot as one uint64: an answer's status column is one gather of words.
_STATUS_WORDS = STATUS_SLOTS.view(np.uint64).ravel()


def padded(body: bytes) -> np.ndarray:
    """A body as uint8 with room after its end for the widest input slot."""
    out = np.empty(len(body) + MAX_FAST_INPUT, dtype=np.uint8)
    out[: len(body)] = np.frombuffer(body, dtype=np.uint8)
    out[len(body) :] = 0
    return out


def _input_slots(body: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    lengths = ends - starts
    width = int(lengths.max())
    if len(body) < int(ends.max()) + width:
        body = np.concatenate([body, np.zeros(width, dtype=np.uint8)])
    slots = np.lib.stride_tricks.sliding_window_view(body, width)[starts]
    if int(lengths.min()) < width:
        slots[np.arange(width)[None, :] >= lengths[:, None]] = 0
    return slots


def _column(value: int, rows: int) -> np.ndarray:
    return np.full((rows, 1), value, dtype=np.uint8)


def fast_rows(
    body: np.ndarray, starts: np.ndarray, ends: np.ndarray, text: bytes | None = None
) -> np.ndarray:
    """Lines that plain_answer can write: short, and with nothing to quote. `text`, the
    body's bytes when the caller holds them, spares a look at every byte of `body`."""
    short = (ends - starts) <= MAX_FAST_INPUT
    if text is not None and b"," not in text and b'"' not in text:
        return short
    special = np.flatnonzero((body == _COMMA) | (body == _QUOTE))
    quoted = np.searchsorted(special, starts) < np.searchsorted(special, ends)
    return ~quoted & short


def plain_answer(
    body: np.ndarray, starts: np.ndarray, ends: np.ndarray, digits: np.ndarray, status: np.ndarray
) -> bytes:
    """`input,number,status` lines, for lines that fast_rows admits; `digits` is the
    numbers' digits_matrix. `body` must have MAX_FAST_INPUT bytes after its last line."""
    n = len(starts)
    if n == 0:
        return b""
    lengths = ends - starts
    width, wide = int(lengths.max()), digits.shape[1]
    out = np.empty((n, width + wide + 11), dtype=np.uint8)  # input , number , status \n
    step, first = width + 1, int(starts[0])
    if int(lengths.min()) == width and bool((np.diff(starts) == step).all()):
        # Lines of one width, one line end apart (a plain E.164 list): the body itself,
        # seen as a matrix, holds the input slots.
        out[:, :width] = body[first : first + n * step].reshape(n, step)[:, :width]
    else:
        out[:, :width] = _input_slots(body, starts, ends)
    out[:, width] = ord(",")
    out[:, width + 1 : width + 1 + wide] = digits
    out[:, width + 1 + wide] = ord(",")
    out[:, width + 2 + wide : -1] = _STATUS_WORDS[status].view(np.uint8).reshape(n, 8)
    out[:, -1] = ord("\n")
    return out.tobytes().replace(b"\0", b"")


def e164_lines(numbers: np.ndarray) -> bytes:
    """`+digits\\n` for each number (none may be 0), for the receipt's checksum."""
    return digit_lines(digits_matrix(numbers))


def _one_width(body: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[int, int] | None:
    """(first byte, width) of lines of one width, each one byte after the last one's end;
    None for any other layout, or one line, or lines past the end of `body`."""
    n = len(starts)
    if n < 2:
        return None
    width, step, first = int(ends[0] - starts[0]), int(starts[1] - starts[0]), int(starts[0])
    if step != width + 1 or first + n * step > len(body):
        return None
    if not ((ends - starts) == width).all() or not (np.diff(starts) == step).all():
        return None
    return first, width


def written_digits(
    body: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    numbers: np.ndarray,
    canonical: np.ndarray,
) -> np.ndarray | None:
    """digits_matrix(numbers), read from the lines themselves where that is a view of
    `body`: lines of one width, one line end apart, every valid one (a number that is
    not 0) written as its E.164 form (`canonical`), which is then the matrix's row.
    None otherwise. The matrix may be a view of `body`, to read and not to write.
    `body` must hold a byte after its last line (a padded body does)."""
    valid = numbers != 0
    layout = _one_width(body, starts, ends)
    if layout is None or not valid.any() or not canonical[valid].all():
        return None
    first, width = layout
    lines = body[first : first + len(starts) * (width + 1)].reshape(-1, width + 1)[:, :width]
    if valid.all():
        return lines
    out = lines.copy()
    out[~valid] = 0
    return out


def written_lines(body: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray | None:
    """The lines of `body` from the first to the end of the last, as one view, where
    they are one width and each is followed by \\n (the last may end the body): then
    the view and a final \\n are digit_lines(written_digits(...)) of an all-valid list."""
    layout = _one_width(body, starts, ends)
    if layout is None:
        return None
    first, width = layout
    last = first + (len(starts) - 1) * (width + 1) + width
    if not (body[first + width : last : width + 1] == _NL).all():
        return None
    return body[first:last]


def digit_lines(digits: np.ndarray) -> bytes:
    """`+digits\\n` for each row of a digits_matrix (no row may be a 0's)."""
    if len(digits) == 0:
        return b""
    lines = np.hstack([digits, _column(ord("\n"), len(digits))]).tobytes()
    if digits[:, 0].all():
        return lines  # one width, no padding to squeeze out
    return lines.replace(b"\0", b"")


class RowTooWide(ValueError):
    """A CSV data row holding more values than its header names."""

    def __init__(self, row: int, cells: int, columns: int) -> None:
        super().__init__(
            f"data row {row} has {cells} cells but the header names {columns}; "
            "give every value a column name"
        )
        self.row, self.cells, self.columns = row, cells, columns


def fit_to_header(rows: list[list[str]], columns: int) -> list[list[str]]:
    """Every CSV data row as wide as its header, so the number and status an answer adds
    land under their own names: short rows padded, empty cells past the header (a
    trailing comma) dropped. A row with a value past the header raises RowTooWide."""
    fitted = []
    for index, row in enumerate(rows):
        if len(row) < columns:
            row = row + [""] * (columns - len(row))
        elif len(row) > columns:
            if any(cell.strip() for cell in row[columns:]):
                raise RowTooWide(index + 1, len(row), columns)
            row = row[:columns]
        fitted.append(row)
    return fitted

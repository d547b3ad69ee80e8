"""One-number-a-line files read in blocks of bytes, their common lines judged with numpy.

A registry file is ten million lines of one or two shapes: `212,5551234` in an FTC
flat file, `+12125551234` in an E.164 list. Reading such a file a line at a time
costs a few microseconds of Python per line, which is most of a load. So a file is
read in blocks of complete lines; each block becomes a byte array, cut into lines
at its line ends (`\\n`, `\\r\\n` or a lone `\\r`, as universal newlines end them), and
`registry.fastnumbers` judges all its lines at once, from the bytes (an FTC line as
the `+1` number it spells), giving the number of each line it is certain is valid.

Every other line (blank, padded, junk, invalid, deferred) is handed back as
(line number, text), decoded as `loader.formats` decodes lines, for the per-line
path; so what a line yields, and its line number, never depend on which path read it.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

import numpy as np

from registry import fastnumbers

BLOCK = 1 << 22  # bytes a read: big enough to amortize numpy's per-call cost
_DECODE_BATCH = 1 << 14
_PAD = bytes(16)  # so a line's columns may run past the last line
_NEWLINE, _CR, _PLUS, _COMMA, _ZERO, _ONE = (ord(c) for c in "\n\r+,01")
# `212,5551234`: the positions of the digits, and of the comma.
_FTC_LENGTH, _FTC_COMMA = 11, 3
_FTC_DIGITS = [i for i in range(_FTC_LENGTH) if i != _FTC_COMMA]


class Block(NamedTuple):
    numbers: np.ndarray  # the E.164 digits of the lines that were certainly valid
    rest: Iterator[tuple[int, str]]  # the other lines but empty ones: (line number, text)
    position: int  # bytes of the file read so far


def read(file: BinaryIO, fmt: str, region: str, size: int = BLOCK) -> Iterator[Block]:
    """The blocks of an `ftc` or `e164` file, from its start. A block's `rest` is
    decoded as it is read, so a block of junk is never a list of millions of strings."""
    line = 1
    for data, position in complete_lines(file, size):
        buffer = np.frombuffer(data + _PAD, dtype=np.uint8)
        starts, ends = _lines(buffer, len(data))
        # Where the text stops: before the `\r` of a `\r\n`, which str.strip drops.
        stops = ends - ((ends > starts) & (buffer[ends - 1] == _CR))
        if fmt == "ftc":
            numbers = _ftc(buffer, starts, stops)
        else:
            numbers = _e164(buffer, starts, stops, region)
        fast = numbers != 0
        others = np.flatnonzero(~fast & (stops > starts))  # the per-line path skips blanks
        yield Block(numbers[fast], _decoded(data, line, others, starts, ends), position)
        line += len(starts)


def _decoded(
    data: bytes, line: int, others: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> Iterator[tuple[int, str]]:
    """The lines `others` (counted from `line`) as `loader.formats` decodes a line."""
    for low in range(0, len(others), _DECODE_BATCH):
        part = others[low : low + _DECODE_BATCH]
        for i, start, end in zip(
            part.tolist(), starts[part].tolist(), ends[part].tolist(), strict=True
        ):
            yield line + i, data[start:end].decode("utf-8", "surrogateescape")


def complete_lines(file: BinaryIO, size: int) -> Iterator[tuple[bytes, int]]:
    """The file in pieces that end at a line end (the last may not), the BOM of line 1
    dropped, each with the file position it reaches. `loader.formats` reads its lines
    from these pieces too, so both paths cut a file at the same places."""
    head = file.read(len(codecs.BOM_UTF8))
    pending = [] if head == codecs.BOM_UTF8 else [head]
    while block := file.read(size):
        # After the last line end: a \n, or a \r followed here by a byte that is no \n
        # (a \r that ends the block may be the first half of a \r\n).
        cut = max(block.rfind(b"\n"), block.rfind(b"\r", 0, len(block) - 1)) + 1
        if cut == 0:  # a line longer than a block
            pending.append(block)
            continue
        pending.append(block[:cut])
        yield b"".join(pending), file.tell() - (len(block) - cut)
        pending = [block[cut:]]
    if tail := b"".join(pending):
        yield tail, file.tell()


def _lines(buffer: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Where each line of the first `length` bytes starts, and where its `\\n` or lone
    `\\r` is (for a last line without either, the end of the data). The data is padded,
    so the byte after the last is there to look at, and no `\\n`."""
    data = buffer[:length]
    lone_cr = (data == _CR) & (buffer[1 : length + 1] != _NEWLINE)
    ends = np.flatnonzero((data == _NEWLINE) | lone_cr)
    if length and (ends.size == 0 or ends[-1] != length - 1):
        ends = np.append(ends, length)
    starts = np.empty_like(ends)
    starts[:1] = 0
    starts[1:] = ends[:-1] + 1
    return starts, ends


def _ftc(buffer: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """`ddd,ddddddd` lines are +1 and their ten digits, judged as such E.164 lines."""
    numbers = np.zeros(len(starts), dtype=np.int64)
    rows = np.flatnonzero(stops - starts == _FTC_LENGTH)
    cells = buffer[starts[rows, None] + np.arange(_FTC_LENGTH)]
    digits = cells[:, _FTC_DIGITS]
    shaped = (cells[:, _FTC_COMMA] == _COMMA) & ((digits - _ZERO) <= 9).all(axis=1)
    rows, digits = rows[shaped], digits[shaped]
    e164 = np.empty((len(rows), 2 + len(_FTC_DIGITS)), dtype=np.uint8)
    e164[:, 0], e164[:, 1], e164[:, 2:] = _PLUS, _ONE, digits
    width = e164.shape[1]
    begins = np.arange(len(rows), dtype=np.int64) * width
    numbers[rows] = _valid(e164.reshape(-1), begins, begins + width, "US")
    return numbers


def _e164(buffer: np.ndarray, starts: np.ndarray, stops: np.ndarray, region: str) -> np.ndarray:
    """Any line the fast path is certain of: `+12125551234`, `2125551234`, and the
    national shapes with separators too."""
    return _valid(buffer, starts, stops, region)


def _valid(buffer: np.ndarray, starts: np.ndarray, stops: np.ndarray, region: str) -> np.ndarray:
    """The E.164 digits of the lines that are certainly valid, 0 for the rest: those
    take the per-line path, which also says why they are invalid."""
    values, verdicts = fastnumbers.classify_lines(buffer, starts, stops, region)
    return np.where(verdicts == fastnumbers.VALID, values, 0)

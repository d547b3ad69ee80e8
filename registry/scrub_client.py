"""`dnc scrub`: a dial list scrubbed through the API, or straight against Redis.

Both ways write what `POST /v1/scrub` answers for text/plain and text/csv: a
header row, then every input row in order with its `number` (E.164, empty when
invalid) and `status`. A plain list gets the columns `input,number,status`; a
CSV keeps its own columns and adds `number,status`.

Nothing is written until the whole list is decided (locally), or the answer is
written as it streams in and a cut-off stream is an error (remotely): either
way a failure never leaves a file that looks like a whole answer.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np

from registry import rules, tables
from registry.rows import RowTooWide, fit_to_header
from registry.scrub import Batch, Scrubber, ScrubQuery

PLAIN, CSV = "plain", "csv"
FORMATS = ("auto", PLAIN, CSV)
# Rows decided per call of the local scrubber: bounded memory for the pipelined reads.
LOCAL_BATCH = 100_000
UPLOAD_CHUNK = 1 << 20
_STATUS = np.array(rules.STATUS_NAMES, dtype=object)
# Answers of the API that say the list or the arguments were wrong (exit status 2): a
# `--key` the registry does not know, or of a role that may not scrub, is a bad argument.
_BAD_INPUT_STATUSES = (400, 401, 403, 413, 415, 422)


class Output(Protocol):
    """Where a scrub is written: a binary file, or the command line's own output."""

    def write(self, data: bytes, /) -> object: ...


class BadInput(Exception):
    """The file or an argument cannot be scrubbed as given: exit status 2."""


class ScrubFailed(Exception):
    """The scrub could not be done (server unreachable, Redis down): status 1."""


@dataclass
class Summary:
    counts: dict[str, int] = field(
        default_factory=lambda: {"total": 0, "callable": 0, "blocked": 0, "invalid": 0}
    )
    receipt_id: str | None = None

    def line(self) -> str:
        c = self.counts
        text = f"scrubbed {c['total']}: callable {c['callable']}, blocked {c['blocked']}, "
        text += f"invalid {c['invalid']}"
        return text + (f" (receipt {self.receipt_id})" if self.receipt_id else "")


def detect_format(path: Path, fmt: str = "auto") -> str:
    """`csv` for a .csv file or one whose first line is a header row; else a plain list.

    A binary file is refused whatever the format, as `dnc load` refuses it, and lines end
    where `dnc load` and the API end them: at `\\n`, `\\r\\n` or a lone `\\r`."""
    from loader import formats

    try:
        with path.open("rb") as file:
            problem = formats.not_text(
                path,
                file.read(formats.SNIFF_BYTES),
                "one number a line, or a CSV with a header row",
            )
            if problem:
                raise BadInput(problem)
            if fmt != "auto":
                return fmt
            if path.suffix.lower() == ".csv":
                return CSV
            file.seek(0)
            first = formats.first_line(file)
    except OSError as exc:
        raise BadInput(f"{path}: cannot read: {exc.strerror or exc}") from None
    return CSV if first is not None and formats.detect(first) == "csv" else PLAIN


# -- through the API ---------------------------------------------------------------------


def scrub_remote(
    path: Path,
    out: Output,
    *,
    url: str,
    key: str,
    fmt: str,
    channel: str | None,
    category: int | None,
    region: str | None,
    column: str | None,
    timeout: float = 600.0,
) -> Summary:
    """POST the file to /v1/scrub as it is read, and copy the streamed answer to `out`."""
    import httpx

    base = url.rstrip("/")
    query = {
        name: str(value)
        for name, value in (
            ("channel", channel),
            ("category", category),
            ("region", region),
            ("column", column),
        )
        if value is not None
    }
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": "text/csv" if fmt == CSV else "text/plain",
    }
    if column is not None and fmt == CSV:
        query["column"] = _column_name(path, column)
    summary = Summary()
    try:
        with (
            httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0)) as http,
            path.open("rb") as file,
        ):
            with http.stream(
                "POST", f"{base}/v1/scrub", params=query, headers=headers, content=_read(file)
            ) as answer:
                if answer.status_code != 200:
                    answer.read()
                    raise _refused(base, answer)
                if _media_type(answer) != "text/csv":
                    raise _foreign(base, answer)
                summary.receipt_id = answer.headers.get("x-scrub-receipt")
                rows = StatusCount()
                for chunk in answer.iter_bytes():
                    out.write(chunk)
                    rows.feed(chunk)
            summary.counts = rows.counts()
            if summary.receipt_id:
                # The receipt, when it can be read (a key's rate limit may refuse a second
                # request so soon), must say what the answer said.
                receipt = http.get(f"{base}/v1/scrubs/{summary.receipt_id}", headers=headers)
                if receipt.status_code == 200 and receipt.json()["counts"] != summary.counts:
                    raise ScrubFailed(
                        f"the answer's rows ({summary.line()}) are not what its receipt "
                        f"counts ({receipt.json()['counts']}): scrub the list again"
                    )
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise BadInput(f"--url {url!r} is not an http(s) URL: {exc}") from None
    except httpx.RemoteProtocolError as exc:
        raise ScrubFailed(
            f"the answer from {base} was cut off, the output is incomplete: {exc}"
        ) from None
    except httpx.TimeoutException:
        raise ScrubFailed(f"{base} did not answer within {timeout:.0f} s") from None
    except httpx.TransportError as exc:
        raise ScrubFailed(f"cannot reach {base}: {exc}") from None
    return summary


class StatusCount:
    """The rows of a scrub's CSV answer by status, counted as it streams in.

    A row ends at a newline outside quotes (a CSV cell may hold one), and its last cell
    is its status, never quoted: `callable`, `blocked` or `invalid`, told apart by the
    second to last letter (`l`, `e`, `i`; the header's `status` has `u`).
    """

    def __init__(self) -> None:
        self._tail = b""  # the last two bytes already seen
        self._quotes = 0  # the parity of the quotes already seen
        self._found = np.zeros(256, dtype=np.int64)  # row ends by that letter

    def feed(self, chunk: bytes) -> None:
        data = np.frombuffer(self._tail + chunk, dtype=np.uint8)
        new = data[len(self._tail) :]
        quotes = np.cumsum(new == ord('"')) + self._quotes
        ends = np.flatnonzero((new == ord("\n")) & (quotes % 2 == 0)) + len(self._tail)
        ends = ends[ends >= 2]
        self._found += np.bincount(data[ends - 2], minlength=256)
        if len(new):
            self._quotes = int(quotes[-1]) % 2
        self._tail = data[-2:].tobytes()

    def counts(self) -> dict[str, int]:
        found = self._found
        callable_, blocked, invalid = (int(found[ord(c)]) for c in "lei")
        return {
            "total": callable_ + blocked + invalid,
            "callable": callable_,
            "blocked": blocked,
            "invalid": invalid,
        }


def _read(file: BinaryIO) -> Iterator[bytes]:
    while chunk := file.read(UPLOAD_CHUNK):
        yield chunk


def _column_name(path: Path, column: str) -> str:
    """The header cell that `column` names, as the file spells it (the API tries the
    exact name before the trimmed cells, so the exact cell is what to send)."""
    from loader import formats

    try:
        with path.open("rb") as file:
            header = formats.header_row(path, file)
    except formats.LoadError as exc:
        raise BadInput(str(exc)) from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read: {exc.strerror or exc}") from None
    index = tables.column_index(header, column)
    if index is None:
        raise BadInput(f"{path}: {tables.no_column(header, column)}")
    return header[index]


def _media_type(answer: Any) -> str:
    return str(answer.headers.get("content-type", "")).split(";")[0].strip().lower()


def _refused(base: str, answer: Any) -> Exception:
    """The API's error answer as one line, and whose fault it was. An answer not in the
    API's error shape (a web page, another service's JSON) comes from no registry."""
    try:
        error = answer.json()["error"]
        what = " ".join(f"{error['code']}: {error['message']}".split())
    except (ValueError, KeyError, TypeError):
        return _foreign(base, answer)
    status = answer.status_code
    if status == 404:  # the scrub route always exists: the URL is not the registry's root
        return ScrubFailed(f"{base}: answered 404 {what} (is --url the registry's root?)")
    message = f"the registry answered {status} {what}"
    return BadInput(message) if status in _BAD_INPUT_STATUSES else ScrubFailed(message)


def _foreign(base: str, answer: Any) -> ScrubFailed:
    status = f"{answer.status_code} {answer.reason_phrase}".strip()
    if answer.status_code == 200:
        status += f" with {_media_type(answer) or 'no content type'}"
    return ScrubFailed(f"{base}: answered {status}, not the registry's API (is --url right?)")


# -- straight against Redis --------------------------------------------------------------


@dataclass
class ListFile:
    """The rows of a list to scrub: the header to write, each row's cells, the phone texts."""

    header: list[str]
    cells: list[list[str]]
    inputs: list[str]


def read_list(path: Path, fmt: str, column: str | None, region: str) -> ListFile:
    """Read the file as the API reads a text/plain or text/csv body; the phone column
    as `dnc load` finds it (see _column_name)."""

    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not UTF-8 text (byte {exc.start}); send UTF-8") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read: {exc.strerror or exc}") from None
    if (problem := tables.nul_byte(raw)) is not None:  # as the API refuses the body
        raise BadInput(f"{path}: {problem.replace('the body holds', 'holds')}; not a text list")
    if fmt == PLAIN:
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        inputs = [line.strip() for line in lines if line.strip()]
        for i, line in enumerate(inputs):  # as the API refuses it
            if len(line) * 4 > tables.LINE_LIMIT and len(line.encode()) > tables.LINE_LIMIT:
                raise BadInput(f"{path}: {tables.line_too_long(len(line.encode()), i + 1)}")
        return ListFile(["input"], [[t] for t in inputs], inputs)
    try:
        table = [row for row in tables.strict_rows(text) if row]  # as the API reads a body
    except tables.UnreadableCSV as exc:
        raise BadInput(f"{path}: not readable as CSV at line {exc.line}: {exc.reason}") from None
    if not table:
        raise BadInput(f"{path}: the CSV file has no header row")
    header, rows = table[0], table[1:]
    separated = tables.other_separator(header, rows[0] if rows else None)
    if separated is not None:
        raise BadInput(f"{path}: {separated}")
    try:
        rows = fit_to_header(rows, len(header))
    except RowTooWide as exc:
        raise BadInput(f"{path}: {exc}") from None
    index = 0
    if column is not None:
        found = tables.column_index(header, column)
        if found is None:
            raise BadInput(f"{path}: {tables.no_column(header, column)}")
        index = found
    if data := tables.header_is_data(header, index, region):
        raise BadInput(f"{path}: {data}")
    inputs = [row[index] if index < len(row) else "" for row in rows]
    return ListFile(header, rows, inputs)


async def scrub_local(
    listing: ListFile, out: Output, *, redis: Any, retention_days: int, query: ScrubQuery
) -> Summary:
    """Decide every row against Redis, then write them all.

    No Bloom filter is built for one scrub (that would read the whole registry):
    every valid number is confirmed in Redis, which is what a filter's "maybe" leads to.
    """
    from registry.bloom import RegisteredFilter
    from registry.store.registrations import RegistrationStore

    store = RegistrationStore(redis, retention_days)
    scrubber = Scrubber(store, RegisteredFilter(store))
    batches = [
        await scrubber.run(listing.inputs[start : start + LOCAL_BATCH], query)
        for start in range(0, len(listing.inputs), LOCAL_BATCH)
    ]
    summary = Summary()
    out.write(_csv_rows([[*listing.header, "number", "status"]]))
    for number, batch in enumerate(batches):
        start = number * LOCAL_BATCH
        cells = listing.cells[start : start + len(batch.status)]
        out.write(_answer_rows(batch, cells))
        for code, name in enumerate(rules.STATUS_NAMES):
            summary.counts[name] += int(np.count_nonzero(batch.status == code))
        summary.counts["total"] += len(batch.status)
    return summary


def _answer_rows(batch: Batch, cells: list[list[str]]) -> bytes:
    e164 = batch.e164()
    status = _STATUS[batch.status]
    return _csv_rows([*row, e164[i], status[i]] for i, row in enumerate(cells))


def _csv_rows(rows: Any) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()

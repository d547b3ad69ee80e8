"""POST /v1/scrub: a JSON list in, a JSON answer out; or a text/plain or text/csv list
in, a streamed text/csv answer out. Either way a receipt records what was scrubbed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import csv
import hashlib
import io
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from registry import rows, rules, tables
from registry.api import params
from registry.api.auth import OperatorKey
from registry.api.errors import ApiError, cut_off_if_redis_fails
from registry.api.responses import JSON
from registry.rows import RowTooWide, fit_to_header
from registry.scrub import Batch, Scrubber, ScrubQuery, Tally, asked
from registry.store.operators import Operator

if TYPE_CHECKING:
    from registry.api.app import Services

router = APIRouter(tags=["operators"])
PATH = "/v1/scrub"
BATCH_ROWS = 65_536
_STATUS = np.array(rules.STATUS_NAMES, dtype=object)


async def read_body(request: Request, limit: int, advice: str = "send a smaller body") -> bytes:
    """The whole body, or a 413 as soon as it passes `limit` bytes; `advice` ends its
    message, saying what to send instead."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        # Read as it is, a compressed body would be "not UTF-8" or "not JSON": say why.
        raise ApiError(
            415,
            "unsupported_content_encoding",
            f"the body is Content-Encoding: {encoding[:32]}; send it uncompressed",
        )
    declared = request.headers.get("content-length")
    too_large = ApiError(
        413,
        "body_too_large",
        f"the body is over {limit} bytes; {advice}",
        {"limit_bytes": limit},
    )
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise ApiError(
            400,
            "invalid_encoding",
            f"the body is not UTF-8 (byte {exc.start}); send UTF-8 text (Excel: save as "
            "CSV UTF-8, comma delimited)",
        ) from None


# A CSV scrub's limits besides its rows and bytes: the header's width, and the answer's
# cells (rows times columns: a million rows of 64 columns).
MAX_COLUMNS = 1000
MAX_CELLS = 64_000_000


def _too_many(rows: int, limit: int) -> ApiError:
    return ApiError(
        413,
        "too_many_rows",
        f"{rows} rows is over the limit of {limit} a scrub; split the list",
        {"rows": rows, "limit_rows": limit},
    )


# A UTF-8 byte order mark, which Windows tools write at the start of a file: RFC 8259 lets a
# JSON reader ignore it, and the text and CSV bodies do.
BOM = b"\xef\xbb\xbf"


# What a JSON scrub's body may say besides its numbers: the query's parameters, which the
# body may carry instead (a region read from nowhere would turn a national number into
# another country's, and a registered one callable).
BODY_OPTIONS = ("region", "channel", "category")


def parse_json_numbers(body: bytes, limit: int) -> tuple[list[str], list[int], dict[str, str]]:
    """The inputs as text, the indices of items that are neither strings nor integers,
    and the BODY_OPTIONS the body names, as query-parameter text."""
    try:
        document = orjson.loads(body.removeprefix(BOM))
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"the body is not JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("numbers"), list):
        raise ApiError(400, "invalid_request", 'send {"numbers": ["+12125551234", ...]}')
    if body.count(b":") > len(document):
        # Each key is followed by one colon: more colons than the top level's keys means a
        # colon in a string ("tel:" inputs), an object among the items, or a key given
        # twice, which orjson reads as its last ({"channel": "sms", "channel": "voice"}
        # would leave texts unblocked). Python's reader tells them apart.
        params.single_keys(body)
    unknown = sorted(set(document) - {"numbers", *BODY_OPTIONS})
    if unknown:
        raise ApiError(
            400,
            "invalid_request",
            f"unknown field {unknown[0][:32]!r}: a scrub's body takes numbers and, "
            f"optionally, {', '.join(BODY_OPTIONS)}",
            {"unknown": [name[:32] for name in unknown[:8]]},
        )
    options: dict[str, str] = {}
    for name in BODY_OPTIONS:
        value = document.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ApiError(
                400,
                f"invalid_{name}",
                f"{name} must be a string or a whole number, as in the query "
                f"(got {orjson.dumps(value).decode()[:32]})",
            )
        options[name] = str(value)
    items = document["numbers"]
    if len(items) > limit:
        raise _too_many(len(items), limit)
    inputs, not_numbers = _json_inputs(items)
    if any(type(items[i]) is float for i in not_numbers):
        # orjson reads an integer past 64 bits as a float (1e+29): Python's reader keeps
        # its digits, so it is judged (too long) and echoed as sent. Rare, so the slow
        # reader runs only then.
        with contextlib.suppress(RecursionError, ValueError):
            inputs, not_numbers = _json_inputs(json.loads(body)["numbers"])
    return inputs, not_numbers, options


def _json_inputs(items: list[Any]) -> tuple[list[str], list[int]]:
    """Each item as text, and the indices of those that are no number.

    Numbers sent as JSON integers are read as their digits; anything else is not a number,
    even when its JSON text holds one ({"n": "+1212..."} must not scrub as +1212...)."""
    inputs = [
        item if isinstance(item, str)
        else str(item) if isinstance(item, int) and not isinstance(item, bool)
        else _json_text(item)
        for item in items
    ]  # fmt: skip
    not_numbers = [
        i
        for i, item in enumerate(items)
        if not isinstance(item, str) and (not isinstance(item, int) or isinstance(item, bool))
    ]
    return inputs, not_numbers


def _json_text(item: Any) -> str:
    """An item that is no number, as the answer shows it: its JSON, cut at 64 characters.
    orjson writes no more than 255 levels of nesting (a body may hold more): those items
    are shown by their first 64 characters, all brackets."""
    try:
        return orjson.dumps(item).decode()[:64]
    except orjson.JSONEncodeError:
        return "[" * 64 if isinstance(item, list) else '{"' * 32


def parse_plain(body: bytes, limit: int) -> list[str]:
    # Only line ends split rows (str.splitlines would also split on form feeds and U+2028).
    lines = _text(body).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    rows = [line.strip() for line in lines]
    rows = [row for row in rows if row]
    if len(rows) > limit:
        raise _too_many(len(rows), limit)
    return rows


class PlainLines:
    """A text/plain body as one byte array and the bounds of its non-blank lines."""

    header = ["input"]

    def __init__(self, body: bytes, limit: int) -> None:
        raw = np.frombuffer(body, dtype=np.uint8)
        if rows.is_plain_ascii(raw):
            self.raw = body
            self.starts, self.ends = rows.split_lines(raw)
        else:
            # Anything beyond plain ASCII is split by Python's str rules, then laid out the same.
            texts = parse_plain(body, limit)
            encoded = [t.encode() for t in texts]
            self.raw = b"\n".join(encoded)
            lengths = np.array([len(e) for e in encoded], dtype=np.int64)
            self.ends = np.cumsum(lengths + 1) - 1
            self.starts = self.ends - lengths
        if len(self.starts) > limit:
            raise _too_many(len(self.starts), limit)
        lengths = self.ends - self.starts
        if len(lengths) and (longest := int(lengths.max())) > tables.LINE_LIMIT:
            line = int(np.argmax(lengths)) + 1
            raise ApiError(
                400,
                "invalid_list",
                tables.line_too_long(longest, line),
                {"limit_bytes": tables.LINE_LIMIT},
            )
        self.buf = rows.padded(self.raw)
        self.fast = rows.fast_rows(self.buf, self.starts, self.ends, self.raw)

    def __len__(self) -> int:
        return len(self.starts)

    def texts(self, a: int, b: int) -> list[str]:
        raw = self.raw
        return [
            raw[x:y].decode()
            for x, y in zip(self.starts[a:b].tolist(), self.ends[a:b].tolist(), strict=True)
        ]

    def encode(self, a: int, b: int, batch: Batch, only: str | None) -> bytes:
        starts, ends, fast = self.starts[a:b], self.ends[a:b], self.fast[a:b]
        digits, status = batch.digits(), batch.status
        if only == "callable":
            keep = status == rules.CALLABLE
            starts, ends, digits, status = starts[keep], ends[keep], digits[keep], status[keep]
            fast = fast[keep]
        if len(starts) == 0:
            return b""
        if fast.all():
            return rows.plain_answer(self.buf, starts, ends, digits, status)
        return _encode(batch, [[text] for text in self.texts(a, b)], only)

    async def scrub(self, scrubber: Scrubber, query: ScrubQuery) -> Batch:
        return await scrubber.run_lines(self.buf, self.starts, self.ends, query)


class CsvTable:
    """A text/csv body: its header, its rows, and the phone column."""

    def __init__(self, body: bytes, column: str | None, limit: int, region: str) -> None:
        self.header, self.table, self.column = parse_csv(body, column, limit)
        if data := tables.header_is_data(self.header, self.column, region):
            raise ApiError(400, "invalid_csv", data, {"columns": self.header})

    def __len__(self) -> int:
        return len(self.table)

    def texts(self, a: int, b: int) -> list[str]:
        col = self.column
        return [row[col] if col < len(row) else "" for row in self.table[a:b]]

    def encode(self, a: int, b: int, batch: Batch, only: str | None) -> bytes:
        return _encode(batch, self.table[a:b], only)

    async def scrub(self, scrubber: Scrubber, query: ScrubQuery) -> Batch:
        return await scrubber.run(self.texts(0, len(self)), query)


def parse_csv(
    body: bytes, column: str | None, limit: int
) -> tuple[list[str], list[list[str]], int]:
    """Header, rows and the index of the phone column."""
    try:
        rows_read = tables.strict_rows(_text(body))
        header = next((row for row in rows_read if row), None)
        if header is None:
            raise ApiError(400, "invalid_csv", "the CSV body has no header row")
        # Before the rows are read: every answer row is as wide as the header, so a wide
        # header over short rows would make a small body a huge answer (and its memory).
        if len(header) > MAX_COLUMNS:
            raise ApiError(
                400,
                "too_many_columns",
                f"the header has {len(header)} columns, over the limit of {MAX_COLUMNS}; "
                "send the columns you need back",
                {"columns": len(header), "limit_columns": MAX_COLUMNS},
            )
        rows = [row for row in rows_read if row]
    except tables.UnreadableCSV as exc:
        raise ApiError(
            400,
            "invalid_csv",
            f"the CSV body cannot be read at line {exc.line}: {exc.reason}",
            {"line": exc.line},
        ) from None
    if len(rows) > limit:
        raise _too_many(len(rows), limit)
    if len(rows) * len(header) > MAX_CELLS:
        raise ApiError(
            413,
            "too_many_cells",
            f"{len(rows)} rows of {len(header)} columns is over the limit of {MAX_CELLS} "
            "cells a scrub; send fewer columns, or split the list",
            {"rows": len(rows), "columns": len(header), "limit_cells": MAX_CELLS},
        )
    separated = tables.other_separator(header, rows[0] if rows else None)
    if separated is not None:
        raise ApiError(400, "invalid_csv", separated, {"columns": header})
    try:
        rows = fit_to_header(rows, len(header))
    except RowTooWide as exc:
        details = {"row": exc.row, "cells": exc.cells, "columns": exc.columns}
        raise ApiError(400, "invalid_csv", str(exc), details) from None
    if column is None:
        return header, rows, 0
    if not column.strip():  # an unset variable in the client's script, not "the first"
        raise ApiError(
            400, "unknown_column", "column is empty; name a column of the header",
            {"columns": header},
        )  # fmt: skip
    cells = header
    if column not in header:  # ` phone ` is `phone`, as `dnc load` and `dnc scrub` read it
        column, cells = column.strip(), [cell.strip() for cell in header]
    if column not in cells:
        raise ApiError(400, "unknown_column", tables.no_column(header, column), {"columns": header})
    if cells.count(column) > 1:
        # Which of them holds the numbers is a guess; a wrong guess washes the wrong column.
        raise ApiError(
            400,
            "ambiguous_column",
            f"{cells.count(column)} columns are named {column[:32]!r}; rename all but one",
            {"columns": header},
        )
    return header, rows, cells.index(column)


def _query(request: Request, operator: Operator, body: dict[str, str] | None = None) -> ScrubQuery:
    """The scrub's parameters from the query string, or from a JSON body's BODY_OPTIONS;
    a parameter given in both must agree."""
    services = request.app.state.services
    q = dict(request.query_params)
    for name, value in (body or {}).items():
        if q.get(name, value).strip().lower() != value.strip().lower():
            raise ApiError(
                400,
                "conflicting_parameters",
                f"{name} is {q[name][:16]!r} in the query but {value[:16]!r} in the body",
            )
        q[name] = value
    return ScrubQuery(
        channel=params.channel(q.get("channel")),
        category=params.category(q.get("category")),
        region=params.region(q.get("region"), services.settings.default_region),
        prefixes=operator.prefixes,
        operator=operator.id,
    )


def _charset(parameters: str) -> str | None:
    """The charset parameter of a Content-Type's parameters, lower case, if any."""
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


@router.post(
    PATH,
    openapi_extra={
        "parameters": [
            {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
            for n in ("channel", "category", "region", "column", "only")
        ],
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "numbers": {"type": "array", "items": {"type": "string"}},
                            "region": {"type": "string"},
                            "channel": {"type": "string", "enum": ["voice", "sms"]},
                            "category": {"type": "integer", "minimum": 1, "maximum": 8},
                        },
                        "required": ["numbers"],
                        "additionalProperties": False,
                    }
                },
                "text/plain": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            }
        },
    },
)
async def scrub(request: Request, operator: OperatorKey) -> Any:
    """Scrub a list: JSON gets a JSON answer, text/plain and text/csv a streamed CSV."""
    services = request.app.state.services
    settings = services.settings
    query = _query(request, operator)
    only = request.query_params.get("only")
    if only not in (None, "callable"):
        # An empty one too: an unset variable in a script meaning only=callable would get
        # the blocked rows as well, and a dialler fed them would call them.
        raise ApiError(400, "invalid_only", "only= takes the value 'callable', or leave it out")
    content_type = request.headers.get("content-type", "application/json")
    kind, _, parameters = content_type.partition(";")
    kind = kind.strip().lower()
    if kind not in ("application/json", "text/plain", "text/csv"):
        raise ApiError(
            415,
            "unsupported_media_type",
            "send application/json, text/plain (a number a line) or text/csv",
        )
    charset = _charset(parameters)
    if charset not in (None, "utf-8", "utf8", "us-ascii", "ascii"):
        # Read as UTF-8 anyway, a Latin-1 name in a CSV column would be refused or changed.
        raise ApiError(
            415,
            "unsupported_charset",
            f"charset {charset[:32]!r}: send the list as UTF-8 (or plain ASCII)",
        )
    if kind != "text/csv" and request.query_params.get("column"):
        # As `dnc scrub --column` on a plain list: a column the body cannot have is a mistake.
        raise ApiError(
            400,
            "invalid_column",
            f"column names a CSV column; a {kind} body has none (send text/csv with a header)",
        )
    if kind == "application/json" and only:
        # The JSON answer lists the blocked and the invalid, never the callable rows.
        raise ApiError(
            400,
            "invalid_only",
            "only=callable filters a text/plain or text/csv scrub's rows; a JSON answer "
            "has no callable list (its counts and the 'blocked' list tell them apart)",
        )
    limit = settings.max_json_body_bytes if kind == "application/json" else settings.max_body_bytes
    body = await read_body(request, limit, "split the list into several scrubs")
    if kind == "application/json":
        inputs, not_numbers, options = parse_json_numbers(body, settings.max_scrub_rows)
        if options:
            query = _query(request, operator, options)
        question = asked(query, kind, None, None)
        return await _scrub_json(request, operator, inputs, not_numbers, query, question)
    if (problem := tables.nul_byte(body)) is not None:
        raise ApiError(400, "invalid_encoding", f"{problem}; send a text list")
    source: PlainLines | CsvTable
    column = request.query_params.get("column") if kind == "text/csv" else None
    if kind == "text/plain":
        source = PlainLines(body, settings.max_scrub_rows)
    else:
        source = CsvTable(body, column, settings.max_scrub_rows, query.region)
    question = asked(query, kind, column, only)
    return await _scrub_stream(request, operator, query, source, only, question)


async def _scrub_json(
    request: Request,
    operator: Operator,
    inputs: list[str],
    not_numbers: list[int],
    query: ScrubQuery,
    question: dict[str, object],
) -> JSON:
    services = request.app.state.services
    version = await services.scrubber.prepare()
    batch = await services.scrubber.run(inputs, query)
    batch.not_numbers(not_numbers)
    tally = Tally()
    tally.add(batch)
    blocked = np.flatnonzero(batch.status == rules.BLOCKED)
    invalid = np.flatnonzero(batch.status == rules.INVALID)
    found = {
        "blocked": [f"+{n}" for n in batch.numbers[blocked].tolist()],
        "invalid": [
            {"index": i, "input": inputs[i], "reason": batch.reason(i)} for i in invalid.tolist()
        ],
    }
    # The answer's own lists, as orjson writes them (the answer around them holds the
    # receipt's id, which cannot be in its own hash).
    answer_sha256 = hashlib.sha256(orjson.dumps(found)).hexdigest()
    receipt = tally.receipt(operator.id, version, None, question, answer_sha256)
    await services.receipts.put(receipt)
    _count(services, tally)
    return JSON({"receipt_id": receipt["receipt_id"], "counts": receipt["counts"], **found})


def _encode(batch: Batch, cells: list[list[str]], only: str | None) -> bytes:
    """Rows through the csv module: each row's cells, then its number and status. The
    rows plain_answer cannot write (a quote, a comma, a very long input) and CSV tables."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    keep = np.arange(len(cells))
    if only == "callable":
        keep = np.flatnonzero(batch.status == rules.CALLABLE)
    e164 = batch.e164()
    status = _STATUS[batch.status]
    writer.writerows([*cells[i], e164[i], status[i]] for i in keep.tolist())
    return out.getvalue().encode()


async def _scrub_stream(
    request: Request,
    operator: Operator,
    query: ScrubQuery,
    source: PlainLines | CsvTable,
    only: str | None,
    question: dict[str, object],
) -> StreamingResponse:
    """Decide every row first, then stream the answer a chunk at a time.

    The whole list is confirmed in one pipelined round trip (a command pair per
    bucket, not per bucket and chunk), so every Redis read happens before the
    first byte and a failure there is a proper 503. The receipt is stored
    before the last chunk goes out; if that fails the stream is cut off
    without it, and the client never mistakes a partial answer for a whole one.
    """
    services = request.app.state.services
    scrubber = services.scrubber
    version = await scrubber.prepare()
    tally = Tally()
    receipt_id = tally.new_id()
    batch = await source.scrub(scrubber, query)
    tally.count(batch)
    batch.digits()  # computed once, here: the checksum and every answer chunk read it
    # The receipt's checksum (a pass over every valid number, then SHA-256) runs on
    # another core while the answer is encoded and sent; the receipt waits for it.
    checksum = asyncio.get_running_loop().run_in_executor(None, tally.checksum, batch)
    bounds = [
        (start, min(start + BATCH_ROWS, len(source))) for start in range(0, len(source), BATCH_ROWS)
    ]
    head = io.StringIO()
    csv.writer(head, lineterminator="\n").writerow([*source.header, "number", "status"])

    async def body() -> AsyncIterator[bytes]:
        # The answer's bytes, hashed as they go (the receipt names the answer it came
        # with), on a thread of their own: 1M rows are 36 MB, 30 ms of SHA-256 that the
        # event loop would otherwise spend before the last byte. One thread, so the
        # chunks are hashed in their order; hashlib lets go of the GIL meanwhile.
        loop = asyncio.get_running_loop()
        answer = hashlib.sha256()
        pending = head.getvalue().encode()
        for start, stop in bounds:
            ready = pending
            pending = source.encode(start, stop, batch.slice(start, stop), only)
            loop.run_in_executor(_HASHER, answer.update, ready)
            yield ready
            await asyncio.sleep(0)  # let other requests run between chunks
        await loop.run_in_executor(_HASHER, answer.update, pending)
        await checksum
        receipt = tally.receipt(operator.id, version, receipt_id, question, answer.hexdigest())
        async with cut_off_if_redis_fails(f"scrub {receipt_id}, its receipt not stored,"):
            await services.receipts.put(receipt)
        _count(services, tally)
        yield pending

    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={"X-Scrub-Receipt": receipt_id},
    )


_HASHER = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="dnc-answer-hash")


def _count(services: Services, tally: Tally) -> None:
    for name in rules.STATUS_NAMES:
        services.metrics.scrubbed[name] += tally.counts[name]

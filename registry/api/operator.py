"""Operator endpoints: single look-ups, receipts, change lists and the full list."""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from registry import numbers as nums
from registry import rules, tables
from registry.api import params
from registry.api.auth import OperatorKey
from registry.api.errors import ApiError, cut_off_if_redis_fails
from registry.store import changes, keys, timeline
from registry.store.consents import ConsentStore
from registry.store.operators import Operator
from registry.store.registrations import RegistryLost

router = APIRouter(tags=["operators"])


@router.get("/v1/numbers/{number}")
async def lookup(
    number: str,
    request: Request,
    operator: OperatorKey,
    channel: str | None = None,
    category: str | None = None,
    region: str | None = None,
) -> dict[str, object]:
    """Whether one number may be called; one Redis round trip, no Bloom filter needed (it
    reads the registry's marker too: a Redis that lost the registry answers nothing, a
    503), and one more for the operator's consents where the answer would be blocked."""
    services = request.app.state.services
    channel_bits = params.channel(channel)
    category_code = params.category(category)
    value, reason = nums.normalize(number, params.region(region, services.settings.default_region))
    if reason is not None:
        return {"number": None, "status": "invalid", "reason": reason}
    params.check_prefix(operator, value)
    try:  # a number not registered is read with the registry's marker, in one round trip
        registration = await services.registrations.get(value)
    except RegistryLost:
        if services.bloom.epoch is not None:  # every answer a 503 from now on, not only this
            raise services.bloom.lost_error() from None
        raise
    prefs = registration.preferences if registration else rules.Preferences()
    status, why = rules.decide_one(
        registration is not None, prefs, False, channel_bits, category_code
    )
    consents = ConsentStore(services.redis, services.settings.retention_days)
    if status == "blocked" and rules.covers(
        await consents.scope(operator.id, value), channel_bits, category_code
    ):
        status, why = rules.decide_one(True, prefs, True, channel_bits, category_code)
    return {"number": f"+{value}", "status": status, "reason": why}


@router.get("/v1/scrubs")
async def list_receipts(
    request: Request,
    operator: OperatorKey,
    since: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000), params.DIGITS] = 100,
) -> dict[str, object]:
    """The operator's own scrub receipts still kept, oldest first, each as
    GET /v1/scrubs/{receipt_id} gives it: what it washed over the last five months, to
    show a regulator. `next` resumes after the last one listed (and polls for new ones)."""
    if since and not timeline.CURSOR.fullmatch(since):
        raise ApiError(
            400, "invalid_cursor", "since must be a `next` this endpoint gave, or left out"
        )
    listed, cursor, more = await request.app.state.services.receipts.of_operator(
        operator.id, since or None, limit
    )
    return {
        "receipts": [{name: receipt[name] for name in RECEIPT_FIELDS} for receipt in listed],
        "next": cursor,
        "more": more,
    }


@router.get("/v1/scrubs/{receipt_id}")
async def get_receipt(
    receipt_id: str, request: Request, operator: OperatorKey, detail: bool = False
) -> dict[str, object]:
    """The contract's six fields; with `detail=true` also the question asked (`asked`:
    format, channels, category, region, column, only) and `answer_sha256`, the SHA-256
    of the answer's bytes (a JSON scrub's: of its `blocked` and `invalid` lists as one
    JSON object), so an answer kept by the operator can be shown to be this scrub's."""
    receipt = await request.app.state.services.receipts.get(receipt_id)
    # Another operator's receipt is reported as missing: receipt ids are not secrets.
    if receipt is None or (not operator.is_admin and receipt["operator"] != operator.id):
        raise ApiError(404, "receipt_not_found", f"no scrub receipt {receipt_id!r}")
    if not detail:
        return {name: receipt[name] for name in RECEIPT_FIELDS}
    return receipt  # type: ignore[no-any-return]


# GET /v1/scrubs/{receipt_id}'s fields as the contract lists them.
RECEIPT_FIELDS = ("receipt_id", "operator", "created_at", "counts", "sha256", "registry_version")


def _prefixes(operator: Operator, prefix: str | None) -> tuple[str, ...]:
    """The prefixes a request covers: the one asked for, within the operator's own."""
    if prefix is None or prefix == "":
        return operator.prefixes
    # An unescaped '+' in a query string arrives as a space: `?prefix=+1212` means +1212.
    # Full-width too (＋１２１２), as numbers are read.
    prefix = "+" + unicodedata.normalize("NFKC", prefix).strip().removeprefix("+")
    try:
        value, _ = nums.prefix_range(prefix)
    except ValueError as exc:
        raise ApiError(400, "invalid_prefix", str(exc)) from None
    prefix = f"+{value}"
    if not operator.prefixes or any(prefix.startswith(p) for p in operator.prefixes):
        return (prefix,)
    # Wider than the account's own (`+1` for one holding +1212 and +1646): the list
    # within them, as the contract says the export is.
    under = tuple(p for p in operator.prefixes if p.startswith(prefix))
    if under:
        return under
    raise ApiError(
        403,
        "prefix_not_subscribed",
        f"{prefix} is outside your subscribed prefixes",
        {"prefixes": list(operator.prefixes)},
    )


@router.get("/v1/changes")
async def change_list(
    request: Request,
    response: Response,
    operator: OperatorKey,
    since: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100_000), params.DIGITS] = 10_000,
    detail: bool = False,
) -> dict[str, object]:
    """Adds and removes after `since`, within the operator's prefixes; `next` resumes.
    With `detail`, each add carries the number's preferences as they stand now."""
    services = request.app.state.services
    prefixes = operator.prefixes
    try:
        last = await changes.last_entry(services.redis)
        changes.check_cursor(since, services.settings.retention_days, last_id=last)
    except changes.CursorExpired as exc:
        raise ApiError(410, "cursor_expired", str(exc)) from None
    except changes.CursorError as exc:
        raise ApiError(400, "invalid_cursor", str(exc)) from None

    def keep(numbers: np.ndarray) -> np.ndarray:
        return nums.in_prefixes(numbers, prefixes)

    page = await changes.read(
        services.redis, since, limit, keep, keys.bucket_filter(prefixes) if prefixes else None
    )
    # The contract's shape; whether more follows is a header (a page may be short, even
    # empty, when its read reached its budget: `next` is past all it examined).
    response.headers["X-More-Changes"] = "true" if page.more else "false"
    found: list[dict[str, object]] = [
        {"number": f"+{n}", "op": op, "at": changes.iso_time(at)} for n, op, at in page.found
    ]
    if detail:
        added = np.unique(np.array([n for n, op, _ in page.found if op == changes.ADD], np.int64))
        blocked, allowed = await services.registrations.few_preferences(added)
        where = {n: i for i, n in enumerate(added.tolist())}
        for (n, op, _), change in zip(page.found, found, strict=True):
            if op == changes.ADD:
                prefs = rules.Preferences(int(blocked[where[n]]), int(allowed[where[n]]))
                change["channels"] = prefs.channel_names()
                change["allow_categories"] = prefs.category_codes()
    return {"changes": found, "next": page.cursor}


@router.get("/v1/export")
async def export(
    request: Request, operator: OperatorKey, prefix: str | None = None, detail: bool = False
) -> StreamingResponse:
    """The full list, one E.164 a line, ascending, within the operator's prefixes. With
    `detail`, a CSV of `number,channels,allow_categories`: a copy that honours partial
    blocks."""
    services = request.app.state.services
    prefixes = _prefixes(operator, prefix)
    # Taken before the sets are read, and rewound past every add still on its way to
    # them: the change list from it misses nothing the list lacks.
    cursor = await changes.head_cursor(services.redis)
    detailed = await services.registrations.detailed_buckets() if detail else set()
    chunks = services.registrations.all_numbers(prefixes)
    first = await anext(chunks, None)  # fail with a 503 now rather than mid-stream

    async def lines(chunk: np.ndarray) -> str:
        if not detail:
            return "".join(f"+{n}\n" for n in chunk.tolist())
        blocked, allowed = await services.registrations.preferences(chunk, detailed)
        return tables.detail_rows(chunk, blocked, allowed)

    async def body() -> AsyncIterator[bytes]:
        chunk = first
        if detail:
            yield tables.DETAIL_HEADER.encode()
        while chunk is not None:
            async with cut_off_if_redis_fails("an export"):
                text = await lines(chunk)
            yield text.encode()
            async with cut_off_if_redis_fails("an export"):
                chunk = await anext(chunks, None)

    kind = "text/csv" if detail else "text/plain"
    return StreamingResponse(
        body(), media_type=f"{kind}; charset=utf-8", headers={"X-Changes-Cursor": cursor}
    )

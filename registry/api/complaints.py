"""Complaints (subscribers, no key) and the report of callers (administrators).

A complaint is public and unauthenticated, so it is rate-limited per client
address like the status check, and its body is small and bounded.
"""

from __future__ import annotations

import time
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from registry import complaints, rules
from registry import numbers as nums
from registry.api import params
from registry.api.auth import AdminKey, OperatorKey
from registry.api.errors import ApiError
from registry.api.limits import client_address, rate_limited
from registry.api.responses import JSON
from registry.api.scrub import read_body
from registry.store import keys, limits
from registry.store.complaints import OPEN, QUEUE_CURSOR, Complaint, ComplaintStore, is_complaint_id

router = APIRouter()
# Per client address. A hand-typed complaint takes minutes; a flood from one address stops here.
COMPLAINT_WINDOW_MS = 3_600_000
# Room for a text of MAX_TEXT_CHARS emoji, each escaped as a JSON surrogate pair (12 bytes),
# as json.dumps and JSON.stringify may send them, and the other fields.
MAX_BODY_BYTES = 32 * 1024


class ComplaintBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: StrictStr  # any length: a long one is 400 invalid_number (too_long)
    caller: StrictStr = Field(max_length=64)
    occurred_at: StrictStr
    channel: StrictStr
    category: StrictInt | None = None
    text: StrictStr | None = None
    region: StrictStr | None = None


class Resolution(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: StrictStr = Field(max_length=64)
    reply: StrictStr | None = None


def _store(request: Request) -> ComplaintStore:
    services = request.app.state.services
    return ComplaintStore(services.redis, services.settings.retention_days)


async def _body(request: Request) -> ComplaintBody:
    raw = await read_body(
        request,
        MAX_BODY_BYTES,
        f"a complaint is a few fields and a text of at most {complaints.MAX_TEXT_CHARS} "
        "characters; shorten the text",
    )
    try:
        return ComplaintBody.model_validate_json(raw)
    except ValidationError as exc:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        said_json = kind == "application/json" or kind.endswith("+json")
        if not said_json and any(e.get("type") == "json_invalid" for e in exc.errors()):
            # Not JSON and not sent as JSON (a form, say): as every other JSON endpoint.
            raise ApiError(
                415,
                "unsupported_media_type",
                f"the body came with Content-Type {kind[:64]!r}; send it as JSON with "
                "Content-Type: application/json",
                {"content_type": request.headers.get("content-type")},
            ) from None
        # The app's handler answers it in the contract's error shape, as for any body.
        raise RequestValidationError(
            [{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors()]
        ) from None


async def _count_client(request: Request) -> None:
    services = request.app.state.services
    limit = services.settings.complaints_per_hour
    key = keys.complaint_limit(client_address(request))
    hit = await limits.hit(services.redis, key, limit, COMPLAINT_WINDOW_MS)
    if not hit.allowed:
        raise rate_limited(
            hit,
            f"at most {limit} complaints an hour from one address; retry in {hit.retry_after} s",
            COMPLAINT_WINDOW_MS // 1000,
        )


@router.post(
    "/v1/complaints",
    status_code=201,
    tags=["subscribers"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ComplaintBody.model_json_schema()}},
        }
    },
)
async def post_complaint(request: Request) -> JSON:
    """A call or SMS a subscriber got anyway; flags say whether the registry covered it then."""
    services = request.app.state.services
    settings = services.settings
    body = await _body(request)
    region = params.region(body.region, settings.default_region)
    number = params.number(body.number, region)
    if body.channel not in rules.CHANNELS:
        raise ApiError(
            400, "invalid_channel", f"channel {body.channel[:16]!r} is not one of voice, sms"
        )
    try:
        category = None if body.category is None else rules.check_category(body.category)
    except rules.PreferenceError as exc:
        raise ApiError(400, "invalid_category", str(exc)) from None
    now = time.time()
    try:
        caller = complaints.caller(body.caller, region)
        occurred = complaints.occurred_at(body.occurred_at, now)
        text = complaints.text(body.text)
    except complaints.ComplaintError as exc:
        raise ApiError(400, exc.code, str(exc)) from None
    # Only well-formed complaints count: bad input costs the caller nothing and stores nothing.
    await _count_client(request)
    # The registration as it stood when the call came: one ended since still counts.
    registration = await services.registrations.in_force(number, occurred)
    flags = complaints.liability(
        registration is not None,
        None if registration is None else registration.registered_at,
        registration is not None
        and bool(registration.preferences.channels & rules.CHANNELS[body.channel]),
        occurred,
        settings.grace_days,
    )
    # The operator that declared the caller lists the complaint (GET /v1/caller-complaints).
    owner = (
        None if caller == complaints.WITHHELD else (await services.operators.owners([caller]))[0]
    )
    complaint_id = await _store(request).add(
        Complaint(
            number,
            caller,
            occurred,
            body.channel,
            category,
            text,
            flags.registered_at_time,
            flags.within_grace,
        ),
        now,
        owner,
    )
    await services.audit.record(
        "complaint.received", "subscriber", complaint=complaint_id, channel=body.channel
    )
    return JSON(
        {
            "complaint_id": complaint_id,
            "registered_at_time": flags.registered_at_time,
            "within_grace": flags.within_grace,
        },
        status_code=201,
    )


@router.get("/v1/reports/callers", tags=["administrators"])
async def callers_report(
    request: Request,
    _: AdminKey,
    top: Annotated[int, Query(ge=1, le=1000), params.DIGITS] = 10,
) -> dict[str, object]:
    """Complaints counted by caller over the kept days, most complained-about first: a row
    for each caller and the account that had declared it when the complaints came (null:
    none had), so a caller that passed from one account to another has a row under each."""
    settings = request.app.state.services.settings
    distinct, callers, withheld = await _store(request).top_callers(top)
    return {
        "callers": [
            {
                "caller": c.caller,
                "complaints": c.complaints,
                "voice": c.voice,
                "sms": c.sms,
                "liable": c.liable,
                "operator": c.operator,
            }
            for c in callers
        ],
        "distinct_callers": distinct,
        # Calls that showed no number: nobody to rank, still a measure of the nuisance.
        "withheld": {
            "complaints": withheld.complaints,
            "voice": withheld.voice,
            "sms": withheld.sms,
        },
        "retention_days": settings.retention_days,
    }


# What the administrators' queue shows of a complaint: the call and the flags, not the
# subscriber's number (GET /v1/complaints/{id} has it).
QUEUE_FIELDS = (
    "complaint_id",
    "received_at",
    "caller",
    "occurred_at",
    "channel",
    "category",
    "registered_at_time",
    "within_grace",
    "operator",
)


def _not_kept(complaint_id: str) -> ApiError:
    return ApiError(404, "complaint_not_found", f"no complaint {complaint_id[:64]!r} is kept")


@router.get("/v1/complaints", tags=["administrators"])
async def open_complaints(
    request: Request,
    _: AdminKey,
    status: str = OPEN,
    limit: Annotated[int, Query(ge=1, le=1000), params.DIGITS] = 100,
    since: str | None = None,
) -> dict[str, object]:
    """The complaints not yet resolved, oldest first: the queue to work through.

    Each without the subscriber's number (GET /v1/complaints/{id} has it); `next`
    pages on, and a new listing starts again from the oldest still open."""
    if status != OPEN:
        raise ApiError(
            400,
            "invalid_status",
            "only open complaints are listed (status=open); read a resolved one by its id",
        )
    if since is not None and not QUEUE_CURSOR.fullmatch(since):
        raise ApiError(
            400, "invalid_cursor", "since must be a `next` this endpoint gave, or left out"
        )
    found, cursor, total = await _store(request).open_queue(since, limit)
    retention = request.app.state.services.settings.retention_days
    return {
        "complaints": [{name: record.get(name) for name in QUEUE_FIELDS} for record in found],
        "open": total,
        "next": cursor,
        "retention_days": retention,
    }


@router.post(
    "/v1/complaints/{complaint_id}/resolution",
    tags=["administrators"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": Resolution.model_json_schema()}},
        }
    },
)
async def resolve_complaint(
    complaint_id: str, body: Resolution, request: Request, admin: AdminKey
) -> JSON:
    """Close a complaint with its outcome, and what the complainant is told; once."""
    services = request.app.state.services
    try:
        outcome = complaints.outcome(body.outcome)
        reply = complaints.reply(body.reply)
    except complaints.ComplaintError as exc:
        raise ApiError(400, exc.code, str(exc)) from None
    resolved = None
    if is_complaint_id(complaint_id):
        resolved = await _store(request).resolve(complaint_id, outcome, reply, admin.id)
    if resolved is None:
        raise _not_kept(complaint_id)
    record, changed = resolved
    if not changed:
        raise ApiError(
            409,
            "complaint_resolved",
            f"complaint {complaint_id} was resolved at {record['resolved_at']} "
            f"({record['outcome']}); a resolution is not changed",
            {"complaint": record},
        )
    await services.audit.record(
        "complaint.resolved", admin.id, complaint=complaint_id, outcome=outcome
    )
    return JSON(record)


@router.get("/v1/complaints/{complaint_id}/status", tags=["subscribers"])
async def complaint_status(complaint_id: str, request: Request) -> dict[str, object]:
    """Where a complaint stands, for whoever holds its id (no key): received, and once
    resolved its outcome and reply. Nothing else of the record: not the number."""
    record = await _store(request).get(complaint_id) if is_complaint_id(complaint_id) else None
    if record is None:
        raise _not_kept(complaint_id)
    return {
        "complaint_id": complaint_id,
        "status": record["status"],
        "received_at": record["received_at"],
        "resolved_at": record.get("resolved_at"),
        "outcome": record.get("outcome"),
        "reply": record.get("reply"),
    }


# What an operator sees of a complaint about its callers: also the number it called and
# the handling; not the subscriber's own words, nor the reply to them.
OPERATOR_FIELDS = (*QUEUE_FIELDS, "number", "status", "outcome")


@router.get("/v1/caller-complaints", tags=["operators"])
async def caller_complaints(
    request: Request,
    operator: OperatorKey,
    since: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000), params.DIGITS] = 100,
) -> dict[str, object]:
    """Complaints still kept about calls or texts from a caller this account had declared
    when they came, oldest first: the numbers to stop calling, and what became of each
    complaint. `next` resumes after the last one listed (and polls for new ones)."""
    if since is not None and not QUEUE_CURSOR.fullmatch(since):
        raise ApiError(
            400, "invalid_cursor", "since must be a `next` this endpoint gave, or left out"
        )
    found, cursor, more = await _store(request).of_operator(operator.id, since, limit)
    listed = [{name: record.get(name) for name in OPERATOR_FIELDS} for record in found]
    if operator.prefixes:
        # Anyone may file a complaint naming any number: one outside the account's
        # prefixes is not shown to it (null), as no other answer shows it one; nor is
        # whether it was registered then (a status look-up the account may not make).
        called = [str(entry["number"] or "+0") for entry in listed]
        digits = np.array([int(n[1:]) if n[1:].isdigit() else 0 for n in called], dtype=np.int64)
        for entry, inside in zip(listed, nums.in_prefixes(digits, operator.prefixes), strict=True):
            if not inside:
                entry.update(number=None, registered_at_time=None, within_grace=None)
    return {"complaints": listed, "next": cursor, "more": more}

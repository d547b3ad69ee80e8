"""Administrator endpoints: operator accounts, statistics and the audit trail."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request

from registry.accounts import NewOperator, OperatorChange, created_terms
from registry.api import params
from registry.api.auth import AdminKey
from registry.api.consents import audit_withdrawals, scope_fields
from registry.api.errors import ApiError, log_failure, not_replicated_error
from registry.api.responses import JSON
from registry.store import audit, stats
from registry.store.complaints import ComplaintStore, is_complaint_id
from registry.store.consents import ConsentStore
from registry.store.operators import (
    TERMS,
    AccountBusy,
    AdminPrefixes,
    CallerTaken,
    audited,
    audited_terms,
)

if TYPE_CHECKING:
    from registry.api.app import Services

log = logging.getLogger("dnc.api")
router = APIRouter(tags=["administrators"])


def _caller_taken(exc: CallerTaken) -> ApiError:
    return ApiError(
        409,
        "caller_taken",
        f"caller {exc.caller!r} is declared by another active operator",
        {"caller": exc.caller},
    )


@router.post("/v1/operators", status_code=201)
async def create_operator(body: NewOperator, request: Request, admin: AdminKey) -> JSON:
    """Create an account; its API key is in this answer and nowhere else, ever."""
    services = request.app.state.services
    try:
        operator, api_key = await services.operators.create(
            body.name, body.role, body.prefixes or [], body.rate_limit, body.callers
        )
    except CallerTaken as exc:
        raise _caller_taken(exc) from None
    await services.audit.record(
        "operator.created",
        admin.id,
        operator=operator.id,
        role=operator.role,
        name=body.name,
        **created_terms(body),
    )
    if services.replication is not None:
        # Before the key goes out, as the middleware would; a 503 here would otherwise
        # leave an account whose key nobody was given, live until someone revokes it.
        try:
            await services.replication.wait()
        except Exception as exc:  # noqa: BLE001 - unacknowledged: the account is taken back
            log_failure(log, f"operator {operator.id} not replicated, revoked", exc)
            await services.operators.revoke(operator.id)
            await services.audit.record(
                "operator.revoked", admin.id, operator=operator.id, reason="not_replicated"
            )
            raise not_replicated_error() from None
    return JSON(
        {"operator_id": operator.id, "api_key": api_key, "role": operator.role}, status_code=201
    )


@router.patch("/v1/operators/{operator_id}")
async def change_operator(
    operator_id: str, body: OperatorChange, request: Request, admin: AdminKey
) -> dict[str, object]:
    """Change an active account's callers (the whole list) or rate limit; the answer is
    the account as GET /v1/operators/{operator_id} gives it."""
    services = request.app.state.services
    sent = body.model_fields_set
    if not sent:
        raise ApiError(
            400, "invalid_request", "send callers, rate_limit, prefixes or several to change"
        )
    changes: dict[str, object] = {name: getattr(body, name) for name in sent}
    try:
        changed = await services.operators.change(operator_id[:64], changes)
    except CallerTaken as exc:
        raise _caller_taken(exc) from None
    except AccountBusy:
        raise _busy(operator_id) from None
    except AdminPrefixes:
        raise ApiError(
            400,
            "invalid_request",
            "an administrator reaches every number; prefixes limit operators and carriers only",
        ) from None
    if changed is None:
        raise _no_operator(operator_id)
    before, record = changed
    # Its new rate limit and prefixes from this worker's next request; other workers' once
    # their key cache's entry is older than its 2 s.
    services.auth.forget(operator_id)
    ended = []
    if body.prefixes:  # null is every number: nothing dropped
        ended = await _end_consents_outside(services, operator_id, body.prefixes, admin.id)
    # Each field sent, as it was and as it is now: what an account gave up (a prefix, a
    # caller) is on record as well as what it took on.
    terms = {}
    for name in TERMS:
        if name in changes:
            terms[f"{name}_before"] = audited(name, before[name])
            terms[name] = audited(name, record[name])
    await services.audit.record(
        "operator.updated",
        admin.id,
        operator=operator_id,
        **terms,
        consents_ended=len(ended) if "prefixes" in changes else None,
    )
    return _account(record)


async def _end_consents_outside(
    services: Services, operator_id: str, prefixes: list[str], admin_id: str
) -> list[tuple[int, str]]:
    """An account that gave up a prefix can no longer reach its numbers: its consents
    there end as on revocation (kept DNC_RETENTION_DAYS from now, audited), rather than
    stay live out of its reach and count again if the prefix comes back."""
    consents = ConsentStore(services.redis, services.settings.retention_days)
    withdrawn_by = f"prefix_dropped:{admin_id}"
    ended = await consents.end_outside(operator_id, prefixes, withdrawn_by)
    await audit_withdrawals(
        services, admin_id, withdrawn_by, [(n, operator_id, consent) for n, consent in ended]
    )
    return ended


@router.post("/v1/operators/{operator_id}/key")
async def replace_key(operator_id: str, request: Request, admin: AdminKey) -> dict[str, object]:
    """A new API key for an active account, in this answer and nowhere else; the old key is
    refused from now on. For a key that leaked: the account, its consents and its
    history stay as they are, where revoking would end them."""
    services = request.app.state.services
    try:
        api_key = len(operator_id) <= 64 and await services.operators.replace_key(operator_id)
    except AccountBusy:
        raise _busy(operator_id) from None
    if not api_key:
        raise _no_operator(operator_id)
    services.auth.forget(operator_id)
    await services.audit.record("operator.key_replaced", admin.id, operator=operator_id)
    return {"operator_id": operator_id, "api_key": api_key}


def _no_operator(operator_id: str) -> ApiError:
    return ApiError(404, "operator_not_found", f"no active operator {operator_id[:64]!r}")


def _busy(operator_id: str) -> ApiError:
    return ApiError(
        409,
        "account_busy",
        f"another change to operator {operator_id[:64]!r} is under way; send this one again "
        "once it is answered",
    )


@router.delete("/v1/operators/{operator_id}")
async def revoke_operator(operator_id: str, request: Request, admin: AdminKey) -> dict[str, object]:
    services = request.app.state.services
    try:
        revoked = await services.operators.revoke(operator_id) if len(operator_id) <= 64 else None
    except AccountBusy:
        raise _busy(operator_id) from None
    if revoked is None:
        raise _no_operator(operator_id)
    services.auth.forget(operator_id)
    # Its consents end with it: their evidence is then kept the retention, not forever.
    consents = ConsentStore(services.redis, services.settings.retention_days)
    withdrawn_by = f"operator_revoked:{admin.id}"
    ended = await consents.end_all(operator_id, withdrawn_by)
    # Each one, as every other withdrawal is: the trail is how an administrator finds a
    # consent's record (and its evidence) once the number's index no longer lists it.
    for number, consent_id in ended:
        await services.audit.record(
            "consent.withdrawn",
            admin.id,
            consent_id=consent_id,
            number=f"+{number}",
            operator=operator_id,
            withdrawn_by=withdrawn_by,
        )
    # What it held until now: the subscription and the senders that end here.
    await services.audit.record(
        "operator.revoked",
        admin.id,
        operator=operator_id,
        consents_ended=len(ended),
        **audited_terms(revoked),
    )
    return {"operator_id": operator_id, "revoked": True}


def _account(record: dict[str, Any]) -> dict[str, object]:
    return {
        **record,
        "created_at": params.iso(record["created_at"] or None),
        "revoked_at": params.iso(record["revoked_at"]),
        "terms": [
            {**term, "from": params.iso(term["from"]), "until": params.iso(term["until"])}
            for term in record["terms"]
        ],
    }


@router.get("/v1/operators")
async def list_operators(request: Request, _: AdminKey) -> dict[str, object]:
    """Every active account, oldest first: who the ids in receipts, consents and the audit
    trail are. Never a key."""
    accounts = await request.app.state.services.operators.active()
    return {"operators": [_account(record) for record in accounts]}


@router.get("/v1/operators/{operator_id}")
async def read_operator(operator_id: str, request: Request, _: AdminKey) -> dict[str, object]:
    """One account, a revoked one too while it is kept (DNC_RETENTION_DAYS): past scrubs,
    consents and complaints keep a sender."""
    record = None
    if len(operator_id) <= 64:
        record = await request.app.state.services.operators.record(operator_id)
    if record is None:
        raise ApiError(404, "operator_not_found", f"no operator {operator_id[:64]!r} is kept")
    return _account(record)


@router.get("/v1/operators/{operator_id}/consents/{consent_id}")
async def read_consent_record(
    operator_id: str, consent_id: str, request: Request, _: AdminKey
) -> dict[str, object]:
    """A consent's record and evidence whatever became of it (live, expired, withdrawn,
    superseded), while it is kept: what settles "operator X says it had consent". Its id
    is in the recording's answer and in the audit trail (`consent.recorded`)."""
    services = request.app.state.services
    store = ConsentStore(services.redis, services.settings.retention_days)
    record = await store.by_id(operator_id[:64], consent_id)
    if record is None:
        raise ApiError(
            404,
            "consent_not_found",
            f"no consent {consent_id[:64]!r} of {operator_id[:64]!r} is kept",
        )
    return _consent_record(record)


def _consent_record(record: dict[str, str]) -> dict[str, object]:
    expires_at = int(record["expires_at"]) if "expires_at" in record else None
    ended_at = int(record["ended_at"]) if "ended_at" in record else None
    now = time.time()
    return {
        "consent_id": record["consent_id"],
        "operator": record["operator"],
        "number": f"+{record['number']}",
        "recorded_at": params.iso(int(record["recorded_at"])),
        "expires_at": params.iso(expires_at),
        "ended_at": params.iso(ended_at),
        "ended": record.get("ended"),  # withdrawn or superseded
        "withdrawn_by": record.get("withdrawn_by"),
        "live": ended_at is None and (expires_at is None or expires_at > now),
        **scope_fields(record),
        "evidence": orjson.loads(record["evidence"]),
    }


@router.get("/v1/numbers/{number}/consents")
async def consents_from_number(
    number: str, request: Request, _: AdminKey, region: str | None = None
) -> dict[str, object]:
    """Every operator's consent from a number whose record is kept, evidence included:
    live, past its `expires_at`, withdrawn or superseded (`live`, `ended_at`, `ended` and
    `withdrawn_by` say which). What settles "they say I consented" when the subscriber,
    not the operator, asks: a consent that lasts until withdrawn outlives the audit entry
    that named its id, and an ended one is kept DNC_RETENTION_DAYS after it ended."""
    services = request.app.state.services
    value = params.number(number, params.region(region, services.settings.default_region))
    store = ConsentStore(services.redis, services.settings.retention_days)
    found: dict[str, dict[str, object]] = {}
    for operator_id, consent_id in await store.kept(value):
        record = await store.by_id(operator_id, consent_id)
        if record is not None:
            found[consent_id] = _consent_record(record)
    # Current ones recorded before the number's kept consents were listed.
    for operator_id in await store.holders(value):
        current = await store.current(operator_id, value)
        if current is not None and current["consent_id"] not in found:
            found[current["consent_id"]] = _consent_record(current)
    listed = sorted(found.values(), key=lambda c: (str(c["recorded_at"]), str(c["operator"])))
    return {"number": f"+{value}", "consents": listed}


@router.get("/v1/complaints/{complaint_id}")
async def read_complaint(complaint_id: str, request: Request, _: AdminKey) -> dict[str, object]:
    """One complaint as received, while it is kept: the record the report only counts."""
    services = request.app.state.services
    record = None
    if is_complaint_id(complaint_id):
        record = await ComplaintStore(services.redis, services.settings.retention_days).get(
            complaint_id
        )
    if record is None:
        raise ApiError(404, "complaint_not_found", f"no complaint {complaint_id[:64]!r} is kept")
    return dict(record)


@router.get("/v1/stats")
async def registry_stats(request: Request, _: AdminKey) -> dict[str, object]:
    """Exact figures, cheap at 10 million numbers: one SCARD per bucket, nothing walked."""
    services = request.app.state.services
    redis = services.redis
    by_role = await stats.operators(redis)
    complaints = ComplaintStore(redis, services.settings.retention_days)
    return {
        "registered": await stats.registered(redis),
        "registry_version": await stats.version(redis),
        "operators": {"active": sum(by_role.values()), "by_role": by_role},
        "complaints": await complaints.kept(),
        "complaints_open": await complaints.open_count(),
        "scrub_receipts": await services.receipts.kept(),
        "retention_days": services.settings.retention_days,
    }


@router.get("/v1/audit")
async def audit_trail(
    request: Request,
    _: AdminKey,
    since: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000), params.DIGITS] = 100,
) -> dict[str, object]:
    """Audit entries after `since` (from the oldest kept without it); `next` resumes."""
    try:
        entries, cursor = await request.app.state.services.audit.since(since or None, limit)
    except audit.CursorError as exc:
        raise ApiError(400, "invalid_cursor", str(exc)) from None
    return {
        "entries": [
            {
                **e.fields,
                "id": e.id,
                "at": params.iso(e.at_ms / 1000),
                "action": e.action,
                "actor": e.actor,
            }
            for e in entries
        ],
        "next": cursor or "0",
    }

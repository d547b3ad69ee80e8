"""Operator consents: POST /v1/consents records one, GET /v1/consents/{number} reads the
current one back with its evidence, DELETE /v1/consents/{number} withdraws it.

A live consent from a number makes it callable for the operator that holds it,
whatever the number's registration blocks (CONTRACT section 3), on the channels and
for the categories it was given for (all of them unless it names some). Consent must be
explicit and provable, so the evidence is required and kept with the record
DNC_RETENTION_DAYS after the consent ends (registry/store/consents.py).
"""

from __future__ import annotations

import itertools
import json
import re
import unicodedata
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from registry import rules
from registry.api import params
from registry.api.auth import OperatorKey
from registry.api.errors import ApiError
from registry.api.responses import JSON
from registry.api.scrub import read_body
from registry.store.consents import ConsentStore, PredatesOptOut

if TYPE_CHECKING:
    from registry.api.app import Services

router = APIRouter(tags=["operators"])

# Serialized evidence a consent may carry: a form's fields, a recording's reference, a
# signature's hash. Bulk (the recording itself, a scanned form) belongs elsewhere.
MAX_EVIDENCE_BYTES = 16 * 1024
MAX_BODY_BYTES = 32 * 1024


class ConsentBody(BaseModel):
    """A consent to record. `evidence` is a JSON object that must hold `method` (how it
    was given: `web_form`, `sms`, `ivr`, `recorded_call`, `written`) and `text` (the
    wording the subscriber agreed to) or `reference` (where the proof is kept: a form
    submission id, a recording id), and may hold `given_at` (when, ISO-8601) and the
    operator's own fields.
    `channels` and `categories` limit it to what the subscriber agreed to (default:
    every channel, every category)."""

    model_config = ConfigDict(extra="forbid")

    number: StrictStr  # any length: a long one is 400 invalid_number (too_long)
    region: StrictStr | None = Field(default=None, max_length=8)
    evidence: dict[str, Any]
    expires_at: StrictStr | None = Field(default=None, max_length=64)
    channels: list[StrictStr] | None = Field(default=None, max_length=2)
    categories: list[StrictInt] | None = Field(default=None, max_length=8)


def _body(raw: bytes) -> ConsentBody:
    try:
        return ConsentBody.model_validate_json(raw)
    except ValidationError as exc:
        problems = [
            {"where": ".".join(str(p) for p in e["loc"]) or "body", "problem": e["msg"]}
            for e in exc.errors()
        ]
        first = problems[0]
        raise ApiError(
            400,
            "invalid_request",
            f"{first['where']}: {first['problem']}; send "
            '{"number": "+12125551234", "evidence": {"method": "web_form", "text": ...}}',
            {"problems": problems},
        ) from None


# How far ahead of the server's clock a `given_at` may be: clocks drift.
CLOCK_SKEW_SECONDS = 300
# No consent to telemarketing is older than this (1990-01-01): an earlier `given_at`
# is a placeholder or a mistake, not evidence.
EARLIEST_GIVEN_AT = 631152000
# Methods that say the subscriber did not actively agree (PIPL art. 14: consent is an
# informed, voluntary and explicit act; silence, inactivity or a box ticked in advance
# is none; nor is a list someone else gathered, an enrolment the operator made, records
# moved over from another system, or the "soft opt-in" of an earlier purchase),
# compared lower case with everything but letters dropped. Each word of the method is
# compared, and each two and three words run together ("opt out", "no consent", "soft
# opt in"), so "IMPLIED CONSENT" and "inferred from purchase" are refused as "implied" is.
NOT_EXPLICIT = frozenset(
    {"implied", "implicit", "inferred", "assumed", "presumed", "default", "optout", "silence",
     "pretickedbox", "preticked", "prechecked", "precheckedbox", "inactivity", "noreply",
     "noconsent", "none", "unknown", "purchased", "bought", "rented", "scraped",
     "legitimateinterest", "deemed",
     "thirdparty", "thirdparties", "partner", "partners", "affiliate", "affiliates",
     "leadgen", "leadlist", "databroker", "broker", "brokered", "listbroker", "appended",
     "auto", "automatic", "automatically", "autoenrolled", "autoenrolment",
     "autoenrollment", "autoenrol", "autoenroll", "autosubscribed", "autooptin",
     "imported", "import", "migrated", "migration", "transferred",
     "softoptin", "softopt", "existingcustomer", "previouscustomer", "ebr",
     "businessrelationship", "preselected",
     # Never asked, or not given: "not obtained", "customer did not object".
     "notobtained", "notasked", "notgiven", "notrecorded", "noobjection", "didnotobject",
     "notobject", "notobjected", "unspecified", "notapplicable", "tacit", "passive",
     # Lists from elsewhere: rented, bought from a vendor, taken over with a business.
     "rental", "listrental", "datavendor", "listvendor", "leadvendor", "vendorlist",
     "inherited"}
)  # fmt: skip
# Whole methods that say nothing of how: "no", "N/A".
NOT_EXPLICIT_WHOLE = frozenset({"no", "na", "nil", "null", "tbd", "tba", "nope", "x"})
# The same in Chinese, matched anywhere in the method: 默认 default, 默示 implied, 推定
# presumed, 第三方 third party, 导入 imported, 购买 purchased, 自动 automatic, 默许 tacit,
# 未同意 not agreed, 未经 without (consent), 未获/未取得 not obtained, 不详/未知 unknown,
# 合作方 partner, 租用 rented, 购得/购入 bought, 数据商 data vendor, 沉默 silence, 勾选 a
# box ticked (预先勾选, 默认勾选); with their traditional forms (默認, 預設, 導入, 購買, 自動).
NOT_EXPLICIT_CJK = (
    "默认", "默示", "推定", "第三方", "导入", "购买", "自动", "默许", "未同意", "未经", "未获",
    "未取得", "不详", "未知", "合作方", "租用", "购得", "购入", "数据商", "沉默", "预先勾选",
    "預先勾選", "默認", "預設", "導入", "購買", "自動", "默許", "未經", "不詳", "購得", "數據商",
)  # fmt: skip
# A method that is only this is no method: 无/無 none, 否 no.
NOT_EXPLICIT_CJK_WHOLE = frozenset({"无", "無", "否", "没有", "沒有"})
# Letters that show nothing (fillers), on top of spaces, controls and format characters.
_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _visible(value: object) -> bool:
    """Text with something to read: a letter, digit, mark of punctuation or symbol, not
    only spaces, zero-width or control characters."""
    return isinstance(value, str) and any(
        unicodedata.category(c)[0] in "LNPS" and c not in _INVISIBLE for c in value
    )


def _not_explicit(method: str) -> bool:
    # Width and zero-width characters folded away first: "ｉｍｐｌｉｅｄ" and
    # "im\u200bplied" are "implied".
    folded = "".join(
        c for c in unicodedata.normalize("NFKC", method) if unicodedata.category(c) != "Cf"
    )
    if any(word in folded for word in NOT_EXPLICIT_CJK):
        return True
    if folded.strip() in NOT_EXPLICIT_CJK_WHOLE or not any(c.isalpha() for c in folded):
        return True  # no method, or one without a word in it ("?", "-", "0")
    words = re.findall(r"[a-z]+", folded.lower())
    if "".join(words) in NOT_EXPLICIT_WHOLE:
        return True
    said = {
        *words,
        *(a + b for a, b in itertools.pairwise(words)),
        *(a + b + c for a, b, c in zip(words, words[1:], words[2:], strict=False)),
        "".join(words),
    }
    return not said.isdisjoint(NOT_EXPLICIT)


class Evidence(NamedTuple):
    text: str  # as stored: the JSON sent
    given_at: float | None  # unix seconds, when the evidence says


def _evidence(evidence: dict[str, Any]) -> Evidence:
    if not evidence:
        raise ApiError(
            400,
            "invalid_evidence",
            "evidence is empty; say how the subscriber consented and to what, e.g. "
            '{"method": "web_form", "reference": "form-8812", "given_at": "2026-01-31T12:00:00Z"}',
            {"field": "evidence"},
        )
    # Kept as proof, so stored exactly as sent or refused: orjson would write NaN and
    # Infinity (which Python's JSON reader lets through) as null, and refuses integers
    # past 64 bits.
    try:
        json.dumps(evidence, allow_nan=False)
        text = orjson.dumps(evidence).decode()
    except (ValueError, TypeError):
        raise ApiError(
            400,
            "invalid_evidence",
            "evidence holds a number JSON cannot keep exactly (NaN, Infinity, or an integer "
            "past 64 bits); send such values as strings",
        ) from None
    if len(text.encode()) > MAX_EVIDENCE_BYTES:
        raise ApiError(
            413,
            "evidence_too_large",
            f"the evidence is over {MAX_EVIDENCE_BYTES} bytes as JSON; "
            "keep a reference to large proof (a recording, a scan) instead",
            {"limit_bytes": MAX_EVIDENCE_BYTES},
        )
    return Evidence(text, _expected_fields(evidence))


def _invalid(field: str, problem: str) -> ApiError:
    return ApiError(400, "invalid_evidence", f"evidence.{field} {problem}", {"field": field})


def _has_content(value: object) -> bool:
    """Something to read anywhere in the evidence: visible text, a number, a yes."""
    if isinstance(value, dict):
        return any(_has_content(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_content(v) for v in value)
    if isinstance(value, bool):
        return value
    return isinstance(value, int | float) or _visible(value)


def _expected_fields(evidence: dict[str, Any]) -> float | None:
    """What a consent's evidence must show (the MIIT draft, art. 19: it is kept to prove
    an explicit consent). The contract names none of its fields, so an operator may keep
    its proof in its own words ({"type": "recorded_call", "ref": "rec-1"}); but it must
    hold something to read, not only blanks, nulls and empty objects. The fields the
    README suggests are checked where sent: `method`, `text` and `reference` must be
    text with something to read, `method` an explicit act of the subscriber's, and
    `given_at` a time not in the future (a consent given tomorrow proves nothing
    today) nor before 1990. Returns `given_at` in unix seconds, if given.

    Undated evidence cannot undo an opt-out (registry/store/consents.py)."""
    if not _has_content(evidence):
        raise ApiError(
            400,
            "invalid_evidence",
            "evidence holds nothing to read (only blanks, nulls or empty objects): say how "
            'the subscriber consented and to what, e.g. {"method": "web_form", '
            '"reference": "form-8812"}',
            {"field": "evidence"},
        )
    for name in ("method", "text", "reference"):
        if name in evidence and not _visible(evidence[name]):
            raise _invalid(name, "must be text with something to read, not blank")
    method = evidence.get("method")
    if method is not None and _not_explicit(method):
        raise ApiError(
            400,
            "consent_not_explicit",
            f"evidence.method {method[:64]!r} is no explicit consent: only the subscriber's "
            "own act counts (a form they filled in, a text or call in which they agreed, "
            "a signature), not silence, a default, a box ticked in advance, a list from "
            "someone else, an enrolment or an import",
            {"field": "method"},
        )
    if "given_at" not in evidence:
        return None
    raw = evidence["given_at"]
    when = None
    if isinstance(raw, str) and len(raw) <= 64:
        try:
            when = datetime.fromisoformat(raw.strip().upper())
        except ValueError:
            when = None
    if when is None:
        raise _invalid("given_at", "must be an ISO-8601 time, e.g. 2026-01-31T12:00:00Z")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        given = when.timestamp()
    except (OverflowError, ValueError):
        given = float("inf")
    if given > datetime.now(UTC).timestamp() + CLOCK_SKEW_SECONDS:
        raise _invalid("given_at", f"{raw[:64]!r} is in the future")
    if given < EARLIEST_GIVEN_AT:
        raise _invalid("given_at", f"{raw[:64]!r} is before 1990: not a real time")
    return given


def _scope(body: ConsentBody) -> int:
    try:
        return rules.parse_scope(body.channels, body.categories)
    except rules.PreferenceError as exc:
        raise ApiError(
            400,
            "invalid_scope",
            f"{exc}; leave channels and categories out for a consent to every channel and category",
        ) from None


def scope_fields(record: dict[str, str]) -> dict[str, object]:
    """A kept record's `channels` and `categories` (null: every category)."""
    channels, categories = rules.scope_parts(int(record.get("scope") or rules.EVERYTHING))
    return {"channels": channels, "categories": categories}


def _expires_at(raw: str | None, now: float) -> int | None:
    """An ISO-8601 time in the future, as epoch seconds; a time without a zone is UTC."""
    if raw is None:
        return None
    try:
        when = datetime.fromisoformat(raw.strip().upper())  # RFC 3339: t and z too
    except ValueError:
        raise ApiError(
            400,
            "invalid_expires_at",
            f"expires_at {raw!r} is not an ISO-8601 time; send e.g. 2027-01-31T00:00:00Z",
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        when = when.astimezone(UTC)  # 9999-12-31T23:59:59-01:00 is past what a datetime holds
    except OverflowError:
        raise ApiError(
            400,
            "invalid_expires_at",
            f"expires_at {raw!r} is outside the years 1 to 9999 in UTC",
        ) from None
    seconds = int(when.timestamp())
    if seconds <= now:
        raise ApiError(
            400,
            "invalid_expires_at",
            f"expires_at {raw!r} is not in the future; leave it out for a consent "
            "that lasts until it is withdrawn",
        )
    return seconds


async def end_on_opt_out(services: Services, value: int, actor: str, source: str) -> int:
    """End every operator's live consent from a number its subscriber just opted out
    (registered, by code, through a carrier, or by an opt-out text): consents recorded
    before the opt-out no longer count, and the operators see `withdrawn_by:
    opt_out:SOURCE` on the record. Each is a `consent.withdrawn` in the audit trail."""
    store = ConsentStore(services.redis, services.settings.retention_days)
    withdrawn_by = f"opt_out:{source}"
    ended = await store.end_for_opt_out(value, withdrawn_by)
    await audit_withdrawals(
        services, actor, withdrawn_by, [(value, op, consent) for op, consent in ended]
    )
    return len(ended)


async def audit_withdrawals(
    services: Services, actor: str, withdrawn_by: str, ended: list[tuple[int, str, str]]
) -> None:
    """A `consent.withdrawn` entry for each (number, operator, consent id) ended."""
    for number, operator_id, consent_id in ended:
        await services.audit.record(
            "consent.withdrawn",
            actor,
            consent_id=consent_id,
            number=f"+{number}",
            operator=operator_id,
            withdrawn_by=withdrawn_by,
        )


def _store(request: Request) -> ConsentStore:
    services = request.app.state.services
    return ConsentStore(services.redis, services.settings.retention_days)


@router.post(
    "/v1/consents",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ConsentBody.model_json_schema()}},
        }
    },
)
async def record_consent(request: Request, operator: OperatorKey) -> JSON:
    """Record a subscriber's consent: the number becomes callable for this operator."""
    services = request.app.state.services
    body = _body(await read_body(request, MAX_BODY_BYTES))
    value = params.number(body.number, params.region(body.region, services.settings.default_region))
    params.check_prefix(operator, value)
    evidence = _evidence(body.evidence)
    scope = _scope(body)
    now = datetime.now(UTC).timestamp()
    expires_at = _expires_at(body.expires_at, now)
    try:
        consent = await _store(request).record(
            operator.id, value, evidence.text, expires_at, scope, evidence.given_at
        )
    except PredatesOptOut as exc:
        # The opt-out (a registration is one) is the subscriber's later word: it ended
        # every consent given before it.
        when = params.iso(exc.opted_out_at)
        said = (
            "this evidence was given before it"
            if evidence.given_at is not None
            else "this evidence says not when it was given and the opt-out ended your consent"
        )
        raise ApiError(
            409,
            "consent_predates_opt_out",
            f"the subscriber opted out of calls at {when} (registered the number, or an "
            f"opt-out text), and {said} (evidence.given_at): ask again, and record the "
            f"consent given since with its given_at, after {when}",
            {"opted_out_at": when, "field": "given_at"},
        ) from None
    covered = scope_fields({"scope": str(scope)})
    await services.audit.record(
        "consent.recorded",
        operator.id,
        consent_id=consent.consent_id,
        number=f"+{value}",
        # The one it ended: its record stays DNC_RETENTION_DAYS, found by this id.
        supersedes=consent.supersedes,
        expires_at=params.iso(expires_at),
        channels=",".join(covered["channels"]),  # type: ignore[arg-type]
        categories=(
            "all" if covered["categories"] is None else ",".join(map(str, covered["categories"]))  # type: ignore[call-overload]
        ),
    )
    return JSON(
        {
            "consent_id": consent.consent_id,
            "number": f"+{value}",
            "recorded_at": params.iso(consent.recorded_at),
        },
        status_code=201,
    )


@router.get("/v1/consents/{number}")
async def read_consent(
    number: str, request: Request, operator: OperatorKey, region: str | None = None
) -> dict[str, object]:
    """The operator's current consent from a number, with its evidence: live, or past
    its `expires_at` (then `live` is false). 404 when there is none, or it was withdrawn."""
    services = request.app.state.services
    value = params.number(number, params.region(region, services.settings.default_region))
    params.check_prefix(operator, value)
    record = await _store(request).current(operator.id, value)
    if record is None:
        raise ApiError(404, "consent_not_found", f"you hold no current consent from +{value}")
    expires_at = int(record["expires_at"]) if "expires_at" in record else None
    now = datetime.now(UTC).timestamp()
    return {
        "consent_id": record["consent_id"],
        "number": f"+{value}",
        "recorded_at": params.iso(int(record["recorded_at"])),
        "expires_at": params.iso(expires_at),
        "live": expires_at is None or expires_at > now,
        **scope_fields(record),
        "evidence": orjson.loads(record["evidence"]),
    }


@router.delete("/v1/consents/{number}")
async def withdraw_consent(
    number: str, request: Request, operator: OperatorKey, region: str | None = None
) -> dict[str, object]:
    """Withdraw the operator's live consent from a number; its record and evidence stay
    DNC_RETENTION_DAYS. Under its prefixes or not: an operator can always end its own
    consent (one recorded under a prefix it has since given up, say)."""
    services = request.app.state.services
    value = params.number(number, params.region(region, services.settings.default_region))
    ended = await _store(request).withdraw(operator.id, value, operator.id)
    if ended is None:
        raise ApiError(
            404, "consent_not_found", f"you hold no live consent from +{value} to withdraw"
        )
    consent_id, at = ended
    await services.audit.record(
        "consent.withdrawn", operator.id, consent_id=consent_id, number=f"+{value}"
    )
    return {"consent_id": consent_id, "number": f"+{value}", "withdrawn_at": params.iso(at)}

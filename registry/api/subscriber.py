"""Subscriber endpoints (no key): registration and deregistration by one-time code,
and the public status check of one number.

A subscriber proves they hold the number with a six-digit code sent to it
through DNC_NOTIFIER (registry/notifier.py): ask for a code (202), then confirm
it within `expires_in` seconds. Codes cost money and can be used to harass a
number, so code requests are rate-limited per client address and per number.
Pending requests live in Redis (registry/store/requests.py), so any worker can
confirm a code another worker sent.

Without a key nobody may list or bulk-check numbers (CONTRACT section 7), so
the status check is rate-limited per client address across all workers.
"""

from __future__ import annotations

import logging
import time
import unicodedata

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from registry import rules
from registry.api import params
from registry.api.carrier import registration_answer
from registry.api.consents import end_on_opt_out
from registry.api.errors import ApiError, log_failure, not_replicated_error
from registry.api.limits import check_status_client, client_address, rate_limited
from registry.api.responses import JSON
from registry.notifier import Message, NotifierError
from registry.store import limits
from registry.store import requests as pending
from registry.store.connect import answered
from registry.store.requests import (
    PendingRequest,
    RequestStore,
    client_limit_key,
    number_day_limit_key,
    number_limit_key,
)

log = logging.getLogger("dnc.api")
router = APIRouter(tags=["subscribers"])
CODE_WINDOW_MS = 3_600_000
DAY_MS = 86_400_000
SOURCE = "subscriber:code"
ACTOR = "subscriber"


class RegistrationRequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: str  # any length: a long one is 400 invalid_number (too_long), as in a path
    region: str | None = Field(default=None, max_length=8)
    channels: list[str] | None = Field(default=None, max_length=2)
    # Strict: pydantic would otherwise read `true` as category 1 and "3" as 3.
    allow_categories: list[StrictInt] | None = Field(default=None, max_length=8)


class DeregistrationRequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: str  # any length: a long one is 400 invalid_number (too_long), as in a path
    region: str | None = Field(default=None, max_length=8)


class ConfirmBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(max_length=32)


def _store(request: Request) -> RequestStore:
    services = request.app.state.services
    return RequestStore(services.redis, services.settings.code_ttl_seconds)


# Anyone may ask for a number's codes and use them up; a refusal for the number names the
# way its owner can still take, which needs no code: the opt-out keyword doing the same.
OTHER_WAY = {
    pending.REGISTRATION: "text STOP from that phone to your carrier's opt-out number, "
    "which registers it with no code",
    pending.DEREGISTRATION: "text START from that phone to your carrier's opt-out number, "
    "which takes it off the registry with no code",
}


async def _check_code_limits(request: Request, number: int, kind: str) -> list[str]:
    """Count one code of `kind` against the client address, then the number; 429 past
    either. Returns the number's counters, which a code that never goes out gives back."""
    services = request.app.state.services
    settings = services.settings
    address = client_address(request)
    windows = [
        (client_limit_key(address), settings.codes_per_client_per_hour, "address", CODE_WINDOW_MS),
        (number_limit_key(number), settings.codes_per_number_per_hour, "number", CODE_WINDOW_MS),
        # A day's cap too: guessing a number's codes (five tries each) to deregister it, or
        # flooding its owner with texts, goes no faster than this.
        (number_day_limit_key(number), settings.codes_per_number_per_day, "number", DAY_MS),
    ]
    for key, limit, scope, window_ms in windows:
        hit = await limits.hit(services.redis, key, limit, window_ms)
        if not hit.allowed:
            span = "an hour" if window_ms == CODE_WINDOW_MS else "a day"
            message = f"at most {limit} codes {span} for one {scope}; retry in {hit.retry_after} s"
            if scope == "number":  # someone else may have asked for them: there is another way
                message += f", or {OTHER_WAY[kind]}"
                raise rate_limited(hit, message, window_ms // 1000, per=scope, request=kind)
            raise rate_limited(hit, message, window_ms // 1000, per=scope)
    return [key for key, _, scope, _ in windows if scope == "number"]


async def _give_back(request: Request, counted: list[str]) -> None:
    """A code that did not go out does not count against its number: someone asking
    while the gateway is down would otherwise use up the owner's codes for the hour.
    The address keeps its count (the requests were made)."""
    redis = request.app.state.services.redis
    for key in counted:
        try:
            await limits.refund(redis, key)
        except Exception as exc:  # noqa: BLE001 - the request fails anyway; say why it did
            log.warning("code limit not given back: %s", exc)


def _code_text(code: str, action: str, number: int, ttl: int) -> str:
    """The code's text message: in Chinese to a Chinese (+86) number, whose owner also
    gets the opt-out replies in Chinese, else in English."""
    if str(number).startswith("86"):
        lasts_zh = f"{ttl // 60}分钟" if ttl >= 120 else f"{ttl}秒"
        what = "加入" if action == "register" else "退出"
        return (
            f"【拒收名单】验证码{code}，用于{what}拒收名单（号码+{number}），{lasts_zh}内有效。"
            "如非本人操作，请忽略本短信。"
        )
    lasts = f"{ttl // 60} minutes" if ttl >= 120 else f"{ttl} seconds"
    return (
        f"{code} is your code to {action} +{number} on the do-not-call registry. "
        f"It expires in {lasts}. If you did not ask for it, ignore this message."
    )


async def _send_code(
    request: Request, kind: str, number: int, prefs: rules.Preferences, action: str
) -> JSON:
    """Open a request, send its code, answer 202; a code that cannot go out voids it (503)."""
    services = request.app.state.services
    counted = await _check_code_limits(request, number, kind)
    store = _store(request)
    opened, code = await store.open(kind, number, prefs)
    if services.replication is not None:
        # Before the text goes out: a request the replicas may lose sends no code.
        try:
            await services.replication.wait()
        except Exception as exc:  # noqa: BLE001 - not acknowledged, so no code either
            log_failure(log, "code request not replicated", exc)
            await store.discard(opened.id)
            await _give_back(request, counted)
            raise not_replicated_error() from None
    message = Message.code_for(f"+{number}", code, _code_text(code, action, number, store.ttl))
    try:
        await services.notifier.send(message)
    except NotifierError as exc:
        log.warning("code not delivered: %s", exc)
        await store.discard(opened.id)
        await _give_back(request, counted)
        raise ApiError(
            503,
            "notifier_unavailable",
            "the code could not be sent to the number; try again later",
            headers={"Retry-After": "60"},
        ) from None
    return JSON({"request_id": opened.id, "expires_in": store.ttl}, status_code=202)


def _code(raw: str) -> str:
    """The six digits of a code as a person may type it (`123 456`, `123-456`, or full-width
    `１２３４５６` from a Chinese input method, which NFKC folds as the SMS keywords do)."""
    code = unicodedata.normalize("NFKC", raw).strip().replace(" ", "").replace("-", "")
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        raise ApiError(
            400, "invalid_code", "code must be the six digits sent to the number, e.g. 012345"
        )
    return code


async def _confirm(request: Request, request_id: str, kind: str, raw_code: str) -> PendingRequest:
    """The confirmed request, or the ApiError that says why not."""
    attempt = await _store(request).confirm(request_id, kind, _code(raw_code))
    again = f"ask for a new code with POST /v1/{kind}s"
    if attempt.outcome == "confirmed" and attempt.request is not None:
        return attempt.request
    if attempt.outcome == "wrong_code":
        left = attempt.tries_left
        tries = "1 try" if left == 1 else f"{left} tries"
        after = f"{tries} left" if left else f"the request is now void; {again}"
        raise ApiError(
            400, "wrong_code", f"that is not the code sent; {after}", {"tries_left": left}
        )
    if attempt.outcome == "unknown":
        raise ApiError(404, "request_not_found", f"no {kind} request {request_id[:32]!r}; {again}")
    if attempt.outcome == "busy":
        raise ApiError(
            409,
            "request_busy",
            f"this {kind} request is being confirmed right now (another tab or a second "
            "send?); send the code again in a moment to see how it ended",
        )
    why = {
        "expired": "its code expired",
        "void": "too many wrong codes were tried",
        # Most often by this very person a moment ago (a second tab, Back and send again):
        # what it did stands.
        "used": f"its code was already used, and the {kind} it confirmed stands",
    }[attempt.outcome]
    if attempt.outcome == "used":
        again = "check the number's status to see it"
    raise ApiError(
        410, f"request_{attempt.outcome}", f"this {kind} request is over: {why}; {again}"
    )


@router.post("/v1/registrations", status_code=202)
async def request_registration(body: RegistrationRequestBody, request: Request) -> JSON:
    """Send a code to the number; confirming it registers the number with these preferences."""
    services = request.app.state.services
    value = params.number(body.number, params.region(body.region, services.settings.default_region))
    try:
        prefs = rules.parse_preferences(body.channels, body.allow_categories)
    except rules.PreferenceError as exc:
        raise ApiError(400, "invalid_preferences", str(exc)) from None
    return await _send_code(request, pending.REGISTRATION, value, prefs, "register")


@router.post("/v1/registrations/{request_id}/confirm", status_code=201)
async def confirm_registration(request_id: str, body: ConfirmBody, request: Request) -> JSON:
    """Register (or change the preferences of) the number the code went to.

    Always 201, as the contract writes it; changing preferences keeps `registered_at`.
    """
    services = request.app.state.services
    confirmed = await _confirm(request, request_id, pending.REGISTRATION, body.code)
    value, prefs = confirmed.number, confirmed.preferences
    # The code is spent only once the registration is stored: a write that failed (a 503)
    # leaves it good for the next try.
    async with _store(request).confirming(confirmed):
        created, registered_at = await services.registrations.register(
            value, prefs, SOURCE, int(time.time())
        )
    await services.audit.record(
        "registration.created" if created else "registration.updated",
        ACTOR,
        number=f"+{value}",
        channels=",".join(prefs.channel_names()),
        allow_categories=",".join(str(c) for c in prefs.category_codes()),
        source=SOURCE,
    )
    await end_on_opt_out(services, value, ACTOR, SOURCE)
    answer = registration_answer(value, registered_at, prefs, services.settings.grace_days)
    return JSON(answer, status_code=201)


@router.post("/v1/deregistrations", status_code=202)
async def request_deregistration(body: DeregistrationRequestBody, request: Request) -> JSON:
    """Send a code to the number; confirming it ends its registration.

    A code goes out whether or not the number is registered: the answer must not
    tell a stranger what the rate-limited status check would.
    """
    services = request.app.state.services
    value = params.number(body.number, params.region(body.region, services.settings.default_region))
    return await _send_code(
        request, pending.DEREGISTRATION, value, rules.Preferences(), "deregister"
    )


@router.post("/v1/deregistrations/{request_id}/confirm")
async def confirm_deregistration(
    request_id: str, body: ConfirmBody, request: Request
) -> dict[str, object]:
    """End the registration of the number the code went to; a number not registered is 200 too."""
    services = request.app.state.services
    confirmed = await _confirm(request, request_id, pending.DEREGISTRATION, body.code)
    value = confirmed.number
    async with _store(request).confirming(confirmed):
        removed = await services.registrations.deregister(value, ACTOR, int(time.time()))
    if removed:
        await services.audit.record(
            "registration.removed", ACTOR, number=f"+{value}", source=SOURCE
        )
    return {"number": f"+{value}", "registered": False}


@router.get("/v1/registrations/{number}")
async def registration_status(
    number: str, request: Request, response: Response, region: str | None = None
) -> dict[str, object]:
    """Whether a number is registered; `registered_at` and `effective_at` when they are known.

    Bulk-loaded numbers have no known registration time, so both are left out for them.
    """
    services = request.app.state.services
    value = params.number(number, params.region(region, services.settings.default_region))
    # Invalid input is answered above without counting: it reveals nothing about the list.
    await check_status_client(request)
    async with answered("a status check"):
        registration = await services.registrations.get(value)
    # A number's status is about a person: no cache (a browser's, a proxy's) keeps it.
    response.headers["Cache-Control"] = "no-store"
    answer: dict[str, object] = {"number": f"+{value}", "registered": registration is not None}
    if registration is not None and registration.registered_at is not None:
        effective = int(
            rules.effective_at(registration.registered_at, services.settings.grace_days)
        )
        answer["registered_at"] = params.iso(registration.registered_at)
        answer["effective_at"] = params.iso(effective)
    return answer

"""Carrier endpoints: registrations attested through a carrier's own network."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from registry import keywords, rules
from registry.api import params
from registry.api.auth import CarrierKey
from registry.api.consents import end_on_opt_out
from registry.api.errors import ApiError
from registry.api.responses import JSON

if TYPE_CHECKING:
    from registry.api.app import Services

router = APIRouter(tags=["carriers"])


class RegistrationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: list[str] | None = Field(default=None, max_length=2)
    # Strict: pydantic would otherwise read `true` as category 1 and "3" as 3.
    allow_categories: list[StrictInt] | None = Field(default=None, max_length=8)
    source: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9_.:-]*$")
    # The region the path's number is read against, as `?region=` (the request's
    # region field, contract section 2); either place, or both when they agree.
    region: str | None = Field(default=None, max_length=16)


def registration_answer(
    value: int, registered_at: int | None, prefs: rules.Preferences, grace_days: int
) -> dict[str, object]:
    effective = (
        None if registered_at is None else int(rules.effective_at(registered_at, grace_days))
    )
    return {
        "number": f"+{value}",
        "registered_at": params.iso(registered_at),
        "effective_at": params.iso(effective),
        "channels": prefs.channel_names(),
        "allow_categories": prefs.category_codes(),
    }


@router.put("/v1/registrations/{number}")
async def put_registration(
    number: str,
    request: Request,
    operator: CarrierKey,
    body: RegistrationBody | None = None,
    region: str | None = None,
) -> JSON:
    """Register a number (201) or change its preferences (200, `registered_at` kept)."""
    services = request.app.state.services
    body = body or RegistrationBody()
    if body.region is not None:
        if region is not None and region.strip().upper() != body.region.strip().upper():
            raise ApiError(
                400,
                "invalid_region",
                f"region {region!r} in the query and {body.region!r} in the body differ; "
                "give it once",
            )
        region = body.region
    value = params.number(number, params.region(region, services.settings.default_region))
    try:
        prefs = rules.parse_preferences(body.channels, body.allow_categories)
    except rules.PreferenceError as exc:
        raise ApiError(400, "invalid_preferences", str(exc)) from None
    source = f"{operator.id}:{body.source or 'carrier'}"
    before = await services.registrations.get(value)
    created, registered_at = await services.registrations.register(
        value, prefs, source, int(time.time())
    )
    answer = registration_answer(value, registered_at, prefs, services.settings.grace_days)
    await services.audit.record(
        "registration.created" if created else "registration.updated",
        operator.id,
        number=f"+{value}",
        channels=",".join(prefs.channel_names()),
        allow_categories=",".join(str(c) for c in prefs.category_codes()),
        source=source,  # as stored with the registration, as the SMS path records it
    )
    # A new registration or new preferences are the subscriber's later word, and end the
    # consents given before; the same preferences sent again (a carrier's re-sync) are no
    # act of the subscriber's, and end none.
    if created or before is None or before.preferences != prefs:
        await end_on_opt_out(services, value, operator.id, source)
    return JSON(answer, status_code=201 if created else 200)


@router.delete("/v1/registrations/{number}")
async def delete_registration(
    number: str,
    request: Request,
    operator: CarrierKey,
    region: str | None = None,
) -> dict[str, object]:
    services = request.app.state.services
    value = params.number(number, params.region(region, services.settings.default_region))
    if not await services.registrations.deregister(value, operator.id, int(time.time())):
        raise ApiError(404, "not_registered", f"+{value} is not registered")
    await services.audit.record("registration.removed", operator.id, number=f"+{value}")
    return {"number": f"+{value}", "registered": False}


# -- inbound SMS: keywords a subscriber texted to the carrier's short code -------------------


class InboundSms(BaseModel):
    """What the carrier's SMS gateway forwards: who wrote, to which short code, what."""

    model_config = ConfigDict(extra="forbid")

    # Any length: a long or empty one is 400 invalid_number, as every number field.
    sender: str = Field(alias="from", strict=True)
    to: str = Field(min_length=1, max_length=32, strict=True)
    text: str = Field(max_length=10_000, strict=True)


@router.post("/v1/sms/inbound")
async def sms_inbound(
    body: InboundSms,
    request: Request,
    operator: CarrierKey,
    region: str | None = None,
) -> dict[str, str]:
    """Act on an opt-out keyword (STOP, 退订, START 2,5, ...) and answer the reply to send.

    Every answer is 200 with an `action` for a text the subscriber sent, understood or
    not: the carrier sends `reply` back either way. Only the envelope can be a 400.
    """
    services = request.app.state.services
    short_code = keywords.short_code(body.to)
    if short_code is None:
        raise ApiError(
            400,
            "invalid_short_code",
            f"to {body.to[:32]!r} is not a short code (3 to 15 digits) or an E.164 number",
        )
    value = params.number(body.sender, params.region(region, services.settings.default_region))
    # A text with no keyword is answered in Chinese from a Chinese number (+86).
    language = keywords.CHINESE if str(value).startswith("86") else keywords.ENGLISH
    intent = keywords.parse(body.text, language)
    action, prefs = await _act_on_keyword(services, operator.id, value, intent, short_code)
    settings = services.settings
    return {
        "action": action,
        "reply": keywords.reply(
            action,
            intent,
            settings.public_url,
            grace_days=settings.grace_days,
            channels=tuple(prefs.channel_names()),
        ),
    }


async def _act_on_keyword(
    services: Services, actor: str, value: int, intent: keywords.Intent, short_code: str
) -> tuple[str, rules.Preferences]:
    """Change the registration as the intent asks; the `action` to answer, and the
    preferences stored (the default ones when nothing was stored)."""
    now, source = int(time.time()), f"{actor}:sms"
    audit = {"number": f"+{value}", "short_code": short_code, "keyword": intent.keyword}
    if intent.kind == keywords.OPT_IN:
        removed = await services.registrations.deregister(value, source, now)
        if removed:
            await services.audit.record("registration.removed", actor, source=source, **audit)
        # Not registered is what the subscriber asked for all the same.
        return keywords.DEREGISTERED, rules.Preferences()
    if intent.kind not in (keywords.OPT_OUT, keywords.ALLOW):
        action = keywords.HELP if intent.kind == keywords.HELP else keywords.UNKNOWN
        return action, rules.Preferences()
    before = await services.registrations.get(value)
    # STOP blocks every channel; START n changes only the categories of what is blocked.
    channels = rules.ALL_CHANNELS
    if intent.kind == keywords.ALLOW and before is not None:
        channels = before.preferences.channels
    prefs = rules.parse_preferences(None, intent.categories)
    prefs = rules.Preferences(channels, prefs.allow_categories)
    created, _ = await services.registrations.register(value, prefs, source, now)
    await services.audit.record(
        "registration.created" if created else "registration.updated",
        actor,
        source=source,
        channels=",".join(prefs.channel_names()),
        allow_categories=",".join(map(str, prefs.category_codes())),
        **audit,
    )
    # A STOP, and a START n that registers the number or changes what it lets through,
    # are the subscriber's later word, as a carrier's PUT or a confirmed code: they end
    # the consents given before. The same preferences again (a second START 2) end none.
    if intent.kind == keywords.OPT_OUT or created or before is None or before.preferences != prefs:
        await end_on_opt_out(services, value, actor, source)
    # The contract's words: STOP and START 0 answer "registered" whatever was there before.
    if created or intent.kind == keywords.OPT_OUT:
        return keywords.REGISTERED, prefs
    return keywords.PREFERENCES_UPDATED, prefs

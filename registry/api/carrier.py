"""Carrier endpoints: registrations attested through a carrier's own network."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from registry import rules
from registry.api import params
from registry.api.auth import CarrierKey
from registry.api.errors import ApiError
from registry.api.responses import JSON

router = APIRouter(tags=["carriers"])


class RegistrationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: list[str] | None = Field(default=None, max_length=2)
    # Strict: pydantic would otherwise read `true` as category 1 and "3" as 3.
    allow_categories: list[StrictInt] | None = Field(default=None, max_length=8)
    source: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9_.:-]*$")


def registration_answer(
    value: int, registered_at: int | None, prefs: rules.Preferences, grace_days: int
) -> dict[str, object]:
    effective = None if registered_at is None else registered_at + grace_days * 86400
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
    value = params.number(number, params.region(region, services.settings.default_region))
    body = body or RegistrationBody()
    try:
        prefs = rules.parse_preferences(body.channels, body.allow_categories)
    except rules.PreferenceError as exc:
        raise ApiError(400, "invalid_preferences", str(exc)) from None
    source = f"{operator.id}:{body.source or 'carrier'}"
    created, registered_at = await services.registrations.register(
        value, prefs, source, int(time.time())
    )
    answer = registration_answer(value, registered_at, prefs, services.settings.grace_days)
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
    return {"number": f"+{value}", "registered": False}

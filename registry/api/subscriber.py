"""Subscriber endpoints (no key): the public status check of one number.

Without a key nobody may list or bulk-check numbers (CONTRACT section 7), so
the check is rate-limited per client address across all workers.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from registry.api import params
from registry.api.limits import check_status_client

router = APIRouter(tags=["subscribers"])


@router.get("/v1/registrations/{number}")
async def registration_status(
    number: str, request: Request, region: str | None = None
) -> dict[str, object]:
    """Whether a number is registered; `registered_at` and `effective_at` when they are known.

    Bulk-loaded numbers have no known registration time, so both are left out for them.
    """
    services = request.app.state.services
    value = params.number(number, params.region(region, services.settings.default_region))
    # Invalid input is answered above without counting: it reveals nothing about the list.
    await check_status_client(request)
    registration = await services.registrations.get(value)
    answer: dict[str, object] = {"number": f"+{value}", "registered": registration is not None}
    if registration is not None and registration.registered_at is not None:
        effective = registration.registered_at + services.settings.grace_days * 86400
        answer["registered_at"] = params.iso(registration.registered_at)
        answer["effective_at"] = params.iso(effective)
    return answer

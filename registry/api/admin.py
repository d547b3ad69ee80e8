"""Administrator endpoints: operator accounts."""

from __future__ import annotations

import re
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from registry.api.auth import AdminKey
from registry.api.errors import ApiError
from registry.api.responses import JSON

router = APIRouter(tags=["administrators"])
PREFIX = re.compile(r"^\+[1-9][0-9]{0,14}$")


class NewOperator(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    role: Literal["operator", "carrier", "admin"] = "operator"
    prefixes: list[str] = Field(default_factory=list, max_length=1000)
    rate_limit: int | None = Field(default=None, ge=1)

    @field_validator("prefixes")
    @classmethod
    def _prefixes(cls, prefixes: list[str]) -> list[str]:
        for prefix in prefixes:
            if not PREFIX.match(prefix):
                raise ValueError(f"prefix {prefix!r} must be '+' and 1 to 15 digits, like +1212")
        return prefixes


@router.post("/v1/operators", status_code=201)
async def create_operator(body: NewOperator, request: Request, _: AdminKey) -> JSON:
    """Create an account; its API key is in this answer and nowhere else, ever."""
    services = request.app.state.services
    operator, api_key = await services.operators.create(
        body.name, body.role, body.prefixes, body.rate_limit
    )
    return JSON(
        {"operator_id": operator.id, "api_key": api_key, "role": operator.role}, status_code=201
    )


@router.delete("/v1/operators/{operator_id}")
async def revoke_operator(operator_id: str, request: Request, _: AdminKey) -> dict[str, object]:
    services = request.app.state.services
    if not await services.operators.revoke(operator_id):
        raise ApiError(404, "operator_not_found", f"no active operator {operator_id!r}")
    services.auth.forget(operator_id)
    return {"operator_id": operator_id, "revoked": True}

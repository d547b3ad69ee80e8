"""The terms of an operator account, as an administrator states them.

What the prefixes it may scrub and download are, the numbers it calls and texts from
(a complaint's caller names the account) and its rate limit: the rules of
`POST /v1/operators` and `PATCH /v1/operators/{id}`, which `dnc operators create` and
`dnc export --prefix` apply too, so that the command line and the API refuse the same
accounts with the same words.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from registry import complaints as complaint_rules
from registry.store.operators import audited_terms

PREFIX = re.compile(r"^\+[1-9][0-9]{0,14}$")
MAX_RATE_LIMIT = 1_000_000
NO_REGION = "ZZ"  # phonenumbers' unknown region: only numbers with a country code parse


class NewOperator(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Strict: pydantic would otherwise take "5" and true (as 1) for a rate limit.
    name: StrictStr = Field(min_length=1, max_length=200)
    role: Literal["operator", "carrier", "admin"]
    # Absent: every number. An empty list is refused, not read as that: a script's filter
    # that came back empty must not hand out the whole registry.
    prefixes: list[StrictStr] | None = Field(default=None, max_length=1000)
    # Requests a second; past a million it is no limit but a typo.
    rate_limit: StrictInt | None = Field(default=None, ge=1, le=MAX_RATE_LIMIT)
    # What it calls and texts from, as a complaint names a caller: the caller report then
    # names the account. Phone numbers in E.164.
    callers: list[StrictStr] = Field(default_factory=list, max_length=100)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        # Shown in reports and the audit trail: a name nobody can read names nobody.
        if not name.strip() or not name.isprintable():
            raise ValueError("name must be printable text, not blank")
        return name

    @model_validator(mode="after")
    def _admin_reaches_every_number(self) -> NewOperator:
        # The contract: an administrator key may call every endpoint of every role.
        if self.role == "admin" and self.prefixes:
            raise ValueError(
                "an administrator reaches every number; prefixes limit operators and carriers only"
            )
        return self

    @field_validator("prefixes")
    @classmethod
    def _prefixes(cls, prefixes: list[str] | None) -> list[str] | None:
        return _checked_prefixes(prefixes, "leave prefixes out")

    @field_validator("callers")
    @classmethod
    def _callers(cls, callers: list[str]) -> list[str]:
        return _counted_callers(callers)


def _checked_prefixes(prefixes: list[str] | None, for_all: str) -> list[str] | None:
    """Prefixes, each once in the order given; None (every number) stays None. An empty
    list is refused, not read as every number: a script's filter that came back empty
    must not hand out the whole registry. `for_all` says how to ask for every number."""
    if prefixes is None:
        return None
    if not prefixes:
        raise ValueError(
            f"an empty list limits nothing: name at least one prefix, or {for_all} for an "
            "account that reaches every number"
        )
    for prefix in prefixes:
        if not PREFIX.fullmatch(prefix):
            raise ValueError(f"prefix {prefix!r} must be '+' and 1 to 15 digits, like +1212")
    return list(dict.fromkeys(prefixes))


def _counted_callers(callers: list[str]) -> list[str]:
    """Callers as complaints count them, each once; a withheld one names no sender."""
    counted = []
    for raw in callers:
        try:
            # No region: a national number could be any country's, so E.164 only.
            caller = complaint_rules.caller(raw, NO_REGION)
        except complaint_rules.ComplaintError as exc:
            raise ValueError(f"{exc}; give phone numbers in E.164, like +13125550100") from None
        if caller == complaint_rules.WITHHELD:
            raise ValueError(f"caller {raw!r} names no sender: declare what the calls show")
        counted.append(caller)
    return list(dict.fromkeys(counted))


class OperatorChange(BaseModel):
    """What an administrator may change of an account: what it calls and texts from (it
    gets new numbers and sender ids), its rate limit (null: none), and its prefixes (it
    buys another area code; null: every number). Its id stays, and with it its consents,
    but those under a prefix it gives up end."""

    model_config = ConfigDict(extra="forbid")

    callers: list[StrictStr] | None = Field(default=None, max_length=100)
    rate_limit: StrictInt | None = Field(default=None, ge=1, le=MAX_RATE_LIMIT)
    prefixes: list[StrictStr] | None = Field(default=None, max_length=1000)

    @field_validator("prefixes")
    @classmethod
    def _prefixes(cls, prefixes: list[str] | None) -> list[str] | None:
        return _checked_prefixes(prefixes, "send null")

    @field_validator("callers")
    @classmethod
    def _callers(cls, callers: list[str] | None) -> list[str] | None:
        if callers is None:
            raise ValueError("callers is a list (empty for none), not null")
        return _counted_callers(callers)


def created_terms(body: NewOperator) -> dict[str, str]:
    """What a new account is subscribed to and sends from, for its `operator.created`."""
    return audited_terms(
        {"prefixes": body.prefixes, "callers": body.callers, "rate_limit": body.rate_limit}
    )

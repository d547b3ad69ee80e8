"""Parsing of the parameters many endpoints share, into domain values or an ApiError."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
from pydantic import BeforeValidator

from registry import numbers as nums
from registry import rules, scrub
from registry.api.errors import ApiError
from registry.store.operators import Operator


def _digits_only(raw: object) -> object:
    # pydantic reads "5_0" as 50 and "1.0" as 1: a typo taken for a number.
    if isinstance(raw, str) and not (raw.isascii() and raw.isdigit()):
        raise ValueError("must be a whole number in plain digits, like 100")
    return raw


# A count in a query (`limit`, `top`): plain ASCII digits, with FastAPI's own range checks.
DIGITS = BeforeValidator(_digits_only)

# Headers a request may send once: two keys, or two body types, leave the server to pick
# one, and a proxy in front may pick the other.
SINGLE_HEADERS = (b"authorization", b"content-type")


def single_headers(headers: list[tuple[bytes, bytes]]) -> None:
    """A 400 for a request that sends one of SINGLE_HEADERS twice."""
    seen: set[bytes] = set()
    for name, _ in headers:
        if name in SINGLE_HEADERS:
            if name in seen:
                raise ApiError(
                    400,
                    "repeated_header",
                    f"the {name.decode().title()} header is sent twice; send it once",
                    {"header": name.decode()},
                )
            seen.add(name)


def single_keys(body: bytes) -> None:
    """A 400 for a JSON body that names a key twice in one object ({"channels": ["sms"],
    "channels": ["voice"]} read as the last would leave texts unblocked). A body that is
    not JSON is left to its endpoint's own error."""
    if body.lstrip()[:1] not in (b"{", b"["):
        return

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        found = dict(items)
        if len(found) != len(items):
            twice = next(k for k, n in Counter(k for k, _ in items).items() if n > 1)
            raise ApiError(
                400,
                "repeated_key",
                f"the body names {twice[:32]!r} twice in one object; give each field once",
                {"key": twice[:32]},
            )
        return found

    try:
        json.loads(body, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return  # not JSON: the endpoint's own reader says why


def query(raw: bytes) -> dict[str, str]:
    """A query string as Starlette reads it (latin-1, blank values kept), each name once.

    A name given twice is a 400, not the last one silently: `channel=voice&channel=sms`
    read as sms alone could call a number whose registration blocks calls.
    """
    try:
        # No endpoint takes more than a handful: a query of thousands of names is refused
        # before it is read (parse_qsl stops at the limit).
        pairs = parse_qsl(
            raw.decode("latin-1"), keep_blank_values=True, max_num_fields=MAX_PARAMETERS
        )
    except ValueError:
        raise ApiError(
            400,
            "too_many_parameters",
            f"the query has more than {MAX_PARAMETERS} parameters; no endpoint takes so many",
        ) from None
    found = dict(pairs)
    if len(found) != len(pairs):
        # One pass: a scan per name would cost a query of n names n * n steps.
        counts = Counter(name for name, _ in pairs)
        twice = next(name for name, count in counts.items() if count > 1)
        raise ApiError(
            400,
            "repeated_parameter",
            f"{twice[:32]!r} is given {counts[twice]} times; give each parameter once",
            {"parameter": twice[:32]},
        )
    return found


MAX_PARAMETERS = 32


def region(raw: str | None, default: str) -> str:
    try:
        return nums.check_region(raw, default)
    except nums.RegionError as exc:
        raise ApiError(400, "invalid_region", str(exc)) from None


def channel(raw: str | None) -> int:
    try:
        return rules.parse_channel(raw)
    except rules.PreferenceError as exc:
        raise ApiError(400, "invalid_channel", str(exc)) from None


def category(raw: str | None) -> int | None:
    try:
        return rules.parse_category(raw)
    except rules.PreferenceError as exc:
        raise ApiError(400, "invalid_category", str(exc)) from None


def number(raw: str, region_code: str) -> int:
    """A number the caller wants to act on; invalid ones are a 400 with the reason."""
    value, reason = nums.normalize(raw, region_code)
    if reason is not None:
        raise ApiError(
            400,
            "invalid_number",
            f"{raw[:64]!r} is not a valid phone number ({reason}); send E.164 such as +12125551234",
            {"reason": reason, "input": raw[:64]},
        )
    return value


def check_prefix(operator: Operator, value: int) -> None:
    if (
        operator.prefixes
        and not nums.in_prefixes(np.array([value], dtype=np.int64), operator.prefixes)[0]
    ):
        raise ApiError(
            403,
            "prefix_not_subscribed",
            f"+{value} is outside your subscribed prefixes",
            {"prefixes": list(operator.prefixes)},
        )


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return scrub.iso(epoch)

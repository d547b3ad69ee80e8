"""Preferences, channels, categories and the callable rule (CONTRACT section 3).

Pure functions on plain values and numpy arrays; nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

from registry.store.codes import ALL_CHANNELS as ALL_CHANNELS
from registry.store.codes import ANY_CATEGORY as ANY_CATEGORY
from registry.store.codes import CATEGORIES as CATEGORIES
from registry.store.codes import CHANNELS as CHANNELS
from registry.store.codes import EVERYTHING as EVERYTHING
from registry.store.codes import SCOPE_SHIFT as SCOPE_SHIFT
from registry.store.codes import SMS as SMS
from registry.store.codes import VOICE as VOICE
from registry.store.codes import Preferences as Preferences

_ASCII_DIGITS = re.compile(r"[0-9]+")

# Scrub statuses as small ints, so a million of them fit in one numpy array.
CALLABLE, BLOCKED, INVALID = 0, 1, 2
STATUS_NAMES = ("callable", "blocked", "invalid")


class PreferenceError(ValueError):
    """Channels or categories that the registry does not know."""


def effective_at(registered_at: float, grace_days: int) -> float:
    """When a registration binds senders (CONTRACT section 3): `registered_at` plus the
    grace; a call before it is `within_grace`."""
    return registered_at + grace_days * 86400


def parse_preferences(
    channels: Iterable[str] | None, allow_categories: Iterable[int] | None
) -> Preferences:
    channel_mask = ALL_CHANNELS
    if channels is not None:
        channel_mask = 0
        for name in channels:
            if name not in CHANNELS:
                raise PreferenceError(f"channel {name!r} is not one of voice, sms")
            channel_mask |= CHANNELS[name]
        if channel_mask == 0:
            raise PreferenceError("channels must name at least one of voice, sms")
    category_mask = 0
    for code in allow_categories or ():
        category_mask |= 1 << check_category(code)
    return Preferences(channel_mask, category_mask)


def check_category(code: object) -> int:
    if isinstance(code, bool) or not isinstance(code, int) or code not in CATEGORIES:
        raise PreferenceError(f"category {code!r} is not a code from 1 to 8")
    return code


def parse_channel(name: str | None) -> int:
    """The channel bits a request asks about: no channel asks about both."""
    if name is None or name == "":
        return ALL_CHANNELS
    if name not in CHANNELS:
        raise PreferenceError(f"channel {name!r} is not one of voice, sms")
    return CHANNELS[name]


def parse_category(raw: str | int | None) -> int | None:
    if raw is None or raw == "":
        return None
    # int() would read other scripts' digits too (Arabic-Indic, full width); the API and
    # the command line take the code as written everywhere else: 0-9.
    if isinstance(raw, str) and not _ASCII_DIGITS.fullmatch(raw.strip()):
        raise PreferenceError(f"category {raw!r} is not a code from 1 to 8")
    try:
        code = int(raw)
    except (TypeError, ValueError):
        raise PreferenceError(f"category {raw!r} is not a code from 1 to 8") from None
    return check_category(code)


def parse_scope(channels: Iterable[str] | None, categories: Iterable[int] | None) -> int:
    """A consent's scope from the channels and categories it names; None: all of them.

    Consent is given for a purpose (PIPL art. 6): one to be texted about loans is no
    consent to be called about holidays.
    """
    channel_mask = parse_preferences(channels, None).channels
    if categories is None:
        category_mask = ANY_CATEGORY
    else:
        category_mask = parse_preferences(None, categories).allow_categories
        if category_mask == 0:
            raise PreferenceError("categories must name at least one code from 1 to 8")
    return channel_mask | category_mask << SCOPE_SHIFT


def scope_parts(scope: int) -> tuple[list[str], list[int] | None]:
    """The channel names and category codes (None: every category) of a scope."""
    categories = scope >> SCOPE_SHIFT
    return (
        [name for name, bit in CHANNELS.items() if scope & bit],
        None if categories & ANY_CATEGORY else [c for c in CATEGORIES if categories & (1 << c)],
    )


def covers(scope: int, channel: int, category: int | None) -> bool:
    """Whether a consent of `scope` (0: none) answers a request about `channel` (both
    bits: a request that names none) and `category` (None: a request that names none,
    which only a consent to every category answers)."""
    if channel & ~scope & ALL_CHANNELS or not scope:
        return False
    categories = scope >> SCOPE_SHIFT
    return bool(categories & ANY_CATEGORY or (category is not None and categories >> category & 1))


def covering(scopes: np.ndarray, channel: int, category: int | None) -> np.ndarray:
    """`covers` of each scope in an array."""
    scopes = scopes.astype(np.int64)
    ok = (scopes != 0) & ((scopes & channel) == channel)
    categories = scopes >> SCOPE_SHIFT
    wanted = ANY_CATEGORY if category is None else ANY_CATEGORY | 1 << category
    return ok & ((categories & wanted) != 0)


def decide(
    registered: np.ndarray,
    channels: np.ndarray,
    allowed: np.ndarray,
    consent: np.ndarray,
    channel: int,
    category: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The callable rule for valid numbers: (status, reason index into REASONS).

    `channels` and `allowed` are the registrations' masks (ignored where not
    registered); `consent` says the requesting operator holds a live consent that
    covers the channel and category (`covering`).
    """
    n = len(registered)
    reason = np.full(n, REASON_REGISTERED, dtype=np.int8)
    blocks_channel = (channels & channel) != 0
    category_ok = np.zeros(n, dtype=bool) if category is None else (allowed & (1 << category)) != 0
    # Later assignments win, so write them from the weakest reason to the strongest.
    reason[consent] = REASON_CONSENT
    reason[category_ok] = REASON_CATEGORY_ALLOWED
    reason[~blocks_channel] = REASON_CHANNEL_NOT_BLOCKED
    reason[~registered] = REASON_NOT_REGISTERED
    status = np.where(reason == REASON_REGISTERED, BLOCKED, CALLABLE).astype(np.int8)
    return status, reason


REASONS = ("not_registered", "channel_not_blocked", "category_allowed", "consent", "registered")
(
    REASON_NOT_REGISTERED,
    REASON_CHANNEL_NOT_BLOCKED,
    REASON_CATEGORY_ALLOWED,
    REASON_CONSENT,
    REASON_REGISTERED,
) = range(len(REASONS))


def decide_one(
    registered: bool, prefs: Preferences, consent: bool, channel: int, category: int | None
) -> tuple[str, str]:
    status, reason = decide(
        np.array([registered]),
        np.array([prefs.channels]),
        np.array([prefs.allow_categories]),
        np.array([consent]),
        channel,
        category,
    )
    return STATUS_NAMES[int(status[0])], REASONS[int(reason[0])]

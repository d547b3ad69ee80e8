"""Preferences and the callable rule (CONTRACT section 3), as pure functions."""

from __future__ import annotations

import numpy as np
import pytest

from registry import rules
from registry.rules import ALL_CHANNELS, SMS, VOICE, Preferences

FULL_BLOCK = Preferences()
VOICE_ONLY = Preferences(channels=VOICE)
SMS_ONLY = Preferences(channels=SMS)
ALLOWS_3_AND_5 = Preferences(allow_categories=(1 << 3) | (1 << 5))


def ask(
    registered: bool,
    prefs: Preferences = FULL_BLOCK,
    channel: str | None = None,
    category: int | None = None,
    consent: bool = False,
) -> tuple[str, str]:
    return rules.decide_one(registered, prefs, consent, rules.parse_channel(channel), category)


# -- the callable rule ----------------------------------------------------------------------


@pytest.mark.parametrize("channel", [None, "voice", "sms"])
@pytest.mark.parametrize("category", [None, 1, 8])
def test_a_number_not_registered_is_callable(channel: str | None, category: int | None) -> None:
    assert ask(False, FULL_BLOCK, channel, category) == ("callable", "not_registered")


@pytest.mark.parametrize("channel", [None, "voice", "sms"])
@pytest.mark.parametrize("category", [None, *rules.CATEGORIES])
def test_a_full_block_blocks_every_channel_and_category(
    channel: str | None, category: int | None
) -> None:
    assert ask(True, FULL_BLOCK, channel, category) == ("blocked", "registered")


def test_a_channel_the_registration_does_not_block_is_callable() -> None:
    assert ask(True, VOICE_ONLY, "sms") == ("callable", "channel_not_blocked")
    assert ask(True, VOICE_ONLY, "voice") == ("blocked", "registered")
    assert ask(True, SMS_ONLY, "voice") == ("callable", "channel_not_blocked")
    assert ask(True, SMS_ONLY, "sms") == ("blocked", "registered")


@pytest.mark.parametrize("prefs", [VOICE_ONLY, SMS_ONLY, FULL_BLOCK])
def test_no_channel_asks_about_both_and_any_blocked_channel_blocks(prefs: Preferences) -> None:
    assert ask(True, prefs, None) == ("blocked", "registered")


def test_a_category_the_registration_allows_is_callable() -> None:
    assert ask(True, ALLOWS_3_AND_5, "voice", 3) == ("callable", "category_allowed")
    assert ask(True, ALLOWS_3_AND_5, "sms", 5) == ("callable", "category_allowed")
    assert ask(True, ALLOWS_3_AND_5, None, 5) == ("callable", "category_allowed")


@pytest.mark.parametrize("category", [1, 2, 4, 6, 7, 8])
def test_a_category_the_registration_does_not_allow_is_blocked(category: int) -> None:
    assert ask(True, ALLOWS_3_AND_5, "voice", category) == ("blocked", "registered")


def test_a_request_with_no_category_is_blocked_by_a_partial_block() -> None:
    assert ask(True, ALLOWS_3_AND_5, "voice", None) == ("blocked", "registered")
    assert ask(True, ALLOWS_3_AND_5, None, None) == ("blocked", "registered")


def test_a_consent_makes_a_registered_number_callable() -> None:
    assert ask(True, FULL_BLOCK, "voice", None, consent=True) == ("callable", "consent")
    assert ask(True, ALLOWS_3_AND_5, None, 2, consent=True) == ("callable", "consent")


def test_the_strongest_reason_is_reported_when_several_apply() -> None:
    # Not registered beats everything; an unblocked channel beats an allowed category,
    # which beats a consent.
    assert ask(False, FULL_BLOCK, "sms", 3, consent=True) == ("callable", "not_registered")
    both = Preferences(channels=VOICE, allow_categories=1 << 3)
    assert ask(True, both, "sms", 3, consent=True) == ("callable", "channel_not_blocked")
    assert ask(True, both, "voice", 3, consent=True) == ("callable", "category_allowed")


def test_partial_channel_and_partial_category_combine() -> None:
    prefs = Preferences(channels=SMS, allow_categories=1 << 2)
    assert ask(True, prefs, "sms", 2) == ("callable", "category_allowed")
    assert ask(True, prefs, "sms", 4) == ("blocked", "registered")
    assert ask(True, prefs, "voice", 4) == ("callable", "channel_not_blocked")
    assert ask(True, prefs, None, 4) == ("blocked", "registered")


def test_decide_on_arrays_answers_each_row_as_decide_one_does() -> None:
    rng = np.random.default_rng(5)
    n = 2000
    registered = rng.random(n) < 0.7
    channels = rng.integers(1, 4, n)
    allowed = rng.integers(0, 1 << 9, n) & ~1  # bit 0 is no category
    consent = rng.random(n) < 0.1
    for channel in (VOICE, SMS, ALL_CHANNELS):
        for category in (None, 1, 4, 8):
            status, reason = rules.decide(registered, channels, allowed, consent, channel, category)
            for i in range(0, n, 37):
                one = rules.decide_one(
                    bool(registered[i]),
                    Preferences(int(channels[i]), int(allowed[i])),
                    bool(consent[i]),
                    channel,
                    category,
                )
                assert (rules.STATUS_NAMES[status[i]], rules.REASONS[reason[i]]) == one


def test_decide_of_an_empty_batch() -> None:
    empty = np.zeros(0, dtype=bool)
    status, reason = rules.decide(
        empty, np.zeros(0, np.int64), np.zeros(0, np.int64), empty, VOICE, None
    )
    assert len(status) == len(reason) == 0


# -- preferences ----------------------------------------------------------------------------


def test_default_preferences_block_both_channels_and_allow_nothing() -> None:
    prefs = rules.parse_preferences(None, None)
    assert prefs == FULL_BLOCK and prefs.is_default
    assert prefs.channel_names() == ["voice", "sms"]
    assert prefs.category_codes() == []


def test_preferences_read_channels_and_categories() -> None:
    prefs = rules.parse_preferences(["sms"], [5, 3, 5])
    assert prefs.channel_names() == ["sms"]
    assert prefs.category_codes() == [3, 5]
    assert not prefs.is_default
    assert rules.parse_preferences(["sms", "voice"], []).is_default


@pytest.mark.parametrize(
    ("channels", "categories", "message"),
    [
        ([], None, "at least one"),
        (["fax"], None, "fax"),
        (["Voice"], None, "Voice"),
        (["voice", "email"], None, "email"),
        (None, [0], "0"),
        (None, [9], "9"),
        (None, [-1], "-1"),
        (None, [True], "True"),
        (None, ["3"], "3"),
        (None, [2.0], "2.0"),
    ],
)
def test_preferences_reject_unknown_channels_and_categories(
    channels: list[str] | None, categories: list[object] | None, message: str
) -> None:
    with pytest.raises(rules.PreferenceError, match=message):
        rules.parse_preferences(channels, categories)  # type: ignore[arg-type]


# -- request parameters ---------------------------------------------------------------------


def test_parse_channel() -> None:
    assert rules.parse_channel(None) == ALL_CHANNELS
    assert rules.parse_channel("") == ALL_CHANNELS
    assert rules.parse_channel("voice") == VOICE
    assert rules.parse_channel("sms") == SMS
    with pytest.raises(rules.PreferenceError):
        rules.parse_channel("email")


def test_parse_category() -> None:
    assert rules.parse_category(None) is None
    assert rules.parse_category("") is None
    assert rules.parse_category("3") == 3
    assert rules.parse_category(8) == 8
    for bad in ("0", "9", "x", "1.5", "-2"):
        with pytest.raises(rules.PreferenceError):
            rules.parse_category(bad)


def test_a_consents_scope_covers_the_same_requests_one_by_one_and_in_arrays() -> None:
    """Every scope a consent can have (channels, and every category or some) against
    every request: `covering` (scrubs) answers as `covers` (look-ups)."""
    scopes = [0] + [
        rules.parse_scope(names, categories)
        for names in (["voice"], ["sms"], None)
        for categories in (
            None,
            *([c for c in rules.CATEGORIES if mask >> c & 1] for mask in range(2, 512, 2)),
        )
    ]
    array = np.array(scopes, dtype=np.int16)
    for channel in (rules.VOICE, rules.SMS, rules.ALL_CHANNELS):
        for category in (None, *rules.CATEGORIES):
            one = [rules.covers(scope, channel, category) for scope in scopes]
            assert rules.covering(array, channel, category).tolist() == one
    everything = rules.parse_scope(None, None)
    assert everything == rules.EVERYTHING
    assert rules.covers(everything, rules.ALL_CHANNELS, None)
    sms_loans = rules.parse_scope(["sms"], [1])
    assert rules.covers(sms_loans, rules.SMS, 1)
    assert not rules.covers(sms_loans, rules.SMS, None)
    assert not rules.covers(sms_loans, rules.ALL_CHANNELS, 1)
    assert not rules.covers(sms_loans, rules.VOICE, 1)
    assert rules.scope_parts(sms_loans) == (["sms"], [1])
    assert rules.scope_parts(everything) == (["voice", "sms"], None)
    assert not rules.covers(0, rules.SMS, 1)

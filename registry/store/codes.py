"""How a registration's preferences and a consent's scope are written as small ints.

The store reads and writes them (a details entry's `channels|allowed`, a consent's
scope) and registry.rules decides with them: the encoding lives here, below both,
so the store never imports the domain. rules.py re-exports every name.
"""

from __future__ import annotations

from dataclasses import dataclass

VOICE = 1
SMS = 2
CHANNELS = {"voice": VOICE, "sms": SMS}
ALL_CHANNELS = VOICE | SMS
CATEGORIES = {
    1: "banking, insurance, finance",
    2: "real estate",
    3: "education",
    4: "health",
    5: "consumer goods and automobiles",
    6: "communication, broadcasting, entertainment, IT",
    7: "tourism and leisure",
    8: "food and beverages",
}


@dataclass(frozen=True)
class Preferences:
    """What a registration blocks; the default blocks every channel and category."""

    channels: int = ALL_CHANNELS
    allow_categories: int = 0  # bit c set: category c is still accepted

    @property
    def is_default(self) -> bool:
        return self.channels == ALL_CHANNELS and self.allow_categories == 0

    def channel_names(self) -> list[str]:
        return [name for name, bit in CHANNELS.items() if self.channels & bit]

    def category_codes(self) -> list[int]:
        return [c for c in CATEGORIES if self.allow_categories & (1 << c)]


# A consent's scope as one small int: channel bits low, then the category bits shifted
# by SCOPE_SHIFT, where category bit 0 stands for every category. 0 is no live consent.
SCOPE_SHIFT = 2
ANY_CATEGORY = 1
EVERYTHING = ALL_CHANNELS | ANY_CATEGORY << SCOPE_SHIFT  # a consent given without a scope

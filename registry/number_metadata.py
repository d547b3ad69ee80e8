"""The parts of `phonenumbers`' metadata that parsing and validation consult, as DFAs.

Each function answers one question phonenumbers 9.0 asks with a regex, for any
digit string, by a DFA over the digits:

- `valid_nsn`: `is_valid_number` of a national significant number (NSN) under a
  country code (`region_code_for_number`, then `_number_type_helper`);
- `general`: `_match_national_number(number, general_desc)`, the pattern alone;
- `national_prefix`: what `_maybe_strip_national_prefix_carrier_code` strips;
- `idd`: what `_maybe_strip_i18n_prefix_and_normalize` takes for an international
  prefix in front of a number written without '+';
- `length_results`: `_test_number_length`, which looks at the length alone.

Stripping is not a yes/no question: Python's `re.match` picks one match among
several by its own rules. Those patterns match short, finite sets of digit strings,
so their DFAs are built by asking `re` itself about every distinct way a number can
start (see `_match_trie`); a pattern too big for that, or a match the metadata
rewrites with a transform rule, comes out as DEFER.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneMetadata
from phonenumbers.phonenumberutil import _test_number_length

from registry import digit_automata as da
from registry.digit_automata import Dfa

# The most digits a fast-path input may have (E.164 numbers have at most 15; longer
# valid ones, up to keys.MAX_DIGITS, go to phonenumbers itself).
MAX_FAST_DIGITS = 18
_ENUMERATION_LIMIT = 5000
_TYPES = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
)

# What a prefix pattern does to a number starting with the digits read so far, as the
# label of a prefix DFA: outcome * 2 + 1 where those digits are themselves a match.
NO_MATCH = 0
DEFER = 1
STRIP = 2  # STRIP + m: the first m digits are the prefix


def outcome_of(label: int) -> int:
    return label // 2


def main_metadata(country_code: int) -> PhoneMetadata:
    """The metadata phonenumbers formats and length-checks a country code's numbers with."""
    region = phonenumbers.region_code_for_country_code(country_code)
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    if metadata is None:
        raise ValueError(f"no metadata for country code {country_code}")
    return metadata


# -- validity -------------------------------------------------------------------------------


@functools.cache
def valid_nsn(country_code: int) -> Dfa:
    """`is_valid_number` for a number with this country code, as a DFA over its NSN."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())
    if len(regions) == 1:
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, regions[0])
        return _type_valid(metadata) if metadata is not None else da.nothing()
    # region_code_for_number: the first region whose leading digits match (or, with no
    # leading digits, for which the number is valid) decides alone.
    result = da.nothing()
    for region in reversed(regions):
        metadata = PhoneMetadata.metadata_for_region(region, None)
        if metadata is None:
            continue
        valid = _type_valid(metadata)
        if metadata.leading_digits is not None:
            selected = da.with_prefix(da.compile_regex(metadata.leading_digits))
        else:
            selected = valid
        result = da.product([selected, valid, result], _choose)
    return result


def _type_valid(metadata: PhoneMetadata) -> Dfa:
    """`_number_type_helper(nsn, metadata) != UNKNOWN`."""
    names = list(_TYPES)
    if not metadata.same_mobile_and_fixed_line_pattern:
        names.append("mobile")
    typed = da.nothing()
    for name in names:
        desc = _desc_of(metadata, name)
        if not da.is_empty(desc):
            typed = desc if da.is_empty(typed) else da.product([typed, desc], _either)
    return da.product([_desc_of(metadata, "general_desc"), typed], _both)


def _desc_of(metadata: PhoneMetadata, name: str) -> Dfa:
    desc = getattr(metadata, name)
    if desc is None:
        return da.nothing()
    return _desc(desc.national_number_pattern, tuple(desc.possible_length))


@functools.cache
def _desc(pattern: str | None, possible_lengths: tuple[int, ...]) -> Dfa:
    """`_is_number_matching_desc`: one of the possible lengths, and a full match."""
    if not pattern:
        return da.nothing()
    dfa = da.compile_regex(pattern)
    if possible_lengths:
        dfa = da.product([dfa, da.lengths(possible_lengths, MAX_FAST_DIGITS)], _both)
    return dfa


def _both(a: int, b: int) -> int:
    return int(bool(a and b))


def _either(a: int, b: int) -> int:
    return int(bool(a or b))


def _choose(selected: int, valid: int, otherwise: int) -> int:
    return valid if selected else otherwise


# -- the pieces of parse() ----------------------------------------------------------------------


def general(metadata: PhoneMetadata) -> Dfa:
    """`_match_national_number(number, general_desc)`: the pattern alone, no lengths."""
    desc = metadata.general_desc
    return _general(desc.national_number_pattern if desc is not None else None)


@functools.cache
def _general(pattern: str | None) -> Dfa:
    return da.compile_regex(pattern) if pattern else da.nothing()


def length_results(metadata: PhoneMetadata) -> list[int]:
    """`_test_number_length` (a ValidationResult) for every length up to MAX_FAST_DIGITS."""
    return [int(_test_number_length("0" * n, metadata)) for n in range(MAX_FAST_DIGITS + 1)]


@dataclass(frozen=True)
class Prefix:
    """A prefix pattern as a DFA: `dfa` labels every state with the outcome for a number
    ending there (see NO_MATCH, DEFER, STRIP); `anchored` accepts the numbers that one of
    its `(...)$` branches matches in full (a transform rule rewrites those: defer)."""

    dfa: Dfa
    anchored: Dfa


def national_prefix(metadata: PhoneMetadata) -> Prefix:
    """What `_maybe_strip_national_prefix_carrier_code` finds at the start of a number."""
    return _national_prefix(
        metadata.national_prefix_for_parsing or "", metadata.national_prefix_transform_rule or ""
    )


@functools.cache
def _national_prefix(pattern: str, rule: str) -> Prefix:
    if not pattern:
        return Prefix(_constant(NO_MATCH), da.nothing())
    branches = _top_level_branches(pattern)
    anchored = [b[:-1] for b in branches if b.endswith("$")]
    plain = [b for b in branches if not b.endswith("$")]
    if any("$" in b for b in anchored + plain):
        return Prefix(_could_match(pattern), da.nothing())
    # The same regex with the anchored branches made to fail: what matches a number
    # that no `(...)$` branch takes whole. Group numbers do not change.
    rest = re.compile("|".join(b[:-1] + "(?!)" if b.endswith("$") else b for b in branches))

    def outcome(digits: str) -> int:
        if not digits:
            return NO_MATCH  # phonenumbers returns before matching an empty number
        match = rest.match(digits)
        if match is None:
            return NO_MATCH
        groups = match.groups()
        if rule and (not groups or groups[-1] is not None):
            return DEFER  # the transform rule rewrites the number
        return STRIP + match.end()

    head = da.compile_regex("|".join(plain)) if plain else da.nothing()
    trie = _match_trie(head, outcome)
    tail = da.compile_regex("|".join(anchored)) if anchored else da.nothing()
    return Prefix(trie if trie is not None else _could_match(pattern), tail)


def idd(metadata: PhoneMetadata) -> Dfa:
    """Where `_parse_prefix_as_idd` finds an international prefix (STRIP + its length)."""
    return _idd(metadata.international_prefix or "")


@functools.cache
def _idd(pattern: str) -> Dfa:
    if not pattern:
        return _constant(NO_MATCH)
    compiled = re.compile(pattern)

    def outcome(digits: str) -> int:
        match = compiled.match(digits)
        if match is None or digits[match.end() : match.end() + 1] == "0":
            return NO_MATCH  # no prefix, or one followed by 0 (country codes never are)
        return STRIP + match.end()

    trie = _match_trie(da.compile_regex(pattern), outcome)
    return trie if trie is not None else _could_match(pattern)


def _top_level_branches(pattern: str) -> list[str]:
    branches, depth, start = [], 0, 0
    for i, ch in enumerate(pattern):
        depth += (ch == "(") - (ch == ")")
        if ch == "|" and depth == 0:
            branches.append(pattern[start:i])
            start = i + 1
    branches.append(pattern[start:])
    return branches


def _match_trie(head: Dfa, outcome: Callable[[str], int]) -> Dfa | None:
    """The prefix DFA, by asking `outcome` (which runs the real regex) about every
    distinct way a number can start; None when there are too many.

    `head` accepts what the regex matches: a finite set of strings with no anchors. A
    match can only end inside the longest prefix P of the number that is a prefix of
    one of them, and the regex reads no further than one digit past P, so the outcome
    for any number is the outcome for P and that next digit.
    """
    live = alive(head)
    if not live[0]:
        return _constant(outcome(""))
    nodes = [("", 0)]  # (digits, head state); the trie of prefixes of matches
    trans: list[list[int]] = []
    labels: list[int] = []
    exits: dict[int, int] = {}  # outcome of leaving the trie -> its sink, numbered from -1
    for digits, state in nodes:
        row = []
        for digit in range(da.DIGITS):
            nxt, longer = head.trans[state][digit], digits + str(digit)
            if live[nxt]:
                if len(nodes) > _ENUMERATION_LIMIT:
                    return None
                row.append(len(nodes))
                nodes.append((longer, nxt))
            else:
                row.append(-1 - exits.setdefault(outcome(longer), len(exits)))
        trans.append(row)
        labels.append(outcome(digits) * 2 + head.labels[state])
    sinks = len(trans)
    trans = [[t if t >= 0 else sinks - 1 - t for t in row] for row in trans]
    for result, number in sorted(exits.items(), key=lambda item: item[1]):
        trans.append([sinks + number] * da.DIGITS)
        labels.append(result * 2)
    return da.minimize(Dfa(trans, labels))


def alive(dfa: Dfa) -> list[bool]:
    """Per state: whether some accepted string is still reachable from it."""
    found = [bool(label) for label in dfa.labels]
    changed = True
    while changed:
        changed = False
        for state, row in enumerate(dfa.trans):
            if not found[state] and any(found[t] for t in row):
                found[state] = changed = True
    return found


def _could_match(pattern: str) -> Dfa:
    """DEFER wherever the pattern could match at all: for patterns too big to enumerate."""
    could = da.with_prefix(da.compile_regex(pattern, relaxed=True))
    return Dfa(could.trans, [DEFER * 2 if label else NO_MATCH * 2 for label in could.labels])


def _constant(outcome: int) -> Dfa:
    return Dfa([[0] * da.DIGITS], [outcome * 2])


def futures(dfa: Dfa) -> list[frozenset[int]]:
    """Per state of a prefix DFA, every outcome a number passing through it may end with."""
    found: list[set[int]] = [set() for _ in dfa.trans]
    for state in reversed(da.forward_order(dfa)):
        found[state].add(outcome_of(dfa.labels[state]))
        for nxt in dfa.trans[state]:
            if nxt != state:
                found[state] |= found[nxt]
    return [frozenset(outcomes) for outcomes in found]

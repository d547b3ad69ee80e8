"""`phonenumbers.parse` and `is_valid_number` of a digit string, as one DFA.

For input made of ASCII digits and separators, what phonenumbers does depends on
the digit string D alone (and on whether a '+' came first), and each step of it is
a regular question about D or a suffix of D (`registry.number_metadata`): does D
start with the region's international prefix (IDD), or with its country code,
where does a national prefix end, does a suffix match the general pattern, is what
is left a valid number. A machine runs every question parse() may ask at once, in
one left-to-right pass, and labels each state with the answer for input ending
there: where the national significant number (NSN) starts in D and that it is
valid, why it is invalid, that an IDD leads the input (read the rest as '+' input),
or DEFER, for phonenumbers to answer itself.

There is one machine per region for national input and one per country code for
'+' input. The steps mirror phonenumbers 9.0: `parse` (with
`_maybe_extract_country_code` and `_maybe_strip_national_prefix_carrier_code`),
`is_valid_number` and, for invalid numbers, `is_possible_number_with_reason`.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable

from phonenumbers import PhoneMetadata, ValidationResult

from registry import digit_automata as da
from registry import number_metadata as meta
from registry.digit_automata import Dfa
from registry.machine_cache import MachineCache, default_directory
from registry.number_metadata import MAX_FAST_DIGITS, outcome_of

# Machine labels.
DEFER = 0
VALID = 1  # VALID + where the NSN starts in the digits
IDD = 32  # IDD + the length of the international prefix in front
INVALID = 64  # INVALID + one of the reasons below
TOO_SHORT, TOO_LONG, INVALID_LENGTH, INVALID_FOR_REGION = 1, 2, 3, 4
_WHY = {  # is_possible_number_with_reason of a number that is not valid
    ValidationResult.TOO_SHORT: TOO_SHORT,
    ValidationResult.TOO_LONG: TOO_LONG,
    ValidationResult.INVALID_LENGTH: INVALID_LENGTH,
}
_KEEPS_STRIPPED = (ValidationResult.IS_POSSIBLE, ValidationResult.TOO_LONG)
_MAX_NSN = 17  # phonenumbers' _MAX_LENGTH_FOR_NSN

Runs = dict[tuple[str, int], int]
Layout = tuple[tuple[str, int], ...]
Picker = Callable[[tuple[int, ...]], tuple[int, ...]]
State = tuple[int, tuple[int, ...]]  # a layout's number and the state of each of its runs


# Machines built by earlier processes (registry/machine_cache.py).
cache = MachineCache(default_directory())


@functools.cache
def national_machine(region: str) -> Dfa:
    """The machine for national input (no '+') read against `region`."""
    metadata = PhoneMetadata.metadata_for_region(region, None)
    if metadata is None or metadata.country_code is None:
        raise ValueError(f"unknown region {region!r}")
    code = metadata.country_code
    return cache.get(f"national-{region}", lambda: _built(code, metadata))


@functools.cache
def international_machine(country_code: int) -> Dfa:
    """The machine for '+' input with this country code (it reads the code's digits too)."""
    return cache.get(f"international-{country_code}", lambda: _built(country_code, None))


def _built(country_code: int, region: PhoneMetadata | None) -> Dfa:
    """The machine, or one that defers everything if the metadata has a regex beyond
    the subset `registry.digit_automata` compiles (none does in phonenumbers 9.0)."""
    try:
        return _machine(_Parse(country_code, region))
    except da.UnsupportedPattern:
        return Dfa([[0] * da.DIGITS], [DEFER])


class _Parse:
    """parse() after some digits: every sub-automaton it may consult, by where it starts.

    A run ("role", offset) reads D from `offset` on. Roles: I the IDD and C the country
    code at the start of national input; for the region's metadata (R) and the main
    metadata of its country code (M), G the general pattern, P the national prefix, T
    its `(...)$` branches; V validity of an NSN. Runs start where parse() could look:
    at 0, after the country code, and wherever a national prefix may end; a run is
    dropped as soon as parse() can no longer consult it.
    """

    def __init__(self, country_code: int, region: PhoneMetadata | None) -> None:
        self.width = len(str(country_code))
        self.national = region is not None
        main = meta.main_metadata(country_code)
        self.region = region if region is not None else main
        own = self.national and self.region.id == main.id
        self.GM, self.PM, self.TM = ("GR", "PR", "TR") if own else ("GM", "PM", "TM")
        roles = {
            "V": meta.valid_nsn(country_code),
            "GM": meta.general(main),
            "PM": meta.national_prefix(main).dfa,
            "TM": meta.national_prefix(main).anchored,
            "GR": meta.general(self.region),
            "PR": meta.national_prefix(self.region).dfa,
            "TR": meta.national_prefix(self.region).anchored,
            "I": meta.idd(self.region),
            "C": da.with_prefix(da.compile_regex(str(country_code))),
        }
        self.labels = {role: dfa.labels for role, dfa in roles.items()}
        self.futures = {role: meta.futures(roles[role]) for role in ("I", "PR", "PM")}
        self.c_alive = meta.alive(roles["C"])
        self.lengths_r = meta.length_results(self.region)
        self.lengths_m = meta.length_results(main)
        # Per digit, each role's column of targets: a step is one map() over the states.
        self.columns = {
            role: [[row[d] for row in dfa.trans] for d in range(da.DIGITS)]
            for role, dfa in roles.items()
        }
        self._layout_ids: dict[Layout, int] = {}
        self._layouts: list[tuple[Layout, list[list[list[int]]], Picker, int]] = []
        self._plans: dict[tuple[int, int, tuple[int, ...]], tuple[int, Picker, int]] = {}

    def first(self) -> State:
        layout: Layout = ()
        if self.national:
            layout = tuple((role, 0) for role in ("C", "GR", "I", "PR", "TR", "V"))
        new_layout, keep, fresh = self._plan(0, layout, (0,) * len(layout))
        return self._layout_id(new_layout), keep((0,) * (len(layout) + fresh))

    def successors(self, pos: int, layout: int, states: tuple[int, ...]) -> list[State | int]:
        """The state after each digit 0-9, or the label of the sink it certainly ends in."""
        runs, columns, watch, idd = self._layouts[layout]
        out: list[State | int] = []
        for column in columns:
            moved = tuple(map(list.__getitem__, column, states))
            if idd >= 0:
                ahead = self.futures["I"][moved[idd]]
                if len(ahead) == 1 and meta.NO_MATCH not in ahead:
                    (outcome,) = ahead
                    out.append(DEFER if outcome == meta.DEFER else IDD + outcome - meta.STRIP)
                    continue
            key = (pos + 1, layout, watch(moved))
            plan = self._plans.get(key)
            if plan is None:
                new_layout, keep, fresh = self._plan(pos + 1, runs, moved)
                plan = self._plans[key] = (self._layout_id(new_layout), keep, fresh)
            new_id, keep, fresh = plan
            out.append((new_id, keep(moved + (0,) * fresh if fresh else moved)))
        return out

    def label(self, length: int, layout: int, states: tuple[int, ...]) -> int:
        return self._finish(length, dict(zip(self._layouts[layout][0], states, strict=True)))

    def _layout_id(self, layout: Layout) -> int:
        number = self._layout_ids.get(layout)
        if number is None:
            number = self._layout_ids[layout] = len(self._layouts)
            columns = [[self.columns[role][d] for role, _ in layout] for d in range(da.DIGITS)]
            watched = [i for i, (role, _) in enumerate(layout) if role in ("C", "I", "PR", "PM")]
            idd = layout.index(("I", 0)) if ("I", 0) in layout else -1
            self._layouts.append((layout, columns, _picker(watched), idd))
        return number

    def _plan(
        self, pos: int, layout: Layout, states: tuple[int, ...]
    ) -> tuple[Layout, Picker, int]:
        """Which runs to start at `pos` and which to keep. Depends only on the layout and
        the states of the I, C and P runs, so it is worked out once for each of those."""
        started: set[str] = set()
        if pos == self.width and (
            not self.national or self.labels["C"][states[layout.index(("C", 0))]]
        ):
            started.update((self.PM, self.TM, self.GM, "V"))
            if self.national:
                started.update(("PR", "TR", "GR"))
        for (role, offset), state in zip(layout, states, strict=True):
            if role in ("PR", self.PM) and self.labels[role][state] & 1:
                started.update(self._spawned_by(role, offset))
        grown = True  # prefix runs starting here that match the empty string end here too
        while grown:
            size = len(started)
            for role in list(started):
                if role in ("PR", self.PM) and self.labels[role][0] & 1:
                    started.update(self._spawned_by(role, pos))
            grown = len(started) > size
        fresh = sorted(role for role in started if (role, pos) not in layout)
        layout += tuple((role, pos) for role in fresh)
        states += (0,) * len(fresh)
        needed = self._needed(dict(zip(layout, states, strict=True)))
        kept = [i for i, key in enumerate(layout) if key in needed]
        return tuple(layout[i] for i in kept), _picker(kept), len(fresh)

    def _spawned_by(self, role: str, offset: int) -> tuple[str, ...]:
        """The runs to start where the national prefix run (role, offset) may end."""
        roles: tuple[str, ...] = (self.GM, "V") if role == self.PM else ()
        if self.national and role == "PR" and offset == 0:
            roles += ("GR", "V")
        if self.national and role == "PR" and offset == self.width:
            roles += ("GR", self.PM, self.TM, self.GM, "V")
        return roles

    def _needed(self, runs: Runs) -> set[tuple[str, int]]:
        """The runs `_finish` may still consult, given what the prefix runs can still do."""
        needed: set[tuple[str, int]] = set()

        def ends(prefix: str, start: int) -> list[int]:
            state = runs.get((prefix, start))
            if state is None:
                return []
            ahead = self.futures[prefix][state]
            return [start + o - meta.STRIP for o in ahead if o >= meta.STRIP]

        def strip(prefix: str, anchored: str, pattern: str, start: int) -> None:
            needed.update(((prefix, start), (anchored, start), ("V", start)))
            for end in ends(prefix, start):
                needed.update(((pattern, start), (pattern, end), ("V", end)))

        if not self.national:
            strip(self.PM, self.TM, self.GM, self.width)
            return needed
        idd = runs.get(("I", 0))
        if idd is not None and self.futures["I"][idd] != {meta.NO_MATCH}:
            needed.add(("I", 0))
        needed.add(("C", 0))
        strip("PR", "TR", "GR", 0)
        if self.c_alive[runs[("C", 0)]]:
            needed.update((("GR", 0), ("PR", self.width), ("TR", self.width)))
            for start in [self.width, *ends("PR", self.width)]:
                needed.add(("GR", start))
                strip(self.PM, self.TM, self.GM, start)
        return needed

    def _finish(self, length: int, runs: Runs) -> int:
        """The label for input that ends here, after `length` digits."""
        if length < 3:
            return DEFER  # too few digits to be viable; not worth a fast path
        if not self.national:
            return self._strip(length, runs, self.width, self.PM, self.TM, self.GM, self.lengths_m)
        # _maybe_extract_country_code: an IDD first, then the country code without '+'.
        if ("I", 0) in runs:
            outcome = outcome_of(self.labels["I"][runs[("I", 0)]])
            if outcome != meta.NO_MATCH:
                return DEFER if outcome == meta.DEFER else IDD + outcome - meta.STRIP
        if length >= self.width and self.labels["C"][runs[("C", 0)]]:
            outcome = outcome_of(self._label(runs, "PR", self.width))
            if outcome == meta.DEFER or self._label(runs, "TR", self.width):
                return DEFER
            start = self.width
            if outcome >= meta.STRIP:
                end = self.width + outcome - meta.STRIP
                if not (self._label(runs, "GR", start) and not self._label(runs, "GR", end)):
                    start = end
            too_long = self.lengths_r[length] == ValidationResult.TOO_LONG
            if (not self._label(runs, "GR", 0) and self._label(runs, "GR", start)) or too_long:
                return self._strip(length, runs, start, self.PM, self.TM, self.GM, self.lengths_m)
        return self._strip(length, runs, 0, "PR", "TR", "GR", self.lengths_r)

    def _strip(
        self,
        length: int,
        runs: Runs,
        start: int,
        prefix: str,
        anchored: str,
        pattern: str,
        lengths: list[int],
    ) -> int:
        """The rest of parse() from the national number at `start`, then validation."""
        if length - start < 2:
            return INVALID + TOO_SHORT
        outcome = outcome_of(self._label(runs, prefix, start))
        if outcome == meta.DEFER or self._label(runs, anchored, start):
            return DEFER
        nsn = start
        if outcome >= meta.STRIP:
            end = start + outcome - meta.STRIP
            keep = self._label(runs, pattern, start) and not self._label(runs, pattern, end)
            if not keep and lengths[length - end] in _KEEPS_STRIPPED:
                nsn = end
        if length - nsn > _MAX_NSN:
            return INVALID + TOO_LONG
        if not self._label(runs, "V", nsn):
            return INVALID + _WHY.get(self.lengths_m[length - nsn], INVALID_FOR_REGION)
        if self.width + length - nsn > MAX_FAST_DIGITS:
            return DEFER  # valid, but the E.164 integer would not fit the fast path's int64
        return VALID + nsn

    def _label(self, runs: Runs, role: str, offset: int) -> int:
        return self.labels[role][runs[(role, offset)]]


def _machine(parse: _Parse) -> Dfa:
    """Breadth-first over the states of parse(); state 0 is the start."""
    first = (0, *parse.first())
    index = {first: 0}
    queue = [first]
    rows: list[list[int]] = []  # a state's number, or -1 - label for that label's sink
    labels: list[int] = []
    for pos, layout, states in queue:
        row = []
        ahead = parse.successors(pos, layout, states) if pos < MAX_FAST_DIGITS else [DEFER] * 10
        for moved in ahead:
            if isinstance(moved, int):
                row.append(-1 - moved)
                continue
            key = (pos + 1, *moved)
            number = index.get(key)
            if number is None:
                number = index[key] = len(queue)
                queue.append(key)
            row.append(number)
        rows.append(row)
        labels.append(parse.label(pos, layout, states))
    sink_labels = sorted({-1 - t for row in rows for t in row if t < 0})
    sink = {label: len(rows) + i for i, label in enumerate(sink_labels)}
    trans = [[t if t >= 0 else sink[-1 - t] for t in row] for row in rows]
    for label in sink_labels:
        trans.append([sink[label]] * da.DIGITS)
        labels.append(label)
    return da.minimize(Dfa(trans, labels))


def _picker(indices: list[int]) -> Picker:
    """A fast function from a tuple to the tuple of its items at `indices`."""
    if len(indices) >= 2:
        return operator.itemgetter(*indices)  # type: ignore[return-value]
    if len(indices) == 1:
        (only,) = indices
        return lambda items: (items[only],)
    return lambda items: ()

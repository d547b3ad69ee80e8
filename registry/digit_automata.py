"""Deterministic automata over the ten digits, compiled from `phonenumbers`' metadata regexes.

The metadata decides validity with regular expressions that use a small subset of
the syntax: digits, `\\d`, `[...]` classes and ranges, groups, `|`, `?`, `{n}` and
`{n,m}`. Every one of them describes a finite set of digit strings, so each compiles
to a small DFA; products of DFAs then answer whole questions ("does this national
number match the general pattern and one of the type patterns?") in one pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

DIGITS = 10
_ALL_DIGITS = (1 << DIGITS) - 1
_BITS = [[d for d in range(DIGITS) if mask >> d & 1] for mask in range(1 << DIGITS)]


class UnsupportedPattern(ValueError):
    """A regex uses syntax outside the subset compiled here."""


class Dfa:
    """A complete DFA over 0-9 with start state 0; `labels` is what each state means at the end.

    Labels are small ints: 0/1 for plain acceptance, or codes a caller defines.
    """

    __slots__ = ("trans", "labels")

    def __init__(self, trans: list[list[int]], labels: list[int]) -> None:
        self.trans = trans
        self.labels = labels

    def __len__(self) -> int:
        return len(self.trans)

    def run(self, digits: str, state: int = 0) -> int:
        for ch in digits:
            state = self.trans[state][ord(ch) - 48]
        return state

    def label(self, digits: str) -> int:
        return self.labels[self.run(digits)]


# -- parsing --------------------------------------------------------------------------------

# AST: ("set", mask) | ("cat", [nodes]) | ("alt", [nodes]) | ("rep", node, lo, hi)
Node = tuple


class _Parser:
    def __init__(self, text: str, relaxed: bool) -> None:
        self.text = text
        self.pos = 0
        self.relaxed = relaxed

    def parse(self) -> Node:
        node = self._alt()
        if self.pos != len(self.text):
            raise UnsupportedPattern(f"unexpected {self.text[self.pos]!r} in {self.text!r}")
        return node

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _take(self) -> str:
        ch = self._peek()
        if not ch:
            raise UnsupportedPattern(f"unexpected end of {self.text!r}")
        self.pos += 1
        return ch

    def _alt(self) -> Node:
        branches = [self._cat()]
        while self._peek() == "|":
            self.pos += 1
            branches.append(self._cat())
        return branches[0] if len(branches) == 1 else ("alt", branches)

    def _cat(self) -> Node:
        items = []
        while self._peek() not in ("", "|", ")"):
            items.append(self._repeat())
        return ("cat", items)

    def _repeat(self) -> Node:
        node = self._atom()
        while self._peek() in ("?", "{"):
            if self._take() == "?":
                node = ("rep", node, 0, 1)
                continue
            end = self.text.index("}", self.pos)
            low, comma, high = self.text[self.pos : end].partition(",")
            self.pos = end + 1
            if not low.isdigit() or not (high.isdigit() or not comma):  # {n,} is unbounded
                raise UnsupportedPattern(f"repeat {{{low}{comma}{high}}} in {self.text!r}")
            top = int(high) if comma else int(low)
            node = ("rep", node, int(low), top)
        return node

    def _atom(self) -> Node:
        ch = self._take()
        if ch.isdigit() and ch.isascii():
            return ("set", 1 << int(ch))
        if ch == "\\":
            if self._take() != "d":
                raise UnsupportedPattern(f"escape in {self.text!r}")
            return ("set", _ALL_DIGITS)
        if ch == "[":
            return ("set", self._class())
        if ch == "(":
            if self.text.startswith("?:", self.pos):
                self.pos += 2
            elif self._peek() == "?":
                raise UnsupportedPattern(f"group flag in {self.text!r}")
            node = self._alt()
            if self._take() != ")":
                raise UnsupportedPattern(f"unbalanced group in {self.text!r}")
            return node
        if ch == "$" and self.relaxed:
            return ("cat", [])
        raise UnsupportedPattern(f"{ch!r} in {self.text!r}")

    def _class(self) -> int:
        mask = 0
        if self._peek() == "^":
            raise UnsupportedPattern(f"negated class in {self.text!r}")
        while (ch := self._take()) != "]":
            if ch == "\\":
                if self._take() != "d":
                    raise UnsupportedPattern(f"escape in {self.text!r}")
                mask |= _ALL_DIGITS
                continue
            if not (ch.isdigit() and ch.isascii()):
                raise UnsupportedPattern(f"{ch!r} in a class of {self.text!r}")
            low = high = int(ch)
            if self._peek() == "-":
                self.pos += 1
                top = self._take()
                if not (top.isdigit() and top.isascii()):
                    raise UnsupportedPattern(f"range in {self.text!r}")
                high = int(top)
            for digit in range(low, high + 1):
                mask |= 1 << digit
        return mask


# -- NFA and subset construction ------------------------------------------------------------


class _Nfa:
    def __init__(self) -> None:
        self.eps: list[list[int]] = []
        self.moves: list[list[tuple[int, int]]] = []

    def new(self) -> int:
        self.eps.append([])
        self.moves.append([])
        return len(self.eps) - 1

    def build(self, node: Node, start: int) -> int:
        """Adds `node` as a fragment leaving `start`; returns its end state."""
        kind = node[0]
        if kind == "set":
            end = self.new()
            self.moves[start].append((node[1], end))
            return end
        if kind == "cat":
            for item in node[1]:
                start = self.build(item, start)
            return start
        if kind == "alt":
            end = self.new()
            for branch in node[1]:
                head = self.new()
                self.eps[start].append(head)
                self.eps[self.build(branch, head)].append(end)
            return end
        _, child, low, high = node
        for _ in range(low):
            start = self.build(child, start)
        skips = []
        for _ in range(high - low):
            skips.append(start)
            start = self.build(child, start)
        for skip in skips:
            self.eps[skip].append(start)
        return start

    def closure(self, state: int, memo: dict[int, frozenset[int]]) -> frozenset[int]:
        hit = memo.get(state)
        if hit is None:
            seen = {state}
            stack = [state]
            while stack:
                for nxt in self.eps[stack.pop()]:
                    if nxt not in seen:
                        seen.add(nxt)
                        stack.append(nxt)
            hit = memo[state] = frozenset(seen)
        return hit


def compile_regex(pattern: str, relaxed: bool = False) -> Dfa:
    """A DFA accepting exactly the digit strings that `pattern` fully matches.

    With `relaxed`, a `$` is read as matching nothing, which can only enlarge the
    language; callers use that for conservative "could this match?" questions.
    """
    nfa = _Nfa()
    start = nfa.new()
    final = nfa.build(_Parser(pattern, relaxed).parse(), start)
    memo: dict[int, frozenset[int]] = {}
    first = nfa.closure(start, memo)
    index = {first: 0}
    order = [first]
    trans: list[list[int]] = []
    labels: list[int] = []
    for current in order:
        targets: list[set[int]] = [set() for _ in range(DIGITS)]
        for state in current:
            for mask, nxt in nfa.moves[state]:
                reach = nfa.closure(nxt, memo)
                for digit in _BITS[mask]:
                    targets[digit] |= reach
        row = []
        for target in targets:
            key = frozenset(target)
            number = index.get(key)
            if number is None:
                number = index[key] = len(order)
                order.append(key)
            row.append(number)
        trans.append(row)
        labels.append(int(final in current))
    return minimize(Dfa(trans, labels))


# -- operations -----------------------------------------------------------------------------


def minimize(dfa: Dfa) -> Dfa:
    """The equivalent DFA with (nearly) the fewest states, start state still 0.

    Every automaton built here is acyclic apart from self-loops (finite languages,
    sticky sinks, capped counters), so states can be merged bottom-up by signature,
    successors first, in one pass.
    """
    trans, labels = dfa.trans, dfa.labels
    classes = [-1] * len(trans)
    signatures: dict[tuple[int, tuple[int, ...]], int] = {}
    sinks: dict[int, int] = {}  # label -> class of the state that loops to itself on every digit
    for state in _successors_first(trans):
        row = tuple(-1 if t == state else classes[t] for t in trans[state])
        if any(c == -1 and t != state for c, t in zip(row, trans[state], strict=True)):
            raise ValueError("minimize() handles automata without cycles other than self-loops")
        label = labels[state]
        sink = sinks.get(label)
        if sink is not None and all(c in (-1, sink) for c in row):
            classes[state] = sink
            continue
        key = (label, row)
        number = signatures.get(key)
        if number is None:
            number = signatures[key] = len(signatures)
            if all(c == -1 for c in row):
                sinks[label] = number
        classes[state] = number
    # Renumber by first appearance from the start, so the start state is 0.
    rename = {classes[0]: 0}
    order = [0]
    new_trans: list[list[int]] = []
    new_labels: list[int] = []
    head = 0
    while head < len(order):
        state = order[head]
        head += 1
        targets = []
        for t in trans[state]:
            number = rename.get(classes[t])
            if number is None:
                number = rename[classes[t]] = len(order)
                order.append(t)
            targets.append(number)
        new_trans.append(targets)
        new_labels.append(labels[state])
    return Dfa(new_trans, new_labels)


def _successors_first(trans: list[list[int]]) -> list[int]:
    """A post-order of the states reachable from 0, ignoring self-loops."""
    seen = [False] * len(trans)
    order: list[int] = []
    seen[0] = True
    stack = [(0, iter(trans[0]))]
    while stack:
        state, successors = stack[-1]
        for t in successors:
            if not seen[t]:
                seen[t] = True
                stack.append((t, iter(trans[t])))
                break
        else:
            stack.pop()
            order.append(state)
    return order


def product(dfas: Sequence[Dfa], combine: Callable[..., int]) -> Dfa:
    """One DFA running all of `dfas` together; a state's label is `combine` of theirs."""
    # Per digit, each DFA's column of targets: a step is one map() over the tuple.
    columns = [[[row[d] for row in dfa.trans] for dfa in dfas] for d in range(DIGITS)]
    label_lists = [dfa.labels for dfa in dfas]
    first = (0,) * len(dfas)
    index = {first: 0}
    order = [first]
    trans: list[list[int]] = []
    labels: list[int] = []
    for current in order:
        row = []
        for column in columns:
            target = tuple(map(list.__getitem__, column, current))
            number = index.get(target)
            if number is None:
                number = index[target] = len(order)
                order.append(target)
            row.append(number)
        trans.append(row)
        labels.append(combine(*map(list.__getitem__, label_lists, current)))
    return minimize(Dfa(trans, labels))


def is_empty(dfa: Dfa) -> bool:
    """Whether `dfa` accepts nothing at all (minimized: one state, rejecting)."""
    return len(dfa) == 1 and not dfa.labels[0]


def forward_order(dfa: Dfa) -> list[int]:
    """All states, ordered so that every transition but a self-loop goes forward."""
    order: list[int] = []
    seen = [False] * len(dfa.trans)
    for root in range(len(dfa.trans)):
        if seen[root]:
            continue
        seen[root] = True
        stack = [(root, iter(dfa.trans[root]))]
        while stack:
            state, successors = stack[-1]
            for nxt in successors:
                if not seen[nxt]:
                    seen[nxt] = True
                    stack.append((nxt, iter(dfa.trans[nxt])))
                    break
            else:
                stack.pop()
                order.append(state)
    return order[::-1]


def with_prefix(dfa: Dfa) -> Dfa:
    """Accepts the strings that have a prefix `dfa` accepts (what `re.match` tests)."""
    sink = len(dfa)
    trans = [
        [sink] * DIGITS if label else list(row)
        for row, label in zip(dfa.trans, dfa.labels, strict=True)
    ]
    trans.append([sink] * DIGITS)
    return minimize(Dfa(trans, [*dfa.labels, 1]))


def lengths(allowed: Sequence[int], cap: int) -> Dfa:
    """Accepts the strings whose length is in `allowed` (lengths above `cap` never are)."""
    trans = [[min(state + 1, cap + 1)] * DIGITS for state in range(cap + 2)]
    labels = [int(state in allowed and state <= cap) for state in range(cap + 2)]
    return minimize(Dfa(trans, labels))


def nothing() -> Dfa:
    return Dfa([[0] * DIGITS], [0])

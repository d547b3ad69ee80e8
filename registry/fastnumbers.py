"""The fast path of normalization: a whole batch through the parse machines at once.

A scrub list is a million strings of a few shapes: `+12125551234`, `(212) 555-1234`,
`212.555.1234`. For input made only of ASCII digits, the separators ` -.()`, one `+`
before the first digit and an optional `tel:` in front, phonenumbers looks at nothing
but the digits and whether a `+` came first: such input has no extension, letters,
second number or RFC 3966 parameter for it to find. So each input is walked through
one DFA of `registry.parse_machines`: the national machine of the request's region,
or after a `+` a small trie of country codes that leads into the machine of the code
it spells. Any other character leads to a sink, and such input is left UNDECIDED for
phonenumbers itself. The walk is one numpy step per character column over all inputs
of a chunk together. National input that starts with an international prefix (`00`,
`011`) takes a second walk, from after the prefix, as '+' input.

Machines are built the first time a batch needs them (tens of milliseconds each, a
few hundred for the biggest), then kept for the life of the process.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import phonenumbers

from registry import parse_machines as machines
from registry.digit_automata import DIGITS, Dfa

# A verdict per input: one of the machines' reasons (TOO_SHORT, ...) or these.
UNDECIDED, VALID = -1, 0

# The machines mirror phonenumbers 9's parse(); under another major version, no fast path.
ENABLED = phonenumbers.__version__.split(".")[0] == "9"

_CHUNK = 1 << 16  # inputs per numpy pass: big enough to amortize, small enough for the cache
_MAX_CHARS = 40  # longer input goes to phonenumbers (a number in these shapes is shorter)

# Character classes, which are also the columns of the transition table.
_SEPARATOR, _PLUS, _OTHER = DIGITS, DIGITS + 1, DIGITS + 2
_COLUMNS = DIGITS + 3
_CLASS = np.full(256, _OTHER, dtype=np.uint8)
_CLASS[ord("0") : ord("9") + 1] = np.arange(DIGITS, dtype=np.uint8)
_CLASS[[ord(c) for c in " -.()"]] = _SEPARATOR
_CLASS[ord("+")] = _PLUS
_TEL = np.frombuffer(b"tel:", dtype=np.uint8)
_POW10 = 10 ** np.arange(19, dtype=np.int64)

# The head of the table: the sink, the start for a region without a national machine
# ('+' input only), the trie of country codes, and a state per code whose machine is
# not built yet, where input waits for it.
_CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
_PREFIXES = {str(c)[:n] for c in _CODES for n in (0, 1, 2)} - {str(c) for c in _CODES}
_SINK, _PLUS_ONLY = 0, 1
_TRIE = {prefix: 2 + i for i, prefix in enumerate(sorted(_PREFIXES))}
_WAITING = {code: 2 + len(_TRIE) + i for i, code in enumerate(_CODES)}
_HEAD = 2 + len(_TRIE) + len(_CODES)
_WAITING_FOR = np.zeros(_HEAD, dtype=np.int64)
_WAITING_FOR[list(_WAITING.values())] = list(_WAITING)


class _Tables:
    """Every machine built so far in one transition table, with what each state means.

    A snapshot is never changed: a batch that needs new machines makes the next one.
    """

    def __init__(self) -> None:
        self.national: dict[str, int] = {}  # region -> the start of its machine
        self.entry: dict[int, int] = {}  # country code -> its machine after the code
        self.trans = np.zeros((_HEAD, _COLUMNS), dtype=np.int32)
        self.nsn = np.full(_HEAD, -1, dtype=np.int8)  # where the NSN starts in the digits
        self.idd = np.full(_HEAD, -1, dtype=np.int8)  # the length of an IDD in front
        self.verdict = np.full(_HEAD, UNDECIDED, dtype=np.int8)
        self.code = np.zeros(_HEAD, dtype=np.int64)  # the country code of the machine
        self._link()

    def extended(self, national: dict[str, Dfa], international: dict[int, Dfa]) -> _Tables:
        new = _Tables.__new__(_Tables)
        new.national, new.entry = dict(self.national), dict(self.entry)
        parts = {name: [getattr(self, name)] for name in ("trans", "nsn", "idd", "verdict", "code")}
        size = len(self.nsn)
        added: list[tuple[Dfa, int, str | None]] = [
            (dfa, _country_code(region), region) for region, dfa in national.items()
        ]
        added += [(dfa, code, None) for code, dfa in international.items()]
        for dfa, code, region in added:
            table = np.full((len(dfa), _COLUMNS), _SINK, dtype=np.int32)
            table[:, :DIGITS] = np.array(dfa.trans, dtype=np.int32) + size
            table[:, _SEPARATOR] = np.arange(size, size + len(dfa))
            labels = np.array(dfa.labels, dtype=np.int16)
            valid = (labels >= machines.VALID) & (labels < machines.IDD)
            idd = (labels >= machines.IDD) & (labels < machines.INVALID)
            invalid = labels >= machines.INVALID
            parts["trans"].append(table)
            parts["nsn"].append(np.where(valid, labels - machines.VALID, -1))
            parts["idd"].append(np.where(idd, labels - machines.IDD, -1))
            parts["verdict"].append(
                np.select([valid, invalid], [VALID, labels - machines.INVALID], UNDECIDED)
            )
            parts["code"].append(np.full(len(dfa), code))
            if region is not None:
                new.national[region] = size
                table[0, _PLUS] = _TRIE[""]  # a '+' before any digit: international input
            else:
                new.entry[code] = size + dfa.run(str(code))
            size += len(dfa)
        for name, arrays in parts.items():
            setattr(new, name, np.concatenate(arrays).astype(arrays[0].dtype))
        new._link()
        return new

    def _link(self) -> None:
        """Writes the head: the '+' start and the trie leading into the built machines."""
        head = self.trans[:_HEAD]
        head[:, :] = _SINK
        head[_PLUS_ONLY, _SEPARATOR] = _PLUS_ONLY
        head[_PLUS_ONLY, _PLUS] = _TRIE[""]
        for prefix, state in _TRIE.items():
            head[state, _SEPARATOR] = state
            for digit in range(DIGITS):
                longer = prefix + str(digit)
                if longer in _TRIE:
                    head[state, digit] = _TRIE[longer]
                elif longer[0] != "0" and int(longer) in _WAITING:
                    head[state, digit] = self.entry.get(int(longer), _WAITING[int(longer)])
        for state in _WAITING.values():
            head[state, :] = state


def _country_code(region: str) -> int:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region, None)
    if metadata is None or metadata.country_code is None:
        raise ValueError(f"unknown region {region!r}")
    return metadata.country_code


_tables = _Tables()
_lock = threading.Lock()


def _with(region: str | None, country_codes: Sequence[int]) -> _Tables:
    """The tables, with the machines for this region and these country codes built."""
    global _tables
    with _lock:
        tables = _tables
        national = {}
        if region is not None and region not in tables.national:
            national[region] = machines.national_machine(region)
        international = {
            code: machines.international_machine(code)
            for code in country_codes
            if code not in tables.entry
        }
        if national or international:
            tables = _tables = tables.extended(national, international)
        return tables


def warm(region: str) -> None:
    """Builds what a region's traffic needs most, ahead of the first request."""
    _with(region, [_country_code(region)])


def classify(texts: Sequence[str], region: str) -> tuple[np.ndarray, np.ndarray]:
    """E.164 digits (int64, 0 unless valid) and a verdict (int8) for each input.

    The verdict is VALID, UNDECIDED (ask phonenumbers), or the reason of
    `registry.parse_machines` (TOO_SHORT, TOO_LONG, INVALID_LENGTH, INVALID_FOR_REGION)
    for input that is certainly invalid.
    """
    values = np.zeros(len(texts), dtype=np.int64)
    verdicts = np.full(len(texts), UNDECIDED, dtype=np.int8)
    if not ENABLED:
        return values, verdicts
    national = region if region in phonenumbers.SUPPORTED_REGIONS else None
    for low in range(0, len(texts), _CHUNK):
        part = slice(low, min(low + _CHUNK, len(texts)))
        values[part], verdicts[part] = _chunk(texts[part], national)
    return values, verdicts


def _chunk(texts: Sequence[str], region: str | None) -> tuple[np.ndarray, np.ndarray]:
    tables = _tables
    if region is not None and region not in tables.national:
        tables = _with(region, [])
    classes, fits = _classes(texts)
    start = np.where(fits, tables.national[region] if region else _PLUS_ONLY, _SINK)
    tables, state, value, digits = _walk(tables, classes, start)
    # Digits after an international prefix: '+' input, from the trie on.
    after_idd = np.flatnonzero(tables.idd[state] >= 0)
    if len(after_idd):
        prefixed = classes[:, after_idd]
        is_digit = prefixed < DIGITS
        within = np.cumsum(is_digit, axis=0) <= tables.idd[state[after_idd]]
        prefixed[is_digit & within] = _SEPARATOR
        tables, state[after_idd], value[after_idd], digits[after_idd] = _walk(
            tables, prefixed, np.full(len(after_idd), _TRIE[""])
        )
    nsn = tables.nsn[state].astype(np.int64)
    valid = nsn >= 0
    rest = np.where(valid, digits - nsn, 0)
    e164 = tables.code[state] * _POW10[rest] + value % _POW10[rest]
    return np.where(valid, e164, 0), tables.verdict[state]


def _classes(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The class of every character, a column per input; and which inputs are short enough."""
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    # One byte per character: anything outside ASCII becomes '?', which no shape accepts.
    buffer = np.frombuffer("".join(texts).encode("ascii", "replace") + b"\0", dtype=np.uint8)
    width = int(min(lengths.max(initial=0), _MAX_CHARS))
    columns = np.arange(width)
    inside = columns < lengths[:, None]
    starts = np.cumsum(lengths) - lengths
    chars = buffer[np.where(inside, starts[:, None] + columns, len(buffer) - 1)]
    classes = _CLASS[chars]
    classes[~inside] = _SEPARATOR
    if width >= 4:  # phonenumbers skips a leading 'tel:' (any case) like any other junk
        tel = ((chars[:, :4] | 0x20) == _TEL).all(axis=1)
        classes[tel, :4] = _SEPARATOR
    return np.ascontiguousarray(classes.T), lengths <= _MAX_CHARS


def _walk(
    tables: _Tables, classes: np.ndarray, start: np.ndarray
) -> tuple[_Tables, np.ndarray, np.ndarray, np.ndarray]:
    """Every input through the table: its final state, and the value and count of its
    digits. Input that reaches a country code whose machine is not built yet waits for
    it, and walks again once it is."""
    state, value, digits = _steps(tables, classes, start)
    waiting = np.flatnonzero(state < _HEAD)
    waiting = waiting[_WAITING_FOR[state[waiting]] > 0]
    if len(waiting):
        tables = _with(None, np.unique(_WAITING_FOR[state[waiting]]).tolist())
        state[waiting], value[waiting], digits[waiting] = _steps(
            tables, classes[:, waiting], start[waiting]
        )
    return tables, state, value, digits


def _steps(
    tables: _Tables, classes: np.ndarray, start: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    trans = tables.trans.reshape(-1)
    state = start.astype(np.int32)
    value = np.zeros(len(state), dtype=np.int64)
    digits = np.zeros(len(state), dtype=np.int64)
    for column in classes:
        state = trans[state * _COLUMNS + column]
        is_digit = column < DIGITS
        value = np.where(is_digit, value * 10 + column, value)
        digits += is_digit
    return state, value, digits

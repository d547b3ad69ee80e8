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

`classify` takes strings; `classify_lines` takes the lines of a byte buffer (a
text/plain body) without making a string of each; `classify_one` walks the same
table for one string in plain Python, where numpy's cost per call would be most of
the work.

Machines are built the first time a batch needs them (tens of milliseconds each, a
few hundred for the biggest), then kept for the life of the process.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import phonenumbers
from numpy.lib.stride_tricks import sliding_window_view

from registry import cores
from registry import parse_machines as machines
from registry.digit_automata import DIGITS, Dfa

# A verdict per input: one of the machines' reasons (TOO_SHORT, ...) or these.
UNDECIDED, VALID = -1, 0

# The machines mirror phonenumbers 9's parse(); under another major version, no fast path.
ENABLED = phonenumbers.__version__.split(".")[0] == "9"

_CHUNK = 1 << 15  # inputs per numpy pass: big enough to amortize, small enough for the cache
_MAX_CHARS = 40  # longer input goes to phonenumbers (a number in these shapes is shorter)
_MAX_VALUE_DIGITS = 18  # an int64 holds this many digits exactly; valid input with more: ask

# Character classes, which are also the columns of the transition table.
_SEPARATOR, _PLUS, _OTHER = DIGITS, DIGITS + 1, DIGITS + 2
_COLUMNS = DIGITS + 3
_CLASS = np.full(256, _OTHER, dtype=np.uint8)
_CLASS[ord("0") : ord("9") + 1] = np.arange(DIGITS, dtype=np.uint8)
_CLASS[[ord(c) for c in " -.()"]] = _SEPARATOR
_CLASS[ord("+")] = _PLUS
_TEL = np.frombuffer(b"tel:", dtype=np.uint8)[:, None]
_POSITION = np.arange(_MAX_CHARS)[:, None]
_POW10 = 10 ** np.arange(19, dtype=np.int64)
# The same classes for one string at a time, through bytes.translate.
_CLASS_BYTES = _CLASS.tobytes()
_NOT_DIGITS = bytes(b for b in range(256) if not ord("0") <= b <= ord("9"))
_TEL_CLASSES = bytes([_SEPARATOR] * 4)
_TEL_PREFIXES = (b"tel:", b"tel\x1a")  # what `chars | 0x20 == "tel:"` matches

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
        self._flatten()

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
        new._flatten()
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

    def _flatten(self) -> None:
        """The table as the walks read it: `flat[state * _COLUMNS + class]` is the next
        state times _COLUMNS, one addition and one lookup a character. The memoryviews
        give plain Python ints, for `classify_one`."""
        self.flat = (self.trans.astype(np.int64) * _COLUMNS).reshape(-1)
        self.flat_view = self.flat.data
        self.nsn_view = self.nsn.data
        self.idd_view = self.idd.data
        self.verdict_view = self.verdict.data
        self.code_view = self.code.data


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
        part = texts[low : low + _CHUNK]
        lengths = np.fromiter(map(len, part), dtype=np.int64, count=len(part))
        # One byte per character: anything outside ASCII becomes '?', which no shape accepts.
        buffer = np.frombuffer("".join(part).encode("ascii", "replace"), dtype=np.uint8)
        ends = np.cumsum(lengths)
        done = slice(low, low + len(part))
        values[done], verdicts[done], _ = _chunk(buffer, ends - lengths, ends, national)
    return values, verdicts


def classify_lines(
    buffer: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    region: str,
    canonical: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """`classify` of the lines `buffer[starts[i]:ends[i]]` of a uint8 buffer.

    The same answers as `classify` of the lines decoded as UTF-8: any byte outside
    ASCII is a character no shape accepts, so such a line is UNDECIDED, whatever it
    decodes to (or if it does not decode at all). `canonical`, a bool array as long
    as the lines if given, is set True for each valid line written exactly as its
    E.164 form ('+' and the number's digits).
    """
    starts = np.asarray(starts, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    values = np.zeros(len(starts), dtype=np.int64)
    verdicts = np.full(len(starts), UNDECIDED, dtype=np.int8)
    if not ENABLED:
        return values, verdicts
    national = region if region in phonenumbers.SUPPORTED_REGIONS else None
    if national is not None:
        _with(national, [])  # built once, before the parts run side by side

    def lines(rows: slice) -> None:
        for low in range(rows.start, rows.stop, _CHUNK):
            part = slice(low, min(low + _CHUNK, rows.stop))
            values[part], verdicts[part], written = _chunk(
                buffer, starts[part], ends[part], national
            )
            if canonical is not None:
                canonical[part] = written

    cores.each(lines, len(starts), align=_CHUNK)
    return values, verdicts


def classify_one(text: str, region: str) -> tuple[int, int]:
    """`classify` of one input, walked in plain Python: a few microseconds, where a numpy
    batch of one costs a hundred.

    It never builds a machine (that takes longer than asking phonenumbers): input that
    needs one not built yet is UNDECIDED.
    """
    tables = _tables
    start = tables.national.get(region)
    if start is None:
        if region in phonenumbers.SUPPORTED_REGIONS:
            return 0, UNDECIDED
        start = _PLUS_ONLY
    if not ENABLED or len(text) > _MAX_CHARS or not text.isascii():
        return 0, UNDECIDED
    data = text.encode()
    classes = data.translate(_CLASS_BYTES)
    if data[:4].lower() in _TEL_PREFIXES:
        classes = _TEL_CLASSES + classes[4:]
    flat = tables.flat_view
    state = start * _COLUMNS
    for column in classes:
        state = flat[state + column]
    state //= _COLUMNS
    digits = data.translate(None, _NOT_DIGITS)
    idd = tables.idd_view[state]
    if idd >= 0:  # digits after an international prefix: '+' input, from the trie on
        state = _TRIE[""] * _COLUMNS
        for column in _after_digits(classes, idd):
            state = flat[state + column]
        state //= _COLUMNS
        digits = digits[idd:]
    nsn = tables.nsn_view[state]
    if nsn < 0:
        return 0, tables.verdict_view[state]
    rest = len(digits) - nsn
    return tables.code_view[state] * 10**rest + int(digits[nsn:] or b"0"), VALID


def _after_digits(classes: bytes, count: int) -> bytes:
    """The classes after the first `count` digits."""
    for i, column in enumerate(classes):
        if count == 0:
            return classes[i:]
        count -= column < DIGITS
    return b""


def _chunk(
    buffer: np.ndarray, starts: np.ndarray, ends: np.ndarray, region: str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tables = _tables
    if region is not None and region not in tables.national:
        tables = _with(region, [])
    classes, fits = _classes(buffer, starts, ends)
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
    verdicts = tables.verdict[state]
    verdicts[valid & (digits > _MAX_VALUE_DIGITS)] = UNDECIDED
    valid = verdicts == VALID
    # Written in E.164 already: '+' and then the number's digits, nothing else.
    plus = classes[0] == _PLUS if len(classes) else np.zeros(len(starts), dtype=bool)
    canonical = valid & plus & (digits == ends - starts - 1) & (e164 == value)
    return np.where(valid, e164, 0), verdicts, canonical


def _classes(
    buffer: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The class of every character, a column per input (column i holds the characters
    of input i, then separators); and which inputs are short enough."""
    lengths = ends - starts
    width = int(min(lengths.max(initial=0), _MAX_CHARS))
    chars = _aligned(buffer, starts, lengths, width)
    if chars is None:
        chars = np.take(buffer, starts + _POSITION[:width], mode="clip")
        classes = np.take(_CLASS, chars)
        np.putmask(classes, _POSITION[:width] >= lengths, _SEPARATOR)
    else:
        classes = np.take(_CLASS, chars)
    if width >= 4:  # phonenumbers skips a leading 'tel:' (any case) like any other junk
        maybe = np.flatnonzero(((chars[0] | 0x20) == _TEL[0]) & (lengths >= 4))
        tel = maybe[((chars[:4, maybe] | 0x20) == _TEL).all(axis=0)]
        classes[:4, tel] = _SEPARATOR
    return classes, lengths <= _MAX_CHARS


def _aligned(
    buffer: np.ndarray, starts: np.ndarray, lengths: np.ndarray, width: int
) -> np.ndarray | None:
    """The characters as a view of the buffer, when every input has the same length and
    they follow each other at a fixed step (a list written one way): no copy, and no
    padding to mask."""
    if len(starts) < 2 or not (lengths == width).all():
        return None
    step = int(starts[1] - starts[0])
    if step <= 0 or not (np.diff(starts) == step).all():
        return None
    first = int(starts[0])
    windows = sliding_window_view(buffer[first : int(starts[-1]) + width], width)
    return windows[::step].T


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
    state = start * _COLUMNS
    step = np.empty_like(state)
    for column in classes:
        np.add(state, column, out=step)
        np.take(tables.flat, step, out=state, mode="clip")  # in range: "clip" skips a check
    value, digits = _digits(classes)
    return state // _COLUMNS, value, digits


def _digits(classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The digits of each input as one int64 (exact up to _MAX_VALUE_DIGITS), and how many.

    Horner's rule over the columns, with a factor of 1 and a term of 0 where there is
    no digit: in-place uint8 arithmetic, which costs a fifth of choosing with a mask.
    """
    is_digit = (classes < DIGITS).view(np.uint8)
    factors = is_digit * np.uint8(9) + np.uint8(1)
    terms = classes * is_digit
    value = np.zeros(classes.shape[1], dtype=np.int64)
    for factor, term in zip(factors, terms, strict=True):
        value *= factor
        value += term
    return value, is_digit.sum(axis=0, dtype=np.int64)

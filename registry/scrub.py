"""The bulk pipeline: parse -> normalize -> prefix -> Bloom -> confirm in Redis -> decide.

Work is done a batch at a time on numpy arrays; the only per-number Python
left is normalization's slow path and the response encoding.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from registry import numbers as nums
from registry import rows, rules
from registry.bloom import RegisteredFilter
from registry.store.consents import ConsentStore
from registry.store.registrations import RegistrationStore

NOT_SUBSCRIBED = "not_subscribed"


@dataclass(frozen=True)
class ScrubQuery:
    """What the operator asks: for which channel and category, read against which region."""

    channel: int = rules.ALL_CHANNELS
    category: int | None = None
    region: str = "US"
    prefixes: tuple[str, ...] = ()
    # Whose consents count (CONTRACT section 3); None: nobody's (a local scrub, say).
    operator: str | None = None


# Why a row is invalid: a code into REASONS, 0 (None) for a valid row.
REASONS: tuple[str | None, ...] = (*nums.REASONS, NOT_SUBSCRIBED)
NOT_SUBSCRIBED_CODE = len(nums.REASONS)
NOT_A_NUMBER_CODE = nums.REASONS.index(nums.NOT_A_NUMBER)


@dataclass
class Batch:
    """One batch's answers, aligned with its inputs."""

    numbers: np.ndarray  # int64 E.164 digits, 0 where invalid
    status: np.ndarray  # int8: rules.CALLABLE, BLOCKED or INVALID
    reasons: np.ndarray  # int8 codes into REASONS: why invalid, 0 elsewhere
    _digits: np.ndarray | None = field(default=None, repr=False)
    # Every row valid and written in E.164: the rows' lines, each followed by \n but
    # the last, as they stand in the body (rows.written_lines); else None.
    lines: np.ndarray | None = field(default=None, repr=False)

    def e164(self) -> list[str]:
        return nums.e164_many(self.numbers)

    def digits(self) -> np.ndarray:
        """The numbers as rows.digits_matrix, made once for the answer and the receipt."""
        if self._digits is None:
            self._digits = rows.digits_matrix(self.numbers)
        return self._digits

    def reason(self, row: int) -> str | None:
        return REASONS[int(self.reasons[row])]

    def slice(self, start: int, stop: int) -> Batch:
        digits = None if self._digits is None else self._digits[start:stop]
        return Batch(
            self.numbers[start:stop], self.status[start:stop], self.reasons[start:stop], digits
        )

    def not_numbers(self, indices: list[int]) -> None:
        """Mark rows whose input was not a number at all (a JSON object, say)."""
        self.numbers[indices] = 0
        self.status[indices] = rules.INVALID
        self.reasons[indices] = NOT_A_NUMBER_CODE
        self._digits = None
        self.lines = None


@dataclass
class Tally:
    """Running counts and checksum of a whole scrub, for its receipt."""

    counts: dict[str, int] = field(
        default_factory=lambda: {"total": 0, "callable": 0, "blocked": 0, "invalid": 0}
    )
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)

    def add(self, batch: Batch) -> None:
        self.count(batch)
        self.checksum(batch)

    def count(self, batch: Batch) -> None:
        status = batch.status
        self.counts["total"] += len(status)
        found = np.bincount(status, minlength=len(rules.STATUS_NAMES))
        for code, name in enumerate(rules.STATUS_NAMES):
            self.counts[name] += int(found[code])

    def checksum(self, batch: Batch) -> None:
        """The valid rows' E.164 lines into the digest. Safe in a worker thread once
        `batch.digits()` has been computed: numpy and hashlib let go of the GIL here."""
        if batch.lines is not None:
            self.digest.update(batch.lines.data)
            self.digest.update(b"\n")
            return
        self.digest.update(rows.digit_lines(batch.digits()[batch.status != rules.INVALID]))

    @staticmethod
    def new_id() -> str:
        return "scr_" + secrets.token_hex(10)

    def receipt(
        self,
        operator_id: str,
        registry_version: int,
        receipt_id: str | None = None,
        asked: dict[str, object] | None = None,
        answer_sha256: str | None = None,
    ) -> dict[str, object]:
        """The contract's six fields; with `asked` (the question: channel, category,
        region, format, column, only) and `answer_sha256`, what a later dispute needs to
        tie an answer to its question (GET /v1/scrubs/{id}?detail=true)."""
        receipt: dict[str, object] = {
            "receipt_id": receipt_id or self.new_id(),
            "operator": operator_id,
            "created_at": iso(time.time()),
            "counts": dict(self.counts),
            "sha256": self.digest.hexdigest(),
            "registry_version": registry_version,
        }
        if asked is not None:
            receipt["asked"] = asked
        if answer_sha256 is not None:
            receipt["answer_sha256"] = answer_sha256
        return receipt


def asked(query: ScrubQuery, kind: str, column: str | None, only: str | None) -> dict[str, object]:
    """A scrub's question as its receipt keeps it."""
    return {
        "format": kind,
        "channels": [name for name, bit in rules.CHANNELS.items() if query.channel & bit],
        "category": query.category,
        "region": query.region,
        "column": column,
        "only": only,
    }


class Scrubber:
    def __init__(
        self,
        store: RegistrationStore,
        bloom: RegisteredFilter,
        consents: ConsentStore | None = None,
    ) -> None:
        self.store = store
        self.bloom = bloom
        self.consents = consents or ConsentStore(store.redis, store.retention_days)

    async def prepare(self) -> int:
        """Bring the Bloom filter up to the registry as of now; returns the registry version."""
        return await self.bloom.catch_up()

    async def run(self, inputs: Sequence[str], query: ScrubQuery) -> Batch:
        """Scrub a list of inputs. Call `prepare()` once before the first batch of a request."""
        numbers, reasons = nums.normalize_codes(inputs, query.region)
        return await self._decide(numbers, reasons, query)

    async def run_lines(
        self, buffer: np.ndarray, starts: np.ndarray, ends: np.ndarray, query: ScrubQuery
    ) -> Batch:
        """`run` on the lines of a text body, read straight from its bytes."""
        canonical = np.zeros(len(starts), dtype=bool)
        numbers, reasons = nums.normalize_lines(buffer, starts, ends, query.region, canonical)

        def digits(numbers: np.ndarray) -> np.ndarray:
            # A list in E.164 already holds the answer's digits: its own lines.
            found = rows.written_digits(buffer, starts, ends, numbers, canonical)
            return rows.digits_matrix(numbers) if found is None else found

        batch = await self._decide(numbers, reasons, query, digits)
        if canonical.all() and (batch.status != rules.INVALID).all():
            batch.lines = rows.written_lines(buffer, starts, ends)
        return batch

    async def _decide(
        self,
        numbers: np.ndarray,
        reasons: np.ndarray,
        query: ScrubQuery,
        digits_of: Callable[[np.ndarray], np.ndarray] = rows.digits_matrix,
    ) -> Batch:
        if query.prefixes:
            outside = (numbers != 0) & ~nums.in_prefixes(numbers, query.prefixes)
            reasons[outside] = NOT_SUBSCRIBED_CODE
            numbers[outside] = 0
        status = np.full(len(numbers), rules.INVALID, dtype=np.int8)
        valid = np.flatnonzero(numbers != 0)
        candidates = valid[self.bloom.might_contain(numbers[valid])]
        # The answer's digit matrix is made on another thread while Redis confirms the
        # candidates (the event loop only waits meanwhile).
        digits = asyncio.get_running_loop().run_in_executor(None, digits_of, numbers)
        detailed = self.bloom.detailed if self.bloom.ready else None
        found = await self.store.confirm(numbers[candidates], detailed)
        # A number the Bloom filter rules out is not registered: callable whatever the
        # channel and category. The rule runs on the candidates only.
        status[valid] = rules.CALLABLE
        consent = np.zeros(len(candidates), dtype=bool)
        decided, _ = rules.decide(
            found.registered, found.channels, found.allowed, consent, query.channel, query.category
        )
        if query.operator is not None:
            # Consent only matters where the answer is blocked: one round trip for those.
            blocked = np.flatnonzero(decided == rules.BLOCKED)
            if len(blocked):
                scopes = await self.consents.scopes(query.operator, numbers[candidates[blocked]])
                held = rules.covering(scopes, query.channel, query.category)
                if held.any():
                    consent[blocked[held]] = True
                    decided, _ = rules.decide(
                        found.registered,
                        found.channels,
                        found.allowed,
                        consent,
                        query.channel,
                        query.category,
                    )
        status[candidates] = decided
        return Batch(numbers, status, reasons, await digits)


def iso(epoch: float) -> str:
    """UTC ISO-8601 to the second, as every timestamp the API reports."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))

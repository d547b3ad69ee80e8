"""The Redis key layout.

A number n (its E.164 digits as an int) lives in bucket `n >> 16` as the member
`(n & 0xFFFF) - 32768`. Members are therefore 16-bit integers and a bucket's set
stays intset-encoded at 2 bytes a member. Every key of a bucket carries the
bucket in a hash tag, so the set, the per-number details and the ended records
of one bucket share a Redis Cluster slot and one Lua script can touch them all.
Registry-wide keys share the tag `{dnc}`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np

BUCKET_BITS = 16
# The most digits a number phonenumbers calls valid has: a three-digit country code and
# up to 17 national digits make E.164's 15 too few (+62 and +81 numbers reach 19). The
# largest, under 9.3 x 10**18, still fit in int64.
MAX_DIGITS = 19
MEMBER_OFFSET = 1 << (BUCKET_BITS - 1)
_MASK = (1 << BUCKET_BITS) - 1

# Registry-wide keys, all in the slot of the tag {dnc}.
EPOCH = "dnc:{dnc}:epoch"  # random token; changes when the Redis data is replaced
VERSION = "dnc:{dnc}:version"  # monotonic registry version, one step per change
# The stream id of the last change logged: with the version, it tells one history from
# another that reached the same version (a failover that lost writes, then new ones).
HEAD = "dnc:{dnc}:head"
CHANGES = "dnc:{dnc}:changes"  # the change stream: adds and removes, with time
BUCKETS = "dnc:{dnc}:buckets"  # the set of bucket ids that ever held a number
DETAILED = "dnc:{dnc}:detailed"  # bucket ids that ever held a details hash
ADMIN_KEY_HASH = "dnc:{dnc}:admin"  # sha256 of the generated administrator key
OPERATORS = "dnc:{dnc}:operators"  # set of operator ids
# Hash caller (as a complaint names it) -> the active operator that declared it.
CALLERS = "dnc:{dnc}:callers"
# Set once the consents recorded before keys.consent_holders existed are entered in it.
CONSENT_HOLDERS_INDEXED = "dnc:{dnc}:consent-holders-indexed"
# Set once the complaints kept from before the open queue are in it (ComplaintStore).
COMPLAINTS_QUEUED = "dnc:{dnc}:cmp:queued"
AUDIT = "dnc:{dnc}:audit"  # stream: the audit trail (registry/store/audit.py)
METRICS = "dnc:{dnc}:metrics"  # hash: each API worker's last published samples


def bucket_of(number: int) -> int:
    return number >> BUCKET_BITS


def member_of(number: int) -> int:
    return (number & _MASK) - MEMBER_OFFSET


def number_of(bucket: int, member: int) -> int:
    return (bucket << BUCKET_BITS) | (member + MEMBER_OFFSET)


def split(numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Buckets and members of an int64 array of numbers."""
    return numbers >> BUCKET_BITS, (numbers & _MASK) - MEMBER_OFFSET


def join(bucket: int, members: np.ndarray) -> np.ndarray:
    return (np.int64(bucket) << BUCKET_BITS) | (members.astype(np.int64) + MEMBER_OFFSET)


def numbers_set(bucket: int) -> str:
    return f"dnc:s:{{{bucket}}}"


def details(bucket: int) -> str:
    """Hash member -> registration details, only for numbers registered one by one."""
    return f"dnc:r:{{{bucket}}}"


def ended(bucket: int, member: int) -> str:
    """A number's ended registrations, each kept DNC_RETENTION_DAYS after it ended."""
    return ended_prefix(bucket) + str(member)


def writing(bucket: int, member: int) -> str:
    """A number's single writer (RegistrationStore.one_writer), in the bucket's slot."""
    return f"dnc:w:{{{bucket}}}:{member}"


def ended_prefix(bucket: int) -> str:
    """keys.ended without its member: in the bucket's slot, as the bucket's set."""
    return f"dnc:e:{{{bucket}}}:"


def operator(operator_id: str) -> str:
    return f"dnc:op:{{{operator_id}}}"


def operator_changing(operator_id: str) -> str:
    """Held (SET NX PX) by the one change to the account under way (OperatorStore)."""
    return f"dnc:op:{{{operator_id}}}:changing"


def api_key(key_hash: str) -> str:
    return f"dnc:key:{{{key_hash}}}"


def receipt(receipt_id: str) -> str:
    return f"dnc:rcpt:{{{receipt_id}}}"


def receipts_of(operator_id: str) -> str:
    """Sorted set (all scores 0) of an operator's receipts as `created_at_ms:receipt_id`
    members, in lexical order = time order; trimmed to the retention as receipts go in."""
    return f"dnc:rs:{{{operator_id}}}"


def receipts_on(day: str) -> str:
    """Counter of the scrub receipts stored on a UTC day (YYYYMMDD)."""
    return f"dnc:{{dnc}}:rcpt:n:{day}"


# A subscriber's pending request and its outcome share the request's tag (one slot, one script).
def pending_request(request_id: str) -> str:
    """Hash: a code request waiting for its code (registry/store/requests.py)."""
    return f"dnc:req:{{{request_id}}}"


def request_outcome(request_id: str) -> str:
    """What became of a request (expired, void, used), without the number: answers 410."""
    return f"dnc:req:{{{request_id}}}:end"


# Complaints (registry/store/complaints.py): each record in its own slot; the per-day
# counts share {dnc}, so one script updates them and one ZUNIONSTORE reads them on a Cluster.
def complaint(complaint_id: str) -> str:
    return f"dnc:cmp:{{{complaint_id}}}"


def complaints_on(day: str) -> str:
    """Counter of the complaints received on a UTC day (YYYYMMDD)."""
    return f"dnc:{{dnc}}:cmp:n:{day}"


def callers_on(channel: str, day: str) -> str:
    """Sorted set: caller -> complaints about it received on a UTC day, for one channel."""
    return f"dnc:{{dnc}}:cmp:{channel}:{day}"


def complaints_open() -> str:
    """Sorted set, lexical: `ms:id` of each complaint received and not yet resolved, oldest
    first (ComplaintStore.open_queue), in the day counters' slot."""
    return "dnc:{dnc}:cmp:open"


def complaints_of(operator_id: str) -> str:
    """Sorted set, lexical: `ms:id` of each complaint naming a caller the operator had
    declared when it came (ComplaintStore.of_operator), in the day counters' slot."""
    return f"dnc:{{dnc}}:cmp:op:{operator_id}"


def complaint_limit(client: str) -> str:
    """The counter of one client address's complaints (rate limit)."""
    return f"dnc:limit:{{complaint:{client}}}"


# An operator's consents share the operator's tag: one slot, so one script updates them.
def consents(operator_id: str) -> str:
    """Sorted set of the operator's consents: member the number's digits, score expires_at."""
    return f"dnc:cs:{{{operator_id}}}"


def consent_scopes(operator_id: str) -> str:
    """Hash number digits -> the scope (rules.parse_scope) of the operator's consent from
    it, for consents limited to some channels or categories; absent: every one."""
    return f"dnc:csc:{{{operator_id}}}"


def current_consent(operator_id: str, digits: str) -> str:
    """The id of the operator's latest consent from a number, while its record is kept."""
    return f"dnc:ci:{{{operator_id}}}:{digits}"


def consent_holders(number: int) -> str:
    """Hash operator id -> its consent's expires_at (`inf`): who may hold a live consent
    from the number, so a subscriber's opt-out can end them. In the number's bucket slot."""
    return f"dnc:ch:{{{bucket_of(number)}}}:{member_of(number)}"


def consents_kept(number: int) -> str:
    """Sorted set `operator consent_id` -> until when (unix s, `+inf` while it can be live
    without an end date) each operator's consent record from a number is kept, ended ones
    too: how an administrator finds them from the number. In the number's bucket slot."""
    return f"dnc:ck:{{{bucket_of(number)}}}:{member_of(number)}"


def number_opted_out(number: int) -> str:
    """When (unix ms) the subscriber's last opt-out ended the consents from a number, every
    operator's: evidence given before it no longer counts. Kept as long as the number stays
    registered, and DNC_RETENTION_DAYS after its registration ends; in the number's bucket
    slot."""
    return opted_out_prefix(bucket_of(number)) + str(member_of(number))


def opted_out_prefix(bucket: int) -> str:
    """keys.number_opted_out without its member: in the bucket's slot, as its set."""
    return f"dnc:cno:{{{bucket}}}:"


def consents_opted_out(operator_id: str) -> str:
    """Sorted set of number digits, scored by when (unix ms) the subscriber's opt-out ended
    the operator's live consent from it: evidence given before then cannot bring that
    consent back. Each kept DNC_RETENTION_DAYS. (`dnc:coo:` was a hash whose entries lived
    as long as opt-outs kept coming; the new name leaves those to expire.)"""
    return f"dnc:cooz:{{{operator_id}}}"


def consents_opted_out_before(operator_id: str) -> str:
    """consents_opted_out as the release before kept it: a hash of number digits -> ms,
    read until it expires (DNC_RETENTION_DAYS after its last write), never written."""
    return f"dnc:coo:{{{operator_id}}}"


def consent(operator_id: str, consent_id: str) -> str:
    """One consent's record and evidence; kept DNC_RETENTION_DAYS after it ends."""
    return f"dnc:c:{{{operator_id}}}:{consent_id}"


def bucket_filter(prefixes: Sequence[str]) -> Callable[[int], bool]:
    """Whether a bucket can hold numbers under any of `prefixes`, remembered per bucket."""
    chosen = tuple(prefixes)

    @functools.lru_cache(maxsize=65536)
    def kept(bucket: int) -> bool:
        return len(buckets_under(np.array([bucket], dtype=np.int64), chosen)) > 0

    return kept


def buckets_under(buckets: np.ndarray, prefixes: Sequence[str]) -> np.ndarray:
    """The buckets (from a sorted array) that can hold numbers under any of the prefixes."""
    if not prefixes:
        return buckets
    keep = np.zeros(len(buckets), dtype=bool)
    for prefix in prefixes:
        value = int(prefix.removeprefix("+"))
        width = len(prefix.removeprefix("+"))
        for length in range(width, MAX_DIGITS + 1):
            scale = 10 ** (length - width)
            low, high = value * scale, (value + 1) * scale - 1
            keep |= (buckets >= low >> BUCKET_BITS) & (buckets <= high >> BUCKET_BITS)
    return buckets[keep]


# -- prefixes ------------------------------------------------------------------------


def prefix_range(prefix: str) -> tuple[int, int]:
    """A prefix such as `+1212` as (its digits as an int, how many digits).

    E.164 numbers have different lengths, so a prefix covers one range of integers
    per possible length; `in_prefixes` tests membership with these two values. ASCII
    digits only, as accounts' prefixes are: `str.isdigit` also takes `²` and `١`.
    """
    digits = prefix.removeprefix("+")
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 15 or digits[0] == "0":
        raise ValueError(
            f"prefix {prefix!r} is not '+' followed by 1 to 15 digits, the first not 0 "
            "(no country code starts with 0)"
        )
    value = int(digits)
    return value, len(digits)


def in_prefixes(numbers: np.ndarray, prefixes: Sequence[str]) -> np.ndarray:
    """Boolean mask: which E.164 integers fall under any of the prefixes."""
    if not prefixes:
        return np.ones(len(numbers), dtype=bool)
    mask = np.zeros(len(numbers), dtype=bool)
    lengths = _digit_count(numbers)
    for prefix in prefixes:
        value, width = prefix_range(prefix)
        for length in range(width, MAX_DIGITS + 1):
            scale = 10 ** (length - width)
            mask |= (lengths == length) & (numbers // scale == value)
    return mask


def _digit_count(numbers: np.ndarray) -> np.ndarray:
    counts = np.zeros(len(numbers), dtype=np.int64)
    for power in range(1, MAX_DIGITS + 1):
        counts += numbers >= 10 ** (power - 1)
    return counts

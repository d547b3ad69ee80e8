"""Load test of a running registry: subscribers, carriers and operators at once.

    DNC_ADMIN_KEY=secret make run       # one terminal: the registry
    DNC_ADMIN_KEY=secret make locust    # another: 60 s headless, CSV stats in benchmarks/out/

What each user does:

- `Subscriber`: the public status check of one number, and now and then a
  complaint about a call received anyway, whose status (by its id) is then
  checked. The registry limits both per client
  address, and every simulated subscriber shares this machine's address, so
  most answers are `429`: that is the limiter doing its job and is counted as
  a success under its own name, `... (429 rate limited)`.
- `Carrier`: registers random valid US numbers (`PUT`), forwards opt-out texts
  (`STOP`, `TD`, `退订`, `START 2,5`, `HELP`) to `POST /v1/sms/inbound`, and
  deregisters some numbers it registered before (`DELETE`).
- `Operator`: single voice look-ups, and voice scrubs of `text/plain` dial lists
  of 1,000 to 100,000 numbers (`--scrub-sizes`) of which about 10%
  (`--registered-share`) are registered numbers that block voice calls,
  preloaded at the start or registered by the carriers since (sms-only
  registrations, which a voice scrub calls callable, are left out). A list
  takes each such number at most once; `--preload` defaults to enough of them
  for the largest list's share (10,000 for 100,000 rows at 10%), and a list
  larger than the pool allows holds all of it, a smaller share (logged once).
  Each scrub's streamed CSV is read in full and checked row by row count, then
  its receipt (`X-Scrub-Receipt`) is fetched and checked. Now and then it polls
  the complaints about its callers (`GET /v1/caller-complaints`, from its cursor).

Before the users start (and before `--run-time` starts counting) one carrier
and one operator account are created with the administrator key from
`DNC_ADMIN_KEY` (`POST /v1/operators`), and `--preload` numbers are registered
through the carrier account. When the registry cannot be reached or refuses the
key, locust exits at once with status 3 (NOT_STARTED) and says why; `make locust`
then keeps the previous run's CSV stats.
"""

from __future__ import annotations

import logging
import os
import random
import sys
import time
from typing import Any, NoReturn

import gevent.pool
import numpy as np
import phonenumbers
import requests
from locust import HttpUser, between, events, task
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import LocalRunner, MasterRunner
from requests.adapters import HTTPAdapter

log = logging.getLogger("locustfile")

ADMIN_KEY = os.environ.get("DNC_ADMIN_KEY")
if not ADMIN_KEY:
    sys.exit(
        "benchmarks/locustfile.py: set DNC_ADMIN_KEY to the registry's administrator key "
        "(the one `make run` printed, or the one it was started with: "
        "DNC_ADMIN_KEY=secret make run, then DNC_ADMIN_KEY=secret make locust)"
    )

# Real US area codes; every exchange 200-999 in them is a valid number (checked below).
AREA_CODES = np.array(
    [201, 202, 206, 212, 213, 303, 310, 312, 404, 415, 503, 512, 602, 617, 646, 702, 713, 718, 917],
    dtype=np.int64,
)


def _check_numbers() -> None:
    """Every number the generator can make must be valid, or scrubs would count invalids."""
    for area in AREA_CODES.tolist():
        for exchange in range(200, 1000):
            for line in (0, 9999):
                number = phonenumbers.PhoneNumber(
                    country_code=1, national_number=area * 10**7 + exchange * 10**4 + line
                )
                if not phonenumbers.is_valid_number(number):
                    sys.exit(f"benchmarks/locustfile.py: +1{number.national_number} is not valid")


_check_numbers()
rng = np.random.default_rng()


def random_numbers(count: int) -> np.ndarray:
    """`count` random valid US numbers as int64 E.164 digits (1 NPA NXX XXXX)."""
    area = AREA_CODES[rng.integers(0, len(AREA_CODES), count)]
    exchange = rng.integers(200, 1000, count)
    line = rng.integers(0, 10_000, count)
    return 10**10 + area * 10**7 + exchange * 10**4 + line  # type: ignore[no-any-return]


def random_number() -> int:
    return int(random_numbers(1)[0])


def dial_list(listed: np.ndarray, size: int) -> np.ndarray:
    """`size` distinct numbers in random order: every one of `listed`, the rest random."""
    numbers = np.unique(listed)
    while len(numbers) < size:
        numbers = np.union1d(numbers, random_numbers(size - len(numbers)))
    rng.shuffle(numbers)
    return numbers


class Registered:
    """The numbers this load test has registered and not removed: O(1) add, take and pick."""

    def __init__(self) -> None:
        self._numbers: list[int] = []
        self._index: dict[int, int] = {}
        self.removed = 0  # how many were ever taken out

    def __len__(self) -> int:
        return len(self._numbers)

    def add(self, number: int) -> None:
        if number not in self._index:
            self._index[number] = len(self._numbers)
            self._numbers.append(number)

    def discard(self, number: int) -> None:
        i = self._index.pop(number, None)
        if i is None:
            return
        self.removed += 1
        last = self._numbers.pop()
        if last != number:
            self._numbers[i] = last
            self._index[last] = i

    def take(self) -> int | None:
        """Remove and return a random one (the carriers deregister it)."""
        if not self._numbers:
            return None
        number = random.choice(self._numbers)
        self.discard(number)
        return number

    def pick_one(self) -> int | None:
        return random.choice(self._numbers) if self._numbers else None

    def pick(self, count: int) -> np.ndarray:
        """`count` of them, each at most once: all of them when there are fewer."""
        count = min(max(count, 0), len(self._numbers))
        chosen = rng.choice(len(self._numbers), size=count, replace=False)
        return np.asarray(self._numbers, dtype=np.int64)[chosen]


# Every number this load test registered and has not removed (the subscribers' status
# checks, the carriers' deregistrations), and those of them whose registration blocks
# voice calls, which the operators' voice look-ups and scrubs draw on: a voice scrub
# with no category calls an sms-only registration callable.
registered = Registered()
blocking_voice = Registered()

PRELOAD_CONCURRENCY = 16
# The default preload holds 1/PRELOAD_HEADROOM more than the largest list's share.
PRELOAD_HEADROOM = 10
accounts: dict[str, dict[str, str]] = {}


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument(
        "--scrub-sizes",
        default="1000,10000,100000",
        env_var="LOCUST_SCRUB_SIZES",
        help="rows of the operators' dial lists, comma-separated; one is chosen per scrub",
    )
    parser.add_argument(
        "--registered-share",
        type=float,
        default=0.1,
        env_var="LOCUST_REGISTERED_SHARE",
        help="share of a dial list that is registered (default 0.1)",
    )
    parser.add_argument(
        "--preload",
        type=int,
        default=None,
        env_var="LOCUST_PRELOAD",
        help="numbers the carrier account registers (voice and sms) before the users start; "
        "default: the largest scrub size x the registered share, and a tenth more for the "
        "run's deregistrations, so that list's share are distinct registered numbers",
    )


def scrub_sizes(options: Any) -> list[int]:
    raw = options.scrub_sizes if options else "1000"
    return [int(size) for size in str(raw).split(",") if size.strip()]


def registered_share(options: Any) -> float:
    return float(options.registered_share) if options else 0.1


def preload_count(options: Any) -> int:
    """--preload, or enough voice-blocking numbers for the largest list's registered share.

    A tenth more than that share: the carriers' deregistrations draw on the preloaded
    numbers too, and a pool of exactly the share would fall short after the first one.
    """
    if options and options.preload is not None:
        return int(options.preload)
    wanted = round(max(scrub_sizes(options), default=0) * registered_share(options))
    return wanted + -(-wanted // PRELOAD_HEADROOM)


# The exit status of a run that could not start: no users ran, no stats were gathered.
NOT_STARTED = 3


def _not_started(message: str) -> NoReturn:
    print(f"benchmarks/locustfile.py: {message}", file=sys.stderr, flush=True)
    sys.exit(NOT_STARTED)


@events.init.add_listener
def _accounts_and_preload(environment: Environment, **_: Any) -> None:
    """One carrier and one operator account, then the preloaded registrations.

    On `init`, before locust starts its users and its `--run-time` clock: a registry
    that cannot be reached or refuses the key ends the process at once (a `test_start`
    listener cannot: locust would wait out `--run-time` with no users). The master of a
    distributed run has no users, so no accounts either.
    """
    if isinstance(environment.runner, MasterRunner):
        return
    host = (environment.host or "").rstrip("/")
    if not host:
        _not_started("no host to load: pass --host (make locust does)")
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_maxsize=PRELOAD_CONCURRENCY))
    session.mount("https://", HTTPAdapter(pool_maxsize=PRELOAD_CONCURRENCY))
    for role in ("carrier", "operator"):
        try:
            answer = session.post(
                f"{host}/v1/operators",
                json={"name": f"locust {role}", "role": role},
                headers=admin,
                timeout=10,
            )
        except requests.RequestException as exc:
            _not_started(f"the registry at {host!r} cannot be reached: {exc}")
        if answer.status_code != 201:
            _not_started(
                f"creating the {role} account answered {answer.status_code} {answer.text[:200]}; "
                "is DNC_ADMIN_KEY the registry's administrator key?"
            )
        accounts[role] = {"Authorization": f"Bearer {answer.json()['api_key']}"}

    def preload(number: int) -> None:
        # No body: every channel, so the number blocks the operators' voice calls. A PUT
        # is safe to send again: a loaded machine's 503 or timeout is tried twice more.
        for _ in range(3):
            try:
                put = session.put(
                    f"{host}/v1/registrations/+{number}", headers=accounts["carrier"], timeout=30
                )
            except requests.RequestException as exc:
                log.warning("preloading +%d: %s", number, exc)
                continue
            if put.status_code in (200, 201):
                registered.add(number)
                blocking_voice.add(number)
                return
            log.warning("preloading +%d answered %d", number, put.status_code)

    count = preload_count(environment.parsed_options)
    log.info("accounts created; preloading %d registrations before the users start", count)
    # Distinct: two draws of one number would preload fewer than `count`.
    distinct = dial_list(np.empty(0, dtype=np.int64), count)
    gevent.pool.Pool(PRELOAD_CONCURRENCY).map(preload, distinct.tolist())
    log.info("%d numbers preloaded", len(registered))


_warned_short = False


def _short_list(size: int, wanted: int, found: int) -> None:
    """Say once that lists hold a smaller registered share than asked: too few numbers."""
    global _warned_short
    if not _warned_short:
        _warned_short = True
        log.warning(
            "a %d-row list wanted %d registered numbers that block voice calls and has %d: "
            "raise --preload (LOCUST_PRELOAD) for the asked share",
            size,
            wanted,
            found,
        )


def _judge(answer: Any, ok: bool) -> None:
    """A success when `ok`, else a failure with the status and the start of the body."""
    if ok:
        answer.success()
    else:
        answer.failure(f"{answer.status_code} {answer.text[:200]}")


def _judge_limited(answer: Any, name: str, ok: bool) -> None:
    """A success when `ok`, or a 429 with Retry-After (counted under its own name: every
    simulated subscriber shares one address, so the per-client limiter is doing its job)."""
    if ok:
        answer.success()
    elif answer.status_code == 429 and answer.headers.get("Retry-After"):
        answer.request_meta["name"] = f"{name} (429 rate limited)"
        answer.success()
    else:
        _judge(answer, False)


class Subscriber(HttpUser):
    """Someone checking whether a number is on the list, from the web page."""

    weight = 4
    wait_time = between(0.5, 2.0)

    @task
    def check_status(self) -> None:
        known = registered.pick_one() if random.random() < 0.5 else None
        digits = random_number() if known is None else known
        name = "GET /v1/registrations/[number]"
        with self.client.get(
            f"/v1/registrations/+{digits}", name=name, catch_response=True
        ) as answer:
            _judge_limited(
                answer, name, answer.status_code == 200 and "registered" in answer.json()
            )

    @task(1)
    def complain(self) -> None:
        """A call received anyway: the complaint path, limited per address like the check."""
        number = registered.pick_one() or random_number()
        body = {
            "number": f"+{number}",
            "caller": f"+{random_number()}",
            "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600)),
            "channel": random.choice(["voice", "sms"]),
            "category": random.randint(1, 8),
        }
        name = "POST /v1/complaints"
        complaint_id = None
        with self.client.post(name[5:], json=body, name=name, catch_response=True) as answer:
            _judge_limited(
                answer, name, answer.status_code == 201 and "complaint_id" in answer.json()
            )
            if answer.status_code == 201:
                complaint_id = answer.json().get("complaint_id")
        if complaint_id:
            self._follow(complaint_id)

    def _follow(self, complaint_id: str) -> None:
        """The complainant checks what became of the report, by its id (no key)."""
        with self.client.get(
            f"/v1/complaints/{complaint_id}/status",
            name="GET /v1/complaints/[id]/status",
            catch_response=True,
        ) as answer:
            _judge(
                answer,
                answer.status_code == 200 and answer.json()["status"] in ("open", "resolved"),
            )


class _Keyed(HttpUser):
    abstract = True
    role = ""

    def on_start(self) -> None:
        if self.role not in accounts:
            raise StopUser()  # no account made in this process (see _accounts_and_preload)
        self.client.headers.update(accounts[self.role])


class Carrier(_Keyed):
    """A carrier forwarding STOP messages and opt-backs as registrations."""

    weight = 2
    wait_time = between(0.1, 0.5)
    role = "carrier"

    @task(3)
    def register(self) -> None:
        number = random_number()
        voice = random.random() < 0.8
        body = {"channels": ["voice", "sms"] if voice else ["sms"]}
        with self.client.put(
            f"/v1/registrations/+{number}",
            json=body,
            name="PUT /v1/registrations/[number]",
            catch_response=True,
        ) as answer:
            if answer.status_code in (200, 201):
                registered.add(number)
                if voice:
                    blocking_voice.add(number)
                else:
                    blocking_voice.discard(number)
                answer.success()
            else:
                answer.failure(f"{answer.status_code} {answer.text[:200]}")

    @task(2)
    def forward_sms(self) -> None:
        """An opt-out text to the carrier's short code, forwarded as it came."""
        number = random_number()
        text = random.choice(["STOP", "Stop please", "TD", "退订", "START 2,5", "HELP"])
        body = {"from": f"+{number}", "to": "55555", "text": text}
        with self.client.post(
            "/v1/sms/inbound", json=body, name="POST /v1/sms/inbound", catch_response=True
        ) as answer:
            action = answer.json().get("action") if answer.status_code == 200 else None
            if action == "registered":  # STOP, or START n on a new number: every channel
                registered.add(number)
                blocking_voice.add(number)
                answer.success()
            elif action == "preferences_updated":  # START n kept the registration's channels
                registered.add(number)
                answer.success()
            elif action == "deregistered":
                registered.discard(number)
                blocking_voice.discard(number)
                answer.success()
            elif action == "help":
                answer.success()
            else:
                answer.failure(f"{answer.status_code} {answer.text[:200]}")

    @task(1)
    def deregister(self) -> None:
        number = registered.take()
        if number is None:
            return
        blocking_voice.discard(number)
        with self.client.delete(
            f"/v1/registrations/+{number}",
            name="DELETE /v1/registrations/[number]",
            catch_response=True,
        ) as answer:
            # 404: another locust process (distributed mode) removed it first.
            _judge(answer, answer.status_code in (200, 404))


class Operator(_Keyed):
    """A telemarketer: single look-ups, and dial lists washed before a campaign."""

    weight = 2
    wait_time = between(0.2, 1.0)
    role = "operator"

    def _share(self) -> float:
        return registered_share(self.environment.parsed_options)

    def _sizes(self) -> list[int]:
        return scrub_sizes(self.environment.parsed_options)

    @task(5)
    def look_up(self) -> None:
        known = blocking_voice.pick_one() if random.random() < self._share() else None
        digits = random_number() if known is None else known
        with self.client.get(
            f"/v1/numbers/+{digits}?channel=voice",
            name="GET /v1/numbers/[number]",
            catch_response=True,
        ) as answer:
            _judge(
                answer,
                answer.status_code == 200 and answer.json()["status"] in ("callable", "blocked"),
            )

    @task(1)
    def complaints_about_its_callers(self) -> None:
        """The complaints naming the account's callers, polled from the last cursor."""
        since = getattr(self, "_complaints_since", None)
        params = {"since": since} if since else {}
        with self.client.get(
            "/v1/caller-complaints",
            params=params,
            name="GET /v1/caller-complaints",
            catch_response=True,
        ) as answer:
            if answer.status_code == 200 and "complaints" in answer.json():
                self._complaints_since = answer.json()["next"]
                answer.success()
            else:
                answer.failure(f"{answer.status_code} {answer.text[:200]}")

    @task(1)
    def scrub(self) -> None:
        size = random.choice(self._sizes())
        wanted = round(size * self._share())
        removed = blocking_voice.removed
        listed = blocking_voice.pick(wanted)
        if len(listed) < wanted:
            _short_list(size, wanted, len(listed))
        numbers = dial_list(listed, size)
        body = "".join(f"+{n}\n" for n in numbers.tolist()).encode()
        receipt_id = None
        with self.client.post(
            "/v1/scrub?channel=voice",
            data=body,
            headers={"Content-Type": "text/plain"},
            name=f"POST /v1/scrub text/plain {size:,} rows",
            catch_response=True,
        ) as answer:
            # requests reads the streamed body to its end before it returns.
            rows = answer.content.count(b"\n") - 1  # less the header row
            receipt_id = answer.headers.get("X-Scrub-Receipt")
            if answer.status_code != 200:
                answer.failure(f"{answer.status_code} {answer.text[:200]}")
            elif not receipt_id:
                answer.failure("no X-Scrub-Receipt header")
            elif rows != size:
                answer.failure(f"{rows} rows came back for {size} numbers")
            else:
                answer.success()
        if receipt_id:
            # Each listed number blocks voice calls, unless deregistered since it was picked.
            # Only this process's deregistrations are counted: in a distributed run others
            # may remove listed numbers too, so the bound is not checked there.
            local = isinstance(self.environment.runner, LocalRunner)
            gone = blocking_voice.removed - removed
            self._check_receipt(receipt_id, size, len(listed) - gone if local else 0)

    def _check_receipt(self, receipt_id: str, size: int, blocked_at_least: int) -> None:
        with self.client.get(
            f"/v1/scrubs/{receipt_id}", name="GET /v1/scrubs/[receipt_id]", catch_response=True
        ) as answer:
            counts = answer.json().get("counts", {}) if answer.status_code == 200 else {}
            if answer.status_code != 200:
                answer.failure(f"{answer.status_code} {answer.text[:200]}")
            elif counts.get("total") != size or counts.get("invalid") != 0:
                answer.failure(f"receipt counts {counts} for {size} valid numbers")
            elif counts["callable"] + counts["blocked"] != size:
                answer.failure(f"receipt counts {counts} do not add up")
            elif counts["blocked"] < blocked_at_least:
                answer.failure(
                    f"{counts['blocked']} blocked in a voice scrub that listed "
                    f"{blocked_at_least} numbers registered for voice calls"
                )
            else:
                answer.success()

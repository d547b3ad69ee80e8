"""Operator accounts and API keys (CONTRACT section 6: keys, roles, administrators)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from conftest import ADMIN, ready_client
from fastapi.testclient import TestClient
from httpx import Response

from registry.config import Settings
from registry.store import keys

pytestmark = pytest.mark.cluster  # every test on one redis-server and on a Redis Cluster
Headers = dict[str, str]


def bearer(api_key: str) -> Headers:
    return {"Authorization": f"Bearer {api_key}"}


def assert_error(answer: Response, status: int, code: str) -> dict[str, Any]:
    """The contract's error shape, with this status and code."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    return error  # type: ignore[no-any-return]


def create(client: TestClient, **body: Any) -> dict[str, Any]:
    answer = client.post(
        "/v1/operators",
        json={"name": "Acme Telemarketing", "role": "operator", **body},
        headers=ADMIN,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


# Endpoints of each role, each answering 2xx for an allowed key on an empty registry.
def call_operator_endpoint(client: TestClient, headers: Headers) -> Response:
    return client.get("/v1/numbers/+12125551234", headers=headers)


def call_carrier_endpoint(client: TestClient, headers: Headers) -> Response:
    return client.put("/v1/registrations/+12125551234", headers=headers)


def call_admin_endpoint(client: TestClient, headers: Headers) -> Response:
    return client.post("/v1/operators", json={"name": "x", "role": "operator"}, headers=headers)


ROLE_ENDPOINTS: dict[str, Callable[[TestClient, Headers], Response]] = {
    "operator": call_operator_endpoint,
    "carrier": call_carrier_endpoint,
    "admin": call_admin_endpoint,
}


# -- creating accounts ----------------------------------------------------------------------


def test_creating_an_operator_returns_its_id_and_key_once(client: TestClient) -> None:
    answer = client.post("/v1/operators", json={"name": "Acme", "role": "operator"}, headers=ADMIN)
    assert answer.status_code == 201
    body = answer.json()
    assert body["operator_id"] and body["api_key"]
    assert isinstance(body["operator_id"], str) and isinstance(body["api_key"], str)
    assert call_operator_endpoint(client, bearer(body["api_key"])).status_code == 200


def test_every_account_gets_its_own_id_and_key(client: TestClient) -> None:
    accounts = [create(client) for _ in range(5)]
    assert len({a["operator_id"] for a in accounts}) == 5
    assert len({a["api_key"] for a in accounts}) == 5


def test_the_role_defaults_to_operator(client: TestClient) -> None:
    key = bearer(create(client)["api_key"])
    assert call_operator_endpoint(client, key).status_code == 200
    assert_error(call_carrier_endpoint(client, key), 403, "forbidden")


@pytest.mark.parametrize("role", ["operator", "carrier", "admin"])
def test_an_account_can_call_its_own_role_endpoints(client: TestClient, role: str) -> None:
    key = bearer(create(client, role=role)["api_key"])
    assert ROLE_ENDPOINTS[role](client, key).status_code in (200, 201)


@pytest.mark.parametrize(
    ("role", "endpoint"),
    [
        ("operator", "carrier"),
        ("operator", "admin"),
        ("carrier", "operator"),
        ("carrier", "admin"),
    ],
)
def test_a_role_without_the_right_gets_403(client: TestClient, role: str, endpoint: str) -> None:
    key = bearer(create(client, role=role)["api_key"])
    error = assert_error(ROLE_ENDPOINTS[endpoint](client, key), 403, "forbidden")
    assert role in error["message"]


@pytest.mark.parametrize("admin", ["settings key", "admin account"])
def test_an_administrator_key_may_call_every_role_endpoint(client: TestClient, admin: str) -> None:
    key = ADMIN if admin == "settings key" else bearer(create(client, role="admin")["api_key"])
    for call in ROLE_ENDPOINTS.values():
        assert call(client, key).status_code in (200, 201)
    assert client.get("/v1/changes", headers=key).status_code == 200
    assert client.get("/v1/export", headers=key).status_code == 200
    scrub = client.post("/v1/scrub", json={"numbers": ["+12125551234"]}, headers=key)
    assert scrub.status_code == 200
    assert client.delete("/v1/registrations/+12125551234", headers=key).status_code == 200


def test_prefixes_are_accepted_and_restrict_the_account(client: TestClient) -> None:
    key = bearer(create(client, prefixes=["+1212", "+86"])["api_key"])
    assert client.get("/v1/numbers/+12125551234", headers=key).status_code == 200
    assert client.get("/v1/numbers/+861012345678", headers=key).status_code == 200
    assert_error(client.get("/v1/numbers/+16465551234", headers=key), 403, "prefix_not_subscribed")


def test_rate_limit_is_accepted(client: TestClient) -> None:
    assert create(client, rate_limit=50)["api_key"]


def test_a_prefix_given_twice_is_kept_once(client: TestClient, redis_client: Any) -> None:
    created = create(client, prefixes=["+1212", "+1310", "+1212"])
    key = {"Authorization": f"Bearer {created['api_key']}"}
    assert client.get("/v1/numbers/+12125551234", headers=key).status_code == 200
    assert client.get("/v1/numbers/+14155551234", headers=key).status_code == 403
    stored = redis_client.hget(keys.operator(created["operator_id"]), "prefixes")
    assert stored == b"+1212,+1310"


@pytest.mark.parametrize(
    "body",
    [
        {},  # no name
        {"name": ""},
        {"name": "x" * 201},
        {"name": 42},
        {"name": "Acme", "role": "superuser"},
        {"name": "Acme", "role": "subscriber"},
        {"name": "Acme", "role": "operator", "prefixes": ["1212"]},  # no '+'
        # no country code starts with 0
        {"name": "Acme", "role": "operator", "prefixes": ["+0212"]},
        {"name": "Acme", "role": "operator", "prefixes": ["+"]},
        {"name": "Acme", "role": "operator", "prefixes": ["+1212a"]},
        {"name": "Acme", "role": "operator", "prefixes": ["+1234567890123456"]},  # 16 digits
        {"name": "Acme", "role": "operator", "prefixes": ["+1212\n"]},  # $ matches before \n
        {"name": "Acme", "role": "operator", "prefixes": "+1212"},  # not a list
        {"name": "Acme", "role": "operator", "prefixes": ["+1212", 44]},
        # Not "every number": an empty filter in a script must not open the registry.
        {"name": "Acme", "role": "operator", "prefixes": []},
        {"name": "Acme", "role": "carrier", "prefixes": []},
        {"name": "Acme", "role": "operator", "rate_limit": 0},
        {"name": "Acme", "role": "operator", "rate_limit": "fast"},
        # A number in a string, a boolean, a typo of a billion: not read as a limit.
        {"name": "Acme", "role": "operator", "rate_limit": "5"},
        {"name": "Acme", "role": "operator", "rate_limit": True},
        {"name": "Acme", "role": "operator", "rate_limit": 10**20},
        {"name": "Acme", "role": "operator", "api_key": "chosen-by-me"},  # unknown field
        # A name nobody can read in a report names nobody.
        {"name": "   ", "role": "operator"},
        {"name": "Acme\u0000", "role": "operator"},
        # An administrator reaches every number (CONTRACT section 6): no prefixes to limit it.
        {"name": "Root", "role": "admin", "prefixes": ["+44"]},
        ["Acme"],
    ],
)
def test_a_bad_account_body_is_a_400_with_the_error_shape(client: TestClient, body: Any) -> None:
    answer = client.post("/v1/operators", json=body, headers=ADMIN)
    error = assert_error(answer, 400, "invalid_request")
    assert error["details"]["problems"]


@pytest.mark.parametrize("body", [{"name": "Acme"}, {"name": "Acme", "prefixes": ["+1212"]}])
def test_the_role_is_required(client: TestClient, body: dict[str, Any]) -> None:
    answer = client.post("/v1/operators", json=body, headers=ADMIN)
    error = assert_error(answer, 400, "invalid_request")
    assert error["details"]["problems"] == [{"where": "body.role", "problem": "Field required"}]


def test_a_body_that_is_not_json_is_a_400(client: TestClient) -> None:
    answer = client.post(
        "/v1/operators",
        content=b"name=Acme",
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    error = assert_error(answer, 400, "invalid_json")
    assert error["message"] == (
        "the body is not JSON at character 0: Expecting value; send UTF-8 JSON"
    )
    broken = client.post(
        "/v1/operators",
        content=b'{"name": "Acme",, "role": "operator"}',
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    assert (
        "at character 16: Expecting property name"
        in assert_error(broken, 400, "invalid_json")["message"]
    )


def test_no_body_is_a_400(client: TestClient) -> None:
    assert_error(client.post("/v1/operators", headers=ADMIN), 400, "invalid_request")


def test_a_bad_body_creates_no_account(client: TestClient, redis_client: redis.Redis) -> None:
    # The worker's start-up chores write their flags just after /readyz says ready, and its
    # metrics every second: let them finish, and leave the metrics out.
    deadline = time.monotonic() + 10
    while not redis_client.exists(keys.COMPLAINTS_QUEUED):
        assert time.monotonic() < deadline, "the start-up chores never finished"
        time.sleep(0.01)

    def stored() -> set[bytes]:  # on a Cluster: every node (KEYS asks one)
        return set(redis_client.scan_iter()) - {keys.METRICS.encode()}

    before = stored()
    client.post(
        "/v1/operators",
        json={"name": "Acme", "role": "operator", "prefixes": ["1212"]},
        headers=ADMIN,
    )
    assert stored() == before


# -- missing, unknown and revoked keys ------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer    "},
        {"Authorization": f"Basic {ADMIN['Authorization'].split()[1]}"},
        {"Authorization": ADMIN["Authorization"].split()[1]},  # the key without 'Bearer'
    ],
)
def test_a_missing_key_is_a_401(client: TestClient, headers: Headers) -> None:
    for call in ROLE_ENDPOINTS.values():
        assert_error(call(client, headers), 401, "missing_key")


def test_the_bearer_scheme_is_case_insensitive(client: TestClient) -> None:
    key = ADMIN["Authorization"].split()[1]
    assert call_operator_endpoint(client, {"Authorization": f"bearer {key}"}).status_code == 200


@pytest.mark.parametrize("key", ["dnc_not-a-key", "test-admin-key-but-longer", "x"])
def test_an_unknown_key_is_a_401(client: TestClient, key: str) -> None:
    for call in ROLE_ENDPOINTS.values():
        assert_error(call(client, bearer(key)), 401, "unknown_key")


def test_a_revoked_key_is_refused_at_once_by_the_revoking_worker(client: TestClient) -> None:
    account = create(client, role="operator")
    key = bearer(account["api_key"])
    assert call_operator_endpoint(client, key).status_code == 200  # now cached
    answer = client.delete(f"/v1/operators/{account['operator_id']}", headers=ADMIN)
    assert answer.status_code == 200
    assert answer.json()["operator_id"] == account["operator_id"]
    assert_error(call_operator_endpoint(client, key), 401, "unknown_key")


@pytest.fixture
def other_worker(settings: Settings) -> Iterator[TestClient]:
    """A second app on the same Redis, as another worker process would be."""
    api = ready_client(settings.with_(auth_cache_seconds=0.3))
    yield api
    api.__exit__(None, None, None)


def test_other_workers_refuse_a_revoked_key_once_their_cache_expires(
    client: TestClient, other_worker: TestClient
) -> None:
    account = create(client, role="carrier")
    key = bearer(account["api_key"])
    assert call_carrier_endpoint(other_worker, key).status_code in (200, 201)  # cached there
    assert (
        client.delete(f"/v1/operators/{account['operator_id']}", headers=ADMIN).status_code == 200
    )
    time.sleep(0.35)
    assert_error(call_carrier_endpoint(other_worker, key), 401, "unknown_key")


# -- a new key, new prefixes: the same account ----------------------------------------------

EVIDENCE = {"method": "web_form", "reference": "form-42", "text": "Yes, you may call me"}


def test_a_leaked_key_is_replaced_and_the_account_keeps_its_consents(
    client: TestClient, other_worker: TestClient, redis_client: redis.Redis
) -> None:
    account = create(client, role="operator")
    operator_id, old = account["operator_id"], bearer(account["api_key"])
    carrier = bearer(create(client, role="carrier")["api_key"])
    number = "+12125551234"
    assert client.put(f"/v1/registrations/{number}", headers=carrier).status_code == 201
    given = {"number": number, "evidence": EVIDENCE}
    assert client.post("/v1/consents", json=given, headers=old).status_code == 201
    assert call_operator_endpoint(other_worker, old).status_code == 200  # cached there

    answer = client.post(f"/v1/operators/{operator_id}/key", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == {"operator_id", "api_key"}
    assert answer.json()["operator_id"] == operator_id
    new = bearer(answer.json()["api_key"])
    assert new != old
    assert_error(call_operator_endpoint(client, old), 401, "unknown_key")  # this worker: at once
    time.sleep(0.35)  # the other worker's key cache
    assert_error(call_operator_endpoint(other_worker, old), 401, "unknown_key")
    # The same account: its consent still lets it call the registered number.
    looked = client.get(f"/v1/numbers/{number}", headers=new).json()
    assert (looked["status"], looked["reason"]) == ("callable", "consent")
    assert client.get(f"/v1/operators/{operator_id}", headers=ADMIN).json()["revoked_at"] is None
    entries = client.get("/v1/audit", headers=ADMIN).json()["entries"]
    assert {"action": "operator.key_replaced", "operator": operator_id}.items() <= entries[
        -1
    ].items()
    # Only the new key's hash is stored, and an old index entry a crash might leave behind
    # (replace_key writes the new entry, the account, then drops the old) opens nothing.
    old_digest = hashlib.sha256(account["api_key"].encode()).hexdigest()
    assert redis_client.get(keys.api_key(old_digest)) is None
    redis_client.set(keys.api_key(old_digest), operator_id)
    assert_error(call_operator_endpoint(client, old), 401, "unknown_key")
    assert call_operator_endpoint(client, new).status_code == 200


def test_replacing_a_key_needs_an_administrator_and_an_active_account(
    client: TestClient,
) -> None:
    account = create(client, role="operator")
    own = bearer(account["api_key"])
    path = f"/v1/operators/{account['operator_id']}/key"
    assert_error(client.post(path, headers=own), 403, "forbidden")
    nobody = client.post("/v1/operators/op_nobody/key", headers=ADMIN)
    assert_error(nobody, 404, "operator_not_found")
    assert (
        client.delete(f"/v1/operators/{account['operator_id']}", headers=ADMIN).status_code == 200
    )
    assert_error(client.post(path, headers=ADMIN), 404, "operator_not_found")
    assert_error(call_operator_endpoint(client, own), 401, "unknown_key")


def test_an_account_gets_new_prefixes_and_keeps_its_id(
    client: TestClient, other_worker: TestClient
) -> None:
    account = create(client, role="operator", prefixes=["+1212"])
    path, key = f"/v1/operators/{account['operator_id']}", bearer(account["api_key"])
    manhattan, queens = "/v1/numbers/+12125551234", "/v1/numbers/+17185551234"
    assert client.get(queens, headers=key).status_code == 403
    assert other_worker.get(queens, headers=key).status_code == 403  # cached there

    changed = client.patch(path, json={"prefixes": ["+1718", "+1718"]}, headers=ADMIN)
    assert changed.status_code == 200, changed.text
    assert changed.json()["prefixes"] == ["+1718"]
    assert client.get(queens, headers=key).status_code == 200
    assert client.get(manhattan, headers=key).status_code == 403
    time.sleep(0.35)
    assert other_worker.get(queens, headers=key).status_code == 200
    entries = client.get("/v1/audit", headers=ADMIN).json()["entries"]
    assert entries[-1]["action"] == "operator.updated" and entries[-1]["prefixes"] == "+1718"

    everything = client.patch(path, json={"prefixes": None}, headers=ADMIN)
    assert everything.json()["prefixes"] is None  # as PATCH takes it back
    assert client.get(manhattan, headers=key).status_code == 200
    # Not "every number" by accident, nor a malformed prefix, nor one for an administrator.
    for body in ({"prefixes": []}, {"prefixes": ["1212"]}, {"prefixes": "+1212"}):
        assert_error(client.patch(path, json=body, headers=ADMIN), 400, "invalid_request")
    root = create(client, role="admin")["operator_id"]
    refused = client.patch(f"/v1/operators/{root}", json={"prefixes": ["+1"]}, headers=ADMIN)
    assert_error(refused, 400, "invalid_request")
    assert client.get(f"/v1/operators/{root}", headers=ADMIN).json()["prefixes"] is None


def audit(client: TestClient, action: str) -> list[dict[str, Any]]:
    entries = client.get("/v1/audit?limit=1000", headers=ADMIN).json()["entries"]
    return [e for e in entries if e["action"] == action]


def test_the_audit_trail_keeps_what_an_account_held_and_gave_up(client: TestClient) -> None:
    """A subscription that ends is on record where it ends: the account's terms on
    creation, each change as it was and as it is, and what it held when revoked. Every
    number is `all`, no callers or no limit `none`: never an empty string for either."""
    account = create(client, prefixes=["+1212", "+1646"], callers=["+13125550177"], rate_limit=9)
    path = f"/v1/operators/{account['operator_id']}"
    (made,) = audit(client, "operator.created")
    assert (made["prefixes"], made["callers"], made["rate_limit"]) == (
        "+1212,+1646", "+13125550177", "9",
    )  # fmt: skip
    assert client.patch(path, json={"prefixes": ["+1212"]}, headers=ADMIN).status_code == 200
    assert client.patch(path, json={"prefixes": None, "callers": []}, headers=ADMIN).json()[
        "prefixes"
    ] is None  # fmt: skip
    narrowed, widened = audit(client, "operator.updated")
    assert (narrowed["prefixes_before"], narrowed["prefixes"]) == ("+1212,+1646", "+1212")
    assert "callers" not in narrowed and "rate_limit_before" not in narrowed  # not sent
    assert (widened["prefixes_before"], widened["prefixes"]) == ("+1212", "all")
    assert (widened["callers_before"], widened["callers"]) == ("+13125550177", "none")
    assert client.patch(path, json={"prefixes": ["+1718"], "callers": ["ACMEBANK"]},
                        headers=ADMIN).status_code == 200  # fmt: skip
    assert client.delete(path, headers=ADMIN).status_code == 200
    (revoked,) = audit(client, "operator.revoked")
    assert (revoked["prefixes"], revoked["callers"], revoked["rate_limit"]) == (
        "+1718", "ACMEBANK", "9",
    )  # fmt: skip
    everywhere = create(client, name="Everywhere")  # no prefixes, callers nor limit
    made = audit(client, "operator.created")[-1]
    assert made["operator"] == everywhere["operator_id"]
    assert (made["prefixes"], made["callers"], made["rate_limit"]) == ("all", "none", "none")


def test_an_accounts_record_keeps_each_period_of_its_terms(
    client: TestClient, redis_client: Any
) -> None:
    """The audit entry of a subscription's start goes DNC_RETENTION_DAYS after it, which
    may be before the subscription ends: the account's record keeps each period, from
    when until when, for the retention after its end (the record itself is kept that
    long after revocation)."""
    account = create(client, prefixes=["+1212", "+1646"], callers=["+13125550177"])
    path = f"/v1/operators/{account['operator_id']}"
    (first,) = client.get(path, headers=ADMIN).json()["terms"]
    assert first["prefixes"] == ["+1212", "+1646"] and first["callers"] == ["+13125550177"]
    assert first["until"] is None and first["from"] == client.get(path, headers=ADMIN).json()[
        "created_at"
    ]  # fmt: skip
    assert client.patch(path, json={"rate_limit": None}, headers=ADMIN).status_code == 200
    assert len(client.get(path, headers=ADMIN).json()["terms"]) == 1  # nothing changed
    changed = client.patch(path, json={"prefixes": ["+1212"]}, headers=ADMIN).json()
    ended, current = changed["terms"]
    assert ended["prefixes"] == ["+1212", "+1646"] and ended["until"] == current["from"]
    assert current["prefixes"] == ["+1212"] and current["callers"] == ["+13125550177"]
    assert current["until"] is None
    assert client.delete(path, headers=ADMIN).status_code == 200
    kept = client.get(path, headers=ADMIN).json()
    assert [t["prefixes"] for t in kept["terms"]] == [["+1212", "+1646"], ["+1212"]]
    assert kept["terms"][-1]["until"] == kept["revoked_at"]

    # A period that ended more than DNC_RETENTION_DAYS ago is not kept (nor shown).
    other = create(client, prefixes=["+1718"])
    key, now = keys.operator(other["operator_id"]), int(time.time())
    old = {"from": now - 400 * 86400, "until": now - 200 * 86400, "prefixes": ["+1917"],
           "callers": [], "rate_limit": None}  # fmt: skip
    stored = json.loads(redis_client.hget(key, "terms"))
    redis_client.hset(key, "terms", json.dumps([old, *stored]))
    path = f"/v1/operators/{other['operator_id']}"
    assert [t["prefixes"] for t in client.get(path, headers=ADMIN).json()["terms"]] == [["+1718"]]
    client.patch(path, json={"prefixes": ["+1347"]}, headers=ADMIN)
    assert "+1917" not in redis_client.hget(key, "terms").decode()
    # One from before the terms were kept: its terms now, since a time not known.
    redis_client.hdel(key, "terms")
    (legacy,) = client.get(path, headers=ADMIN).json()["terms"]
    assert (legacy["from"], legacy["until"], legacy["prefixes"]) == (None, None, ["+1347"])
    changed = client.patch(path, json={"callers": ["ACME"]}, headers=ADMIN).json()
    assert [(t["from"] is None, t["callers"]) for t in changed["terms"]] == [
        (True, []), (False, ["ACME"]),
    ]  # fmt: skip


def test_revoking_leaves_other_accounts_alone(client: TestClient) -> None:
    doomed, kept = create(client), create(client)
    assert client.delete(f"/v1/operators/{doomed['operator_id']}", headers=ADMIN).status_code == 200
    assert call_operator_endpoint(client, bearer(kept["api_key"])).status_code == 200


def test_revoking_an_unknown_or_revoked_account_is_a_404(client: TestClient) -> None:
    assert_error(client.delete("/v1/operators/op_nobody", headers=ADMIN), 404, "operator_not_found")
    account = create(client)
    assert (
        client.delete(f"/v1/operators/{account['operator_id']}", headers=ADMIN).status_code == 200
    )
    again = client.delete(f"/v1/operators/{account['operator_id']}", headers=ADMIN)
    assert_error(again, 404, "operator_not_found")


def test_only_administrators_revoke(client: TestClient) -> None:
    victim = create(client)
    for role in ("operator", "carrier"):
        key = bearer(create(client, role=role)["api_key"])
        answer = client.delete(f"/v1/operators/{victim['operator_id']}", headers=key)
        assert_error(answer, 403, "forbidden")
    assert call_operator_endpoint(client, bearer(victim["api_key"])).status_code == 200


# -- keys at rest ---------------------------------------------------------------------------


def everything_in(client: Any) -> bytes:
    """Every key name and value in Redis, concatenated."""
    parts: list[Any] = []
    for name in client.scan_iter(count=1000):
        parts.append(name)
        kind = client.type(name)
        if kind == b"string":
            parts.append(client.get(name) or b"")
        elif kind == b"hash":
            for field, value in client.hgetall(name).items():
                parts += [field, value]
        elif kind == b"set":
            parts += client.smembers(name)
        elif kind == b"list":
            parts += client.lrange(name, 0, -1)
        elif kind == b"zset":
            parts += [m for m, _ in client.zrange(name, 0, -1, withscores=True)]
        elif kind == b"stream":
            for entry_id, fields in client.xrange(name):
                parts.append(entry_id)
                for field, value in fields.items():
                    parts += [field, value]
        else:
            raise AssertionError(f"unexpected Redis type {kind!r} for {name!r}")
    return b"\n".join(p if isinstance(p, bytes) else str(p).encode() for p in parts)


def test_api_keys_are_stored_only_as_hashes(client: TestClient, redis_client: redis.Redis) -> None:
    keys = []
    for role, call in ROLE_ENDPOINTS.items():
        api_key = create(client, role=role)["api_key"]
        # Use it, so whatever a request writes on the way is in Redis too.
        assert call(client, bearer(api_key)).status_code in (200, 201)
        keys.append(api_key)
    stored = everything_in(redis_client)
    for api_key in keys:
        assert api_key.encode() not in stored
        assert hashlib.sha256(api_key.encode()).hexdigest().encode() in stored


def test_a_401_names_the_scheme_it_wants(client: TestClient) -> None:
    """RFC 6750: WWW-Authenticate on every 401, also from the fast look-up route."""
    for path in ("/v1/numbers/+12125551234", "/v1/export", "/v1/stats"):
        missing = client.get(path)
        assert missing.status_code == 401, path
        assert missing.headers["www-authenticate"] == 'Bearer realm="dnc-registry"'
        wrong = client.get(path, headers={"Authorization": "Bearer dnc_not-a-known-key"})
        assert wrong.status_code == 401, path
        assert wrong.headers["www-authenticate"].startswith('Bearer realm="dnc-registry"')
        assert 'error="invalid_token"' in wrong.headers["www-authenticate"]


# -- reading accounts back (administrators) -------------------------------------------------


def test_administrators_list_the_active_accounts_without_keys(client: TestClient) -> None:
    first = create(client, name="Acme", role="operator", prefixes=["+1212"], rate_limit=50)
    second = create(client, name="Example Mobile", role="carrier")
    gone = create(client, name="Gone", role="operator")
    assert client.delete(f"/v1/operators/{gone['operator_id']}", headers=ADMIN).status_code == 200
    answer = client.get("/v1/operators", headers=ADMIN)
    assert answer.status_code == 200
    accounts = answer.json()["operators"]
    # Oldest first, to the second; accounts of the same second by id.
    assert sorted(a["operator_id"] for a in accounts) == sorted(
        [first["operator_id"], second["operator_id"]]
    )
    assert accounts == sorted(accounts, key=lambda a: (a["created_at"], a["operator_id"]))
    (acme,) = [a for a in accounts if a["operator_id"] == first["operator_id"]]
    assert (acme["name"], acme["role"], acme["prefixes"], acme["rate_limit"]) == (
        "Acme",
        "operator",
        ["+1212"],
        50,
    )
    assert acme["created_at"].endswith("Z") and acme["revoked_at"] is None
    assert "key" not in str(answer.json()) and first["api_key"] not in answer.text


def test_a_revoked_account_is_read_back_while_it_is_kept(client: TestClient) -> None:
    gone = create(client, name="Gone", role="operator")
    assert client.delete(f"/v1/operators/{gone['operator_id']}", headers=ADMIN).status_code == 200
    answer = client.get(f"/v1/operators/{gone['operator_id']}", headers=ADMIN).json()
    assert answer["name"] == "Gone" and answer["revoked_at"] is not None
    assert_error(client.get("/v1/operators/op_nobody", headers=ADMIN), 404, "operator_not_found")
    assert_error(client.get("/v1/operators/" + "x" * 300, headers=ADMIN), 404, "operator_not_found")


def test_only_administrators_read_accounts(client: TestClient) -> None:
    mine = create(client, role="operator")
    key = bearer(mine["api_key"])
    assert_error(client.get("/v1/operators", headers=key), 403, "forbidden")
    assert_error(client.get(f"/v1/operators/{mine['operator_id']}", headers=key), 403, "forbidden")
    assert client.get("/v1/operators").status_code == 401


@pytest.mark.parametrize(
    "authorization",
    ["Bearer clé".encode(), b"Bearer \xff\xfe", "Bearer 密钥".encode(), "Bearer ｄｎｃ_x".encode()],
)
def test_a_key_that_is_not_ascii_is_a_401_not_a_500(
    client: TestClient, authorization: bytes
) -> None:
    headers = {"Authorization": authorization}
    for method, path in (
        ("GET", "/v1/numbers/+12125551234"),
        ("GET", "/v1/stats"),
        ("GET", "/v1/changes"),
        ("PUT", "/v1/registrations/+12125551234"),
    ):
        answer = client.request(method, path, headers=headers)
        assert_error(answer, 401, "unknown_key")
    scrub = client.post("/v1/scrub", content=b"+12125551234\n", headers={
        **headers, "Content-Type": "text/plain"})  # fmt: skip
    assert_error(scrub, 401, "unknown_key")


def test_an_administrator_key_that_is_not_ascii_works(
    spare: Callable[..., TestClient],
) -> None:
    """DNC_ADMIN_KEY is UTF-8 text from the environment; a client sends it as UTF-8 bytes."""
    key = "管理员-clé-0123456789abcdef"
    api = spare(admin_key=key)
    answer = api.get("/v1/stats", headers={"Authorization": f"Bearer {key}".encode()})
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("path", ["/v1/numbers/+12125551234", "/v1/stats"])
def test_two_authorization_headers_are_a_400_not_the_first_one(
    client: TestClient, path: str
) -> None:
    """A proxy in front may read the other one: the request is ambiguous, not authorized."""
    headers = [("Authorization", ADMIN["Authorization"]), ("Authorization", "Bearer wrong")]
    error = assert_error(client.get(path, headers=headers), 400, "repeated_header")
    assert error["details"] == {"header": "authorization"}
    assert client.get(path, headers=ADMIN).status_code == 200


def test_two_content_types_are_a_400(client: TestClient) -> None:
    headers = [
        *ADMIN.items(),
        ("Content-Type", "application/json"),
        ("Content-Type", "text/plain"),
    ]
    answer = client.post(
        "/v1/operators", content=b'{"name": "a", "role": "operator"}', headers=headers
    )
    assert_error(answer, 400, "repeated_header")

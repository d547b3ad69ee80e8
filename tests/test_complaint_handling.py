"""A complaint's handling: the open queue, its resolution once, and its status for the
complainant (MIIT's draft: complaints have a response path and a response time)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from conftest import ADMIN, assert_error
from fastapi.testclient import TestClient

from registry import complaints
from registry.store import keys, timeline
from registry.store.complaints import ComplaintStore
from registry.store.connect import async_client

pytestmark = pytest.mark.cluster  # every test on one redis-server and on a Redis Cluster
Headers = dict[str, str]
NUMBER = "+12125551234"


def complain(client: TestClient, caller: str = "+13125550100") -> str:
    body = {
        "number": NUMBER,
        "caller": caller,
        "occurred_at": datetime.now(UTC).isoformat(),
        "channel": "voice",
    }
    answer = client.post("/v1/complaints", json=body)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["complaint_id"])


def resolve(client: TestClient, complaint_id: str, **body: Any) -> Any:
    body = {"outcome": "sender_warned"} | body
    return client.post(f"/v1/complaints/{complaint_id}/resolution", json=body, headers=ADMIN)


def queue(client: TestClient, **query: Any) -> dict[str, Any]:
    answer = client.get("/v1/complaints", params=query, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_a_new_complaint_is_open_and_its_id_tells_the_complainant_so(
    client: TestClient,
) -> None:
    complaint_id = complain(client)
    answer = client.get(f"/v1/complaints/{complaint_id}/status")  # no key: the id is enough
    assert answer.status_code == 200, answer.text
    status = answer.json()
    assert status == {
        "complaint_id": complaint_id,
        "status": "open",
        "received_at": status["received_at"],
        "resolved_at": None,
        "outcome": None,
        "reply": None,
    }
    assert NUMBER not in answer.text and "3125550100" not in answer.text
    record = client.get(f"/v1/complaints/{complaint_id}", headers=ADMIN).json()
    assert record["status"] == "open" and record["received_at"] == status["received_at"]


def test_administrators_work_through_the_open_queue_oldest_first(
    client: TestClient, operator: Headers
) -> None:
    first, second = complain(client), complain(client, caller="AcmeBank")
    listed = queue(client)
    assert [c["complaint_id"] for c in listed["complaints"]] == [first, second]
    assert listed["open"] == 2 and listed["next"] is None
    assert listed["complaints"][1]["caller"] == "ACMEBANK"
    # The subscriber's number is in the record, not in the queue.
    assert all("number" not in c for c in listed["complaints"])
    assert set(listed["complaints"][0]) == {
        "complaint_id", "received_at", "caller", "occurred_at", "channel", "category",
        "registered_at_time", "within_grace", "operator",
    }  # fmt: skip
    assert client.get("/v1/stats", headers=ADMIN).json()["complaints_open"] == 2
    assert client.get("/v1/complaints").status_code == 401
    assert_error(client.get("/v1/complaints", headers=operator), 403, "forbidden")


def test_a_resolution_closes_the_complaint_and_answers_the_complainant(
    client: TestClient, redis_client: Any
) -> None:
    complaint_id, other = complain(client), complain(client)
    ttl = redis_client.ttl(keys.complaint(complaint_id))
    redis_client.expire(keys.complaint(complaint_id), 3 * 86400)  # received 150 days ago
    answer = resolve(
        client, complaint_id, outcome="sender_suspended", reply="  The sender's line is cut.  "
    )
    assert answer.status_code == 200, answer.text
    record = answer.json()
    assert record["status"] == "resolved" and record["outcome"] == "sender_suspended"
    assert record["reply"] == "The sender's line is cut."
    assert record["resolved_by"] == "admin" and record["resolved_at"] >= record["received_at"]
    assert record["number"] == NUMBER  # the rest of the record as received
    status = client.get(f"/v1/complaints/{complaint_id}/status").json()
    assert status["status"] == "resolved" and status["outcome"] == "sender_suspended"
    assert status["reply"] == "The sender's line is cut."
    assert status["resolved_at"] == record["resolved_at"]
    # Out of the queue, and kept the retention from its resolution (a record that ends
    # then), not the three days its receipt had left.
    assert [c["complaint_id"] for c in queue(client)["complaints"]] == [other]
    assert client.get("/v1/stats", headers=ADMIN).json()["complaints_open"] == 1
    assert ttl - 5 <= redis_client.ttl(keys.complaint(complaint_id)) <= ttl
    entries = client.get("/v1/audit", headers=ADMIN).json()["entries"]
    resolved = [e for e in entries if e["action"] == "complaint.resolved"]
    assert len(resolved) == 1 and resolved[0]["complaint"] == complaint_id
    assert resolved[0]["outcome"] == "sender_suspended" and "number" not in resolved[0]


def test_a_complaint_is_resolved_once(client: TestClient) -> None:
    complaint_id = complain(client)
    assert resolve(client, complaint_id, outcome="no_breach_found").status_code == 200
    error = assert_error(resolve(client, complaint_id), 409, "complaint_resolved")
    assert error["details"]["complaint"]["outcome"] == "no_breach_found"
    status = client.get(f"/v1/complaints/{complaint_id}/status").json()
    assert status["outcome"] == "no_breach_found" and status["reply"] is None


def test_two_administrators_resolving_at_once_get_one_resolution(redis_url: str) -> None:
    async def race() -> list[Any]:
        redis = async_client(redis_url)
        store = ComplaintStore(redis, 153)
        try:
            complaint_id = await store.add(complaints_complaint(), datetime.now(UTC).timestamp())
            return await asyncio.gather(
                *(
                    store.resolve(complaint_id, outcome, None, by)
                    for outcome, by in (("sender_warned", "a"), ("referred_to_regulator", "b"))
                )
            )
        finally:
            await redis.aclose()

    answers = asyncio.run(race())
    assert sorted(changed for _, changed in answers) == [False, True]
    (won,) = [record for record, changed in answers if changed]
    assert all(record["outcome"] == won["outcome"] for record, _ in answers)


def complaints_complaint() -> Any:
    from registry.store.complaints import Complaint

    return Complaint(12125551234, "+13125550100", 0.0, "voice", None, None, False, False)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"outcome": "fined"}, "invalid_outcome"),
        ({"outcome": ""}, "invalid_outcome"),
        ({"outcome": "sender_warned", "reply": "x" * 1001}, "reply_too_long"),
        ({"outcome": "sender_warned", "reply": "bad\x07bell"}, "invalid_reply"),
        ({"outcome": "sender_warned", "reply": "rtl\u202eoverride"}, "invalid_reply"),
        ({"outcome": "sender_warned", "extra": 1}, "invalid_request"),
        ({"outcome": 1}, "invalid_request"),
        ({}, "invalid_request"),
    ],
)
def test_a_bad_resolution_is_a_400_and_changes_nothing(
    client: TestClient, body: dict[str, Any], code: str
) -> None:
    complaint_id = complain(client)
    answer = client.post(f"/v1/complaints/{complaint_id}/resolution", json=body, headers=ADMIN)
    assert_error(answer, 400, code)
    assert client.get(f"/v1/complaints/{complaint_id}/status").json()["status"] == "open"


def test_a_reply_may_run_over_lines(client: TestClient) -> None:
    complaint_id = complain(client)
    reply = "We warned the sender.\nCall us if it calls again."
    assert resolve(client, complaint_id, reply=reply).json()["reply"] == reply


def test_only_administrators_resolve_and_only_kept_complaints(
    client: TestClient, operator: Headers
) -> None:
    complaint_id = complain(client)
    path = f"/v1/complaints/{complaint_id}/resolution"
    assert client.post(path, json={"outcome": "sender_warned"}).status_code == 401
    answer = client.post(path, json={"outcome": "sender_warned"}, headers=operator)
    assert_error(answer, 403, "forbidden")
    for missing in ("cmp_0123456789abcdef", "cmp_nope", "x" * 70):
        assert_error(resolve(client, missing), 404, "complaint_not_found")
        answer = client.get(f"/v1/complaints/{missing}/status")
        assert_error(answer, 404, "complaint_not_found")


def test_the_queue_pages_on_from_its_cursor(client: TestClient) -> None:
    ids = [complain(client) for _ in range(3)]
    page = queue(client, limit=2)
    assert [c["complaint_id"] for c in page["complaints"]] == ids[:2]
    assert page["open"] == 3 and page["next"] is not None
    rest = queue(client, limit=2, since=page["next"])
    assert [c["complaint_id"] for c in rest["complaints"]] == ids[2:]
    assert rest["next"] is None
    for bad in ("nope", "1:cmp_x", page["next"] + "0"):
        answer = client.get("/v1/complaints", params={"since": bad}, headers=ADMIN)
        assert_error(answer, 400, "invalid_cursor")
    answer = client.get("/v1/complaints", params={"status": "resolved"}, headers=ADMIN)
    assert_error(answer, 400, "invalid_status")
    assert_error(client.get("/v1/complaints?limit=0", headers=ADMIN), 400, "invalid_request")


def test_the_queue_drops_expired_complaints_and_resolutions_cut_off_before_their_dequeue(
    client: TestClient, redis_client: Any
) -> None:
    expired, cut_off, still = complain(client), complain(client), complain(client)
    redis_client.delete(keys.complaint(expired))
    record = orjson.loads(redis_client.get(keys.complaint(cut_off)))
    record |= {"status": "resolved", "outcome": "sender_warned", "resolved_at": "x"}
    redis_client.set(keys.complaint(cut_off), orjson.dumps(record), keepttl=True)
    assert client.get("/v1/stats", headers=ADMIN).json()["complaints_open"] == 3
    listed = queue(client)
    assert [c["complaint_id"] for c in listed["complaints"]] == [still]
    assert listed["open"] == 1
    assert client.get("/v1/stats", headers=ADMIN).json()["complaints_open"] == 1
    assert redis_client.zcard(keys.complaints_open()) == 1


def test_entries_past_the_retention_leave_the_queue(client: TestClient, redis_client: Any) -> None:
    """A complaint whose record expired with nobody listing the queue is no open complaint."""
    old = datetime.now(UTC).timestamp() - 154 * 86400
    redis_client.zadd(keys.complaints_open(), {timeline.entry(old, "cmp_0123456789abcdef"): 0})
    assert client.get("/v1/stats", headers=ADMIN).json()["complaints_open"] == 0
    complain(client)
    assert redis_client.zcard(keys.complaints_open()) == 1


def test_a_record_kept_from_before_complaints_had_a_status_is_open(
    client: TestClient, redis_client: Any
) -> None:
    complaint_id = complain(client)
    key = keys.complaint(complaint_id)
    record = orjson.loads(redis_client.get(key))
    del record["status"]
    redis_client.set(key, orjson.dumps(record), keepttl=True)
    assert client.get(f"/v1/complaints/{complaint_id}/status").json()["status"] == "open"
    assert resolve(client, complaint_id).status_code == 200


def test_the_outcomes_are_the_domain_s() -> None:
    assert complaints.outcome("referred_to_regulator") == "referred_to_regulator"
    assert complaints.reply("  \n ") is None


# -- what operators are told --------------------------------------------------------------


def account(client: TestClient, *callers: str) -> tuple[str, Headers]:
    body = {"name": "Acme", "role": "operator", "callers": list(callers)}
    answer = client.post("/v1/operators", json=body, headers=ADMIN)
    assert answer.status_code == 201, answer.text
    return answer.json()["operator_id"], {"Authorization": f"Bearer {answer.json()['api_key']}"}


def told(client: TestClient, key: Headers, **query: Any) -> dict[str, Any]:
    answer = client.get("/v1/caller-complaints", params=query, headers=key)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Complaints listed for operators at once, not 10 s after they came."""
    # -1: even one stamped in Redis' clock this very millisecond.
    monkeypatch.setattr("registry.store.complaints.SETTLE_SECONDS", -1.0)


def test_an_operator_is_told_of_the_complaints_about_its_callers(
    client: TestClient, settled: None
) -> None:
    acme_id, acme = account(client, "+13125550100", "ACMEBANK")
    _, other = account(client, "+13125550199")
    ours = complain(client, caller="+1 312 555 0100")
    complain(client, caller="+13125550199")
    complain(client, caller="Private number")  # withheld: nobody's
    sms = complain(client, caller="AcmeBank")
    listed = told(client, acme)
    assert [c["complaint_id"] for c in listed["complaints"]] == [ours, sms]
    assert listed["more"] is False and listed["next"] is not None
    first = listed["complaints"][0]
    assert first["number"] == NUMBER and first["caller"] == "+13125550100"
    assert first["status"] == "open" and first["outcome"] is None
    assert "text" not in first and "reply" not in first
    assert len(told(client, other)["complaints"]) == 1
    # The handling shows as it goes on; polling from `next` gives only what is new.
    assert resolve(client, ours, outcome="sender_warned", reply="for the subscriber").status_code
    again = told(client, acme)["complaints"]
    assert again[0]["status"] == "resolved" and again[0]["outcome"] == "sender_warned"
    assert "reply" not in again[0]
    assert told(client, acme, since=listed["next"])["complaints"] == []
    later = complain(client, caller="+13125550100")
    assert [c["complaint_id"] for c in told(client, acme, since=listed["next"])["complaints"]] == [
        later
    ]
    assert acme_id.startswith("op_")


def test_an_operator_with_prefixes_is_not_shown_numbers_outside_them(
    client: TestClient, settled: None
) -> None:
    """Anyone may file a complaint naming any number and the account's caller: the
    account sees only the numbers under its prefixes, as in every other answer, nor
    whether one outside them was registered (a look-up it may not make)."""
    body = {"name": "Acme", "role": "operator", "callers": ["ACMEBANK"], "prefixes": ["+1212"]}
    answer = client.post("/v1/operators", json=body, headers=ADMIN)
    acme = {"Authorization": f"Bearer {answer.json()['api_key']}"}
    assert client.put("/v1/registrations/+16465550001", headers=ADMIN).status_code == 201
    inside = complain(client, caller="ACMEBANK")
    filed = {
        "number": "+16465550001",
        "caller": "ACMEBANK",
        "occurred_at": datetime.now(UTC).isoformat(),
        "channel": "sms",
    }
    outside = client.post("/v1/complaints", json=filed).json()["complaint_id"]
    listed = {c["complaint_id"]: c for c in told(client, acme)["complaints"]}
    assert listed[inside]["number"] == NUMBER
    assert listed[outside]["number"] is None and listed[outside]["caller"] == "ACMEBANK"
    assert listed[outside]["registered_at_time"] is None
    assert listed[outside]["within_grace"] is None
    assert isinstance(listed[inside]["registered_at_time"], bool)
    assert isinstance(listed[inside]["within_grace"], bool)


def test_a_complaint_stays_with_the_operator_whose_caller_it_named(
    client: TestClient, settled: None
) -> None:
    acme_id, acme = account(client, "+13125550100")
    before = complain(client)
    patched = client.patch(f"/v1/operators/{acme_id}", json={"callers": []}, headers=ADMIN)
    assert patched.status_code == 200, patched.text
    _, heir = account(client, "+13125550100")
    after = complain(client)
    assert [c["complaint_id"] for c in told(client, acme)["complaints"]] == [before]
    assert [c["complaint_id"] for c in told(client, heir)["complaints"]] == [after]


def test_a_complaint_is_listed_once_settled(client: TestClient) -> None:
    """Listed only once every entry older is written, so a cursor passes none to come."""
    _, acme = account(client, "+13125550100")
    complain(client)
    assert told(client, acme)["complaints"] == []


def test_the_operators_list_pages_and_refuses_what_it_did_not_give(
    client: TestClient, settled: None, carrier: Headers
) -> None:
    _, acme = account(client, "+13125550100")
    ids = [complain(client) for _ in range(3)]
    page = told(client, acme, limit=2)
    assert [c["complaint_id"] for c in page["complaints"]] == ids[:2] and page["more"] is True
    rest = told(client, acme, limit=2, since=page["next"])
    assert [c["complaint_id"] for c in rest["complaints"]] == ids[2:] and rest["more"] is False
    answer = client.get("/v1/caller-complaints", params={"since": "x"}, headers=acme)
    assert_error(answer, 400, "invalid_cursor")
    assert client.get("/v1/caller-complaints").status_code == 401
    assert_error(client.get("/v1/caller-complaints", headers=carrier), 403, "forbidden")


# -- what the review found -------------------------------------------------------------------


def run(redis_url: str, work: Any) -> Any:
    async def go() -> Any:
        redis = async_client(redis_url)
        try:
            return await work(ComplaintStore(redis, 153), redis)
        finally:
            await redis.aclose()

    return asyncio.run(go())


def test_an_operators_cursor_never_passes_a_complaint_written_late(redis_url: str) -> None:
    """A request stalled between reading the clock and writing: its complaint goes into
    the operator's list in Redis' clock, after the ones already listed, not before them."""

    async def work(store: ComplaintStore, redis: Any) -> tuple[list[str], list[str], str]:
        store.settle_seconds = -1  # listed at once, even one stamped this millisecond
        now = datetime.now(UTC).timestamp()
        await store.add(complaints_complaint(), now - 12, owner="op_acme")
        listed, cursor, _ = await store.of_operator("op_acme", None, 100)
        # A later millisecond of Redis' clock, as a stalled request's is: within the same
        # one the order of two entries is their random ids' (which the 10 s settling,
        # switched off here, is there to cover).
        await asyncio.sleep(0.005)
        late = await store.add(complaints_complaint(), now - 15, owner="op_acme")
        polled, _, _ = await store.of_operator("op_acme", cursor, 100)
        return [r["complaint_id"] for r in listed], [r["complaint_id"] for r in polled], late

    listed, polled, late = run(redis_url, work)
    assert len(listed) == 1 and polled == [late]


def test_complaints_kept_from_before_the_queue_are_queued_once(
    redis_url: str, redis_client: Any
) -> None:
    async def work(store: ComplaintStore, redis: Any) -> tuple[int, int, int]:
        complaint_id = await store.add(complaints_complaint())
        key = keys.complaint(complaint_id)
        record = orjson.loads(await redis.get(key))
        del record["status"]  # as a version before the queue wrote it
        await redis.set(key, orjson.dumps(record), keepttl=True)
        await redis.delete(keys.complaints_open(), keys.COMPLAINTS_QUEUED)
        await redis.xadd(keys.AUDIT, {"action": "complaint.received", "complaint": complaint_id})
        resolved = await store.add(complaints_complaint())
        await store.resolve(resolved, "sender_warned", None, "admin")
        await redis.xadd(keys.AUDIT, {"action": "complaint.received", "complaint": resolved})
        queued = await store.queue_unqueued()
        again = await store.queue_unqueued()
        return queued, again, await store.open_count()

    assert run(redis_url, work) == (1, 0, 1)


def test_a_complaint_not_counted_is_not_kept(redis_url: str) -> None:
    async def work(store: ComplaintStore, redis: Any) -> list[Any]:
        async def fail(*args: Any) -> None:
            raise ConnectionError("Redis went away")

        store._count = fail  # type: ignore[method-assign]
        with pytest.raises(ConnectionError):
            await store.add(complaints_complaint())
        return [key async for key in redis.scan_iter(match="dnc:cmp:{cmp_*")]

    assert run(redis_url, work) == []


def test_resolving_a_complaint_received_at_the_end_of_a_second_dequeues_it(
    redis_url: str,
) -> None:
    async def work(store: ComplaintStore, redis: Any) -> tuple[int, int]:
        now = float(int(datetime.now(UTC).timestamp())) + 0.9999996
        complaint_id = await store.add(complaints_complaint(), now)
        before = await store.open_count()
        await store.resolve(complaint_id, "sender_warned", None, "admin")
        return before, await store.open_count()

    assert run(redis_url, work) == (1, 0)


def test_a_reply_keeps_a_browsers_line_breaks_and_refuses_broken_text(client: TestClient) -> None:
    complaint_id = complain(client)
    answer = resolve(client, complaint_id, reply="Warned.\r\nCall us again.\rThanks")
    assert answer.json()["reply"] == "Warned.\nCall us again.\nThanks"
    other = complain(client)
    body = b'{"outcome": "sender_warned", "reply": "half \\ud800 a pair"}'
    answer = client.post(
        f"/v1/complaints/{other}/resolution",
        content=body,
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    assert_error(answer, 400, "invalid_reply")

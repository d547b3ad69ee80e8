"""Administrator reports (CONTRACT section 6): callers, statistics and the audit trail."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import ADMIN, assert_error
from fastapi.testclient import TestClient
from redis.cluster import RedisCluster

from loader.load import load_files
from registry.store import days, keys, retention
from registry.store.connect import async_client
from registry.store.operators import OperatorStore

pytestmark = pytest.mark.cluster  # every test on one redis-server and on a Redis Cluster
Headers = dict[str, str]
NewKey = Callable[..., Headers]
ADMIN_PATHS = ("/v1/stats", "/v1/audit", "/v1/reports/callers")


def complain(client: TestClient, caller: str, channel: str = "voice") -> None:
    body = {
        "number": "+12125551234",
        "caller": caller,
        "occurred_at": datetime.now(UTC).isoformat(),
        "channel": channel,
    }
    answer = client.post("/v1/complaints", json=body)
    assert answer.status_code == 201, answer.text


def bulk_load(redis_client: Any, path: Path, *numbers: str) -> None:
    path.write_text("".join(f"{n}\n" for n in numbers))
    load_files(redis_client, [path], fmt="e164", column=None, region="US", remove=False,
               retention_days=153, progress=False)  # fmt: skip


# -- GET /v1/reports/callers ----------------------------------------------------------------


def test_callers_are_ordered_by_complaints_with_counts_by_channel(client: TestClient) -> None:
    for caller, channel, times in [
        ("+13125550100", "voice", 1),
        ("+14155550100", "voice", 3),
        ("+14155550100", "sms", 1),
        ("ACMEBANK", "sms", 2),
        ("+16175550100", "voice", 2),
    ]:
        for _ in range(times):
            complain(client, caller, channel)
    report = client.get("/v1/reports/callers", headers=ADMIN).json()
    # The number is not registered: no complaint is one the sender was liable for.
    assert all(row.pop("operator") is None for row in report["callers"])
    assert report["callers"] == [
        {"caller": "+14155550100", "complaints": 4, "voice": 3, "sms": 1, "liable": 0},
        {"caller": "+16175550100", "complaints": 2, "voice": 2, "sms": 0, "liable": 0},
        {"caller": "ACMEBANK", "complaints": 2, "voice": 0, "sms": 2, "liable": 0},
        {"caller": "+13125550100", "complaints": 1, "voice": 1, "sms": 0, "liable": 0},
    ]  # ties: by caller
    assert report["distinct_callers"] == 4
    top = client.get("/v1/reports/callers?top=2", headers=ADMIN).json()
    assert [c["caller"] for c in top["callers"]] == ["+14155550100", "+16175550100"]
    assert top["distinct_callers"] == 4


def test_the_report_counts_the_complaints_a_sender_was_liable_for(
    client: TestClient, redis_client: Any, tmp_path: Path
) -> None:
    """Liable: the number was registered, blocking the channel, and past its grace. A
    bulk-loaded number counts as registered since before any call and past its grace;
    one registered just now is within it."""
    bulk_load(redis_client, tmp_path / "list.txt", "+12125551234")
    complain(client, "+13125550100")
    complain(client, "+13125550100")
    carrier = client.post(
        "/v1/operators", json={"name": "c", "role": "carrier"}, headers=ADMIN
    ).json()["api_key"]
    fresh = {"Authorization": f"Bearer {carrier}"}
    assert client.put("/v1/registrations/+12125550199", headers=fresh).status_code == 201
    body = {
        "number": "+12125550199",
        "caller": "+13125550100",
        "occurred_at": datetime.now(UTC).isoformat(),
        "channel": "voice",
    }
    assert client.post("/v1/complaints", json=body).status_code == 201
    (row,) = client.get("/v1/reports/callers", headers=ADMIN).json()["callers"]
    assert (row["complaints"], row["liable"]) == (3, 2)


def test_the_report_names_the_operator_that_declared_a_caller(client: TestClient) -> None:
    """Senders are identified: an account declares what it calls and texts from."""
    body = {"name": "Acme", "role": "operator", "callers": ["+1 312 555 0100", "【某银行】"]}
    made = client.post("/v1/operators", json=body, headers=ADMIN)
    assert made.status_code == 201, made.text
    acme = made.json()["operator_id"]
    complain(client, "+13125550100")
    complain(client, "【某银行】", "sms")
    complain(client, "+14155550100")
    rows = client.get("/v1/reports/callers", headers=ADMIN).json()["callers"]
    assert {r["caller"]: r["operator"] for r in rows} == {
        "+13125550100": acme,
        "【某银行】": acme,
        "+14155550100": None,
    }
    account = client.get(f"/v1/operators/{acme}", headers=ADMIN).json()
    assert account["callers"] == ["+13125550100", "【某银行】"]
    # One caller, one active account: a second claim is a 409 and creates nothing.
    again = client.post(
        "/v1/operators", json={**body, "name": "Copycat", "callers": ["+13125550100"]},
        headers=ADMIN,
    )  # fmt: skip
    assert_error(again, 409, "caller_taken")
    assert len(client.get("/v1/operators", headers=ADMIN).json()["operators"]) == 1
    # Revoked, its callers are free again; the complaints about its calls stay its own.
    assert client.delete(f"/v1/operators/{acme}", headers=ADMIN).status_code == 200
    rows = client.get("/v1/reports/callers", headers=ADMIN).json()["callers"]
    assert {r["caller"]: r["operator"] for r in rows}["+13125550100"] == acme
    retry = client.post(
        "/v1/operators", json={**body, "name": "Copycat", "callers": ["+13125550100"]},
        headers=ADMIN,
    )  # fmt: skip
    assert retry.status_code == 201


def test_a_complaint_keeps_the_account_that_held_the_caller_then(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Senders are identified as they were when the call came: Alpha's caller, complained
    about, then revoked and declared by Beta, is still Alpha's in the record and the
    report, and Beta sees none of it (the number called is a subscriber's)."""

    def account(name: str) -> tuple[str, Headers]:
        body = {"name": name, "role": "operator", "callers": ["+13125550188"]}
        made = client.post("/v1/operators", json=body, headers=ADMIN).json()
        return made["operator_id"], {"Authorization": f"Bearer {made['api_key']}"}

    complain(client, "+13125550188")  # before anyone declared it
    alpha, _ = account("Alpha")
    body = {"number": "+12125551234", "caller": "+1 312 555 0188", "channel": "voice",
            "occurred_at": datetime.now(UTC).isoformat()}  # fmt: skip
    complaint_id = client.post("/v1/complaints", json=body).json()["complaint_id"]
    complain(client, "+13125550188", "sms")
    assert client.delete(f"/v1/operators/{alpha}", headers=ADMIN).status_code == 200
    beta, beta_key = account("Beta")
    complain(client, "+13125550188")
    record = client.get(f"/v1/complaints/{complaint_id}", headers=ADMIN).json()
    assert record["operator"] == alpha
    queued = client.get("/v1/complaints", headers=ADMIN).json()["complaints"]
    assert [c["operator"] for c in queued] == [None, alpha, alpha, beta]
    report = client.get("/v1/reports/callers", headers=ADMIN).json()
    rows = [(r["caller"], r["operator"], r["complaints"], r["voice"]) for r in report["callers"]]
    # a row for each account the caller's complaints came under, most complaints first
    assert sorted(rows, key=lambda r: -r[2]) == rows
    assert sorted(rows, key=str) == sorted(
        [("+13125550188", alpha, 2, 1), ("+13125550188", beta, 1, 1),
         ("+13125550188", None, 1, 1)], key=str,
    )  # fmt: skip
    assert report["distinct_callers"] == 1
    # Beta's own list has only the complaint that came while the caller was Beta's.
    monkeypatch.setattr("registry.store.complaints.SETTLE_SECONDS", -1.0)  # listed at once
    beta_list = client.get("/v1/caller-complaints", headers=beta_key).json()["complaints"]
    assert [c["operator"] for c in beta_list] == [beta]


def test_complaints_counted_before_senders_were_kept_go_to_the_caller_now(
    client: TestClient, redis_client: Any
) -> None:
    """Day sets from before a complaint kept its sender hold the caller alone: the report
    names the account that declares it now (as it always did), in the same row as the
    complaints counted with that account since."""
    made = client.post(
        "/v1/operators",
        json={"name": "Acme", "role": "operator", "callers": ["+13125550100"]},
        headers=ADMIN,
    ).json()["operator_id"]
    complain(client, "+13125550100")
    today = days.day(time.time())
    legacy = [("+13125550100", 2), ("+14155550100", 1), ("ACMEBANK", 3)]
    for caller, times in legacy:
        redis_client.zincrby(keys.callers_on("voice", today), times, caller)
    report = client.get("/v1/reports/callers", headers=ADMIN).json()
    assert [(r["caller"], r["operator"], r["complaints"]) for r in report["callers"]] == [
        ("+13125550100", made, 3), ("ACMEBANK", None, 3), ("+14155550100", None, 1),
    ]  # fmt: skip
    assert report["distinct_callers"] == 3


def test_an_accounts_callers_and_rate_limit_change_and_the_report_follows(
    client: TestClient,
) -> None:
    """An operator gets new numbers and sender ids: the administrator declares them, and
    the ones it gave up are free for another account."""
    made = client.post(
        "/v1/operators",
        json={"name": "Acme", "role": "operator", "callers": ["+13125550100"]},
        headers=ADMIN,
    ).json()
    acme = made["operator_id"]
    other = client.post(
        "/v1/operators",
        json={"name": "Other", "role": "operator", "callers": ["OTHERBANK"]},
        headers=ADMIN,
    ).json()["operator_id"]
    changed = client.patch(
        f"/v1/operators/{acme}", json={"callers": ["+1 312 555 0199", "AcmeBank"]}, headers=ADMIN
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["callers"] == ["+13125550199", "ACMEBANK"]
    complain(client, "+13125550199")
    complain(client, "+13125550100")
    rows = client.get("/v1/reports/callers", headers=ADMIN).json()["callers"]
    assert {r["caller"]: r["operator"] for r in rows} == {
        "+13125550199": acme,
        "+13125550100": None,
    }
    # Another account's caller: 409, and nothing changes.
    taken = client.patch(
        f"/v1/operators/{acme}", json={"callers": ["OTHERBANK", "+13125550100"]}, headers=ADMIN
    )
    error = assert_error(taken, 409, "caller_taken")
    assert error["details"] == {"caller": "OTHERBANK"}
    assert client.get(f"/v1/operators/{acme}", headers=ADMIN).json()["callers"] == [
        "+13125550199", "ACMEBANK",
    ]  # fmt: skip
    # The one given up is free: another account declares it.
    freed = client.patch(
        f"/v1/operators/{other}", json={"callers": ["+13125550100"]}, headers=ADMIN
    )
    assert freed.status_code == 200, freed.text
    limited = client.patch(f"/v1/operators/{acme}", json={"rate_limit": 5}, headers=ADMIN)
    assert limited.json()["rate_limit"] == 5 and limited.json()["callers"] == [
        "+13125550199", "ACMEBANK",
    ]  # fmt: skip
    unlimited = client.patch(f"/v1/operators/{acme}", json={"rate_limit": None}, headers=ADMIN)
    assert unlimited.json()["rate_limit"] is None
    entries = client.get("/v1/audit", headers=ADMIN).json()["entries"]
    updated = [e for e in entries if e["action"] == "operator.updated"]
    assert updated[0]["operator"] == acme and updated[0]["callers"] == "+13125550199,ACMEBANK"


def test_two_changes_to_one_account_at_once_do_not_split_its_callers(redis_url: str) -> None:
    """Each change reads the account's callers, claims the new ones and writes the list:
    two interleaved could leave a caller claimed that the record no longer lists. The
    second, while the first is under way, is refused."""

    async def race() -> tuple[list[Any], dict[str, Any] | None, dict[Any, Any]]:
        redis = async_client(redis_url)
        store = OperatorStore(redis, 153)
        try:
            operator, _ = await store.create("Acme", "operator", [], None, ["+13125550100"])
            change = store._change

            async def slow(*args: Any) -> Any:  # the first still under way as the second comes
                await asyncio.sleep(0.2)
                return await change(*args)

            store._change = slow  # type: ignore[method-assign]
            answers = await asyncio.gather(
                *(
                    store.change(operator.id, {"callers": [caller]})
                    for caller in ("+13125550101", "+13125550102")
                ),
                return_exceptions=True,
            )
            index = await redis.hgetall(keys.CALLERS)
            return answers, await store.record(operator.id), index
        finally:
            await redis.aclose()

    answers, record, index = asyncio.run(race())
    assert sorted(type(a).__name__ for a in answers) == ["AccountBusy", "tuple"]
    assert record is not None
    claimed = sorted(caller.decode() for caller in index)
    assert claimed == record["callers"]  # the index and the record agree


def test_a_change_while_another_is_under_way_is_a_409(
    client: TestClient, redis_client: Any
) -> None:
    acme = client.post(
        "/v1/operators", json={"name": "Acme", "role": "operator"}, headers=ADMIN
    ).json()["operator_id"]
    redis_client.set(keys.operator_changing(acme), "another", px=10_000)
    busy = client.patch(f"/v1/operators/{acme}", json={"rate_limit": 5}, headers=ADMIN)
    assert_error(busy, 409, "account_busy")
    assert_error(client.delete(f"/v1/operators/{acme}", headers=ADMIN), 409, "account_busy")
    redis_client.delete(keys.operator_changing(acme))
    assert (
        client.patch(f"/v1/operators/{acme}", json={"rate_limit": 5}, headers=ADMIN).json()[
            "rate_limit"
        ]
        == 5
    )
    assert client.delete(f"/v1/operators/{acme}", headers=ADMIN).status_code == 200
    assert not redis_client.exists(keys.operator_changing(acme))


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "invalid_request"),
        ({"name": "Renamed"}, 400, "invalid_request"),
        ({"callers": None}, 400, "invalid_request"),
        ({"callers": ["Private Number"]}, 400, "invalid_request"),
        ({"rate_limit": 0}, 400, "invalid_request"),
    ],
)
def test_a_bad_account_change_is_a_400(
    client: TestClient, body: dict[str, object], status: int, code: str
) -> None:
    acme = client.post(
        "/v1/operators", json={"name": "Acme", "role": "operator"}, headers=ADMIN
    ).json()["operator_id"]
    assert_error(client.patch(f"/v1/operators/{acme}", json=body, headers=ADMIN), status, code)


def test_only_an_administrator_changes_an_active_account(
    client: TestClient, new_key: NewKey
) -> None:
    acme = client.post(
        "/v1/operators", json={"name": "Acme", "role": "operator"}, headers=ADMIN
    ).json()["operator_id"]
    body = {"rate_limit": 5}
    assert_error(
        client.patch(f"/v1/operators/{acme}", json=body, headers=new_key()), 403, "forbidden"
    )
    assert_error(
        client.patch("/v1/operators/op_nobody", json=body, headers=ADMIN), 404, "operator_not_found"
    )
    assert client.delete(f"/v1/operators/{acme}", headers=ADMIN).status_code == 200
    assert_error(
        client.patch(f"/v1/operators/{acme}", json=body, headers=ADMIN), 404, "operator_not_found"
    )


@pytest.mark.parametrize("callers", [["3125550100"], ["!!!"], "+13125550100", [1], ["x"] * 101])
def test_callers_an_account_cannot_declare_are_a_400(client: TestClient, callers: Any) -> None:
    body = {"name": "Acme", "role": "operator", "callers": callers}
    assert_error(client.post("/v1/operators", json=body, headers=ADMIN), 400, "invalid_request")


def test_a_report_without_complaints_is_empty(client: TestClient) -> None:
    report = client.get("/v1/reports/callers", headers=ADMIN).json()
    assert report["callers"] == [] and report["distinct_callers"] == 0
    assert report["withheld"] == {"complaints": 0, "voice": 0, "sms": 0}


def test_calls_that_showed_no_number_are_counted_apart_not_ranked(client: TestClient) -> None:
    """A subscriber may complain about a withheld number (MIIT draft art. 29: complaints
    have a path); "Private Number" is no sender to rank beside the named ones."""
    for caller, channel in [
        ("Anonymous", "voice"),
        ("Private Number", "voice"),
        ("withheld", "sms"),
        ("未知号码", "voice"),
        ("+13125550100", "voice"),
    ]:
        complain(client, caller, channel)
    report = client.get("/v1/reports/callers?top=1", headers=ADMIN).json()
    assert [c["caller"] for c in report["callers"]] == ["+13125550100"]
    assert report["distinct_callers"] == 1
    assert report["withheld"] == {"complaints": 4, "voice": 3, "sms": 1}


def test_the_report_leaves_no_scratch_keys(client: TestClient, redis_client: Any) -> None:
    complain(client, "ACMEBANK")
    client.get("/v1/reports/callers", headers=ADMIN)
    pattern = "dnc:{dnc}:cmp:*"
    if isinstance(redis_client, RedisCluster):  # KEYS goes to one node unless told otherwise
        found = redis_client.keys(pattern, target_nodes=RedisCluster.PRIMARIES)
    else:
        found = redis_client.keys(pattern)
    # The flag that the complaints kept from before the queue are queued is no scratch key.
    names = sorted(k.decode() for k in found if k.decode() != keys.COMPLAINTS_QUEUED)
    today = datetime.now(UTC).strftime("%Y%m%d")
    queue = "dnc:{dnc}:cmp:open"  # the open complaints (tests/test_complaint_handling.py)
    assert names == [f"dnc:{{dnc}}:cmp:n:{today}", queue, f"dnc:{{dnc}}:cmp:voice:{today}"]
    # Each day key outlives its day by the retention, and no longer; the queue its newest entry.
    for name in names:
        if name != queue:
            assert 153 * 86400 < redis_client.ttl(name) <= 154 * 86400
    assert 153 * 86400 - 60 < redis_client.ttl(queue) <= 153 * 86400


@pytest.mark.parametrize("top", ["0", "1001", "ten", "5_0", "5.0", "+5", " 5", "５"])
def test_top_out_of_range_is_a_400(client: TestClient, top: str) -> None:
    answer = client.get(f"/v1/reports/callers?top={top}", headers=ADMIN)
    assert_error(answer, 400, "invalid_request")


# -- GET /v1/stats --------------------------------------------------------------------------


def test_stats_count_carrier_and_bulk_registrations_exactly(
    client: TestClient, carrier: Headers, new_key: NewKey, redis_client: Any, tmp_path: Path
) -> None:
    operator = new_key("operator")
    empty = client.get("/v1/stats", headers=ADMIN).json()
    assert empty["registered"] == 0 and empty["registry_version"] == 0
    assert empty["operators"] == {"active": 2, "by_role": {"carrier": 1, "operator": 1}}
    assert empty["complaints"] == 0 and empty["scrub_receipts"] == 0

    for number in ("+12125551234", "+12125551235", "+14155552671"):
        assert client.put(f"/v1/registrations/{number}", headers=carrier).status_code == 201
    # Numbers far apart land in other buckets; one is already registered.
    bulk_load(redis_client, tmp_path / "list.txt",
              "+12125551234", "+13125550100", "+16175550100", "+442079460000")  # fmt: skip
    assert client.delete("/v1/registrations/+12125551235", headers=carrier).status_code == 200
    complain(client, "ACMEBANK")

    # Two scrubs, one JSON and one streamed: two receipts kept.
    scrub = client.post("/v1/scrub", json={"numbers": ["+12125551234"]}, headers=operator)
    assert scrub.status_code == 200, scrub.text
    plain = {**operator, "Content-Type": "text/plain"}
    assert client.post("/v1/scrub", content=b"+14155552671\n", headers=plain).status_code == 200

    stats = client.get("/v1/stats", headers=ADMIN).json()
    assert stats["registered"] == 5
    assert stats["registry_version"] > empty["registry_version"]
    assert stats["complaints"] == 1
    assert stats["scrub_receipts"] == 2


def test_receipts_are_counted_by_day_as_long_as_they_are_kept(
    client: TestClient, new_key: NewKey, redis_client: Any
) -> None:
    """A day's counter goes the retention after the day's end, with that day's receipts."""
    operator = new_key("operator")
    assert client.post("/v1/scrub", json={"numbers": []}, headers=operator).status_code == 200
    counter = f"dnc:{{dnc}}:rcpt:n:{datetime.now(UTC).strftime('%Y%m%d')}"
    assert redis_client.get(counter) == b"1"
    assert 153 * 86400 < redis_client.ttl(counter) <= 154 * 86400


def test_a_revoked_operator_is_not_active(client: TestClient, new_key: NewKey) -> None:
    new_key("operator")
    created = client.post("/v1/operators", json={"name": "gone", "role": "carrier"}, headers=ADMIN)
    client.delete(f"/v1/operators/{created.json()['operator_id']}", headers=ADMIN)
    stats = client.get("/v1/stats", headers=ADMIN).json()
    assert stats["operators"] == {"active": 1, "by_role": {"operator": 1}}


# -- GET /v1/audit --------------------------------------------------------------------------


def test_the_audit_trail_lists_state_changes_in_order(client: TestClient) -> None:
    created = client.post(
        "/v1/operators", json={"name": "Mobile", "role": "carrier"}, headers=ADMIN
    )
    carrier_id = created.json()["operator_id"]
    carrier = {"Authorization": f"Bearer {created.json()['api_key']}"}
    client.put("/v1/registrations/+12125551234", headers=carrier)
    client.put("/v1/registrations/+12125551234", json={"channels": ["sms"]}, headers=carrier)
    client.delete("/v1/registrations/+12125551234", headers=carrier)
    client.delete(f"/v1/operators/{carrier_id}", headers=ADMIN)

    answer = client.get("/v1/audit", headers=ADMIN)
    assert answer.status_code == 200
    entries = answer.json()["entries"]
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("operator.created", "admin"),
        ("registration.created", carrier_id),
        ("registration.updated", carrier_id),
        ("registration.removed", carrier_id),
        ("operator.revoked", "admin"),
    ]
    assert entries[0]["operator"] == carrier_id and entries[0]["role"] == "carrier"
    assert all(e["number"] == "+12125551234" for e in entries[1:4])
    assert entries[2]["channels"] == "sms"
    # Sent without a source: recorded as stored with the registration.
    assert entries[1]["source"] == entries[2]["source"] == f"{carrier_id}:carrier"
    assert entries[4]["operator"] == carrier_id
    ids = [e["id"] for e in entries]
    assert len(set(ids)) == 5
    for entry in entries:
        assert set(entry) >= {"id", "at", "action", "actor"}
        datetime.fromisoformat(entry["at"])
    assert answer.json()["next"] == ids[-1]


def test_audit_cursors_page_through_without_gaps_or_repeats(
    client: TestClient, carrier: Headers
) -> None:
    for n in range(5):
        client.put(f"/v1/registrations/+1212555123{n}", headers=carrier)
    seen, cursor = [], None
    for _ in range(10):
        url = "/v1/audit?limit=2" + (f"&since={cursor}" if cursor else "")
        page = client.get(url, headers=ADMIN).json()
        assert len(page["entries"]) <= 2
        if not page["entries"]:
            assert page["next"] == cursor  # nothing new: ask again from the same place
            break
        seen += page["entries"]
        cursor = page["next"]
    actions = [e["action"] for e in seen]
    assert actions == ["operator.created"] + ["registration.created"] * 5
    assert [e["number"] for e in seen[1:]] == [f"+1212555123{n}" for n in range(5)]
    # A new change after the last cursor is found from it.
    client.delete("/v1/registrations/+12125551230", headers=carrier)
    page = client.get(f"/v1/audit?since={cursor}", headers=ADMIN).json()
    assert [e["action"] for e in page["entries"]] == ["registration.removed"]


@pytest.mark.parametrize(
    "query",
    # 1_0 and 1.0 are typos to pydantic's lax reading, not ten and one.
    ["since=yesterday", "since=1-2-3", "limit=0", "limit=1001", "limit=1_0", "limit=1.0"],
)
def test_bad_audit_parameters_are_400s(client: TestClient, query: str) -> None:
    answer = client.get(f"/v1/audit?{query}", headers=ADMIN)
    code = "invalid_cursor" if query.startswith("since") else "invalid_request"
    assert_error(answer, 400, code)


@pytest.mark.parametrize(
    "since",
    [
        "99999999999999999999-0",  # milliseconds past 2**64-1, in the 20 digits allowed
        "18446744073709551616",
        "1-18446744073709551616",
        "1764471903123-0\n",
        "\u00b2",
    ],
)
def test_an_audit_cursor_beyond_a_stream_id_is_a_400_not_a_500(
    client: TestClient, since: str
) -> None:
    answer = client.get("/v1/audit", params={"since": since}, headers=ADMIN)
    assert_error(answer, 400, "invalid_cursor")


def test_an_audit_cursor_at_the_very_end_has_nothing_after_it(
    client: TestClient, carrier: Headers
) -> None:
    client.put("/v1/registrations/+12125551234", headers=carrier)
    last = "18446744073709551615-18446744073709551615"
    for since in (last, "18446744073709551615", "18446744073709551615-0"):
        answer = client.get("/v1/audit", params={"since": since}, headers=ADMIN)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"entries": [], "next": since}


# -- who may ask ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ADMIN_PATHS)
def test_admin_reports_need_an_admin_key(
    client: TestClient, operator: Headers, carrier: Headers, path: str
) -> None:
    assert_error(client.get(path), 401, "missing_key")
    assert_error(client.get(path, headers={"Authorization": "Bearer nope"}), 401, "unknown_key")
    assert_error(client.get(path, headers=operator), 403, "forbidden")
    assert_error(client.get(path, headers=carrier), 403, "forbidden")
    assert client.get(path, headers=ADMIN).status_code == 200


def test_audit_entries_past_the_retention_are_neither_served_nor_kept(
    client: TestClient, redis_client: Any
) -> None:
    """Trimming on write is approximate and needs writes: a quiet registry would keep its
    last entries for good. Reads skip them, and every worker trims the streams hourly."""
    old_ms = int((time.time() - 200 * 86400) * 1000)  # retention: 153 days
    redis_client.delete(keys.AUDIT)
    redis_client.xadd(
        keys.AUDIT, {"action": "operator.created", "actor": "admin"}, id=f"{old_ms}-0"
    )
    client.post("/v1/operators", json={"name": "Fresh", "role": "carrier"}, headers=ADMIN)
    entries = client.get("/v1/audit", headers=ADMIN).json()["entries"]
    assert [e["id"] for e in entries if e["id"].startswith(str(old_ms))] == []
    old = client.get("/v1/audit", params={"since": f"{old_ms - 1}-0"}, headers=ADMIN).json()
    assert all(int(e["id"].split("-")[0]) > old_ms for e in old["entries"])
    assert old["entries"], "the fresh entry after an old cursor"
    # The hourly trim (a worker's first runs at start).
    dropped = asyncio.run(_trim(client))
    assert dropped >= 1
    assert redis_client.xrange(keys.AUDIT, min="-", max=f"{old_ms}-0") == []
    assert len(redis_client.xrange(keys.AUDIT)) >= 1


async def _trim(client: TestClient) -> int:
    services = client.app.state.services  # type: ignore[attr-defined]
    redis = async_client(services.settings.redis_url)
    try:
        return await retention.trim(redis, services.settings.retention_days)
    finally:
        await redis.aclose()


def test_callers_held_by_a_change_or_revocation_cut_off_are_freed_by_the_next(
    client: TestClient, redis_client: Any
) -> None:
    """The index, not the account's record, says what an account holds: a caller left in it
    by a change cut off after its claim is let go of by the next change, and one left by a
    revocation cut off before its release by a second DELETE (a 404 all the same)."""
    acme = client.post(
        "/v1/operators",
        json={"name": "Acme", "role": "operator", "callers": ["+13125550100"]},
        headers=ADMIN,
    ).json()["operator_id"]
    redis_client.hset(keys.CALLERS, "STRAY", acme)  # claimed, never written to the record
    changed = client.patch(f"/v1/operators/{acme}", json={"callers": ["ACMEBANK"]}, headers=ADMIN)
    assert changed.status_code == 200, changed.text
    assert {k.decode(): v.decode() for k, v in redis_client.hgetall(keys.CALLERS).items()} == {
        "ACMEBANK": acme
    }
    assert client.delete(f"/v1/operators/{acme}", headers=ADMIN).status_code == 200
    assert redis_client.hgetall(keys.CALLERS) == {}
    redis_client.hset(keys.CALLERS, "ACMEBANK", acme)  # as if its release never ran
    assert_error(client.delete(f"/v1/operators/{acme}", headers=ADMIN), 404, "operator_not_found")
    assert redis_client.hgetall(keys.CALLERS) == {}


def test_an_account_not_written_holds_no_callers(redis_url: str) -> None:
    async def create() -> dict[Any, Any]:
        redis = async_client(redis_url)
        store = OperatorStore(redis, 153)

        async def fail(*args: Any) -> Any:
            raise ConnectionError("Redis went away")

        store._write_new = fail  # type: ignore[method-assign]
        try:
            with pytest.raises(ConnectionError):
                await store.create("Acme", "operator", [], None, ["+13125550100"])
            return dict(await redis.hgetall(keys.CALLERS))
        finally:
            await redis.aclose()

    assert asyncio.run(create()) == {}


def test_a_change_is_cut_off_well_before_its_hold_expires(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No second change can come in while the first is still writing: the first gives up
    (a 503) before its hold on the account could expire."""
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from registry.store import operators

    assert operators.CHANGE_LIMIT_SECONDS * 1000 <= operators.CHANGE_HOLD_MS / 2
    monkeypatch.setattr(operators, "CHANGE_LIMIT_SECONDS", 0.1)

    async def stall() -> bool:
        redis = async_client(redis_url)
        store = OperatorStore(redis, 153)
        try:
            operator, _ = await store.create("Acme", "operator", [], None)

            async def slow(*args: Any) -> Any:
                await asyncio.sleep(1)

            store._change = slow  # type: ignore[method-assign]
            with pytest.raises(RedisTimeoutError):
                await store.change(operator.id, {"rate_limit": 5})
            return bool(await redis.exists(keys.operator_changing(operator.id)))
        finally:
            await redis.aclose()

    assert asyncio.run(stall()) is False

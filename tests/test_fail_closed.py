"""Fail closed (CONTRACT section 7): without Redis, nothing is ever reported callable.

Each test runs the app on its own redis-server and stops that server mid-test.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from conftest import ADMIN, ADMIN_KEY, live_app, new_registry, ready_client, start_redis
from embedded_cluster import CLUSTER_SLOTS, EmbeddedCluster
from fastapi.testclient import TestClient
from httpx import Response
from redis.crc import key_slot

from registry.api import create_app
from registry.api.lookup import LookupRoute
from registry.api.protocol import Protocol
from registry.config import Settings
from registry.embedded import RedisProcess, free_port, redis_server_binary
from registry.store import keys
from registry.store.connect import async_client, sync_client
from registry.store.receipts import ReceiptStore

Headers = dict[str, str]
REGISTERED = "+12125551234"
NOT_REGISTERED = "+12125550000"


def assert_unavailable(answer: Response, code: str = "redis_unavailable") -> None:
    """A 503 with the contract's error shape and the code redis_unavailable (or `code`)."""
    assert answer.status_code == 503, answer.text
    body = answer.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert "callable" not in answer.text


@dataclass
class Registry:
    """An app on a private redis-server (or Redis Cluster) that the test may kill."""

    client: httpx.Client  # a TestClient, or a client of a real server (`served`)
    server: RedisProcess | EmbeddedCluster
    carrier: Headers
    operator: Headers
    unused_operator: Headers  # created before Redis went away, never used: not cached
    route: LookupRoute | None = None  # a served app's: look-ups its protocol took

    def taken(self) -> int:
        return 0 if self.route is None else self.route.answered_in_protocol


def create_key(client: TestClient, role: str) -> Headers:
    answer = client.post("/v1/operators", json={"name": role, "role": role}, headers=ADMIN)
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['api_key']}"}


@contextlib.contextmanager
def warmed_up(
    server: RedisProcess | EmbeddedCluster, tmp_path: Path, served: bool = False
) -> Iterator[Registry]:
    """An app on `server` with accounts, a registration, and every path warmed up; a
    TestClient's, or `served` by uvicorn with dnc serve's protocol (which answers a
    look-up itself, registry/api/protocol.py)."""
    settings = Settings(
        redis_url=server.url,
        admin_key=ADMIN_KEY,
        data_dir=tmp_path / "data",
        auth_cache_seconds=60,  # keys used before the outage stay known, so the
        # look-up itself (not only the key check) meets the missing Redis
    )
    with contextlib.ExitStack() as stack:
        route = None
        if served:
            new_registry(server.url)
            route = create_app(settings)
            url, _ = stack.enter_context(live_app(route, Protocol))
            client: httpx.Client = stack.enter_context(httpx.Client(base_url=url, timeout=60))
        else:
            client = ready_client(settings)
            stack.callback(client.__exit__, None, None, None)
        carrier = create_key(client, "carrier")
        operator = create_key(client, "operator")
        unused = create_key(client, "operator")
        assert client.put(f"/v1/registrations/{REGISTERED}", headers=carrier).status_code == 201
        # Warm every path up while Redis is there: keys cached, Bloom filter built.
        assert client.get(f"/v1/numbers/{REGISTERED}", headers=operator).json()["status"] == (
            "blocked"
        )
        scrub = client.post("/v1/scrub", json={"numbers": [REGISTERED]}, headers=operator)
        assert scrub.json()["blocked"] == [REGISTERED]
        yield Registry(client, server, carrier, operator, unused, route)


@pytest.fixture
def private(tmp_path: Path) -> Iterator[Registry]:
    server = start_redis(tmp_path / "redis", durable=True)
    try:
        with warmed_up(server, tmp_path) as registry:
            yield registry
    finally:
        server.kill()


@pytest.fixture(params=["asgi", "served"])
def private_look_ups(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    """`private`, and the same behind a real server whose protocol answers look-ups."""
    server = start_redis(tmp_path / "redis", durable=True)
    try:
        with warmed_up(server, tmp_path, served=request.param == "served") as registry:
            yield registry
    finally:
        server.kill()


def test_look_ups_answer_503_never_callable(private_look_ups: Registry) -> None:
    private = private_look_ups
    private.server.kill()
    taken = private.taken()
    for number in (REGISTERED, NOT_REGISTERED, "(212) 555-0000"):
        for query in ("", "?channel=sms", "?category=3"):
            answer = private.client.get(f"/v1/numbers/{number}{query}", headers=private.operator)
            assert_unavailable(answer)
            assert answer.headers.get("retry-after")
    # Served, the protocol took those it could (not the percent-encoded ones).
    assert private.taken() == taken + (6 if private.route else 0)


def test_json_scrubs_answer_503(private: Registry) -> None:
    private.server.kill()
    for numbers in ([REGISTERED], [NOT_REGISTERED], [NOT_REGISTERED, "junk", REGISTERED]):
        answer = private.client.post(
            "/v1/scrub", json={"numbers": numbers}, headers=private.operator
        )
        assert_unavailable(answer)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", f"{NOT_REGISTERED}\n{REGISTERED}\n"),
        ("text/plain", f"{NOT_REGISTERED}\n"),
        ("text/csv", f"name,phone\nAda,{NOT_REGISTERED}\nBob,{REGISTERED}\n"),
    ],
)
def test_text_scrubs_answer_503_not_a_csv(private: Registry, content_type: str, body: str) -> None:
    private.server.kill()
    answer = private.client.post(
        "/v1/scrub",
        params={"column": "phone"} if content_type == "text/csv" else {},
        content=body.encode(),
        headers={**private.operator, "Content-Type": content_type},
    )
    assert_unavailable(answer)
    assert "x-scrub-receipt" not in answer.headers


def test_readyz_answers_503_and_healthz_still_200(private: Registry) -> None:
    private.server.kill()
    ready = private.client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["error"]["code"] == "redis_unavailable"
    assert private.client.get("/healthz").status_code == 200


def test_registrations_and_removals_answer_503_not_500(private: Registry) -> None:
    private.server.kill()
    assert_unavailable(
        private.client.put(f"/v1/registrations/{NOT_REGISTERED}", headers=private.carrier)
    )
    assert_unavailable(
        private.client.put(
            f"/v1/registrations/{REGISTERED}", json={"channels": ["sms"]}, headers=private.carrier
        )
    )
    assert_unavailable(
        private.client.delete(f"/v1/registrations/{REGISTERED}", headers=private.carrier)
    )


def test_the_forms_without_javascript_answer_503_in_the_pages_words(private: Registry) -> None:
    private.server.kill()
    english = private.client.post("/forms/status", data={"number": REGISTERED})
    assert english.status_code == 503 and "text/html" in english.headers["content-type"]
    chinese = private.client.post("/forms/status", data={"number": REGISTERED, "lang": "zh"})
    assert chinese.status_code == 503
    assert "登记处暂时无法使用，请稍后再试。" in chinese.text
    assert chinese.headers.get("retry-after")


def test_lists_receipts_and_accounts_answer_503(private: Registry) -> None:
    private.server.kill()
    client, operator = private.client, private.operator
    assert_unavailable(client.get("/v1/changes", headers=operator))
    assert_unavailable(client.get("/v1/export", headers=operator))
    assert_unavailable(client.get("/v1/scrubs/scr_0123456789abcdef0123", headers=operator))
    detail = "/v1/scrubs/scr_0123456789abcdef0123?detail=true"
    assert_unavailable(client.get(detail, headers=operator))
    assert_unavailable(
        client.post("/v1/operators", json={"name": "x", "role": "operator"}, headers=ADMIN)
    )
    assert_unavailable(client.delete("/v1/operators/op_x", headers=ADMIN))
    # The administrators' reads of what is kept.
    assert_unavailable(client.get("/v1/operators", headers=ADMIN))
    assert_unavailable(client.get("/v1/operators/op_x", headers=ADMIN))
    assert_unavailable(client.get("/v1/complaints/cmp_0123456789abcdef", headers=ADMIN))
    # A complaint's handling: the queue, a resolution, its status, the operators' list.
    assert_unavailable(client.get("/v1/complaints", headers=ADMIN))
    resolution = "/v1/complaints/cmp_0123456789abcdef/resolution"
    assert_unavailable(client.post(resolution, json={"outcome": "sender_warned"}, headers=ADMIN))
    assert_unavailable(client.get("/v1/complaints/cmp_0123456789abcdef/status"))
    assert_unavailable(client.get("/v1/caller-complaints", headers=operator))
    assert client.get("/complaints/cmp_0123456789abcdef").status_code == 503  # the page
    assert_unavailable(client.patch("/v1/operators/op_x", json={"rate_limit": 5}, headers=ADMIN))
    path = "/v1/operators/op_x/consents/cns_0123456789abcdef0123"
    assert_unavailable(client.get(path, headers=ADMIN))
    # Consents, and an opt-out text that ends them.
    evidence = {"method": "web_form", "reference": "form-42"}
    body = {"number": REGISTERED, "evidence": evidence}
    assert_unavailable(client.post("/v1/consents", json=body, headers=operator))
    scoped = {**body, "channels": ["sms"], "categories": [1]}
    assert_unavailable(client.post("/v1/consents", json=scoped, headers=operator))
    sms = {"from": REGISTERED, "to": "55555", "text": "STOP"}
    assert_unavailable(client.post("/v1/sms/inbound", json=sms, headers=private.carrier))


REFUSALS = {
    # A master that lost the replicas it must write to answers NOREPLICAS.
    "noreplicas": [("min-replicas-to-write", "1")],
    # Full under noeviction: OOM for every write.
    "oom": [("maxmemory-policy", "noeviction"), ("maxmemory", "1")],
}


@pytest.mark.parametrize("refusal", [*REFUSALS, "readonly"])
def test_a_redis_that_refuses_writes_is_a_503_and_still_answers_reads(
    private: Registry, refusal: str
) -> None:
    """Redis up but refusing writes (NOREPLICAS, OOM, READONLY after a failover made it a
    replica) is unavailable for writes, not a 500; reads go on."""
    evidence = {"method": "web_form", "reference": "form-42"}
    consent = {"number": REGISTERED, "evidence": evidence}
    recorded = private.client.post("/v1/consents", json=consent, headers=private.operator)
    assert recorded.status_code == 201, recorded.text
    admin = redis.Redis.from_url(private.server.url)
    try:
        if refusal == "readonly":
            admin.replicaof("127.0.0.1", str(free_port()))  # a master that is not there
        for name, value in REFUSALS.get(refusal, []):
            admin.config_set(name, value)
        client, carrier = private.client, private.carrier
        assert_unavailable(client.put(f"/v1/registrations/{NOT_REGISTERED}", headers=carrier))
        assert_unavailable(client.delete(f"/v1/registrations/{REGISTERED}", headers=carrier))
        sms = {"from": REGISTERED, "to": "12345", "text": "START"}
        assert_unavailable(client.post("/v1/sms/inbound", json=sms, headers=carrier))
        operator = private.operator
        assert_unavailable(client.delete(f"/v1/consents/{REGISTERED}", headers=operator))
        assert_unavailable(client.post("/v1/consents", json=consent, headers=operator))
        # Nothing was taken away: registered, and the consent still lets this operator call.
        look_up = client.get(f"/v1/numbers/{REGISTERED}", headers=operator).json()
        assert look_up == {"number": REGISTERED, "status": "callable", "reason": "consent"}
        assert client.get(f"/v1/consents/{REGISTERED}", headers=operator).status_code == 200
    finally:
        admin.replicaof("NO", "ONE")
        admin.config_set("min-replicas-to-write", "0")
        admin.config_set("maxmemory", "0")
        admin.close()
    assert client.put(f"/v1/registrations/{NOT_REGISTERED}", headers=carrier).status_code == 201


def test_a_hung_redis_is_a_503_within_seconds_for_look_ups_and_readiness(
    private_look_ups: Registry,
) -> None:
    """A stopped redis-server still accepts connections and never answers."""
    private = private_look_ups
    assert isinstance(private.server, RedisProcess) and private.server.process is not None
    private.server.process.send_signal(signal.SIGSTOP)
    try:
        asks = [
            ("/readyz", private.operator),
            (f"/v1/numbers/{NOT_REGISTERED}", private.operator),
            (f"/v1/numbers/{REGISTERED}", private.operator),
            # A key not seen before must be checked in Redis; the status check counts the
            # client in Redis before it reads the number.
            (f"/v1/numbers/{REGISTERED}", private.unused_operator),
            (f"/v1/registrations/{REGISTERED}", {}),
        ]
        for path, headers in asks:
            started = time.monotonic()
            answer = private.client.get(path, headers=headers)
            assert time.monotonic() - started < 8, path  # the 2 s answer timeout, and room
            assert_unavailable(answer)
    finally:
        private.server.process.send_signal(signal.SIGCONT)
    answer = private.client.get(f"/v1/numbers/{REGISTERED}", headers=private.operator)
    assert answer.status_code == 200 and answer.json()["status"] == "blocked"


def test_a_key_that_cannot_be_checked_is_a_503_not_a_401(private: Registry) -> None:
    private.server.kill()
    assert_unavailable(
        private.client.get(f"/v1/numbers/{NOT_REGISTERED}", headers=private.unused_operator)
    )
    assert_unavailable(
        private.client.get(
            f"/v1/numbers/{NOT_REGISTERED}", headers={"Authorization": "Bearer dnc_unknown"}
        )
    )


def restart_on_the_same_port(server: RedisProcess) -> subprocess.Popen[bytes]:
    """The same data directory and port, as a supervisor restarting Redis would."""
    process = subprocess.Popen(
        [
            redis_server_binary(),
            "--dir",
            str(server.data_dir),
            "--bind",
            "127.0.0.1",
            "--port",
            str(server.port),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--logfile",
            str(server.data_dir / "redis-restarted.log"),
        ],  # fmt: skip
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    probe = redis.Redis.from_url(server.url, socket_connect_timeout=0.5)
    deadline = time.monotonic() + 10
    try:
        while True:
            try:
                if probe.ping():
                    return process
            except (redis.ConnectionError, redis.BusyLoadingError):
                if time.monotonic() > deadline or process.poll() is not None:
                    process.kill()
                    raise
                time.sleep(0.05)
    finally:
        probe.close()


def test_service_resumes_when_redis_comes_back(private_look_ups: Registry) -> None:
    private = private_look_ups
    client, operator = private.client, private.operator
    private.server.kill()
    assert_unavailable(client.get(f"/v1/numbers/{NOT_REGISTERED}", headers=operator))
    process = restart_on_the_same_port(private.server)
    try:
        deadline = time.monotonic() + 10
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the app never became ready again"
            time.sleep(0.05)
        # The acknowledged registration survived, and both answers are right again.
        assert client.get(f"/v1/numbers/{REGISTERED}", headers=operator).json()["status"] == (
            "blocked"
        )
        assert client.get(f"/v1/numbers/{NOT_REGISTERED}", headers=operator).json()["status"] == (
            "callable"
        )
        scrub = client.post(
            "/v1/scrub", json={"numbers": [NOT_REGISTERED, REGISTERED]}, headers=operator
        ).json()
        assert scrub["blocked"] == [REGISTERED]
        assert scrub["counts"]["callable"] == 1
    finally:
        process.kill()
        process.wait()


@pytest.fixture
def never_ready(tmp_path: Path) -> Iterator[TestClient]:
    """An app started while its Redis is not there at all."""
    settings = Settings(
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        admin_key=ADMIN_KEY,
        data_dir=tmp_path / "data",
    )
    client = TestClient(create_app(settings))
    client.__enter__()
    yield client
    client.__exit__(None, None, None)


def test_an_app_that_never_reached_redis_is_not_ready_and_answers_503(
    never_ready: TestClient,
) -> None:
    assert never_ready.get("/healthz").status_code == 200
    assert never_ready.get("/readyz").status_code == 503
    assert_unavailable(never_ready.get(f"/v1/numbers/{NOT_REGISTERED}", headers=ADMIN))
    answer = never_ready.post("/v1/scrub", json={"numbers": [NOT_REGISTERED]}, headers=ADMIN)
    assert_unavailable(answer)
    assert_unavailable(
        never_ready.post(
            "/v1/scrub",
            content=NOT_REGISTERED.encode(),
            headers={**ADMIN, "Content-Type": "text/plain"},
        )
    )


# --- Redis Cluster ---------------------------------------------------------------------------


@pytest.fixture
def private_cluster(tmp_path: Path) -> Iterator[Registry]:
    """An app on a three-master Cluster of its own; its nodes call a silent one failed in 2 s
    (less, and a node starved of CPU on a loaded machine is called failed by mistake)."""
    cluster = EmbeddedCluster(tmp_path / "cluster", masters=3, node_timeout_ms=2000)
    cluster.start()
    try:
        with warmed_up(cluster, tmp_path) as registry:
            yield registry
    finally:
        cluster.kill()


def assert_everything_unavailable(registry: Registry) -> None:
    client, operator = registry.client, registry.operator
    for number in (REGISTERED, NOT_REGISTERED):
        assert_unavailable(client.get(f"/v1/numbers/{number}", headers=operator))
    numbers = [NOT_REGISTERED, "junk", REGISTERED]
    assert_unavailable(client.post("/v1/scrub", json={"numbers": numbers}, headers=operator))
    answer = client.post(
        "/v1/scrub",
        content="\n".join(numbers).encode(),
        headers={**operator, "Content-Type": "text/plain"},
    )
    assert_unavailable(answer)
    assert "x-scrub-receipt" not in answer.headers
    assert_unavailable(client.put(f"/v1/registrations/{NOT_REGISTERED}", headers=registry.carrier))
    assert_unavailable(client.get("/v1/changes", headers=operator))
    assert_unavailable(client.get("/v1/export", headers=operator))
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200


def test_a_cluster_with_every_node_gone_answers_503(private_cluster: Registry) -> None:
    private_cluster.server.kill()
    assert_everything_unavailable(private_cluster)


def slot_owner(cluster: EmbeddedCluster, key: str) -> int:
    """The index of the node that serves `key`."""
    slot, count = key_slot(key.encode()), len(cluster.nodes)
    # EmbeddedCluster gives node i the slots from i * CLUSTER_SLOTS // count on.
    return max(i for i in range(count) if i * CLUSTER_SLOTS // count <= slot)


def bucket_owner(cluster: EmbeddedCluster, number: str) -> int:
    return slot_owner(cluster, keys.numbers_set(keys.bucket_of(int(number.removeprefix("+")))))


def test_a_cluster_missing_one_master_answers_503_never_callable(
    private_cluster: Registry,
) -> None:
    client, operator, cluster = (
        private_cluster.client,
        private_cluster.operator,
        private_cluster.server,
    )
    assert isinstance(cluster, EmbeddedCluster)
    # Lose a master that holds neither REGISTERED's bucket nor the registry-wide keys ...
    lost = (
        {0, 1, 2} - {bucket_owner(cluster, REGISTERED), slot_owner(cluster, keys.VERSION)}
    ).pop()
    # ... but does hold the bucket of another registered number.
    elsewhere = next(
        n
        for n in (f"+1212{exchange}1234" for exchange in range(200, 1000))
        if bucket_owner(cluster, n) == lost
    )
    registered = client.put(f"/v1/registrations/{elsewhere}", headers=private_cluster.carrier)
    assert registered.status_code == 201
    survivors = [c for i, c in enumerate(cluster.clients()) if i != lost]
    try:
        cluster.nodes[lost].kill()
        # The others call it failed within a second, and from then on refuse every slot
        # (CLUSTERDOWN): the registry answers 503 for numbers on any master.
        deadline = time.monotonic() + 15
        while any(c.cluster("INFO")["cluster_state"] != "fail" for c in survivors):
            assert time.monotonic() < deadline, "the Cluster never noticed the lost master"
            time.sleep(0.05)
        started = time.monotonic()
        assert_unavailable(client.get(f"/v1/numbers/{REGISTERED}", headers=operator))
        # Quickly: a few short retries (about 0.5 s), not redis-py's ten with growing pauses.
        assert time.monotonic() - started < 3.0
        scrub = client.post(
            "/v1/scrub", json={"numbers": [REGISTERED, elsewhere]}, headers=operator
        )
        assert_unavailable(scrub)
        assert client.get("/readyz").status_code == 503
    finally:
        for survivor in survivors:
            survivor.close()


def test_a_cluster_that_serves_no_longer_every_slot_answers_503(private_cluster: Registry) -> None:
    """Every master alive but one slot served by none: the Cluster refuses every command
    (CLUSTERDOWN), the client finds the slot map incomplete; either way, a 503."""
    cluster = private_cluster.server
    assert isinstance(cluster, EmbeddedCluster)
    clients = cluster.clients()
    try:
        for client in clients:
            client.execute_command("CLUSTER DELSLOTS", 0)
        deadline = time.monotonic() + 15
        while any(c.cluster("INFO")["cluster_state"] != "fail" for c in clients):
            assert time.monotonic() < deadline, "the Cluster never noticed the unserved slot"
            time.sleep(0.05)
    finally:
        for client in clients:
            client.close()
    operator = private_cluster.operator
    assert_unavailable(private_cluster.client.get("/v1/changes", headers=operator))
    assert_unavailable(private_cluster.client.get(f"/v1/numbers/{REGISTERED}", headers=operator))


def test_a_receipt_write_that_reaches_redis_after_its_window_stores_nothing(
    tmp_path: Path,
) -> None:
    """A scrub cut off because its receipt's write timed out must leave no receipt, even
    when Redis, hung meanwhile, resumes and runs the write it had queued (CONTRACT
    section 6). Here Redis stops between the write's two steps, for longer than the
    window, as a SIGSTOP mid-scrub did."""
    server = start_redis(tmp_path / "redis")
    assert server.process is not None
    process = server.process
    check = sync_client(server.url)

    def receipt(n: int) -> dict[str, Any]:
        return {"receipt_id": f"scr_{n:020x}", "operator": "op_test", "counts": {"total": n}}

    async def put(store: ReceiptStore, n: int) -> None:
        try:
            await store.put(receipt(n))
        finally:
            await store.redis.aclose()

    try:
        store = ReceiptStore(async_client(server.url), 153)
        asyncio.run(put(store, 1))
        assert check.get(keys.receipt(receipt(1)["receipt_id"])) is not None
        assert check.keys("*writing*") == []

        resume = threading.Timer(3.0, process.send_signal, (signal.SIGCONT,))

        def hang() -> None:
            process.send_signal(signal.SIGSTOP)
            resume.start()

        late = ReceiptStore(async_client(server.url), 153, write_window_ms=300)
        late._before_write = hang
        started = time.monotonic()
        with pytest.raises(redis.exceptions.TimeoutError):
            asyncio.run(put(late, 2))
        assert time.monotonic() - started < 2.0  # the writer gave up, long before the resume
        resume.join()  # Redis resumes and runs the queued write
        assert check.ping()
        assert check.get(keys.receipt(receipt(2)["receipt_id"])) is None

        async def listing() -> list[str]:
            store = ReceiptStore(async_client(server.url), 153)
            try:
                # Past the settling time: both writes' windows are over.
                later = time.time() + store.settle_seconds + 1
                found, _, _ = await store.of_operator("op_test", None, 10, now=later)
                return [r["receipt_id"] for r in found]
            finally:
                await store.redis.aclose()

        # Its operator's list names only the receipt that was stored.
        assert asyncio.run(listing()) == [receipt(1)["receipt_id"]]
    finally:
        process.send_signal(signal.SIGCONT)
        check.close()
        server.kill()


def test_a_hung_cluster_node_is_a_503_within_seconds_for_look_ups(
    private_cluster: Registry,
) -> None:
    """A stopped master still accepts connections; a look-up that must ask it waits the
    look-ups' 2 s, not redis-py's reply timeout, whatever the cluster has noticed yet."""
    cluster = private_cluster.server
    assert isinstance(cluster, EmbeddedCluster)
    # A registered number on a master that does not hold the registry-wide keys.
    central = slot_owner(cluster, keys.VERSION)
    number = next(
        n
        for n in (f"+1212{exchange}1234" for exchange in range(200, 1000))
        if bucket_owner(cluster, n) != central
    )
    put = private_cluster.client.put(f"/v1/registrations/{number}", headers=private_cluster.carrier)
    assert put.status_code == 201
    process = cluster.nodes[bucket_owner(cluster, number)].process
    assert process is not None
    process.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        answer = private_cluster.client.get(
            f"/v1/numbers/{number}", headers=private_cluster.operator
        )
        assert time.monotonic() - started < 8  # the 2 s answer timeout, and room
        assert_unavailable(answer)
    finally:
        process.send_signal(signal.SIGCONT)


def test_status_checks_and_removals_right_after_the_registry_is_lost_are_503(
    private: Registry,
) -> None:
    """Before the worker's follower (once a second) or a look-up has noticed the marker
    gone: the public status check read the emptied Redis as "not registered", and a
    carrier's DELETE as 404 not_registered; both are the empty Redis's answers, not the
    registry's."""
    client = redis.Redis.from_url(private.server.url)
    try:
        client.flushall()
        check = private.client.get(f"/v1/registrations/{REGISTERED}")
        assert_unavailable(check, "registry_lost")
        removal = private.client.delete(f"/v1/registrations/{REGISTERED}", headers=private.carrier)
        assert_unavailable(removal, "registry_lost")
    finally:
        client.close()


def test_a_redis_that_lost_the_registry_is_503_not_an_empty_registry(
    private: Registry, tmp_path: Path
) -> None:
    """Redis restarted without its files, flushed, or another, empty one at the URL: the
    worker saw the registry's marker and finds none. It used to make a new one and answer
    every registered number callable; then a worker started meanwhile (uvicorn replacing
    one that died) still made one, and every worker followed it; and writes were taken
    (201) that the restored data then lost."""
    client = redis.Redis.from_url(private.server.url)
    try:
        marker = client.get(keys.EPOCH)
        assert marker is not None
        client.flushall()
        for number in (REGISTERED, NOT_REGISTERED):
            lookup = private.client.get(f"/v1/numbers/{number}", headers=private.operator)
            assert_unavailable(lookup, "registry_lost")
        route = private.client.app
        assert isinstance(route, LookupRoute)
        route.enabled = False  # FastAPI's documented route, as behind a root_path
        try:
            lookup = private.client.get(f"/v1/numbers/{REGISTERED}", headers=private.operator)
            assert_unavailable(lookup, "registry_lost")
        finally:
            route.enabled = True
        scrub = private.client.post(
            "/v1/scrub", json={"numbers": [REGISTERED]}, headers=private.operator
        )
        assert_unavailable(scrub, "registry_lost")
        ready = private.client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["error"]["code"] == "registry_lost"
        # Neither the public check ("not registered") nor a write that would vanish.
        assert_unavailable(private.client.get(f"/v1/registrations/{REGISTERED}"), "registry_lost")
        new = private.client.put("/v1/registrations/+12125556666", headers=private.carrier)
        assert_unavailable(new, "registry_lost")
        # A worker started now, as uvicorn replaces one that died: no registry of its own.
        settings = Settings(
            redis_url=private.server.url, admin_key=ADMIN_KEY, data_dir=tmp_path / "data2"
        )
        with TestClient(create_app(settings)) as late:
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                answer = late.get("/readyz")
                assert answer.json()["error"]["code"] in ("loading", "registry_lost"), answer.text
                time.sleep(0.05)
            assert late.get("/readyz").json()["error"]["code"] == "registry_lost"
            lookup = late.get(f"/v1/numbers/{REGISTERED}", headers=private.operator)
            assert lookup.status_code == 503, lookup.text
            assert "callable" not in lookup.text
        assert client.get(keys.EPOCH) is None  # no new registry made in its place
        assert_unavailable(
            private.client.get(f"/v1/numbers/{REGISTERED}", headers=private.operator),
            "registry_lost",
        )
        assert client.keys("dnc:s:*") == [] and not client.exists(keys.CHANGES)  # no write
        # Its data back (the marker with it): answered again, from the next catch-up on.
        client.set(keys.EPOCH, marker)
        deadline = time.monotonic() + 10
        while private.client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "never ready again"
            time.sleep(0.05)
        again = private.client.get(f"/v1/numbers/{NOT_REGISTERED}", headers=private.operator)
        assert again.status_code == 200
    finally:
        client.close()

"""DNC_WAIT_REPLICAS: a write is acknowledged only once replicas hold it.

A real master and a real replica of it; the replica is frozen (SIGSTOP) to play
one that a failover would promote without the last writes.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from conftest import (
    ADMIN,
    ADMIN_KEY,
    assert_cli_error,
    assert_error,
    ready_client,
    stack_dump,
)
from embedded_cluster import EmbeddedCluster
from fastapi.testclient import TestClient
from redis.crc import key_slot

from registry.config import ConfigError, Settings, load_settings
from registry.embedded import RedisProcess, free_port, redis_server_binary
from registry.store import keys
from registry.store.connect import sync_client
from registry.store.replication import NotReplicated, replicated_sync

NUMBER = "+12125550123"


class Pair:
    """A master and its replica, both redis-servers started here."""

    def __init__(self, directory: Path) -> None:
        self.master = RedisProcess(directory / "master", durable=False, tcp=True)
        self.master.start()
        port = str(self.master.port)
        self.replica = RedisProcess(
            directory / "replica", durable=False, tcp=True, extra=["--replicaof", "127.0.0.1", port]
        )
        self.replica.start()
        self.master_client = redis.Redis.from_url(self.master.url)
        self.replica_client = redis.Redis.from_url(self.replica.url)
        deadline = time.monotonic() + 10
        while self.replica_client.info("replication")["master_link_status"] != "up":
            assert time.monotonic() < deadline, "the replica never synced"
            time.sleep(0.05)

    def holds(self, client: redis.Redis, number: str) -> bool:
        value = int(number[1:])
        bucket, member = keys.bucket_of(value), keys.member_of(value)
        return bool(client.sismember(keys.numbers_set(bucket), member))

    def freeze(self) -> None:
        assert self.replica.process is not None
        os.kill(self.replica.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """Let the replica run again, and wait until it has caught up (a PUBLISH reaches
        replicas, so WAIT has a write to wait for): the next write's 300 ms WAIT is not
        spent on the backlog of a replica that was stopped."""
        assert self.replica.process is not None
        if self.replica.process.poll() is None:
            os.kill(self.replica.process.pid, signal.SIGCONT)
            with contextlib.suppress(redis.RedisError):  # a master a test has stopped
                self.master_client.publish("dnc-test-thaw", "caught up?")
                self.master_client.execute_command("WAIT", 1, 10_000)

    def stop(self) -> None:
        self.thaw()
        self.master_client.close()
        self.replica_client.close()
        self.replica.stop()
        self.master.stop()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    pair = Pair(tmp_path)
    yield pair
    pair.stop()


def api(pair: Pair, tmp_path: Path, replicas: int, timeout_ms: int = 300) -> TestClient:
    settings = Settings(
        redis_url=pair.master.url,
        admin_key=ADMIN_KEY,
        data_dir=tmp_path / "data",
        wait_replicas=replicas,
        wait_replicas_ms=timeout_ms,
    )
    return ready_client(settings)


def carrier_key(client: TestClient, role: str = "carrier") -> dict[str, str]:
    answer = client.post("/v1/operators", json={"name": role, "role": role}, headers=ADMIN)
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['api_key']}"}


def operator_key(client: TestClient) -> dict[str, str]:
    return carrier_key(client, "operator")


def test_a_registration_is_acknowledged_once_the_replica_holds_it(
    pair: Pair, tmp_path: Path
) -> None:
    client = api(pair, tmp_path, replicas=1, timeout_ms=10_000)
    try:
        carrier = carrier_key(client)
        pair.freeze()  # a replica that lags
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            put = pool.submit(client.put, f"/v1/registrations/{NUMBER}", headers=carrier)
            time.sleep(0.5)
            assert not put.done()  # applied on the master, not yet acknowledged
            pair.thaw()
            answer = put.result(timeout=10)
        assert answer.status_code == 201, answer.text
        assert pair.holds(pair.replica_client, NUMBER)
    finally:
        pair.thaw()
        client.__exit__(None, None, None)


def test_an_account_the_replica_does_not_acknowledge_is_taken_back(
    pair: Pair, tmp_path: Path
) -> None:
    """Its key was never given to anyone: left active, it would be an account that only
    a revocation could end, and the administrator's retry would make a second one."""
    client = api(pair, tmp_path, replicas=1)
    try:
        pair.freeze()
        body = {"name": "acme", "role": "operator", "callers": ["+12125550100"]}
        answer = client.post("/v1/operators", json=body, headers=ADMIN)
        assert_error(answer, 503, "not_replicated")
        assert "api_key" not in answer.text
        pair.thaw()
        listed = client.get("/v1/operators", headers=ADMIN).json()["operators"]
        assert [o for o in listed if o["name"] == "acme"] == []
        # Its caller was released with it: the retry gets it.
        retry = client.post("/v1/operators", json=body, headers=ADMIN)
        assert retry.status_code == 201, retry.text
        entries = client.get("/v1/audit", headers=ADMIN).json()["entries"]
        revoked = [e for e in entries if e["action"] == "operator.revoked"]
        assert revoked and revoked[0]["reason"] == "not_replicated"
    finally:
        pair.thaw()
        client.__exit__(None, None, None)


def test_a_write_the_replica_does_not_acknowledge_is_503_not_acknowledged(
    pair: Pair, tmp_path: Path
) -> None:
    client = api(pair, tmp_path, replicas=1)
    unguarded = api(pair, tmp_path, replicas=0)
    try:
        carrier = carrier_key(client)
        pair.freeze()
        started = time.monotonic()
        answer = client.put(f"/v1/registrations/{NUMBER}", headers=carrier)
        assert_error(answer, 503, "not_replicated")
        assert answer.headers["retry-after"] == "1"
        assert time.monotonic() - started < 3
        # Reads wait for no replica; the write itself is on the master.
        assert client.get("/healthz").status_code == 200
        assert pair.holds(pair.master_client, NUMBER)
        # Without DNC_WAIT_REPLICAS the same write is acknowledged: what a failover could drop.
        other = "+12125550124"
        assert unguarded.put(f"/v1/registrations/{other}", headers=carrier).status_code == 201
        # Errors are answered as they are: nothing written, nothing to wait for.
        assert_error(client.put("/v1/registrations/+1", headers=carrier), 400, "invalid_number")
        pair.thaw()
        # The client's retry is acknowledged once the replica holds it.
        answer = client.put(f"/v1/registrations/{NUMBER}", headers=carrier)
        assert answer.status_code in (200, 201), answer.text
        assert pair.holds(pair.replica_client, NUMBER)
    finally:
        pair.thaw()
        client.__exit__(None, None, None)
        unguarded.__exit__(None, None, None)


def test_after_a_failover_the_promoted_replica_blocks_every_acknowledged_number(
    pair: Pair, tmp_path: Path
) -> None:
    client = api(pair, tmp_path, replicas=1)
    carrier = carrier_key(client)
    numbers = [f"+1212555{i:04d}" for i in range(50)]
    try:
        for number in numbers:
            answer = client.put(f"/v1/registrations/{number}", headers=carrier)
            assert answer.status_code == 201, answer.text
    finally:
        client.__exit__(None, None, None)
    pair.master.kill()  # the instant after the last 201
    pair.replica_client.replicaof("NO", "ONE")
    promoted = ready_client(
        Settings(redis_url=pair.replica.url, admin_key=ADMIN_KEY, data_dir=tmp_path / "promoted")
    )
    try:
        key = operator_key(promoted)
        answer = promoted.post("/v1/scrub", json={"numbers": numbers}, headers=key)
        assert answer.status_code == 200, answer.text
        assert answer.json()["counts"]["blocked"] == len(numbers), answer.text
    finally:
        promoted.__exit__(None, None, None)


def test_a_worker_that_saw_a_write_the_failover_lost_still_blocks_what_comes_after(
    pair: Pair, tmp_path: Path
) -> None:
    """The failover that drops an unacknowledged write W, which a running worker had already
    taken into its Bloom filter; then as many new registrations as were lost, which bring
    the registry's version back to the one the worker saw. The worker must not take the
    equal version for "nothing changed" and answer the new numbers from its filter."""
    client = api(pair, tmp_path, replicas=1)
    try:
        carrier = carrier_key(client)
        key = operator_key(client)
        # Cut off from its master (a partition), the replica misses what comes next.
        pair.replica_client.replicaof("NO", "ONE")
        lost = client.put("/v1/registrations/+12125550100", headers=carrier)
        assert_error(lost, 503, "not_replicated")  # applied on the master, not acknowledged
        # The worker takes it in: its look-ups see the master's newer version.
        assert client.get("/v1/numbers/+12125550100", headers=key).json()["status"] == "blocked"
        ((lost_id, _),) = pair.master_client.xrevrange(keys.CHANGES, count=1)
        # The master dies; the replica, without W, takes over the master's address.
        pair.master.kill()
        pair.replica_client.save()
        pair.replica.stop()
        promoted = RedisProcess(
            pair.replica.data_dir, durable=False, port=pair.master.port
        )  # loads the replica's dump.rdb
        promoted.start()
        pair.master = promoted
        # A change the new master logs under an id before W's (its clock behind the old
        # master's), as the loader logs a bucket's batch: the worker reads the stream after
        # W, so only a rebuild for the new lineage finds it.
        number = 12125550102
        bucket, member = keys.bucket_of(number), keys.member_of(number)
        promoted_client = redis.Redis.from_url(promoted.url)
        before = int(lost_id.split(b"-")[0]) - 1
        entry = promoted_client.xadd(keys.CHANGES, {"a": number}, id=f"{before}-0")
        promoted_client.sadd(keys.numbers_set(bucket), member)
        promoted_client.sadd(keys.BUCKETS, bucket)
        promoted_client.incr(keys.VERSION)
        promoted_client.set(keys.HEAD, entry)
        # Back at the version the worker saw (W's), with another history.
        assert promoted_client.get(keys.VERSION) == b"1"
        promoted_client.close()
        deadline = time.monotonic() + 30
        # The first requests meet the dead master's connections: 503.
        while client.get("/v1/numbers/+12125550199", headers=key).status_code != 200:
            assert time.monotonic() < deadline, "the worker never reached the promoted master"
            time.sleep(0.1)
        found = client.get(f"/v1/numbers/+{number}", headers=key).json()
        assert found["status"] == "blocked", found
        # And a registration after the failover, through a worker that waits for no
        # replica (the promoted master has none yet).
        other = api(pair, tmp_path, replicas=0)
        try:
            answer = other.put("/v1/registrations/+12125550101", headers=carrier)
            assert answer.status_code == 201, answer.text
        finally:
            other.__exit__(None, None, None)
        found = client.get("/v1/numbers/+12125550101", headers=key).json()
        assert found["status"] == "blocked", found
    finally:
        client.__exit__(None, None, None)


def test_a_redis_that_refuses_info_still_serves_every_answer(tmp_path: Path) -> None:
    """INFO (for the replication id) is refused by some proxies and configurations; the
    version and head then tell histories apart on their own."""
    server = RedisProcess(
        tmp_path / "redis", durable=False, tcp=True, extra=["--rename-command", "INFO", ""]
    )
    server.start()
    settings = Settings(redis_url=server.url, admin_key=ADMIN_KEY, data_dir=tmp_path / "data")
    client = ready_client(settings)
    try:
        carrier = carrier_key(client)
        key = operator_key(client)
        assert client.put(f"/v1/registrations/{NUMBER}", headers=carrier).status_code == 201
        assert client.get(f"/v1/numbers/{NUMBER}", headers=key).json()["status"] == "blocked"
        answer = client.post("/v1/scrub", json={"numbers": [NUMBER, "+12125550124"]}, headers=key)
        assert answer.json()["counts"]["blocked"] == 1, answer.text
    finally:
        client.__exit__(None, None, None)
        server.stop()


class SentinelProcess:
    """A real Sentinel (the same binary, `--sentinel`) watching `master_port` as `dnc`."""

    def __init__(self, directory: Path, master_port: int) -> None:
        directory.mkdir(parents=True)
        self.port = free_port()
        config = directory / "sentinel.conf"  # Sentinel rewrites it: its own file
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {directory}\n"
            f"logfile {directory / 'sentinel.log'}\n"
            f"sentinel monitor dnc 127.0.0.1 {master_port} 1\n"
            "sentinel down-after-milliseconds dnc 1500\n"
            "sentinel failover-timeout dnc 3000\n"
        )
        self.process = subprocess.Popen(
            [redis_server_binary(), str(config), "--sentinel"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        self.client = redis.Redis(port=self.port)
        self.url = f"redis+sentinel://127.0.0.1:{self.port}/dnc"
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.replicas() > 0:  # it has met the replica through the master
                    return
            except redis.ConnectionError:
                pass
            assert time.monotonic() < deadline, "the Sentinel never saw the replica"
            time.sleep(0.05)

    def replicas(self) -> int:
        return len(self.client.execute_command("SENTINEL", "REPLICAS", "dnc"))

    def master_port(self) -> int:
        _, port = self.client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "dnc")
        return int(port)

    def stop(self) -> None:
        self.client.close()
        self.process.kill()
        self.process.wait()


def test_through_sentinel_a_failover_keeps_every_acknowledged_registration(
    pair: Pair, tmp_path: Path
) -> None:
    sentinel = SentinelProcess(tmp_path / "sentinel", pair.master.port)
    settings = Settings(
        redis_url=sentinel.url,
        admin_key=ADMIN_KEY,
        data_dir=tmp_path / "data",
        wait_replicas=1,
        wait_replicas_ms=1000,
    )
    client = ready_client(settings)
    try:
        carrier = carrier_key(client)
        key = operator_key(client)
        numbers = [f"+1212555{i:04d}" for i in range(30)]
        for number in numbers:
            answer = client.put(f"/v1/registrations/{number}", headers=carrier)
            assert answer.status_code == 201, answer.text
        pair.master.kill()  # the instant after the last 201
        deadline = time.monotonic() + 20
        while sentinel.master_port() != pair.replica.port:
            assert time.monotonic() < deadline, "the Sentinel never failed over"
            time.sleep(0.1)
        # The same worker follows the Sentinel to the new master: 503 until it has.
        while (answer := client.get(f"/v1/numbers/{numbers[0]}", headers=key)).status_code != 200:
            assert_error(answer, 503, "redis_unavailable")
            assert time.monotonic() < deadline, answer.text
            time.sleep(0.1)
        for number in numbers:
            found = client.get(f"/v1/numbers/{number}", headers=key).json()
            assert found["status"] == "blocked", found
        # The new master has no replica yet: a write cannot be acknowledged.
        assert_error(
            client.put("/v1/registrations/+12125559999", headers=carrier), 503, "not_replicated"
        )
        # dnc load reaches it through the Sentinel too.
        listing = tmp_path / "list.txt"
        listing.write_text("+13125550100\n")
        result = dnc("load", str(listing), DNC_REDIS_URL=sentinel.url)
        assert result.returncode == 0 and "loaded 1," in result.stdout, result.stderr
        found = client.get("/v1/numbers/+13125550100", headers=key).json()
        assert found["status"] == "blocked", found
    finally:
        client.__exit__(None, None, None)
        sentinel.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[EmbeddedCluster]:
    """Three masters with a replica each; a master silent for 3 s is failed over (less, and
    a node starved of CPU on a loaded machine is failed over by mistake)."""
    cluster = EmbeddedCluster(tmp_path / "cluster", masters=3, replicas=1, node_timeout_ms=3000)
    cluster.start()
    yield cluster
    for node in cluster.nodes:
        if node.process is not None and node.process.poll() is None:
            os.kill(node.process.pid, signal.SIGCONT)
    cluster.stop()


def cluster_api(cluster: EmbeddedCluster, tmp_path: Path, timeout_ms: int) -> TestClient:
    settings = Settings(
        redis_url=cluster.url,
        admin_key=ADMIN_KEY,
        data_dir=tmp_path / "data",
        wait_replicas=1,
        wait_replicas_ms=timeout_ms,
    )
    return ready_client(settings)


def test_a_cluster_with_a_password_serves_and_waits_through_it(
    cluster: EmbeddedCluster, tmp_path: Path
) -> None:
    """redis+cluster://:PASSWORD@...: the Cluster client and the barrier's own clients of
    each master use it. Before, the password was read as part of a host name."""
    url = cluster.protect("s3cret/pw")  # a '/' in it, as a generated one may hold
    url = url.replace("s3cret/pw", "s3cret%2Fpw")
    cluster.url = url
    client = cluster_api(cluster, tmp_path, timeout_ms=10_000)
    try:
        carrier = carrier_key(client)
        answer = client.put(f"/v1/registrations/{NUMBER}", headers=carrier)
        assert answer.status_code == 201, answer.text
        direct = sync_client(url)
        try:
            replicated_sync(direct, 1, 5000)  # the CLI's barrier, through the password
            assert direct.sismember(
                keys.numbers_set(keys.bucket_of(int(NUMBER[1:]))),
                keys.member_of(int(NUMBER[1:])),
            )
        finally:
            direct.close()
        listing = tmp_path / "ftc.txt"
        listing.write_text("212,5550124\n")
        loaded = dnc("load", str(listing), DNC_REDIS_URL=url, DNC_WAIT_REPLICAS="1")
        assert loaded.returncode == 0, loaded.stderr
        assert loaded.stdout.strip().endswith("loaded 1, already present 0, invalid 0")
        exported = dnc("export", DNC_REDIS_URL=url)
        assert exported.stdout.split() == [NUMBER, "+12125550124"], exported.stderr
        with pytest.raises((redis.AuthenticationError, redis.exceptions.RedisClusterException)):
            sync_client(url.replace(":s3cret%2Fpw@", "")).ping()
    finally:
        client.__exit__(None, None, None)


def test_on_a_cluster_a_write_waits_for_the_replicas_of_every_master(
    cluster: EmbeddedCluster, tmp_path: Path
) -> None:
    client = cluster_api(cluster, tmp_path, timeout_ms=10_000)
    replica = cluster.nodes[4].process  # the replica of the second master
    assert replica is not None
    try:
        carrier = carrier_key(client)
        os.kill(replica.pid, signal.SIGSTOP)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            put = pool.submit(client.put, f"/v1/registrations/{NUMBER}", headers=carrier)
            time.sleep(0.5)
            assert not put.done()  # its master's replica is frozen
            os.kill(replica.pid, signal.SIGCONT)
            answer = put.result(timeout=10)
        assert answer.status_code == 201, answer.text
        # The CLI's barrier (`dnc load`, `dnc operators create`) on every master too.
        direct = sync_client(cluster.url)
        os.kill(replica.pid, signal.SIGSTOP)
        try:
            with pytest.raises(NotReplicated, match="0 of the 1 replica"):
                replicated_sync(direct, 1, 300)
        finally:
            os.kill(replica.pid, signal.SIGCONT)
        replicated_sync(direct, 1, 5000)
        direct.close()
    finally:
        client.__exit__(None, None, None)


def test_a_cluster_failover_keeps_every_acknowledged_registration(
    cluster: EmbeddedCluster, tmp_path: Path
) -> None:
    client = cluster_api(cluster, tmp_path, timeout_ms=1000)
    try:
        carrier = carrier_key(client)
        key = operator_key(client)
        # Numbers in many buckets, so on every master.
        codes = [212, 213, 312, 415, 503, 617, 702, 808, 907, 646]
        numbers = [f"+1{codes[i % 10]}5550{100 + i:03d}" for i in range(30)]
        for number in numbers:
            answer = client.put(f"/v1/registrations/{number}", headers=carrier)
            assert answer.status_code == 201, answer.text
        # The master of the change stream's slot, the instant after the last 201.
        services = client.app.services  # type: ignore[attr-defined]
        before = services.bloom.lineage
        index = key_slot(keys.CHANGES.encode()) * cluster.masters // 16384
        cluster.nodes[index].kill()
        survivor = redis.Redis(port=cluster.nodes[cluster.masters + index].port)  # its replica
        deadline = time.monotonic() + 30
        while survivor.info("replication")["role"] != "master":
            assert time.monotonic() < deadline, "the Cluster never failed over"
            time.sleep(0.1)
        survivor.close()
        # Every acknowledged number blocked, 503 while the Cluster settles, never callable.
        for number in numbers:
            while (answer := client.get(f"/v1/numbers/{number}", headers=key)).status_code != 200:
                assert answer.status_code == 503, answer.text
                assert time.monotonic() < deadline, answer.text
                time.sleep(0.1)
            assert answer.json()["status"] == "blocked", (number, answer.text)
        # The worker rebuilt its filter from the new master's history.
        assert services.bloom.lineage not in (None, before)
    finally:
        client.__exit__(None, None, None)


def test_a_web_form_shows_a_write_that_was_not_acknowledged_as_a_page(
    pair: Pair, tmp_path: Path
) -> None:
    client = api(pair, tmp_path, replicas=1)
    try:
        pair.freeze()
        page = client.post(
            "/forms/registrations",
            content="number=%2B12125550123&channels=voice",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert page.status_code == 503
        assert page.headers["content-type"].startswith("text/html")
        assert "try again in a moment" in page.text
        chinese = client.post(
            "/forms/registrations",
            content="number=%2B12125550124&channels=voice&lang=zh",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert chinese.status_code == 503 and "未能及时确认这项更改已经保存" in chinese.text
    finally:
        pair.thaw()
        client.__exit__(None, None, None)


def test_scrubs_and_look_ups_go_on_while_a_replica_is_away(pair: Pair, tmp_path: Path) -> None:
    """A scrub is a read whose one write is its receipt: it waits for no replica."""
    client = api(pair, tmp_path, replicas=1)
    try:
        key = operator_key(client)
        pair.freeze()
        started = time.monotonic()
        listing = "\n".join(f"+1212555{i:04d}" for i in range(1000))
        answer = client.post(
            "/v1/scrub", content=listing, headers={**key, "Content-Type": "text/plain"}
        )
        assert answer.status_code == 200, answer.text
        assert answer.text.count("\n") == 1001
        answer = client.post("/v1/scrub", json={"numbers": [NUMBER]}, headers=key)
        assert answer.json()["counts"]["callable"] == 1, answer.text
        assert client.get(f"/v1/numbers/{NUMBER}", headers=key).status_code == 200
        assert time.monotonic() - started < 2  # none of them waited out the 300 ms
    finally:
        pair.thaw()
        client.__exit__(None, None, None)


def test_a_code_request_the_replicas_may_lose_sends_no_code(pair: Pair, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.jsonl"
    settings = Settings(
        redis_url=pair.master.url,
        admin_key=ADMIN_KEY,
        data_dir=tmp_path / "data",
        notifier=f"file:{outbox}",
        wait_replicas=1,
        wait_replicas_ms=300,
    )
    client = ready_client(settings)
    try:
        pair.freeze()
        answer = client.post("/v1/registrations", json={"number": NUMBER})
        assert_error(answer, 503, "not_replicated")
        assert not outbox.exists() or outbox.read_text() == ""  # no text to the phone
        pair.thaw()
        answer = client.post("/v1/registrations", json={"number": NUMBER})
        assert answer.status_code == 202, answer.text
        assert len(outbox.read_text().splitlines()) == 1
    finally:
        pair.thaw()
        client.__exit__(None, None, None)


def test_dnc_serve_says_when_the_admin_key_it_shows_is_not_on_the_replicas(
    pair: Pair, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DNC_")}
    env |= {
        "DNC_REDIS_URL": pair.master.url,
        "DNC_WAIT_REPLICAS": "1",
        "DNC_WAIT_REPLICAS_MS": "300",
        "DNC_PORT": str(free_port()),
        "DNC_DATA_DIR": str(tmp_path / "data"),
        "PYTHONFAULTHANDLER": "1",  # stack_dump
    }
    pair.freeze()
    serve = subprocess.Popen(
        [*DNC, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert serve.stdout is not None and serve.stderr is not None
        assert serve.stdout.readline().startswith("admin key (shown once, keep it): ")
        warning = serve.stderr.readline()
        assert warning.startswith("dnc: warning: the admin key is on the master, but 0 of"), warning
        assert "set DNC_ADMIN_KEY" in warning
        assert serve.stdout.readline().startswith("dnc-registry serving http://")
        pair.thaw()
        # Stopped once it serves: a signal in the middle of start-up is test_serve's.
        deadline = time.monotonic() + 30
        while not ready(int(env["DNC_PORT"])):
            assert serve.poll() is None, serve.communicate()
            assert time.monotonic() < deadline, "dnc serve never became ready"
            time.sleep(0.1)
    finally:
        pair.thaw()
        serve.terminate()
        try:
            serve.communicate(timeout=30)  # read to the end: a full pipe would stop it
        except subprocess.TimeoutExpired:
            pytest.fail(f"dnc serve did not stop on SIGTERM:\n{stack_dump(serve)}")


def ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


DNC = [sys.executable, "-m", "registry.cli"]


def dnc(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DNC_")} | env
    return subprocess.run(
        [*DNC, *args], env=environment, capture_output=True, text=True, timeout=60
    )


def test_dnc_load_reports_a_load_only_once_the_replica_holds_it(pair: Pair, tmp_path: Path) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"+1212555{i:04d}\n" for i in range(100)))
    env = {"DNC_REDIS_URL": pair.master.url, "DNC_WAIT_REPLICAS": "1"}
    pair.freeze()
    try:
        result = dnc("load", str(listing), DNC_WAIT_REPLICAS_MS="300", **env)
    finally:
        pair.thaw()
    assert_cli_error(result, 1, "replica", "load the same files again")
    assert result.stdout == ""  # no "loaded" line for a load that is not acknowledged
    result = dnc("load", str(listing), **env)
    assert result.returncode == 0, result.stderr
    assert "loaded 0, already present 100" in result.stdout
    assert all(pair.holds(pair.replica_client, f"+1212555{i:04d}") for i in range(100))


def test_operators_create_shows_no_key_the_replica_does_not_hold(
    pair: Pair, tmp_path: Path
) -> None:
    env = {"DNC_REDIS_URL": pair.master.url, "DNC_WAIT_REPLICAS": "1"}
    pair.freeze()
    try:
        result = dnc("operators", "create", "Acme", DNC_WAIT_REPLICAS_MS="300", **env)
    finally:
        pair.thaw()
    assert_cli_error(result, 1, "replica", "revoke it")
    assert result.stdout == ""  # no key
    result = dnc("operators", "create", "Acme", **env)
    assert result.returncode == 0 and result.stdout.strip(), result.stderr


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"DNC_WAIT_REPLICAS": "-1"}, "at least 0"),
        (
            {"DNC_WAIT_REPLICAS": "99999999999999999999", "DNC_REDIS_URL": "redis://h"},
            "at most 100",
        ),
        ({"DNC_WAIT_REPLICAS": "1"}, "the embedded Redis has no replicas"),
        ({"DNC_WAIT_REPLICAS": "one"}, "integer"),
        ({"DNC_WAIT_REPLICAS_MS": "0"}, "at least 1"),
    ],
)
def test_settings_refuse_what_cannot_wait_for_replicas(env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        load_settings(env)

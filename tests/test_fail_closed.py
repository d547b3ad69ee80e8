"""Fail closed (CONTRACT section 7): without Redis, nothing is ever reported callable.

Each test runs the app on its own redis-server and stops that server mid-test.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from conftest import ADMIN, ADMIN_KEY, ready_client, start_redis
from fastapi.testclient import TestClient
from httpx import Response

from registry.api import create_app
from registry.config import Settings
from registry.embedded import RedisProcess, free_port, redis_server_binary

Headers = dict[str, str]
REGISTERED = "+12125551234"
NOT_REGISTERED = "+12125550000"


def assert_unavailable(answer: Response) -> None:
    """A 503 with the contract's error shape and the code redis_unavailable."""
    assert answer.status_code == 503, answer.text
    body = answer.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == "redis_unavailable"
    assert body["error"]["message"]
    assert "callable" not in answer.text


@dataclass
class Registry:
    """An app on a private redis-server that the test may kill."""

    client: TestClient
    server: RedisProcess
    carrier: Headers
    operator: Headers
    unused_operator: Headers  # created before Redis went away, never used: not cached


def create_key(client: TestClient, role: str) -> Headers:
    answer = client.post("/v1/operators", json={"name": role, "role": role}, headers=ADMIN)
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['api_key']}"}


@pytest.fixture
def private(tmp_path: Path) -> Iterator[Registry]:
    server = start_redis(tmp_path / "redis", durable=True)
    settings = Settings(
        redis_url=server.url,
        admin_key=ADMIN_KEY,
        data_dir=tmp_path / "data",
        auth_cache_seconds=60,  # keys used before the outage stay known, so the
        # look-up itself (not only the key check) meets the missing Redis
    )
    client = ready_client(settings)
    try:
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
        yield Registry(client, server, carrier, operator, unused)
    finally:
        client.__exit__(None, None, None)
        server.kill()


def test_look_ups_answer_503_never_callable(private: Registry) -> None:
    private.server.kill()
    for number in (REGISTERED, NOT_REGISTERED, "(212) 555-0000"):
        for query in ("", "?channel=sms", "?category=3"):
            answer = private.client.get(f"/v1/numbers/{number}{query}", headers=private.operator)
            assert_unavailable(answer)
            assert answer.headers.get("retry-after")


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


def test_lists_receipts_and_accounts_answer_503(private: Registry) -> None:
    private.server.kill()
    client, operator = private.client, private.operator
    assert_unavailable(client.get("/v1/changes", headers=operator))
    assert_unavailable(client.get("/v1/export", headers=operator))
    assert_unavailable(client.get("/v1/scrubs/scr_0123456789abcdef0123", headers=operator))
    assert_unavailable(client.post("/v1/operators", json={"name": "x"}, headers=ADMIN))
    assert_unavailable(client.delete("/v1/operators/op_x", headers=ADMIN))


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


def test_service_resumes_when_redis_comes_back(private: Registry) -> None:
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

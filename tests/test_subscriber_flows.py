"""Subscribers register and deregister by one-time code (CONTRACT sections 4 and 6).

`POST /v1/registrations` and `POST /v1/deregistrations` send a six-digit code
through DNC_NOTIFIER; `.../{request_id}/confirm` acts on it. The tests read the
codes where a gateway would: the file outbox, or a real local HTTP server
standing in for an SMS gateway's webhook.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import logging
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import ADMIN, ADMIN_KEY, assert_error, ready_client, start_redis
from fastapi.testclient import TestClient
from httpx import Response
from redis.exceptions import ConnectionError as RedisConnectionError

from registry.api import create_app
from registry.config import ConfigError, Settings, load_settings
from registry.notifier import build_notifier
from registry.store import keys

pytestmark = pytest.mark.cluster  # every test on one redis-server and on a Redis Cluster
Headers = dict[str, str]
NUMBER = "+12125551234"
OTHER = "+13105550000"


def when(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


class Outbox:
    """The file notifier's outbox, read as an SMS gateway tailing it would."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def messages(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines()]

    def code(self, to: str = NUMBER) -> str:
        sent = [m for m in self.messages() if m["to"] == to]
        assert sent, f"no code was sent to {to}"
        return str(sent[-1]["code"])


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "outbox.jsonl")


@pytest.fixture
def apps(spare: Callable[..., TestClient], outbox: Outbox) -> Callable[..., TestClient]:
    """Apps on the test's Redis that send codes to the outbox, with settings changed."""

    def start(**changes: Any) -> TestClient:
        changes.setdefault("notifier", f"file:{outbox.path}")
        return spare(**changes)

    return start


@pytest.fixture
def api(apps: Callable[..., TestClient]) -> TestClient:
    return apps()


def account(api: TestClient, role: str) -> Headers:
    answer = api.post("/v1/operators", json={"name": f"test {role}", "role": role}, headers=ADMIN)
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['api_key']}"}


def ask(api: TestClient, path: str = "/v1/registrations", **body: Any) -> str:
    """Ask for a code; returns the request id."""
    body.setdefault("number", NUMBER)
    answer = api.post(path, json=body)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["request_id"])


def ask_raw(api: TestClient, number: str) -> Response:
    return api.post("/v1/registrations", json={"number": number})


def confirm(api: TestClient, request_id: str, code: str, kind: str = "registrations") -> Response:
    return api.post(f"/v1/{kind}/{request_id}/confirm", json={"code": code})


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def lookup(api: TestClient, operator: Headers, number: str = NUMBER) -> str:
    answer = api.get(f"/v1/numbers/{number}", headers=operator)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["status"])


def audit_entries(redis_client: Any) -> list[dict[str, str]]:
    return [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in redis_client.xrange(keys.AUDIT)
    ]


def pending_keys(redis_client: Any) -> list[bytes]:
    return list(redis_client.keys("dnc:req:*"))


# -- registration ---------------------------------------------------------------------------


def test_a_code_registers_the_number(api: TestClient, outbox: Outbox, redis_client: Any) -> None:
    operator = account(api, "operator")
    assert lookup(api, operator) == "callable"
    answer = api.post("/v1/registrations", json={"number": "(212) 555-1234"})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert set(body) == {"request_id", "expires_in"}
    assert body["expires_in"] == 600
    assert len(body["request_id"]) >= 22
    [message] = outbox.messages()
    assert message["to"] == NUMBER
    assert len(message["code"]) == 6 and message["code"].isdigit()
    assert message["code"] in message["text"]
    assert abs(when(message["at"]) - datetime.now(UTC)) < timedelta(seconds=5)
    assert lookup(api, operator) == "callable"  # nothing is registered before the code

    before = datetime.now(UTC).replace(microsecond=0)
    done = confirm(api, body["request_id"], message["code"])
    assert done.status_code == 201, done.text
    registration = done.json()
    fields = {"number", "registered_at", "effective_at", "channels", "allow_categories"}
    assert set(registration) == fields
    assert registration["number"] == NUMBER
    assert before <= when(registration["registered_at"]) <= datetime.now(UTC)
    effective = when(registration["effective_at"]) - when(registration["registered_at"])
    assert effective == timedelta(days=31)
    assert sorted(registration["channels"]) == ["sms", "voice"]
    assert registration["allow_categories"] == []

    assert lookup(api, operator) == "blocked"
    status = api.get(f"/v1/registrations/{NUMBER}").json()
    assert status["registered"] is True
    assert status["registered_at"] == registration["registered_at"]
    [entry] = [e for e in audit_entries(redis_client) if e["action"] == "registration.created"]
    assert entry["actor"] == "subscriber" and entry["number"] == NUMBER


def test_preferences_are_kept_and_a_change_keeps_registered_at(
    api: TestClient, outbox: Outbox, redis_client: Any
) -> None:
    operator = account(api, "operator")
    first_id = ask(api, channels=["sms"], allow_categories=[2])
    first = confirm(api, first_id, outbox.code()).json()
    assert first["channels"] == ["sms"] and first["allow_categories"] == [2]
    assert lookup(api, operator) == "blocked"
    answer = api.get(f"/v1/numbers/{NUMBER}?channel=voice", headers=operator)
    assert answer.json()["status"] == "callable"

    time.sleep(1.02 - time.time() % 1)  # into the next second: a new registered_at would differ
    second_id = ask(api, channels=["voice"])
    second = confirm(api, second_id, outbox.code())
    assert second.status_code == 201, second.text
    assert second.json()["registered_at"] == first["registered_at"]
    assert second.json()["channels"] == ["voice"] and second.json()["allow_categories"] == []
    actions = [e["action"] for e in audit_entries(redis_client)]
    assert actions.count("registration.created") == 1
    assert actions.count("registration.updated") == 1


def test_only_a_hash_of_the_code_is_stored(
    api: TestClient, outbox: Outbox, redis_client: Any
) -> None:
    request_id = ask(api)
    code = outbox.code()
    stored = redis_client.hgetall(keys.pending_request(request_id))
    assert code.encode() not in stored.values()
    assert hashlib.sha256(f"{request_id}:{code}".encode()).hexdigest().encode() in stored.values()
    assert 0 < redis_client.ttl(keys.pending_request(request_id)) <= 600


def test_a_wrong_code_is_400_and_five_void_the_request(
    api: TestClient, outbox: Outbox, redis_client: Any
) -> None:
    request_id = ask(api)
    code = outbox.code()
    for left in (4, 3, 2, 1, 0):
        error = assert_error(confirm(api, request_id, wrong(code)), 400, "wrong_code")
        assert error["details"]["tries_left"] == left
        if left:
            assert f"{left} {'try' if left == 1 else 'tries'} left" in error["message"]
    # The right code comes too late, and stays refused.
    for _ in range(2):
        assert_error(confirm(api, request_id, code), 410, "request_void")
    assert api.get(f"/v1/registrations/{NUMBER}").json()["registered"] is False
    # The number is not kept once the request is over; only why it ended.
    assert not redis_client.exists(keys.pending_request(request_id))


def test_tries_are_counted_across_workers(apps: Callable[..., TestClient], outbox: Outbox) -> None:
    one, two = apps(), apps()
    request_id = ask(one)
    code = outbox.code()
    for i in range(5):
        assert_error(confirm(one if i % 2 else two, request_id, wrong(code)), 400, "wrong_code")
    assert_error(confirm(two, request_id, code), 410, "request_void")
    assert_error(confirm(one, request_id, code), 410, "request_void")


def test_a_code_works_once(api: TestClient, outbox: Outbox) -> None:
    request_id = ask(api)
    code = outbox.code()
    assert confirm(api, request_id, code).status_code == 201
    assert_error(confirm(api, request_id, code), 410, "request_used")


def test_concurrent_confirmations_register_once(
    apps: Callable[..., TestClient], outbox: Outbox, redis_client: Any
) -> None:
    workers = [apps(), apps()]
    request_id = ask(workers[0])
    code = outbox.code()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: confirm(workers[i % 2], request_id, code), range(8)))
    codes = sorted(a.status_code for a in answers)
    # One registers; the others were told it was being confirmed (409) or was used (410).
    assert codes[0] == 201 and set(codes[1:]) <= {409, 410}, codes
    for answer in answers[1:]:
        if answer.status_code == 409:
            assert_error(answer, 409, "request_busy")
    assert_error(confirm(workers[0], request_id, code), 410, "request_used")
    actions = [e["action"] for e in audit_entries(redis_client)]
    assert actions.count("registration.created") == 1


@pytest.mark.parametrize("kind", ["registrations", "deregistrations"])
def test_a_confirmation_whose_write_failed_can_be_sent_again(
    api: TestClient, outbox: Outbox, kind: str
) -> None:
    """The code is spent only once the registration (or its end) is stored: a Redis that
    failed under the write (a reset connection, a restart) answers 503, and the same code
    sent again does what it asked for, not `410 request_used` for a write never made."""
    carrier = account(api, "carrier")
    if kind == "deregistrations":
        assert api.put(f"/v1/registrations/{NUMBER}", headers=carrier).status_code == 201
    request_id = ask(api, f"/v1/{kind}")
    code = outbox.code()
    store = api.app.state.services.registrations  # type: ignore[attr-defined]
    method = "register" if kind == "registrations" else "deregister"
    original = getattr(store, method)

    async def fails_once(*args: Any, **kwargs: Any) -> Any:
        setattr(store, method, original)
        raise RedisConnectionError("Connection reset by peer")

    setattr(store, method, fails_once)
    assert_error(confirm(api, request_id, code, kind), 503, "redis_unavailable")
    assert api.get(f"/v1/registrations/{NUMBER}").json()["registered"] is (
        kind == "deregistrations"
    )
    again = confirm(api, request_id, code, kind)
    assert again.status_code in (200, 201), again.text
    assert api.get(f"/v1/registrations/{NUMBER}").json()["registered"] is (kind == "registrations")
    assert_error(confirm(api, request_id, code, kind), 410, "request_used")


def test_a_confirmation_cut_off_half_way_holds_the_code_only_a_while(
    api: TestClient, outbox: Outbox, redis_client: Any
) -> None:
    """A worker that died after the right code claimed the request (before it wrote and
    ended it) leaves a claim that lapses: meanwhile the code is `request_busy`, not spent,
    and no try is counted; then it registers."""
    request_id = ask(api)
    code = outbox.code()
    claimed = keys.pending_request(request_id)
    now_ms = int(time.time() * 1000)
    redis_client.hset(claimed, "claimed", now_ms + 60_000)  # held by a worker now gone
    for _ in range(6):  # more than the tries a request allows: none is counted
        assert_error(confirm(api, request_id, wrong(code)), 409, "request_busy")
    assert api.get(f"/v1/registrations/{NUMBER}").json()["registered"] is False
    redis_client.hset(claimed, "claimed", now_ms - 1)  # its CLAIM_SECONDS are over
    assert confirm(api, request_id, code).status_code == 201
    assert api.get(f"/v1/registrations/{NUMBER}").json()["registered"] is True


def test_an_expired_request_is_410(apps: Callable[..., TestClient], outbox: Outbox) -> None:
    api = apps(code_ttl_seconds=1)
    answer = api.post("/v1/registrations", json={"number": NUMBER})
    assert answer.json()["expires_in"] == 1
    assert "1 seconds" in outbox.messages()[0]["text"]
    time.sleep(1.2)
    assert_error(confirm(api, answer.json()["request_id"], outbox.code()), 410, "request_expired")
    assert api.get(f"/v1/registrations/{NUMBER}").json()["registered"] is False


def test_an_unknown_request_is_404(api: TestClient, outbox: Outbox) -> None:
    assert_error(confirm(api, secrets.token_urlsafe(16), "123456"), 404, "request_not_found")
    assert_error(confirm(api, "{dnc}", "123456"), 404, "request_not_found")
    assert_error(confirm(api, "x" * 300, "123456"), 404, "request_not_found")
    # A registration's id does not confirm a deregistration, nor the other way round.
    request_id = ask(api)
    error = confirm(api, request_id, outbox.code(), kind="deregistrations")
    assert_error(error, 404, "request_not_found")
    assert confirm(api, request_id, outbox.code()).status_code == 201


# -- deregistration -------------------------------------------------------------------------


def test_a_code_deregisters_the_number(api: TestClient, outbox: Outbox, redis_client: Any) -> None:
    operator, carrier = account(api, "operator"), account(api, "carrier")
    assert api.put(f"/v1/registrations/{NUMBER}", headers=carrier).status_code == 201
    assert lookup(api, operator) == "blocked"

    answer = api.post("/v1/deregistrations", json={"number": "212-555-1234", "region": "US"})
    assert answer.status_code == 202, answer.text
    assert set(answer.json()) == {"request_id", "expires_in"}
    request_id = answer.json()["request_id"]
    assert lookup(api, operator) == "blocked"  # not before the code
    assert_error(
        confirm(api, request_id, wrong(outbox.code()), "deregistrations"), 400, "wrong_code"
    )

    done = confirm(api, request_id, outbox.code(), "deregistrations")
    assert done.status_code == 200, done.text
    assert done.json() == {"number": NUMBER, "registered": False}
    assert lookup(api, operator) == "callable"
    assert api.get(f"/v1/registrations/{NUMBER}").json()["registered"] is False
    assert_error(confirm(api, request_id, outbox.code(), "deregistrations"), 410, "request_used")
    [entry] = [e for e in audit_entries(redis_client) if e["action"] == "registration.removed"]
    assert entry["actor"] == "subscriber" and entry["number"] == NUMBER


def test_deregistering_a_number_not_registered_is_200(api: TestClient, outbox: Outbox) -> None:
    """The code goes out either way: asking must not reveal whether the number is listed."""
    request_id = ask(api, "/v1/deregistrations")
    done = confirm(api, request_id, outbox.code(), "deregistrations")
    assert done.status_code == 200
    assert done.json() == {"number": NUMBER, "registered": False}


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/registrations", "/v1/deregistrations"])
def test_an_invalid_number_is_400_and_sends_nothing(
    api: TestClient, outbox: Outbox, path: str
) -> None:
    for bad in ("12345", "not a number", "+999123456789", "", "9" * 400, "x" * 10_000):
        error = assert_error(api.post(path, json={"number": bad}), 400, "invalid_number")
        assert error["details"]["reason"]
        assert len(error["details"]["input"]) <= 64  # not echoed whole
    assert_error(
        api.post(path, json={"number": "2125551234", "region": "XX"}), 400, "invalid_region"
    )
    assert outbox.messages() == []


def test_bad_bodies_are_4xx_in_the_contract_shape(api: TestClient, outbox: Outbox) -> None:
    post = api.post
    bodies: list[Any] = [None, [], {}, {"number": 12125551234}, {"number": NUMBER, "extra": 1}]
    for body in bodies:
        assert_error(post("/v1/registrations", json=body), 400, "invalid_request")
    raw = post("/v1/registrations", content=b"{nope", headers={"Content-Type": "application/json"})
    assert_error(raw, 400, "invalid_json")  # as a scrub's malformed body is
    # Bytes FastAPI cannot decode at all (not UTF-8): the same code, not a generic one.
    bad = post(
        "/v1/registrations",
        content=b'{"number": "\xff"}',
        headers={"Content-Type": "application/json"},
    )
    assert_error(bad, 400, "invalid_json")
    prefs: dict[str, Any]
    for prefs in ({"channels": ["fax"]}, {"channels": []}, {"allow_categories": [9]}):
        answer = post("/v1/registrations", json={"number": NUMBER, **prefs})
        assert_error(answer, 400, "invalid_preferences")
    for prefs in ({"allow_categories": [True]}, {"allow_categories": ["3"]}):
        answer = post("/v1/registrations", json={"number": NUMBER, **prefs})
        assert_error(answer, 400, "invalid_request")
    dereg = post("/v1/deregistrations", json={"number": NUMBER, "channels": ["sms"]})
    assert_error(dereg, 400, "invalid_request")
    assert outbox.messages() == []

    request_id = ask(api)
    for body in [None, {}, {"code": 123456}, {"code": "1" * 40}]:
        answer = post(f"/v1/registrations/{request_id}/confirm", json=body)
        assert_error(answer, 400, "invalid_request")
    for code in ("12345", "1234567", "abcdef", "١٢٣٤٥٦"):
        assert_error(confirm(api, request_id, code), 400, "invalid_code")
    # Malformed codes cost no tries; a code as typed with a space still works.
    code = outbox.code()
    assert confirm(api, request_id, f" {code[:3]} {code[3:]} ").status_code == 201


def test_a_code_typed_in_full_width_digits_is_the_code(api: TestClient, outbox: Outbox) -> None:
    """A Chinese input method types １２３４５６; the SMS keywords fold width, so do codes."""
    request_id = ask(api)
    code = outbox.code()
    wide = "".join(chr(ord(digit) + 0xFEE0) for digit in code)
    assert confirm(api, request_id, f"{wide[:3]}\u3000{wide[3:]}").status_code == 201


# -- notifiers ------------------------------------------------------------------------------


class Gateway(http.server.ThreadingHTTPServer):
    """A real HTTP server standing in for an SMS gateway: keeps what it is sent."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.received: list[dict[str, Any]] = []
        super().__init__(("127.0.0.1", 0), GatewayHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/sms"


class GatewayHandler(http.server.BaseHTTPRequestHandler):
    server: Gateway
    protocol_version = "HTTP/1.1"  # keeps a connection open for the next message

    def do_POST(self) -> None:  # noqa: N802 - the http.server name
        length = int(self.headers["Content-Length"])
        body = json.loads(self.rfile.read(length))
        self.server.received.append(
            {
                "path": self.path,
                "type": self.headers["Content-Type"],
                "body": body,
                "from": self.client_address,
            }
        )
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def gateway() -> Iterator[Callable[[int], Gateway]]:
    servers: list[Gateway] = []

    def start(status: int) -> Gateway:
        server = Gateway(status)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_the_webhook_notifier_posts_the_code(
    apps: Callable[..., TestClient], gateway: Callable[[int], Gateway]
) -> None:
    sms = gateway(202)
    api = apps(notifier=f"webhook:{sms.url}")
    request_id = ask(api)
    [posted] = sms.received
    assert posted["path"] == "/sms" and posted["type"] == "application/json"
    assert set(posted["body"]) == {"to", "text", "code", "at"}
    assert posted["body"]["to"] == NUMBER
    assert confirm(api, request_id, posted["body"]["code"]).status_code == 201


def test_the_webhook_notifier_keeps_its_connection_to_the_gateway(
    apps: Callable[..., TestClient], gateway: Callable[[int], Gateway]
) -> None:
    sms = gateway(202)
    api = apps(notifier=f"webhook:{sms.url}")
    for _ in range(3):
        ask(api)
    assert len(sms.received) == 3
    assert len({posted["from"] for posted in sms.received}) == 1


def test_a_failing_webhook_is_503_and_voids_the_request(
    apps: Callable[..., TestClient], gateway: Callable[[int], Gateway], redis_client: Any
) -> None:
    broken = gateway(500)
    answer = apps(notifier=f"webhook:{broken.url}").post(
        "/v1/registrations", json={"number": NUMBER}
    )
    assert_error(answer, 503, "notifier_unavailable")
    assert len(broken.received) == 1
    assert "request_id" not in answer.text
    assert pending_keys(redis_client) == []
    # Nobody listening at all: refused at once, the same answer.
    gone = gateway(200)
    url = gone.url
    gone.shutdown()
    gone.server_close()
    answer = apps(notifier=f"webhook:{url}").post("/v1/deregistrations", json={"number": NUMBER})
    assert_error(answer, 503, "notifier_unavailable")
    assert pending_keys(redis_client) == []


def test_a_failing_webhook_is_logged_without_its_credentials(
    apps: Callable[..., TestClient],
    gateway: Callable[[int], Gateway],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Gateways take tokens in the URL's user part or query; the log keeps neither."""
    broken = gateway(500)
    host = broken.url.split("://", 1)[1].split("/", 1)[0]
    url = f"http://gwuser:S3cretT0ken@{host}/sms?api_key=QUERYSECRET"
    with caplog.at_level(logging.WARNING):
        answer = apps(notifier=f"webhook:{url}").post("/v1/registrations", json={"number": NUMBER})
    assert_error(answer, 503, "notifier_unavailable")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"http://{host}/sms answered 500" in logged
    assert "S3cretT0ken" not in logged and "QUERYSECRET" not in logged and "gwuser" not in logged


def test_the_log_notifier_writes_the_code_to_the_log(
    apps: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    api = apps(notifier="log")
    with caplog.at_level(logging.INFO, logger="dnc.notifier"):
        request_id = ask(api)
    [line] = [r.getMessage() for r in caplog.records if r.name == "dnc.notifier"]
    code = line.split()[1]
    assert NUMBER in line and len(code) == 6
    assert confirm(api, request_id, code).status_code == 201


def test_workers_append_whole_lines_to_one_outbox(
    apps: Callable[..., TestClient], outbox: Outbox
) -> None:
    workers = [apps(codes_per_client_per_hour=1000), apps(codes_per_client_per_hour=1000)]
    numbers = [f"+1212555{i:04d}" for i in range(40)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: ask_raw(workers[i % 2], numbers[i]), range(40)))
    assert all(a.status_code == 202 for a in answers)
    assert sorted(m["to"] for m in outbox.messages()) == numbers  # every line parses
    assert os.stat(outbox.path).st_mode & 0o077 == 0  # codes are for the gateway's eyes only


def test_an_unknown_notifier_fails_at_start_up(tmp_path: Path, settings: Settings) -> None:
    for bad in ("sms", "file:", "webhook:", "webhook:ftp://x", "webhook:https://", "LOG"):
        with pytest.raises(ConfigError, match="DNC_NOTIFIER"):
            load_settings({"DNC_NOTIFIER": bad})
        with pytest.raises(ConfigError, match="DNC_NOTIFIER"):
            create_app(settings.with_(notifier=bad))
    with pytest.raises(ConfigError, match="does not exist"):
        build_notifier(f"file:{tmp_path}/missing/outbox.jsonl")
    assert load_settings({"DNC_NOTIFIER": "webhook:https://sms.example/x"}).notifier.startswith(
        "webhook:"
    )


@pytest.mark.single_node
def test_dnc_serve_refuses_an_unknown_notifier(tmp_path: Path) -> None:
    env = {**os.environ, "DNC_NOTIFIER": "carrier-pigeon", "DNC_DATA_DIR": str(tmp_path)}
    env.pop("DNC_REDIS_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "registry.cli", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "DNC_NOTIFIER" in done.stderr and "Traceback" not in done.stderr
    assert not list(tmp_path.iterdir())  # no Redis was started


# -- abuse ----------------------------------------------------------------------------------


def assert_rate_limited(answer: Response, per: str) -> None:
    error = assert_error(answer, 429, "rate_limited")
    retry_after = int(answer.headers["retry-after"])
    assert 1 <= retry_after <= 3600
    assert error["details"]["per"] == per and error["details"]["retry_after"] == retry_after


def test_codes_are_limited_per_number_and_per_address(
    apps: Callable[..., TestClient], outbox: Outbox
) -> None:
    api = apps(codes_per_number_per_hour=2, codes_per_client_per_hour=4)
    ask(api)
    ask(api, "/v1/deregistrations")  # both kinds count against the number
    held = api.post("/v1/registrations", json={"number": NUMBER})
    assert_rate_limited(held, "number")
    # Anyone can use up a number's codes: its owner is told the way that needs none.
    assert "text STOP from that phone" in held.json()["error"]["message"]
    assert held.json()["error"]["details"]["request"] == "registration"
    # Someone leaving is told the keyword that takes the number off, not STOP, which joins.
    leaving = api.post("/v1/deregistrations", json={"number": NUMBER})
    assert_rate_limited(leaving, "number")
    assert leaving.json()["error"]["details"]["request"] == "deregistration"
    assert "text START from that phone" in leaving.json()["error"]["message"]
    assert "STOP" not in leaving.json()["error"]["message"]
    refused = api.post("/v1/registrations", json={"number": OTHER})
    assert_rate_limited(refused, "address")
    assert "STOP" not in refused.json()["error"]["message"]
    assert len(outbox.messages()) == 2  # refused requests send nothing


def test_a_code_that_never_went_out_does_not_use_up_the_numbers_codes(
    apps: Callable[..., TestClient], gateway: Callable[[int], Gateway]
) -> None:
    """Asking while the gateway is down would otherwise leave the number's owner no
    code for the hour once the gateway is back."""
    broken = gateway(500)
    down = apps(
        notifier=f"webhook:{broken.url}", codes_per_number_per_hour=2, codes_per_client_per_hour=9
    )
    for _ in range(4):
        answer = down.post("/v1/registrations", json={"number": NUMBER})
        assert_error(answer, 503, "notifier_unavailable")
    sms = gateway(202)
    up = apps(
        notifier=f"webhook:{sms.url}", codes_per_number_per_hour=2, codes_per_client_per_hour=9
    )
    ask(up)
    ask(up)
    assert len(sms.received) == 2
    # The address still counted every request: four failed, three to NUMBER, two to OTHER.
    assert_rate_limited(up.post("/v1/registrations", json={"number": NUMBER}), "number")
    ask(up, number=OTHER)
    ask(up, number=OTHER)
    assert_rate_limited(up.post("/v1/registrations", json={"number": "+12125550199"}), "address")


def test_writes_from_pages_on_other_sites_are_refused_before_anything_is_sent(
    apps: Callable[..., TestClient], outbox: Outbox, carrier: Headers
) -> None:
    """A page elsewhere could have its visitors' browsers ask for codes to any number, or
    complain about a competitor's caller id: a text/plain fetch needs no CORS preflight."""
    api = apps()
    other_sites = [
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
        {"origin": "https://elsewhere.example"},
        {"origin": "null"},  # a sandboxed frame, a file
    ]
    complaint = {"number": NUMBER, "caller": "+13125550199", "channel": "voice"}
    for headers in other_sites:
        for path, body in (
            ("/v1/registrations", {"number": NUMBER}),
            ("/v1/complaints", complaint),
        ):
            sent = api.post(
                path,
                content=orjson.dumps(body),
                headers={"content-type": "text/plain", **headers},
            )
            assert_error(sent, 403, "cross_site_request")
        keyed = api.put(f"/v1/registrations/{NUMBER}", headers={**carrier, **headers})
        assert_error(keyed, 403, "cross_site_request")
    assert outbox.messages() == []
    # The registry's own page, and clients that are not browsers, are served.
    same = {"origin": "http://testserver", "sec-fetch-site": "same-origin"}
    ask(api)
    assert api.post("/v1/registrations", json={"number": NUMBER}, headers=same).status_code == 202
    assert api.post(
        "/v1/registrations", json={"number": NUMBER}, headers={"origin": "http://testserver"}
    ).is_success
    assert len(outbox.messages()) == 3
    # Reads are no writes: a status check from anywhere is answered as ever.
    status = api.get(f"/v1/registrations/{NUMBER}", headers=other_sites[0])
    assert status.status_code in (200, 404)


def test_a_number_gets_at_most_a_days_codes_whatever_the_hours_allow(
    apps: Callable[..., TestClient], outbox: Outbox, redis_client: Any
) -> None:
    """Guessing a number's codes to deregister it, five tries a request, or flooding its
    owner with texts, goes no faster than the day's cap."""
    api = apps(codes_per_number_per_hour=2, codes_per_number_per_day=3)
    ask(api)
    ask(api)
    redis_client.delete(f"dnc:limit:{{code:+{NUMBER[1:]}}}")  # the hour is over
    ask(api)
    held = api.post("/v1/registrations", json={"number": NUMBER})
    error = assert_error(held, 429, "rate_limited")
    assert error["details"]["per"] == "number" and error["details"]["window_seconds"] == 86400
    assert "a day" in error["message"] and "text STOP" in error["message"]
    assert 3600 < int(held.headers["retry-after"]) <= 86400
    assert len(outbox.messages()) == 3


def test_the_code_limits_are_shared_by_workers(
    apps: Callable[..., TestClient], outbox: Outbox
) -> None:
    one, two = apps(codes_per_number_per_hour=2), apps(codes_per_number_per_hour=2)
    ask(one)
    ask(two)
    assert_rate_limited(one.post("/v1/registrations", json={"number": NUMBER}), "number")
    assert_rate_limited(two.post("/v1/registrations", json={"number": NUMBER}), "number")


def test_the_code_settings_are_read_from_the_environment() -> None:
    defaults = load_settings({})
    assert (defaults.code_ttl_seconds, defaults.codes_per_number_per_hour) == (600, 5)
    assert defaults.codes_per_client_per_hour == 20
    assert defaults.codes_per_number_per_day == 10
    assert load_settings({"DNC_CODE_NUMBER_DAILY_LIMIT": "4"}).codes_per_number_per_day == 4
    env = {"DNC_CODE_TTL": "120", "DNC_CODE_NUMBER_LIMIT": "3", "DNC_CODE_CLIENT_LIMIT": "50"}
    changed = load_settings(env)
    assert changed.code_ttl_seconds == 120
    assert (changed.codes_per_number_per_hour, changed.codes_per_client_per_hour) == (3, 50)


@pytest.mark.single_node
def test_redis_down_is_a_503(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "redis")
    api = ready_client(
        Settings(
            redis_url=server.url,
            admin_key=ADMIN_KEY,
            data_dir=tmp_path / "data",
            notifier=f"file:{tmp_path}/outbox.jsonl",
        )
    )
    try:
        request_id = ask(api)
        server.kill()
        assert_error(
            api.post("/v1/registrations", json={"number": NUMBER}), 503, "redis_unavailable"
        )
        assert_error(confirm(api, request_id, "123456"), 503, "redis_unavailable")
    finally:
        api.__exit__(None, None, None)
        server.kill()


def test_a_code_confirmed_registration_ends_consents_recorded_before_it(
    api: TestClient, outbox: Outbox, redis_client: Any
) -> None:
    """The subscriber's refusal is the later word (MIIT draft art. 16): an operator
    needs a consent given after it."""
    operator = account(api, "operator")
    evidence = {"method": "web_form", "given_at": "2026-11-01T10:00:00Z", "reference": "f-1"}
    body = {"number": NUMBER, "evidence": evidence}
    assert api.post("/v1/consents", json=body, headers=operator).status_code == 201
    assert confirm(api, ask(api), outbox.code()).status_code == 201
    assert lookup(api, operator) == "blocked"
    ended = [e for e in audit_entries(redis_client) if e["action"] == "consent.withdrawn"]
    assert [(e["actor"], e["withdrawn_by"]) for e in ended] == [
        ("subscriber", "opt_out:subscriber:code")
    ]
    # Recorded now, its evidence still says it was given before the registration: refused.
    answer = api.post("/v1/consents", json=body, headers=operator)
    assert_error(answer, 409, "consent_predates_opt_out")
    assert lookup(api, operator) == "blocked"
    # A consent given after the registration counts.
    since = {
        "method": "web_form",
        "reference": "f-2",
        "given_at": datetime.fromtimestamp(time.time() + 1, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    body = {"number": NUMBER, "evidence": since}
    assert api.post("/v1/consents", json=body, headers=operator).status_code == 201
    answer = api.get(f"/v1/numbers/{NUMBER}", headers=operator).json()
    assert (answer["status"], answer["reason"]) == ("callable", "consent")


def test_a_chinese_number_gets_its_code_in_chinese(
    apps: Callable[..., TestClient], outbox: Outbox
) -> None:
    """The owner of a +86 number gets the opt-out replies in Chinese; the code too."""
    api = apps()
    ask(api, number="+86 138 0013 8000")
    ask(api, "/v1/deregistrations", number="+8613800138000")
    ask(api)
    chinese, leaving, english = outbox.messages()
    assert chinese["to"] == "+8613800138000"
    assert f"验证码{chinese['code']}" in chinese["text"] and "加入拒收名单" in chinese["text"]
    assert "10分钟内有效" in chinese["text"] and "如非本人操作" in chinese["text"]
    assert "退出拒收名单" in leaving["text"]
    assert english["text"].startswith(f"{english['code']} is your code to register")

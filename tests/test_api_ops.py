"""Operations endpoints and the API's own edges (CONTRACT section 6, Operations)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from httpx import Response

from registry.store import keys

pytestmark = pytest.mark.cluster  # every test on one redis-server and on a Redis Cluster
Headers = dict[str, str]
# One sample line of the Prometheus text format: name{labels} value
SAMPLE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})? (\S+)$'
)


def assert_error(answer: Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"] and body["error"]["details"] == {}
    return body["error"]  # type: ignore[no-any-return]


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Parse Prometheus text: every non-comment line must be a well-formed sample."""
    found = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample line: {line!r}"
        name, labels, value = match.group(1), match.group(2) or "{}", match.group(3)
        pairs = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"', labels))
        found[(name, pairs)] = float(value)
    return found


def requests_total(text: str, method: str, status: int) -> float:
    return sum(
        value
        for (name, labels), value in samples(text).items()
        if name == "dnc_http_requests_total"
        and ("method", method) in labels
        and ("status", str(status)) in labels
    )


def test_healthz_answers_without_a_key(client: TestClient) -> None:
    answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


def test_readyz_answers_200_once_redis_answers_and_the_filter_is_built(
    client: TestClient,
) -> None:
    answer = client.get("/readyz")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ready"
    assert isinstance(body["registry_version"], int)


def test_metrics_are_prometheus_text_counting_requests(client: TestClient) -> None:
    first = client.get("/metrics")
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("text/plain")
    assert "# TYPE dnc_http_requests_total counter" in first.text
    samples(first.text)  # every line parses
    ok_before = requests_total(first.text, "GET", 200)
    missing_before = requests_total(first.text, "GET", 404)
    for _ in range(3):
        client.get("/healthz")
    client.get("/no/such/path")
    second = client.get("/metrics").text
    # The three /healthz and the first /metrics itself were answered 200.
    assert requests_total(second, "GET", 200) >= ok_before + 4
    assert requests_total(second, "GET", 404) == missing_before + 1


def test_metrics_count_scrubbed_rows(client: TestClient, operator: Headers) -> None:
    client.post("/v1/scrub", json={"numbers": ["+12125551234", "junk"]}, headers=operator)
    found = samples(client.get("/metrics").text)
    by_status = {
        dict(labels)["status"]: value
        for (name, labels), value in found.items()
        if name == "dnc_scrub_rows_total"
    }
    assert by_status.get("callable") == 1 and by_status.get("invalid") == 1


def test_docs_are_served_with_every_file_from_this_server(client: TestClient) -> None:
    answer = client.get("/docs")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "'/openapi.json'" in answer.text
    # Swagger UI's script, style and icon: all from here, none from a CDN.
    files = re.findall(r'(?:src|href)="([^"]+)"', answer.text)
    assert len(files) == 3 and all(f.startswith("/docs/assets/") for f in files), files
    kinds = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
    for path in files:
        asset = client.get(path)
        assert asset.status_code == 200, path
        assert asset.headers["content-type"].startswith(kinds[Path(path).suffix]), path
        assert len(asset.content) > 500, path
    assert b"SwaggerUIBundle" in client.get("/docs/assets/swagger-ui-bundle.js").content
    assert client.get("/docs/assets/index.html").json()["error"]["code"] == "not_found"
    assert client.get("/docs/assets/..%2F..%2F__init__.py").status_code == 404
    # ReDoc's page would load its script from a CDN: not offered.
    assert client.get("/redoc").status_code == 404


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/v1/numbers/{number}", "get"),
        ("/v1/scrub", "post"),
        ("/v1/scrubs/{receipt_id}", "get"),
        ("/v1/changes", "get"),
        ("/v1/export", "get"),
        ("/v1/registrations/{number}", "put"),
        ("/v1/registrations/{number}", "delete"),
        ("/v1/operators", "post"),
        ("/v1/operators/{operator_id}", "delete"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
    ],
)
def test_the_openapi_document_lists_the_endpoints(
    client: TestClient, path: str, method: str
) -> None:
    document = client.get("/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert method in document["paths"][path]


@pytest.mark.parametrize("path", ["/nope", "/v1/nope", "/v1/numbers", "/v2/numbers/+12125551234"])
def test_an_unknown_path_is_a_404_with_the_error_shape(
    client: TestClient, operator: Headers, path: str
) -> None:
    assert_error(client.get(path, headers=operator), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/healthz", "GET, HEAD"),
        ("POST", "/readyz", "GET, HEAD"),
        ("POST", "/v1/numbers/+12125551234", "GET, HEAD"),
        ("GET", "/v1/scrub", "POST"),
        # Three routes share the path: Allow names every method, not the first route's.
        ("POST", "/v1/registrations/+12125551234", "DELETE, GET, HEAD, PUT"),
        ("OPTIONS", "/", "GET, HEAD"),
    ],
)
def test_a_wrong_method_is_a_405_with_the_error_shape(
    client: TestClient, operator: Headers, method: str, path: str, allowed: str
) -> None:
    answer = client.request(method, path, headers=operator)
    assert_error(answer, 405, "method_not_allowed")
    assert answer.headers["allow"] == allowed


def test_the_openapi_document_describes_answers_errors_and_keys(client: TestClient) -> None:
    """Every route's answer has its contract shape, every error the error shape, no 422 (the
    API never sends one), and the routes that take a key say so."""
    from registry.api.openapi import ANSWERS

    document = client.get("/openapi.json").json()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    # Answers a review found sent but not documented.
    paths = document["paths"]
    assert "409" in paths["/v1/consents"]["post"]["responses"]  # consent_predates_opt_out
    assert "404" in paths["/v1/operators/{operator_id}/key"]["post"]["responses"]
    error = document["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["required"] == ["code", "message", "details"]
    described = set()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            described.add((method, path))
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            success = [s for s in responses if s.startswith("2")]
            assert success, (method, path)
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (method, path)
                elif "application/json" in response["content"]:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema.get("type") == "object", (method, path)
            keyed = path.startswith(("/v1/numbers", "/v1/scrub", "/v1/changes", "/v1/export"))
            keyed = keyed or path.startswith(("/v1/operators", "/v1/stats", "/v1/consents"))
            if keyed:
                assert operation["security"] == [{"bearer": []}], (method, path)
                assert "401" in responses and "403" in responses, (method, path)
            public = ("/v1/registrations", "/v1/complaints/{complaint_id}/status", "/healthz")
            if path in public or (method, path) == ("post", "/v1/complaints"):
                assert "security" not in operation, (method, path)
            if (method, path) == ("get", "/v1/complaints"):  # the administrators' queue
                assert operation["security"] == [{"bearer": []}], (method, path)
    # A new route must say what it answers.
    assert described == set(ANSWERS)
    look_up = document["paths"]["/v1/numbers/{number}"]["get"]["responses"]["200"]
    answer = look_up["content"]["application/json"]["schema"]
    assert answer["properties"]["status"]["enum"] == ["callable", "blocked", "invalid"]
    scrub = document["paths"]["/v1/scrub"]["post"]["responses"]["200"]["content"]
    assert set(scrub) == {"application/json", "text/csv"}
    put = document["paths"]["/v1/registrations/{number}"]["put"]["responses"]
    assert {"200", "201"} <= set(put)
    assert client.get("/openapi.json").json() == document  # built once, the same each time


def test_one_scrape_shows_every_worker_and_drops_stopped_ones(
    client: TestClient, spare: Callable[..., TestClient], redis_client: Any
) -> None:
    """A scrape reaches one worker of the port; it answers for all of them, each series
    labelled with its worker, from what the others publish in Redis every second."""
    other = spare()
    other.app.state.services.metrics.worker = "other-worker"  # in-process: the same pid
    for _ in range(3):
        assert other.get("/healthz").status_code == 200
    deadline = time.monotonic() + 10
    while True:
        found = samples(client.get("/metrics").text)
        theirs = sum(
            value
            for (name, labels), value in found.items()
            if name == "dnc_http_requests_total"
            and ("worker", "other-worker") in labels
            and ("status", "200") in labels
        )
        if theirs >= 3:
            break
        assert time.monotonic() < deadline, "the other worker's requests never showed"
        time.sleep(0.2)
    ours = {dict(labels)["worker"] for (name, labels), _ in found.items()}
    assert ours == {str(os.getpid()), "other-worker"}
    # A worker that stopped publishing ten seconds ago is dropped, and its record with it.
    old = {"at": time.time() - 60, "worker": "gone", "host": "h", "samples": []}
    redis_client.hset(keys.METRICS, "h:gone", orjson.dumps(old))
    text = client.get("/metrics").text
    assert 'worker="gone"' not in text
    assert redis_client.hget(keys.METRICS, "h:gone") is None

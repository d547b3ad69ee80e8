"""A first pass through the API: register, look up, scrub, deregister."""

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.cluster  # on one redis-server and on a Redis Cluster


def test_registration_blocks_lookup_and_scrub(
    client: TestClient, carrier: dict[str, str], operator: dict[str, str]
) -> None:
    assert client.put("/v1/registrations/+12125551234", headers=carrier).status_code == 201
    answer = client.get("/v1/numbers/%2B12125551234", headers=operator).json()
    assert answer == {"number": "+12125551234", "status": "blocked", "reason": "registered"}
    scrub = client.post(
        "/v1/scrub", json={"numbers": ["(212) 555-1234", "+12125550000"]}, headers=operator
    ).json()
    assert scrub["blocked"] == ["+12125551234"]
    assert scrub["counts"] == {"total": 2, "callable": 1, "blocked": 1, "invalid": 0}

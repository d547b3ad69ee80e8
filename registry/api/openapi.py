"""/openapi.json as the contract describes the API, not as FastAPI guesses it.

FastAPI cannot see through the routes' own response class: it typed every answer
`string`, listed a `422` that the API never sends (bad input is a `400` in the
contract's error shape), and knew nothing of keys. This fills in, from CONTRACT
section 6: each answer's shape, the error shape under every 4xx and 503 the route
can give, and the Bearer key of every route outside the subscribers' and
operations'. A test holds the document to the routes (tests/test_api_ops.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

Schema = dict[str, Any]

ERROR: Schema = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "description": "snake_case, e.g. invalid_number"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}
_WHY = {
    "400": "Bad input: the error's code says what (invalid_number, invalid_json, ...)",
    "401": "No key, or a key that is not known (WWW-Authenticate: Bearer)",
    "403": "The key's role may not call this, or the number is outside its prefixes",
    "404": "No such thing",
    "409": "In conflict with what is stored",
    "410": "Over: expired, void or already used",
    "413": "The body is over its limit",
    "415": "The body is not in a type this route reads",
    "429": "Too many requests; Retry-After says when to try again",
    "503": "Redis cannot be reached, refuses writes, or (DNC_WAIT_REPLICAS) its replicas did "
    "not acknowledge a write in time: never an answer from a guess",
}
KEYED_TAGS = ("operators", "carriers", "administrators")
# Routes that answer 404 for what their path names.
NOT_FOUND = {
    ("delete", "/v1/operators/{operator_id}"),
    ("delete", "/v1/registrations/{number}"),
    ("get", "/v1/scrubs/{receipt_id}"),
    ("get", "/v1/consents/{number}"),
    ("delete", "/v1/consents/{number}"),
    ("get", "/v1/operators/{operator_id}"),
    ("patch", "/v1/operators/{operator_id}"),
    ("post", "/v1/operators/{operator_id}/key"),
    ("get", "/v1/operators/{operator_id}/consents/{consent_id}"),
    ("get", "/v1/complaints/{complaint_id}"),
    ("get", "/v1/complaints/{complaint_id}/status"),
    ("post", "/v1/complaints/{complaint_id}/resolution"),
}


def _obj(*required: str, **properties: Schema) -> Schema:
    return {"type": "object", "required": list(required), "properties": properties}


_S: Schema = {"type": "string"}
_TIME: Schema = {"type": "string", "format": "date-time"}
_E164: Schema = {"type": "string", "pattern": r"^\+[1-9][0-9]{1,18}$", "example": "+12125551234"}
_CHANNELS: Schema = {"type": "array", "items": {"type": "string", "enum": ["voice", "sms"]}}
_CATEGORIES: Schema = {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 8}}
_COUNTS = _obj(
    "total", "callable", "blocked", "invalid", **{k: {"type": "integer"} for k in
    ("total", "callable", "blocked", "invalid")}
)  # fmt: skip
_REGISTRATION = _obj(
    "number", "registered_at", "effective_at", "channels", "allow_categories",
    number=_E164, registered_at=_TIME, effective_at=_TIME, channels=_CHANNELS,
    allow_categories=_CATEGORIES,
)  # fmt: skip
_REQUEST = _obj("request_id", "expires_in", request_id=_S, expires_in={"type": "integer"})
_REMOVED = _obj("number", "registered", number=_E164, registered={"type": "boolean"})
_RECEIPT = _obj(
    "receipt_id", "operator", "created_at", "counts", "sha256", "registry_version",
    receipt_id=_S, operator=_S, created_at=_TIME, counts=_COUNTS,
    sha256={"type": "string", "pattern": "^[0-9a-f]{64}$"}, registry_version={"type": "integer"},
    # With ?detail=true only.
    asked=_obj("format", "channels", "category", "region", "column", "only",
               format=_S, channels=_CHANNELS, category={"type": ["integer", "null"]},
               region=_S, column={"type": ["string", "null"]}, only={"type": ["string", "null"]}),
    answer_sha256={"type": "string", "pattern": "^[0-9a-f]{64}$"},
)  # fmt: skip

# The 2xx answer of each route: (status, media type, schema).
ANSWERS: dict[tuple[str, str], tuple[str, str, Schema]] = {
    ("get", "/healthz"): ("200", "application/json", {"type": "object"}),
    ("get", "/readyz"): ("200", "application/json", {"type": "object"}),
    ("get", "/metrics"): ("200", "text/plain", _S),
    ("post", "/v1/operators"): (
        "201", "application/json",
        _obj("operator_id", "api_key", operator_id=_S, api_key=_S, role=_S),
    ),
    ("delete", "/v1/operators/{operator_id}"): ("200", "application/json", {"type": "object"}),
    ("post", "/v1/operators/{operator_id}/key"): (
        "200", "application/json",
        _obj("operator_id", "api_key", operator_id=_S, api_key=_S),
    ),
    ("get", "/v1/operators"): (
        "200", "application/json",
        _obj("operators", operators={"type": "array", "items": {"type": "object"}}),
    ),
    ("get", "/v1/operators/{operator_id}"): ("200", "application/json", {"type": "object"}),
    ("patch", "/v1/operators/{operator_id}"): ("200", "application/json", {"type": "object"}),
    ("get", "/v1/operators/{operator_id}/consents/{consent_id}"): (
        "200", "application/json", {"type": "object"},
    ),
    ("get", "/v1/numbers/{number}/consents"): (
        "200", "application/json",
        _obj("number", "consents", number=_E164,
             consents={"type": "array", "items": {"type": "object"}}),
    ),
    ("get", "/v1/scrubs"): (
        "200", "application/json",
        _obj("receipts", "next", "more", receipts={"type": "array", "items": _RECEIPT},
             next={"type": ["string", "null"]}, more={"type": "boolean"}),
    ),
    ("get", "/v1/complaints/{complaint_id}"): ("200", "application/json", {"type": "object"}),
    ("get", "/v1/caller-complaints"): (
        "200", "application/json",
        _obj("complaints", "next", "more",
             complaints={"type": "array", "items": {"type": "object"}},
             next={"type": ["string", "null"]}, more={"type": "boolean"}),
    ),
    ("get", "/v1/complaints"): (
        "200", "application/json",
        _obj("complaints", "open", "next",
             complaints={"type": "array", "items": {"type": "object"}},
             open={"type": "integer"}, next={"type": ["string", "null"]}),
    ),
    ("post", "/v1/complaints/{complaint_id}/resolution"): (
        "200", "application/json", {"type": "object"},
    ),
    ("get", "/v1/complaints/{complaint_id}/status"): (
        "200", "application/json",
        _obj("complaint_id", "status", "received_at", complaint_id=_S,
             status={"type": "string", "enum": ["open", "resolved"]}, received_at=_TIME,
             resolved_at={"type": ["string", "null"]}, outcome={"type": ["string", "null"]},
             reply={"type": ["string", "null"]}),
    ),
    ("get", "/v1/stats"): ("200", "application/json", {"type": "object"}),
    ("get", "/v1/audit"): ("200", "application/json", {"type": "object"}),
    ("get", "/v1/reports/callers"): ("200", "application/json", {"type": "object"}),
    ("put", "/v1/registrations/{number}"): ("201", "application/json", _REGISTRATION),
    ("delete", "/v1/registrations/{number}"): ("200", "application/json", _REMOVED),
    ("get", "/v1/registrations/{number}"): (
        "200", "application/json",
        _obj("number", "registered", number=_E164, registered={"type": "boolean"},
             registered_at=_TIME, effective_at=_TIME),
    ),
    ("post", "/v1/sms/inbound"): (
        "200", "application/json",
        _obj("action", "reply", reply=_S, action={"type": "string", "enum": [
            "registered", "preferences_updated", "deregistered", "help", "unknown"]}),
    ),
    ("post", "/v1/registrations"): ("202", "application/json", _REQUEST),
    ("post", "/v1/registrations/{request_id}/confirm"): ("201", "application/json", _REGISTRATION),
    ("post", "/v1/deregistrations"): ("202", "application/json", _REQUEST),
    ("post", "/v1/deregistrations/{request_id}/confirm"): ("200", "application/json", _REMOVED),
    ("post", "/v1/complaints"): (
        "201", "application/json",
        _obj("complaint_id", "registered_at_time", "within_grace", complaint_id=_S,
             registered_at_time={"type": "boolean"}, within_grace={"type": "boolean"}),
    ),
    ("get", "/v1/numbers/{number}"): (
        "200", "application/json",
        _obj("number", "status", "reason",
             number={**_E164, "type": ["string", "null"], "description": "null when invalid"},
             status={"type": "string", "enum": ["callable", "blocked", "invalid"]},
             reason={"type": "string", "example": "not_registered"}),
    ),
    ("post", "/v1/scrub"): (
        "200", "application/json",
        _obj("receipt_id", "counts", "blocked", "invalid", receipt_id=_S, counts=_COUNTS,
             blocked={"type": "array", "items": _E164},
             invalid={"type": "array", "items": _obj(
                 "index", "input", "reason", index={"type": "integer"}, input=_S, reason=_S)}),
    ),
    ("get", "/v1/scrubs/{receipt_id}"): ("200", "application/json", _RECEIPT),
    ("get", "/v1/changes"): (
        "200", "application/json",
        _obj("changes", "next", next=_S, changes={"type": "array", "items": _obj(
            "number", "op", "at", number=_E164, at=_TIME,
            op={"type": "string", "enum": ["add", "remove"]})}),
    ),
    ("get", "/v1/export"): ("200", "text/plain", {"type": "string", "description": "E.164s"}),
    ("post", "/v1/consents"): (
        "201", "application/json",
        _obj("consent_id", "number", "recorded_at", consent_id=_S, number=_E164,
             recorded_at=_TIME),
    ),
    ("get", "/v1/consents/{number}"): ("200", "application/json", {"type": "object"}),
    ("delete", "/v1/consents/{number}"): ("200", "application/json", {"type": "object"}),
}  # fmt: skip


def _errors(method: str, path: str, tags: list[str]) -> list[str]:
    """The error statuses a route can answer."""
    if path == "/readyz":
        return ["503"]
    found = ["400", "503"]
    if any(tag in KEYED_TAGS for tag in tags):
        found += ["401", "403", "429"]
    if (method, path) in NOT_FOUND:
        found.append("404")
    if method in ("post", "put"):
        found += ["413", "415"]
    if path.endswith("/confirm"):
        found += ["404", "410"]
    if path == "/v1/registrations/{number}" and method == "get" or path == "/v1/complaints":
        found.append("429")  # per client address
    if path in ("/v1/registrations", "/v1/deregistrations"):
        found.append("429")
    if path == "/v1/changes":
        found.append("410")  # a cursor older than the retention
    if (method, path) == ("post", "/v1/complaints/{complaint_id}/resolution"):
        found.append("409")  # resolved already
    if (method, path) == ("post", "/v1/operators"):
        found.append("409")  # a caller another active account declared
    if path == "/v1/operators/{operator_id}" and method in ("patch", "delete"):
        found.append("409")  # a caller taken (patch), another change under way
    if path == "/v1/operators/{operator_id}/key":
        found.append("409")  # another change under way
    if (method, path) == ("post", "/v1/consents"):
        found.append("409")  # evidence given before an opt-out that ended the consent
    return sorted(set(found))


def document(app: FastAPI) -> Schema:
    """The OpenAPI document, built once."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["Error"] = ERROR
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer KEY"}
    }
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            responses: dict[str, Any] = {}
            answer = ANSWERS.get((method, path))
            if answer is not None:
                status, media, schema = answer
                old = operation.get("responses", {}).get(status, {})
                content = {media: {"schema": schema}}
                if (method, path) == ("post", "/v1/scrub"):
                    content["text/csv"] = {"schema": {"type": "string"}}
                responses[status] = {
                    "description": old.get("description") or "Success",
                    "content": content,
                }
                if (method, path) == ("put", "/v1/registrations/{number}"):
                    responses["200"] = {"description": "Preferences updated", "content": content}
            else:
                responses.update(
                    {k: v for k, v in operation.get("responses", {}).items() if k != "422"}
                )
            tags = operation.get("tags", [])
            if path not in ("/healthz", "/metrics"):
                for status in _errors(method, path, tags):
                    responses[status] = {
                        "description": _WHY[status],
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                        },
                    }
            operation["responses"] = dict(sorted(responses.items()))
            if any(tag in KEYED_TAGS for tag in tags):
                operation["security"] = [{"bearer": []}]
    app.openapi_schema = doc
    return doc


def install(app: FastAPI) -> None:
    app.openapi = lambda: document(app)  # type: ignore[method-assign]

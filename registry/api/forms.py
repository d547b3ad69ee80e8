"""The subscriber page's forms without JavaScript: each answered with a page of its own.

With JavaScript the page (registry/web/subscriber.js) calls the JSON API and shows
the answer in place. Without it, a browser posts the same form, URL-encoded, to
the form's `action` here. Each form is turned into the JSON body its API endpoint
takes and sent through the whole app as a request of its own, from the same
client (address, forwarded headers), so its checks, rate limits and errors are
the API's, not a second copy of them. The answer is drawn as HTML: a code to type
in, a registration, a status, or the API's error message.

Only forms from this origin are taken: a post whose `Origin` (or `Sec-Fetch-Site`)
names another site is refused, so a page elsewhere cannot spend its visitors'
addresses on code requests or complaints.
"""

from __future__ import annotations

import html
import re
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, quote

import orjson
from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response
from starlette.types import Message

from registry.api.errors import ApiError
from registry.api.pages import SECURITY_HEADERS, cross_site, page_text
from registry.api.scrub import read_body

# Every route here; each sends its API requests through the whole app, as the client.
PREFIX = "/forms/"
router = APIRouter()
FORM_BYTES = 16 * 1024
# The scope keys a request of its own keeps: what the server set, not what routing added.
_SCOPE_KEYS = ("type", "asgi", "http_version", "scheme", "server", "client", "root_path", "state")
_TEMPLATE = page_text("answer.html")
# A time with seconds (and maybe their fraction) but no zone: the form's own field names it.
_LOCAL_TIME = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(?:\.\d+)?")
# "... with POST /v1/registrations": advice for API clients, not for a page's reader.
_API_PATH = re.compile(r" (?:with|at|from) (?:GET|POST|PUT|DELETE) /\S+")
MAX_FIELDS = 64


class _Answer:
    """What the API answered a form's request: status, JSON body and Retry-After."""

    def __init__(self, status: int, data: dict[str, Any], retry_after: str | None = None) -> None:
        self.status = status
        self.data = data
        self.retry_after = retry_after

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def message(self) -> str:
        """The API's message, without the API paths it names for API clients."""
        error = self.data.get("error") or {}
        text = str(error.get("message") or "the registry could not answer; try again later")
        return _API_PATH.sub("", text)

    @property
    def code(self) -> str:
        return str((self.data.get("error") or {}).get("code", ""))


class FormError(Exception):
    """A form that cannot be read at all: answered with a page (`install`), not JSON."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def install(app: FastAPI) -> None:
    async def unreadable(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, FormError)
        return _page("That did not work", [_p(_sentence(exc.message), "error")], exc.status, "/")

    app.add_exception_handler(FormError, unreadable)


async def _fields(request: Request) -> list[tuple[str, str]]:
    try:
        raw = await read_body(request, FORM_BYTES, "a form of the subscriber page is a few fields")
    except ApiError as exc:
        raise FormError(exc.status, exc.message) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    try:
        return parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        raise FormError(
            400, f"the form has more than {MAX_FIELDS} fields; use the registry's own page"
        ) from None


def _one(fields: list[tuple[str, str]], name: str) -> str:
    values = [value for key, value in fields if key == name]
    return values[-1].strip() if values else ""


def _many(fields: list[tuple[str, str]], name: str) -> list[str]:
    return [value.strip() for key, value in fields if key == name and value.strip()]


def _codes(values: list[str]) -> list[Any]:
    """Category codes as the JSON API takes them (which refuses codes it does not know);
    anything else is passed on to refuse."""
    return [int(v) if v.isascii() and v.isdigit() and len(v) < 10 else v for v in values]


async def _call(
    request: Request, method: str, path: str, body: dict[str, Any] | None = None, query: str = ""
) -> _Answer:
    """`method path` through the whole app, as the client that posted the form."""
    content = b"" if body is None else orjson.dumps(body)
    headers = [
        (name, value)
        for name, value in request.scope["headers"]
        if name not in (b"content-type", b"content-length", b"accept", b"transfer-encoding")
    ]
    headers += [(b"accept", b"application/json"), (b"content-length", str(len(content)).encode())]
    if body is not None:
        headers.append((b"content-type", b"application/json"))
    scope = {key: request.scope[key] for key in _SCOPE_KEYS if key in request.scope}
    scope.update(
        method=method,
        path=path,
        raw_path=quote(path, safe="/+").encode(),
        query_string=query.encode(),
        headers=headers,
    )
    sent = False
    status = 500
    retry_after: str | None = None
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": content, "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status, retry_after
        if message["type"] == "http.response.start":
            status = message["status"]
            for name, value in message.get("headers", []):
                if name.lower() == b"retry-after":
                    retry_after = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await request.app(scope, receive, send)
    try:
        data = orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError:
        data = {}
    return _Answer(status, data if isinstance(data, dict) else {}, retry_after)


def _page(
    title: str, parts: list[str], status: int, back: str, retry_after: str | None = None
) -> Response:
    body = (
        _TEMPLATE.replace("{{title}}", html.escape(title))
        .replace("{{content}}", "\n".join(parts))
        .replace("{{back}}", html.escape(back))
    )
    # An answer may show a number's status or a code step: kept out of the browser's
    # cache, so Back on a shared computer does not show it again.
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return Response(body.encode(), status, media_type="text/html; charset=utf-8",
                    headers=headers)  # fmt: skip


def not_found_page() -> Response:
    """The 404 a browser gets for an address that is no page (`/register`, a mistyped
    link): a page with the way back, where an API client gets the contract's JSON."""
    parts = [
        _p("There is no page at this address."),
        '<p>Subscribers: <a href="/">register a number, check it, or report a call</a>. '
        'Operators: <a href="/portal">the operator portal</a>.</p>',
    ]
    return _page("Page not found", parts, 404, "/")


def _p(text: str, css: str = "") -> str:
    kind = f' class="{css}"' if css else ""
    return f"<p{kind}>{html.escape(text)}</p>"


def _error(answer: _Answer, back: str, title: str = "That did not work") -> Response:
    parts = [_p(_plain(answer), "error")]
    return _page(title, parts, answer.status, back, answer.retry_after)


# Why a number is invalid, in a subscriber's words (as registry/web/api.js has them).
_INVALID = {
    "empty": "it is empty",
    "not_a_number": "it does not look like a phone number",
    "invalid_country_code": "the country code is not one we know",
    "too_short": "it has too few digits",
    "too_long": "it has too many digits",
    "invalid_length": "it has the wrong number of digits",
    "invalid_for_region": "no phone number like it exists in the region it was read in",
}


def _plain(answer: _Answer) -> str:
    """The API's error in words for the person at the form, where the API's own words are
    for programmers (a reason code, a field name, seconds to wait); else its message."""
    error = answer.data.get("error") or {}
    found = error.get("details")
    details: dict[str, Any] = found if isinstance(found, dict) else {}
    if answer.code == "invalid_number":
        why = _INVALID.get(str(details.get("reason")), "it is not a number we can read")
        return (
            f"That phone number is not valid: {why}. Enter it with its country code (such as "
            "+1 212 555 1234), or choose the region it belongs to."
        )
    if answer.code == "rate_limited":
        wait = _wait_words(details.get("retry_after") or answer.retry_after)
        if details.get("per") == "number":
            return (
                "Too many codes have been asked for this number (not necessarily by you). "
                f"Please {wait} and try again, or text STOP from that phone to your "
                "carrier's opt-out number, which registers it with no code."
            )
        return f"Too many requests from your connection. Please {wait} and try again."
    if answer.code == "invalid_region":
        return "The region must be a two-letter country code, such as US, IN or CN."
    return _sentence(answer.message.replace("occurred_at", "the time of the call"))


def _wait_words(raw: object) -> str:
    try:
        seconds = int(str(raw))
    except ValueError:
        return "wait a little"
    if seconds < 120:
        return f"wait {seconds} second{'s' if seconds != 1 else ''}"
    if seconds < 7200:
        return f"wait {-(-seconds // 60)} minutes"
    return f"wait about {-(-seconds // 3600)} hours"


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


def _date(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).strftime("%d %B %Y")
    except ValueError:
        return iso


def _code_form(kind: str, request_id: str, number: str, verb: str) -> str:
    action = f"/forms/{kind}s/{quote(request_id, safe='')}/confirm"
    return (
        f'<form method="post" action="{html.escape(action)}">\n'
        f'  <input type="hidden" name="number" value="{html.escape(number)}">\n'
        '  <div class="field">\n'
        '    <label for="code">Six-digit code</label>\n'
        '    <input id="code" name="code" type="text" inputmode="numeric"'
        ' autocomplete="one-time-code" maxlength="9" size="8" required autofocus>\n'
        "  </div>\n"
        f'  <button type="submit">{html.escape(verb)}</button>\n'
        "</form>"
    )


def _refused() -> Response:
    return _page(
        "Form refused",
        [_p("This form was sent from another site; use the registry's own page.", "error")],
        403,
        "/",
    )


async def _code_sent(request: Request, kind: str, body: dict[str, Any], verb: str) -> Response:
    back = "/#register" if kind == "registration" else "/#deregister"
    answer = await _call(request, "POST", f"/v1/{kind}s", body)
    if not answer.ok:
        return _error(answer, back)
    request_id = str(answer.data.get("request_id", ""))
    minutes = max(1, int(answer.data.get("expires_in", 600)) // 60)
    parts = [
        _p(f"We sent a six-digit code to {body['number']}. It works for {minutes} minutes."),
        _code_form(kind, request_id, str(body["number"]), verb),
    ]
    return _page("Enter the code we sent", parts, answer.status, back)


# Not `/forms/{rest:path}`: that takes `/forms/` too, which the trailing-slash redirect
# and the look-up route's slash trimming would then bounce between for ever.
@router.get("/forms/{first}", include_in_schema=False)
@router.get("/forms/{first}/{rest:path}", include_in_schema=False)
async def reopened() -> Response:
    """An answer reopened from the history or a bookmark (a GET of a form's address): the
    page it came from, not a JSON 405. The answer itself is not kept to show again."""
    return Response(status_code=303, headers={**SECURITY_HEADERS, "Location": "/"})


@router.post("/forms/registrations", include_in_schema=False)
async def register(request: Request) -> Response:
    if cross_site(request.headers):
        return _refused()
    fields = await _fields(request)
    body: dict[str, Any] = {
        "number": _one(fields, "number"),
        "channels": _many(fields, "channels"),
        "allow_categories": _codes(_many(fields, "allow_categories")),
    }
    if region := _one(fields, "region").upper():
        body["region"] = region
    return await _code_sent(request, "registration", body, "Confirm registration")


@router.post("/forms/deregistrations", include_in_schema=False)
async def deregister(request: Request) -> Response:
    if cross_site(request.headers):
        return _refused()
    fields = await _fields(request)
    body: dict[str, Any] = {"number": _one(fields, "number")}
    if region := _one(fields, "region").upper():
        body["region"] = region
    return await _code_sent(request, "deregistration", body, "Confirm removal")


@router.post("/forms/{kind}/{request_id}/confirm", include_in_schema=False)
async def confirm(kind: str, request_id: str, request: Request) -> Response:
    if cross_site(request.headers):
        return _refused()
    if kind not in ("registrations", "deregistrations"):
        return _page("Page not found", [_p("There is no such form.", "error")], 404, "/")
    fields = await _fields(request)
    number = _one(fields, "number")
    back = "/#register" if kind == "registrations" else "/#deregister"
    path = f"/v1/{kind}/{request_id}/confirm"
    answer = await _call(request, "POST", path, {"code": _one(fields, "code")})
    if answer.code in ("wrong_code", "invalid_code"):
        verb = "Confirm registration" if kind == "registrations" else "Confirm removal"
        parts = [
            _p(_sentence(answer.message), "error"),
            _code_form(kind[:-1], request_id, number, verb),
        ]
        return _page("Enter the code we sent", parts, answer.status, back)
    if not answer.ok:
        return _error(answer, back)
    registered = str(answer.data.get("number", number))
    if kind == "deregistrations":
        parts = [
            # True whether or not it was registered: the API answers both alike.
            _p(f"{registered} is not on the register now.", "outcome"),
            _p("Telemarketers may call it again once their lists are updated."),
        ]
        return _page("Number removed", parts, answer.status, back)
    parts = [
        _p(f"{registered} is registered.", "outcome"),
        _p(
            "Telemarketers who check the registry stop calling it now; from "
            f"{_date(str(answer.data.get('effective_at', '')))} every telemarketer must."
        ),
    ]
    return _page("Number registered", parts, answer.status, back)


@router.post("/forms/status", include_in_schema=False)
async def status(request: Request) -> Response:
    """The status check as a POST, so the number stays out of the address bar and logs."""
    if cross_site(request.headers):
        return _refused()
    fields = await _fields(request)
    number = _one(fields, "number")
    region = _one(fields, "region").upper()
    query = f"region={quote(region)}" if region else ""
    if not number or "/" in number:
        answer = _Answer(400, {"error": {"message": "enter a phone number"}})
    else:
        answer = await _call(request, "GET", f"/v1/registrations/{number}", query=query)
    if not answer.ok:
        return _error(answer, "/#status")
    shown = str(answer.data.get("number", number))
    if not answer.data.get("registered"):
        return _page("Not registered", [_p(f"{shown} is not registered.")], 200, "/#status")
    parts = [_p(f"{shown} is registered.", "outcome")]
    if "registered_at" in answer.data:
        parts.append(
            _p(
                f"Registered on {_date(str(answer.data['registered_at']))}; every telemarketer "
                f"must leave it alone from {_date(str(answer.data.get('effective_at', '')))}."
            )
        )
    return _page("Registered", parts, 200, "/#status")


@router.post("/forms/complaints", include_in_schema=False)
async def complain(request: Request) -> Response:
    if cross_site(request.headers):
        return _refused()
    fields = await _fields(request)
    occurred = _one(fields, "occurred_at")
    if len(occurred) == 16:  # a datetime-local field: minutes, no zone; the form gives it
        occurred += ":00"
    # The page always sends both (a checked radio, a select): a form posted without them
    # is asked, not guessed for (a call taken for a text, a time hours off).
    missing = None
    if not _one(fields, "channel"):
        missing = "Say whether it was a call or a text message."
    elif _LOCAL_TIME.fullmatch(occurred) and not _one(fields, "utc_offset"):
        missing = "Say which time zone the time is in."
    if missing:
        return _page("That did not work", [_p(missing, "error")], 400, "/#complain")
    if _LOCAL_TIME.fullmatch(occurred):  # no zone: the form's own field names it
        occurred += _one(fields, "utc_offset")
    body: dict[str, Any] = {
        "number": _one(fields, "number"),
        "caller": _one(fields, "caller"),
        "occurred_at": occurred,
        "channel": _one(fields, "channel"),
    }
    if category := _one(fields, "category"):
        body["category"] = _codes([category])[0]
    if region := _one(fields, "region").upper():
        body["region"] = region
    if text := _one(fields, "text"):
        body["text"] = text
    answer = await _call(request, "POST", "/v1/complaints", body)
    if not answer.ok:
        return _error(answer, "/#complain")
    reference = str(answer.data.get("complaint_id", ""))
    parts = [
        _p("Thank you: your report was recorded.", "outcome"),
        _p(f"Its reference is {reference}."),
        f'<p>Keep it to <a href="/complaints/{quote(reference, safe="")}">follow the report'
        "</a>: what was done about it, once it is dealt with.</p>",
    ]
    if answer.data.get("registered_at_time") in (False, None):
        parts.append(
            _p("Your number was not registered when this happened, so the caller broke no rule.")
        )
    elif answer.data.get("within_grace"):
        parts.append(
            _p(
                "This happened within the grace period after your registration, when "
                "telemarketers may not yet have updated their lists. We keep the report all "
                "the same."
            )
        )
    return _page("Report recorded", parts, answer.status, "/#complain")


# How an administrator closed a report (registry.complaints.OUTCOMES), in the reporter's words.
_OUTCOMES = {
    "sender_warned": "The caller was warned.",
    "sender_suspended": "The caller's service was suspended.",
    "no_breach_found": (
        "We found no breach of the rules: for instance, the number was not registered yet "
        "when it happened, or the caller had your consent."
    ),
    "referred_to_regulator": "The report was passed on to the regulator.",
    "insufficient_detail": "The report did not give enough detail for us to act on.",
}


@router.get("/complaints", include_in_schema=False)
async def follow_report(request: Request, reference: str = "") -> Response:
    """The subscriber page's "Follow a report" form: to the report's own page."""
    reference = reference.strip()
    if not reference:
        parts = [_p("Enter the reference the report's page gave (it starts with cmp_).", "error")]
        return _page("That did not work", parts, 400, "/#complain")
    return await complaint_status(reference, request)


@router.get("/complaints/{complaint_id}", include_in_schema=False)
async def complaint_status(complaint_id: str, request: Request) -> Response:
    """A report's handling, for whoever holds its reference: GET /v1/complaints/{id}/status."""
    answer = await _call(request, "GET", f"/v1/complaints/{complaint_id}/status")
    if answer.code == "complaint_not_found":
        parts = [
            _p(
                "We have no report with that reference. Check it against the page that gave "
                "it; reports are kept for a limited time only.",
                "error",
            )
        ]
        return _page("Report not found", parts, 404, "/#complain")
    if not answer.ok:
        return _error(answer, "/#complain")
    data = answer.data
    parts = [_p(f"Report {complaint_id}, received on {_date(str(data.get('received_at')))}.")]
    if data.get("status") == "resolved":
        parts.append(_p(f"Dealt with on {_date(str(data.get('resolved_at')))}.", "outcome"))
        parts.append(_p(_OUTCOMES.get(str(data.get("outcome")), "It was dealt with.")))
        if data.get("reply"):
            parts.append(_p(str(data["reply"])))
    else:
        parts.append(_p("It is being looked at. Come back to this page to see the outcome."))
    return _page("Your report", parts, 200, "/#complain")

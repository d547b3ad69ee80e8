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
from starlette.responses import RedirectResponse, Response
from starlette.types import Message

from registry.api import language
from registry.api.errors import ApiError
from registry.api.form_words import BY_LANGUAGE, ENGLISH, Words
from registry.api.form_words import sentence as _sentence
from registry.api.pages import SECURITY_HEADERS, category_names, cross_site, page_text
from registry.api.scrub import read_body

# Every route here; each sends its API requests through the whole app, as the client.
PREFIX = "/forms/"
router = APIRouter()
# The complaint form's longest: 2,000 characters of text (its textarea's maxlength), each up
# to 12 bytes percent-encoded (an emoji; a Chinese character is 9), and the other fields.
FORM_BYTES = 32 * 1024
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

    @property
    def details(self) -> dict[str, Any]:
        found = (self.data.get("error") or {}).get("details")
        return found if isinstance(found, dict) else {}


class FormError(Exception):
    """A form that cannot be read at all: answered with a page (`install`), not JSON."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def install(app: FastAPI) -> None:
    async def unreadable(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, FormError)
        say = _say_for(request)
        parts = [_p(say.unreadable(_sentence(exc.message)), "error")]
        return _page(say, say.failed, parts, exc.status, "/")

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


def _say(lang: str) -> Words:
    return BY_LANGUAGE[lang]


def _say_for(request: Request, fields: list[tuple[str, str]] | None = None) -> Words:
    """The words of the page the form was on (its hidden `lang` field, or the `?lang=` of
    the Chinese page's actions, read where the body is not), else the browser's."""
    asked = _one(fields, "lang") if fields else ""
    return _say(language.chosen(asked or request.query_params.get("lang"), request.headers))


def _one(fields: list[tuple[str, str]], name: str) -> str:
    """A field the page's form sends once; twice is refused, not read as the last, as the
    API refuses a JSON key, a query parameter or a header given twice."""
    values = [value for key, value in fields if key == name]
    if len(values) > 1:
        raise FormError(400, f"the form gives the field {name[:32]} more than once")
    return values[0].strip() if values else ""


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
    say: Words,
    title: str,
    parts: list[str],
    status: int,
    back: str,
    retry_after: str | None = None,
) -> Response:
    """An answer page in `say`'s language; `back` is the subscriber page's part to return
    to ("/#register"), in the same language."""
    # In the language of this page, whatever the browser asks for.
    back = f"/?lang={say.lang}" + back.removeprefix("/")
    body = (
        _TEMPLATE.replace("{{title}}", html.escape(title))
        .replace("{{back}}", html.escape(back))
        .replace("{{lang}}", language.TAGS[say.lang])
        .replace("{{registry}}", html.escape(say.registry))
        .replace("{{back_text}}", html.escape(say.back))
        # Last: what it shows (a reply, a number as typed) may hold "{{...}}" of its own.
        .replace("{{content}}", "\n".join(parts))
    )
    # An answer may show a number's status or a code step: kept out of the browser's
    # cache, so Back on a shared computer does not show it again.
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
    headers["Content-Language"] = language.TAGS[say.lang]
    headers["Vary"] = "Accept-Language"
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
        '<p lang="zh-Hans">此地址没有页面。<a href="/?lang=zh">登记、查询号码或举报来电</a>。</p>',
    ]
    answer = _page(ENGLISH, "Page not found", parts, 404, "/")
    answer.headers["Content-Language"] = "en, zh-Hans"
    return answer


def _p(text: str, css: str = "") -> str:
    kind = f' class="{css}"' if css else ""
    return f"<p{kind}>{html.escape(text)}</p>"


def _error(say: Words, answer: _Answer, back: str) -> Response:
    parts = [_p(_plain(say, answer), "error")]
    return _page(say, say.failed, parts, answer.status, back, answer.retry_after)


def _plain(say: Words, answer: _Answer) -> str:
    """The API's error in words for the person at the form, where the API's own words are
    for programmers (a reason code, a field name, seconds to wait); else its message."""
    details = answer.details
    if answer.code == "invalid_number":
        return say.invalid_number(
            say.reasons.get(str(details.get("reason")), say.unreadable_number)
        )
    if answer.code == "rate_limited":
        wait = _wait_words(say, details.get("retry_after") or answer.retry_after)
        if details.get("per") == "number":
            return say.too_many_codes(wait, details.get("request") == "deregistration")
        return say.too_many_from_you(wait)
    if answer.code in say.known:
        return say.known[answer.code]
    if answer.status >= 500 and say.unavailable:
        return say.unavailable
    return say.other(answer.message.replace("occurred_at", "the time of the call"))


def _wait_words(say: Words, raw: object) -> str:
    try:
        seconds = int(str(raw))
    except ValueError:
        return say.wait_little
    if seconds < 120:
        return say.wait_seconds(seconds)
    if seconds < 7200:
        return say.wait_minutes(-(-seconds // 60))
    return say.wait_hours(-(-seconds // 3600))


def _date(say: Words, iso: str) -> str:
    try:
        return say.date(datetime.fromisoformat(iso.replace("Z", "+00:00")))
    except ValueError:
        return iso


def _code_form(
    say: Words, kind: str, request_id: str, number: str, error: str | None = None
) -> str:
    """The code step; with `error`, what was wrong with the code typed, announced and tied
    to the field as the page with scripts ties it (aria-invalid, aria-describedby)."""
    action = f"/forms/{kind}s/{quote(request_id, safe='')}/confirm"
    verb = say.confirm_registration if kind == "registration" else say.confirm_removal
    wrong = ""
    if error is not None:
        wrong = ' aria-invalid="true" aria-describedby="code-error"'
    said = (
        f'<p class="error" role="alert" id="code-error">{html.escape(error)}</p>\n' if error else ""
    )
    return said + (
        f'<form method="post" action="{html.escape(action)}">\n'
        f'  <input type="hidden" name="number" value="{html.escape(number)}">\n'
        f'  <input type="hidden" name="lang" value="{say.lang}">\n'
        '  <div class="field">\n'
        f'    <label for="code">{html.escape(say.code_label)}</label>\n'
        '    <input id="code" name="code" type="text" inputmode="numeric"'
        f' autocomplete="one-time-code" maxlength="9" size="8" required autofocus{wrong}>\n'
        "  </div>\n"
        f'  <button type="submit">{html.escape(verb)}</button>\n'
        "</form>"
    )


def _refused(request: Request) -> Response:
    say = _say_for(request)
    return _page(say, say.refused_title, [_p(say.refused, "error")], 403, "/")


async def _code_sent(request: Request, say: Words, kind: str, body: dict[str, Any]) -> Response:
    back = "/#register" if kind == "registration" else "/#deregister"
    answer = await _call(request, "POST", f"/v1/{kind}s", body)
    if not answer.ok:
        return _error(say, answer, back)
    request_id = str(answer.data.get("request_id", ""))
    minutes = max(1, int(answer.data.get("expires_in", 600)) // 60)
    parts = [
        _p(say.code_sent(str(body["number"]), minutes)),
        _code_form(say, kind, request_id, str(body["number"])),
    ]
    return _page(say, say.enter_code, parts, answer.status, back)


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
        return _refused(request)
    fields = await _fields(request)
    say = _say_for(request, fields)
    body: dict[str, Any] = {
        "number": _one(fields, "number"),
        "channels": _many(fields, "channels"),
        "allow_categories": _codes(_many(fields, "allow_categories")),
    }
    if region := _one(fields, "region").upper():
        body["region"] = region
    if not body["channels"]:  # asked as the script's page asks, not in the API's words
        return _page(say, say.failed, [_p(say.tick_channel, "error")], 400, "/#register")
    return await _code_sent(request, say, "registration", body)


@router.post("/forms/deregistrations", include_in_schema=False)
async def deregister(request: Request) -> Response:
    if cross_site(request.headers):
        return _refused(request)
    fields = await _fields(request)
    say = _say_for(request, fields)
    body: dict[str, Any] = {"number": _one(fields, "number")}
    if region := _one(fields, "region").upper():
        body["region"] = region
    return await _code_sent(request, say, "deregistration", body)


@router.post("/forms/{kind}/{request_id}/confirm", include_in_schema=False)
async def confirm(kind: str, request_id: str, request: Request) -> Response:
    if cross_site(request.headers):
        return _refused(request)
    if kind not in ("registrations", "deregistrations"):
        say = _say_for(request)
        return _page(say, say.not_found_title, [_p(say.no_such_form, "error")], 404, "/")
    fields = await _fields(request)
    say = _say_for(request, fields)
    number = _one(fields, "number")
    back = "/#register" if kind == "registrations" else "/#deregister"
    path = f"/v1/{kind}/{request_id}/confirm"
    answer = await _call(request, "POST", path, {"code": _one(fields, "code")})
    if answer.code == "invalid_code":
        why = say.known.get("invalid_code") or _sentence(answer.message)
        parts = [_code_form(say, kind[:-1], request_id, number, why)]
        return _page(say, say.enter_code, parts, answer.status, back)
    if answer.code == "wrong_code":
        left = answer.details.get("tries_left")
        left = left if isinstance(left, int) and not isinstance(left, bool) else 0
        if not left:  # void: the code form would only be refused again
            parts = [_p(say.wrong_code(left), "error")]
            return _page(say, say.failed, parts, answer.status, back)
        parts = [_code_form(say, kind[:-1], request_id, number, say.wrong_code(left))]
        return _page(say, say.enter_code, parts, answer.status, back)
    if not answer.ok:
        return _error(say, answer, back)
    registered = str(answer.data.get("number", number))
    if kind == "deregistrations":
        parts = [
            # True whether or not it was registered: the API answers both alike.
            _p(say.removed(registered), "outcome"),
            _p(say.may_call_again),
        ]
        return _page(say, say.removed_title, parts, answer.status, back)
    effective = _date(say, str(answer.data.get("effective_at", "")))
    parts = [_p(say.is_registered(registered), "outcome"), *_what_is_blocked(say, answer.data)]
    parts.append(_p(say.stop_now(effective)))
    return _page(say, say.registered_title, parts, answer.status, back)


def _what_is_blocked(say: Words, data: dict[str, Any]) -> list[str]:
    """The registration's channels and the categories it still accepts, from the API's
    answer, as the script's page shows them: what the subscriber chose, to check."""
    channels = [say.channel_names.get(str(c), str(c)) for c in data.get("channels") or []]
    names = category_names(say.lang)
    allowed = [
        f"{code}. {names[code]}" if code in names else str(code)
        for code in data.get("allow_categories") or []
    ]
    return [
        _p(say.blocked(say.joined(channels))),
        _p(say.still_accepted(allowed) if allowed else say.all_blocked),
    ]


@router.post("/forms/status", include_in_schema=False)
async def status(request: Request) -> Response:
    """The status check as a POST, so the number stays out of the address bar and logs."""
    if cross_site(request.headers):
        return _refused(request)
    fields = await _fields(request)
    say = _say_for(request, fields)
    number = _one(fields, "number")
    region = _one(fields, "region").upper()
    query = f"region={quote(region)}" if region else ""
    if not number:
        answer = _Answer(
            400, {"error": {"code": "empty_number", "message": "enter a phone number"}}
        )
    else:
        # A `/` in the number (030/12345678) stays in its segment, as the look-up route
        # keeps a %2F: U+FF0F, which phonenumbers reads as the same punctuation.
        segment = number.replace("/", "\uff0f")
        answer = await _call(request, "GET", f"/v1/registrations/{segment}", query=query)
    if not answer.ok:
        return _error(say, answer, "/#status")
    shown = str(answer.data.get("number", number))
    if not answer.data.get("registered"):
        return _page(
            say, say.not_registered_title, [_p(say.not_registered(shown))], 200, "/#status"
        )
    parts = [_p(say.is_registered(shown), "outcome")]
    if "registered_at" in answer.data:
        since = _date(say, str(answer.data["registered_at"]))
        parts.append(
            _p(say.registered_since(since, _date(say, str(answer.data.get("effective_at", "")))))
        )
    return _page(say, say.registered_short, parts, 200, "/#status")


@router.post("/forms/complaints", include_in_schema=False)
async def complain(request: Request) -> Response:
    if cross_site(request.headers):
        return _refused(request)
    fields = await _fields(request)
    say = _say_for(request, fields)
    occurred = _one(fields, "occurred_at")
    if len(occurred) == 16:  # a datetime-local field: minutes, no zone; the form gives it
        occurred += ":00"
    # The page always sends both (a checked radio, a select): a form posted without them
    # is asked, not guessed for (a call taken for a text, a time hours off).
    missing = None
    if not _one(fields, "channel"):
        missing = say.say_channel
    elif _LOCAL_TIME.fullmatch(occurred) and not _one(fields, "utc_offset"):
        missing = say.say_zone
    if missing:
        return _page(say, say.failed, [_p(missing, "error")], 400, "/#complain")
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
        return _error(say, answer, "/#complain")
    reference = str(answer.data.get("complaint_id", ""))
    if answer.data.get("registered_at_time") in (False, None):
        then = _NOT_REGISTERED_THEN
    elif answer.data.get("within_grace"):
        then = _WITHIN_GRACE
    else:
        then = _COVERED
    # Post, then redirect, then get: the answer is the report's own page, which a reload
    # or Back only reads again. Answered here, a reload re-posted the form and filed the
    # complaint twice.
    link = f"/complaints/{quote(reference, safe='')}?lang={say.lang}&recorded={then}"
    return RedirectResponse(link, 303, headers={**SECURITY_HEADERS, "Cache-Control": "no-store"})


# What the report's page says of the registration when the complaint came, right after it
# was filed (?recorded=): the flags of POST /v1/complaints' answer.
_NOT_REGISTERED_THEN, _WITHIN_GRACE, _COVERED = "not_registered", "within_grace", "covered"


@router.get("/complaints", include_in_schema=False)
async def follow_report(request: Request, reference: str = "", lang: str = "") -> Response:
    """The subscriber page's "Follow a report" form: to the report's own page."""
    reference = reference.strip()
    if not reference:
        say = _say(language.chosen(lang or None, request.headers))
        return _page(say, say.failed, [_p(say.enter_reference, "error")], 400, "/#complain")
    # The reference as people paste it: the report's address, or the sentence that gave
    # it ("Its reference is cmp_….", in any case). A `/` left in it asked the API for
    # a path that does not exist, and its answer was for programmers.
    found = _REFERENCE.search(reference.lower())
    return await complaint_status(found[0] if found else reference, request, lang)


_REFERENCE = re.compile(r"cmp_[0-9a-f]{16}")


@router.get("/complaints/{complaint_id}", include_in_schema=False)
async def complaint_status(
    complaint_id: str, request: Request, lang: str = "", recorded: str = ""
) -> Response:
    """A report's handling, for whoever holds its reference: GET /v1/complaints/{id}/status.
    With `recorded`, the complaint form's answer too (it redirects here once filed)."""
    say = _say(language.chosen(lang or None, request.headers))
    if not _REFERENCE.fullmatch(complaint_id):  # no report has it: not a question for the API
        parts = [_p(say.no_such_report, "error")]
        return _page(say, say.report_not_found_title, parts, 404, "/#complain")
    answer = await _call(request, "GET", f"/v1/complaints/{complaint_id}/status")
    if answer.code == "complaint_not_found":
        parts = [_p(say.no_such_report, "error")]
        return _page(say, say.report_not_found_title, parts, 404, "/#complain")
    if not answer.ok:
        return _error(say, answer, "/#complain")
    data = answer.data
    parts = []
    just_filed = recorded in (_NOT_REGISTERED_THEN, _WITHIN_GRACE, _COVERED)
    if just_filed:
        # This page's own address, without the note: where to follow the report.
        link = f"/complaints/{quote(complaint_id, safe='')}?lang={say.lang}"
        parts += [
            _p(say.thanks, "outcome"),
            _p(say.reference(complaint_id)),
            f'<p>{html.escape(say.follow[0])}<a href="{link}">'
            f"{html.escape(say.follow_link)}</a>{html.escape(say.follow[1])}</p>",
        ]
        if recorded == _NOT_REGISTERED_THEN:
            parts.append(_p(say.not_registered_then))
        elif recorded == _WITHIN_GRACE:
            parts.append(_p(say.within_grace))
    parts.append(_p(say.report_received(complaint_id, _date(say, str(data.get("received_at"))))))
    if data.get("status") == "resolved":
        parts.append(_p(say.dealt_with_on(_date(say, str(data.get("resolved_at")))), "outcome"))
        parts.append(_p(say.outcomes.get(str(data.get("outcome")), say.dealt_with)))
        if data.get("reply"):
            # Its lines as the administrator wrote them (a reply may hold newlines).
            parts.extend(_p(line) for line in str(data["reply"]).split("\n") if line.strip())
    else:
        parts.append(_p(say.being_looked_at))
    title = say.recorded_title if just_filed else say.your_report_title
    return _page(say, title, parts, 200, "/#complain")

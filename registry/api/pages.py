"""The two web pages of CONTRACT section 6: `/` for subscribers, `/portal` for operators.

Both are static files from the `registry.web` package that call the public API
from the browser, so the pages add no second way into the registry: whatever
a page can do, `curl` can do with the same rules. They are read once, when
this module is imported, and kept in memory; the only thing filled in is the
list of categories, from `registry.rules`, so the pages cannot drift from
the codes the API accepts.

Every answer carries a Content-Security-Policy that allows only this origin
(no inline script, no third-party host: the pages work offline), and
`Referrer-Policy: same-origin`: no other site learns a page's address (the
API paths the pages call hold phone numbers), and the registry's own form posts
still carry their `Origin`, which the forms without JavaScript check (with
`no-referrer` a browser sends `Origin: null`, and one that sends no
`Sec-Fetch-Site` would have every such form refused). None of these routes is
an API operation, so none appears in /openapi.json.

`/docs` is Swagger UI as FastAPI renders it, with its script and style served
from here (the copy of Swagger UI 5 in the fastapi-swagger package) instead of
a CDN: a registry often runs on a network with no way out, and there FastAPI's
own page stays blank.
"""

from __future__ import annotations

import html
import re
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse, Response

from registry import rules
from registry.api import language
from registry.api.errors import ApiError

router = APIRouter()

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    # Revalidate on every visit: an upgraded server must not run yesterday's script.
    "Cache-Control": "no-cache",
}
_TYPES = {
    "svg": "image/svg+xml",
    "html": "text/html; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
}
ASSETS = ("app.css", "api.js", "subscriber.js", "portal.js", "favicon.svg")
# Swagger UI's files for /docs, by the name the page asks for, from this package.
SWAGGER_UI = "fastapi_swagger.resources"
DOCS_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}


# The categories in the Chinese page's words (India's NCPR list, as rules.CATEGORIES).
CATEGORIES_ZH = {
    1: "银行、保险、金融",
    2: "房地产",
    3: "教育",
    4: "医疗健康",
    5: "消费品和汽车",
    6: "通信、广播、娱乐、IT",
    7: "旅游休闲",
    8: "食品饮料",
}


def category_names(lang: str) -> dict[int, str]:
    return CATEGORIES_ZH if lang == "zh" else rules.CATEGORIES


def _category_checkboxes(lang: str) -> str:
    return "\n".join(
        f'<li><label><input type="checkbox" name="allow_categories" value="{code}"> '
        f"{code}. {html.escape(name)}</label></li>"
        for code, name in category_names(lang).items()
    )


def _category_options(lang: str) -> str:
    return "\n".join(
        f'<option value="{code}">{code}. {html.escape(name)}</option>'
        for code, name in category_names(lang).items()
    )


# Every UTC offset in use, for the complaint form's time when no script reads the browser's.
_OFFSET_MINUTES = (
    *(-720, -660, -600, -570, -540, -480, -420, -360, -300, -240, -210, -180, -120, -60),
    *(0, 60, 120, 180, 210, 240, 270, 300, 330, 345, 360, 390, 420, 480, 525, 540, 570),
    *(600, 630, 660, 720, 765, 780, 840),
)
UTC_OFFSETS = tuple(
    f"{'-' if m < 0 else '+'}{abs(m) // 60:02d}:{abs(m) % 60:02d}" for m in _OFFSET_MINUTES
)


def _utc_offsets(lang: str) -> str:
    """The zones to choose from, the page's likeliest chosen: UTC, or Beijing time (all of
    mainland China) on the Chinese page, where UTC would read a call 8 hours late."""
    home = "+08:00" if lang == "zh" else "+00:00"

    def label(offset: str) -> str:
        return f"北京时间（UTC{offset}）" if lang == "zh" and offset == home else f"UTC{offset}"

    return "\n".join(
        f'<option value="{offset}"{" selected" if offset == home else ""}>{label(offset)}</option>'
        for offset in UTC_OFFSETS
    )


def _query_fields(prefix: str, lang: str) -> str:
    """A form's channel, category and region fields (query-fields.html, or .zh.html), ids
    under `prefix`."""
    name = "query-fields.zh.html" if lang == "zh" else "query-fields.html"
    return page_text(name).replace("{{prefix}}", prefix)


def page_text(name: str) -> str:
    """A file of the registry.web package, as text."""
    return resources.files("registry.web").joinpath(name).read_text(encoding="utf-8")


def _read(name: str) -> bytes:
    text = page_text(name)
    if name.endswith(".html"):
        lang = "zh" if name.endswith(".zh.html") else "en"
        text = re.sub(r"\{\{query_fields:([a-z]+)\}\}\n", lambda m: _query_fields(m[1], lang), text)
        text = text.replace("{{category_checkboxes}}", _category_checkboxes(lang))
        text = text.replace("{{category_options}}", _category_options(lang))
        text = text.replace("{{utc_offsets}}", _utc_offsets(lang))
    return text.encode()


def _answer(name: str, body: bytes) -> Response:
    kind = _TYPES[name.rsplit(".", 1)[1]]
    return Response(body, media_type=kind, headers=SECURITY_HEADERS)


_PAGES = {
    name: _read(name) for name in ("index.html", "index.zh.html", "portal.html", "portal.zh.html")
}
_ASSETS = {name: _read(name) for name in ASSETS}
# The subscriber page and the operator portal in each of language.LANGUAGES.
_SUBSCRIBER_PAGES = {"en": "index.html", "zh": "index.zh.html"}
_PORTAL_PAGES = {"en": "portal.html", "zh": "portal.zh.html"}


@router.get("/", include_in_schema=False)
async def subscriber_page(request: Request) -> Response:
    """Register, check, deregister and complain: the subscriber's side of the registry,
    in the language `?lang=` or else the browser asks for (registry/api/language.py).

    It names the region a number without `+` is read in (DNC_DEFAULT_REGION): a Chinese
    subscriber typing 138 0013 8000 into a registry set up for US must see why."""
    lang = language.chosen(request.query_params.get("lang"), request.headers)
    region = request.app.state.services.settings.default_region
    name = _SUBSCRIBER_PAGES[lang]
    answer = _answer(name, _PAGES[name].replace(_REGION, region.encode()))
    answer.headers["Content-Language"] = language.TAGS[lang]
    answer.headers["Vary"] = "Accept-Language"
    return answer


_REGION = b"{{default_region}}"


@router.get("/portal", include_in_schema=False)
async def operator_portal(request: Request) -> Response:
    """Look-ups, scrubs and change lists for an operator holding an API key, in the
    language `?lang=` or else the browser asks for, as the subscriber page."""
    lang = language.chosen(request.query_params.get("lang"), request.headers)
    name = _PORTAL_PAGES[lang]
    answer = _answer(name, _PAGES[name])
    answer.headers["Content-Language"] = language.TAGS[lang]
    answer.headers["Vary"] = "Accept-Language"
    return answer


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> Response:
    """Browsers ask for it on every page (an SVG, which every current browser takes)."""
    return _answer("favicon.svg", _ASSETS["favicon.svg"])


@router.get("/assets/{name}", include_in_schema=False)
async def asset(name: str) -> Response:
    body = _ASSETS.get(name)
    if body is None:
        raise ApiError(404, "not_found", f"no page asset {name!r}")
    return _answer(name, body)


@router.get("/docs", include_in_schema=False)
async def docs(request: Request) -> HTMLResponse:
    """Swagger UI on /openapi.json, every file it needs from this server."""
    root = request.scope.get("root_path", "")
    return get_swagger_ui_html(
        openapi_url=f"{root}/openapi.json",
        title="dnc-registry API",
        swagger_js_url=f"{root}/docs/assets/swagger-ui-bundle.js",
        swagger_css_url=f"{root}/docs/assets/swagger-ui.css",
        swagger_favicon_url=f"{root}/docs/assets/favicon-32x32.png",
    )


_docs_files: dict[str, bytes] = {}


@router.get("/docs/assets/{name}", include_in_schema=False)
async def docs_asset(name: str) -> Response:
    kind = DOCS_ASSETS.get(name)
    if kind is None:
        raise ApiError(404, "not_found", f"no documentation asset {name!r}")
    body = _docs_files.get(name)
    if body is None:  # read on first use: a megabyte most workers never send
        body = _docs_files[name] = resources.files(SWAGGER_UI).joinpath(name).read_bytes()
    return Response(body, media_type=kind, headers={"Cache-Control": "public, max-age=86400"})


def cross_site(headers: Any) -> bool:
    """Whether a browser sent this request from a page of another site: `Sec-Fetch-Site`
    says so (every current browser sends it), or else an `Origin` (`null` included:
    a sandboxed frame, a file) that is not this host. Clients that are not browsers
    (curl, a carrier's gateway, the operators' servers) send neither."""
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = headers.get("origin")
    if origin is None or origin == "null":
        return origin == "null"
    return urlsplit(origin).netloc != headers.get("host", "")

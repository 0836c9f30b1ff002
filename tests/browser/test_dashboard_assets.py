"""The dashboard's files over plain HTTP (no browser): types, caching, policy, no inline code."""

from __future__ import annotations

import json
import re

from httpkit import Api

from transakt.http.views.dashboard import STATIC_DIRECTORY
from transakt.money import CURRENCY_EXPONENTS, MAX_AMOUNT

EXPECTED_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self' ws: wss:",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
}


def _policy(header: str) -> dict[str, str]:
    directives = (part.strip().partition(" ") for part in header.split(";") if part.strip())
    return {name: value.strip() for name, _, value in directives}


async def test_page_is_served_with_a_strict_policy(api: Api) -> None:
    answer = await api.get("/")
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    assert _policy(answer.headers["Content-Security-Policy"]) == EXPECTED_POLICY
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["Cache-Control"] == "no-cache"
    assert '<script type="module" src="/static/app.js"></script>' in answer.text
    assert "/api/v1/openapi.json" in answer.text


def test_no_inline_script_style_or_handler_in_any_asset() -> None:
    for path in STATIC_DIRECTORY.iterdir():
        text = path.read_text()
        if path.suffix == ".html":
            # Every <script> loads a file; no style element or attribute, no on* handler.
            assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", text) == [], path.name
            assert "<style" not in text and " style=" not in text, path.name
            assert not re.search(r"\son[a-z]+=", text), path.name
        if path.suffix == ".js":
            # Text goes in as text: the page never parses strings as HTML or code.
            for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
                assert sink not in text, (path.name, sink)
        # Nothing is loaded from the internet.
        assert not re.search(r"(src|href)=\"(https?:)?//", text), path.name
        assert not re.search(r"import [^;]*from \"(https?:)?//", text), path.name


async def test_assets_have_their_types_and_revalidate(api: Api) -> None:
    expected = {
        "app.js": "text/javascript; charset=utf-8",
        "money.js": "text/javascript; charset=utf-8",
        "app.css": "text/css; charset=utf-8",
        "favicon.svg": "image/svg+xml",
    }
    for name, content_type in expected.items():
        answer = await api.get(f"/static/{name}")
        assert answer.status == 200, name
        assert answer.headers["Content-Type"] == content_type
        assert answer.headers["Cache-Control"] == "no-cache"
        etag = answer.headers["ETag"]
        again = await api.get(f"/static/{name}", headers={"If-None-Match": etag})
        assert again.status == 304
        assert again.text == ""
        assert again.headers["ETag"] == etag
        changed = await api.get(f"/static/{name}", headers={"If-None-Match": '"other"'})
        assert changed.status == 200


async def test_only_known_files_are_served(api: Api) -> None:
    for path in (
        "/static/nothing.js",
        "/static/..%2Fapp.py",
        "/static/%2e%2e%2fviews%2fdashboard.py",
        "/static/../views/dashboard.py",
        "/static/",
    ):
        answer = await api.get(path)
        assert answer.status == 404, path
        assert answer.error_code == "not_found"


async def test_currency_module_matches_the_server(api: Api) -> None:
    answer = await api.get("/static/currencies.js")
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "text/javascript; charset=utf-8"
    match = re.search(r"CURRENCY_EXPONENTS = Object\.freeze\((\{.*?\})\);", answer.text)
    assert match is not None, answer.text
    assert json.loads(match.group(1)) == CURRENCY_EXPONENTS
    assert f"MAX_AMOUNT = {MAX_AMOUNT}n;" in answer.text

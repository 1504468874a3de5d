"""Serving the console: its files only, a strict Content-Security-Policy, nothing audited, no token leaks."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditRecord
from app.console.routes import STATIC_DIR

ASSETS = {
    "/console/console.js": "text/javascript",
    "/console/timeline.js": "text/javascript",
    "/console/live.js": "text/javascript",
    "/console/recalls.js": "text/javascript",
    "/console/disclosure-view.js": "text/javascript",
    "/console/disclosure.js": "text/javascript",
    "/console/console.css": "text/css",
    "/console/favicon.svg": "image/svg+xml",
}


class _Tags(HTMLParser):
    """Every start tag of a document with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.script_text = ""

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        if self.tags and self.tags[-1][0] in ("script", "style"):
            self.script_text += data.strip()


def _directives(header: str) -> dict[str, str]:
    return {part.split()[0]: part.strip() for part in header.split(";") if part.strip()}


def _record_count(app) -> int:
    with app.state.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(AuditRecord.__table__)).scalar_one()


def test_page_is_served_with_a_strict_content_security_policy(client):
    response = client.get("/console/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    csp = _directives(response.headers["content-security-policy"])
    assert csp["default-src"] == "default-src 'none'"
    assert csp["script-src"] == "script-src 'self'" and csp["style-src"] == "style-src 'self'"
    assert csp["connect-src"] == "connect-src 'self'" and csp["form-action"] == "form-action 'none'"
    assert csp["frame-ancestors"] == "frame-ancestors 'none'"
    assert "unsafe" not in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store" and response.headers["x-frame-options"] == "DENY"


def test_page_has_no_inline_script_style_or_handlers_and_no_named_token_field(client):
    parser = _Tags()
    parser.feed(client.get("/console/").text)
    scripts = [attrs for tag, attrs in parser.tags if tag == "script"]
    assert scripts == [
        {"src": "timeline.js", "defer": None},
        {"src": "console.js", "defer": None},
        {"src": "live.js", "defer": None},
        {"src": "recalls.js", "defer": None},
        {"src": "disclosure-view.js", "defer": None},
        {"src": "disclosure.js", "defer": None},
    ]
    assert parser.script_text == ""  # no inline <script> or <style> body
    assert not [tag for tag, attrs in parser.tags if "style" in attrs or any(a.startswith("on") for a in attrs)]
    # Without a name the token can never be part of a submitted form; the form has no action.
    (token,) = [attrs for tag, attrs in parser.tags if attrs.get("id") == "token"]
    assert "name" not in token
    assert all("action" not in attrs for tag, attrs in parser.tags if tag == "form")


@pytest.mark.parametrize(("path", "media_type"), ASSETS.items())
def test_assets_are_served_with_their_media_type_and_the_policy(client, path, media_type):
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media_type
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.content == (STATIC_DIR / path.rsplit("/", 1)[1]).read_bytes()
    assert "content-security-policy" in response.headers


@pytest.mark.parametrize(
    "path",
    [
        "/console/index.html.bak",
        "/console/..%2Fconsole%2Froutes.py",
        "/console/%2e%2e/__init__.py",
        "/console/routes.py",
        "/console/static",
    ],
)
def test_nothing_but_the_named_assets_is_served(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "def " not in response.text


def test_bare_console_path_redirects_to_the_page(client):
    response = client.get("/console", follow_redirects=False)
    assert response.status_code == 308 and response.headers["location"] == "/console/"


def test_console_files_are_not_audited_but_its_api_calls_are(app, client, auth):
    before = _record_count(app)
    for path in ("/console/", *ASSETS, "/console", "/console/nope"):
        client.get(path)
    assert _record_count(app) == before
    client.get(
        "/api/v1/audit/records", params={"limit": 1}, headers=auth(subject="console-auditor", roles=("auditor",))
    )
    assert _record_count(app) == before + 1


def test_script_keeps_the_token_out_of_cookies_urls_and_markup():
    script = "".join(
        (STATIC_DIR / name).read_text()
        for name in ("console.js", "timeline.js", "recalls.js", "disclosure-view.js", "disclosure.js")
    )
    assert "sessionStorage" in script and "localStorage" not in script
    assert "document.cookie" not in script
    # API answers are written with textContent only: no HTML parsing of data anywhere.
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", script)
    # The token goes into a header, never into a query parameter.
    assert re.search(r"Authorization: `Bearer \$\{token\}`", script)
    assert not re.search(r"searchParams\.set\([^)]*token", script)

"""`/docs` serves Swagger UI from the installed package under the console's policy: no CDN, no inline script."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditRecord
from app.console.apidocs import CONTENT_SECURITY_POLICY, STATIC_DIR, SWAGGER_UI_DIR

ASSETS = {
    "/docs/init.js": ("text/javascript", STATIC_DIR / "apidocs.js"),
    "/docs/assets/swagger-ui-bundle.js": ("text/javascript", SWAGGER_UI_DIR / "swagger-ui-bundle.js"),
    "/docs/assets/swagger-ui.css": ("text/css", SWAGGER_UI_DIR / "swagger-ui.css"),
}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.inline = ""

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        if self.tags and self.tags[-1][0] in ("script", "style"):
            self.inline += data.strip()


def _directives(header: str) -> dict[str, str]:
    return {part.split()[0]: part.strip() for part in header.split(";") if part.strip()}


def test_docs_page_loads_only_files_of_this_server_under_a_strict_policy(client):
    response = client.get("/docs")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    csp = _directives(response.headers["content-security-policy"])
    assert csp["default-src"] == "default-src 'none'" and csp["script-src"] == "script-src 'self'"
    assert csp["style-src"] == "style-src 'self'" and csp["connect-src"] == "connect-src 'self'"
    assert csp["img-src"] == "img-src 'self' data:" and csp["frame-ancestors"] == "frame-ancestors 'none'"
    assert "unsafe" not in response.headers["content-security-policy"]
    parser = _Tags()
    parser.feed(response.text)
    assert parser.inline == ""  # no inline <script> or <style> body
    sources = [a.get("src") or a.get("href") for tag, a in parser.tags if tag in ("script", "link")]
    assert sources == [
        "console/favicon.svg",
        "docs/assets/swagger-ui.css",
        "docs/assets/swagger-ui-bundle.js",
        "docs/init.js",
    ]
    assert not re.search(r"https?://", response.text)  # nothing from another origin


@pytest.mark.parametrize(("path", "expected"), ASSETS.items())
def test_swagger_ui_files_come_from_the_package(client, path, expected):
    media_type, source = expected
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media_type
    assert response.content == source.read_bytes()
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_the_start_up_script_turns_off_the_online_validator(client):
    script = client.get("/docs/init.js").text
    assert "validatorUrl: null" in script and "SwaggerUIBundle(" in script


@pytest.mark.parametrize(
    "path",
    ["/redoc", "/docs/oauth2-redirect", "/docs/assets/redoc.standalone.js", "/docs/assets/..%2Fcore.py", "/docs/x"],
)
def test_nothing_else_is_served_under_docs(client, path):
    response = client.get(path)
    assert response.status_code == 404


def test_docs_files_are_not_audited(app, client):
    with app.state.engine.connect() as connection:
        before = connection.execute(select(func.count()).select_from(AuditRecord.__table__)).scalar_one()
    for path in ("/docs", "/docs/init.js", "/docs/assets/swagger-ui.css", "/console/favicon.svg"):
        assert client.get(path).status_code == 200
    with app.state.engine.connect() as connection:
        after = connection.execute(select(func.count()).select_from(AuditRecord.__table__)).scalar_one()
    assert after == before


@pytest.mark.parametrize("path", ["/healthz", "/taxii2/", "/openapi.json", "/docs/nope"])
def test_every_other_answer_carries_a_policy_that_loads_nothing(client, auth, path):
    response = client.get(path, headers=auth())
    csp = _directives(response.headers["content-security-policy"])
    assert csp["default-src"] == "default-src 'none'" and csp["frame-ancestors"] == "frame-ancestors 'none'"
    assert "script-src" not in csp and "connect-src" not in csp


def test_pages_keep_their_own_policy(client):
    for path in ("/docs", "/console/"):
        assert "script-src 'self'" in client.get(path).headers["content-security-policy"]
    assert len(client.get("/docs").headers.get_list("content-security-policy")) == 1

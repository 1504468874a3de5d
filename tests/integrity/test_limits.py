"""Request bodies: one limit on every route, enforced while reading, and nothing read before the
token and the route's right are checked (issue 18, finding 5).

The app is called as ASGI directly, with a ``receive`` that counts the body chunks it hands out,
so "not read" is observed, not inferred.
"""

from __future__ import annotations

import anyio
import orjson
import pytest

from tests.conftest import TAXII
from tests.integrity.conftest import indicator, table_counts

CHUNK = 64 * 1024


class Exchange:
    """One request played against the ASGI app: a body of ``size`` bytes offered in chunks."""

    def __init__(self, app, method: str, path: str, headers: dict[str, str], body: bytes, declared: int | None = None):
        self.app, self.method, self.path, self.body = app, method, path, body
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.headers["content-length"] = str(len(body) if declared is None else declared)
        self.chunks_read = 0
        self.status: int | None = None
        self.response = b""

    async def _receive(self) -> dict:
        offset = self.chunks_read * CHUNK
        if offset >= len(self.body):
            return {"type": "http.disconnect"}
        self.chunks_read += 1
        chunk = self.body[offset : offset + CHUNK]
        return {"type": "http.request", "body": chunk, "more_body": offset + CHUNK < len(self.body)}

    async def _send(self, message: dict) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.response += message.get("body", b"")

    def run(self) -> Exchange:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": self.method,
            "scheme": "http",
            "path": self.path,
            "raw_path": self.path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(k.encode(), v.encode()) for k, v in self.headers.items()],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
            "state": {},
            "app": self.app,
        }
        anyio.run(self.app, scope, self._receive, self._send)
        return self


WRITE_ROUTES = [
    ("POST", "/api/v1/items"),
    ("POST", "/api/v1/items/stix"),
    ("POST", "/api/v1/items/indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f/versions"),
    ("POST", "/api/v1/items/indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f/tearlines"),
    ("POST", "/api/v1/collections"),
    ("POST", "/api/v1/feeds"),
]


@pytest.mark.parametrize(("method", "path"), WRITE_ROUTES)
def test_no_token_is_refused_before_any_byte_of_the_body_is_read(app, method, path):
    big = b"{" + b" " * (4 * 1024 * 1024)  # malformed, and large
    exchange = Exchange(app, method, path, {"content-type": "application/json"}, big).run()
    assert exchange.status == 401, exchange.response
    assert exchange.chunks_read == 0


@pytest.mark.parametrize(("method", "path"), WRITE_ROUTES)
def test_a_principal_without_the_right_is_refused_before_the_body_is_read(app, headers_for, method, path):
    partner = headers_for(subject="usa-feed", nation="USA", roles=("partner",))
    exchange = Exchange(app, method, path, partner | {"content-type": "application/json"}, b"{not json").run()
    assert exchange.status == 403, exchange.response
    assert exchange.chunks_read == 0


def test_taxii_post_without_token_reads_nothing(app, writable):
    path = f"/taxii2/api1/collections/{writable.id}/objects/"
    exchange = Exchange(app, "POST", path, {"content-type": TAXII, "accept": TAXII}, b"{" * 100_000).run()
    assert exchange.status == 401 and exchange.chunks_read == 0


@pytest.mark.parametrize("path", ["/api/v1/items/stix", "taxii"])
def test_a_body_over_the_limit_is_413_and_stores_nothing(app, settings, headers_for, writable, path):
    analyst = headers_for()
    limit = settings.max_content_length
    objects = [indicator(f"padding {n}", description="x" * 4000) for n in range(limit // 4000 + 10)]
    if path == "taxii":
        path = f"/taxii2/api1/collections/{writable.id}/objects/"
        body, headers = orjson.dumps({"objects": objects}), analyst | {"content-type": TAXII, "accept": TAXII}
    else:
        body = orjson.dumps(
            {
                "collection": writable.id,
                "stix": {
                    "type": "bundle",
                    "id": "bundle--" + "0" * 8 + "-0000-4000-8000-000000000000",
                    "objects": objects,
                },
            }
        )
        headers = analyst | {"content-type": "application/json"}
    assert len(body) > limit
    before = table_counts(app.state.engine)
    declared = Exchange(app, "POST", path, headers, body).run()
    assert declared.status == 413 and declared.chunks_read == 0  # the declared length alone refuses it
    # A client that lies about the length is cut off as soon as the body passes the limit.
    undeclared = Exchange(app, "POST", path, headers, body, declared=0)
    undeclared.headers.pop("content-length")
    undeclared.run()
    assert undeclared.status == 413
    assert undeclared.chunks_read <= limit // CHUNK + 2
    after = table_counts(app.state.engine)
    assert {k: v for k, v in after.items() if k != "audit_record"} == {
        k: v for k, v in before.items() if k != "audit_record"
    }

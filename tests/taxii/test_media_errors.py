"""Media types (TAXII 2.1 section 1.6.8, DESIGN.md section 5) and error messages (section 3.6.1).

Every answer on /taxii2 is ``application/taxii+json;version=2.1``; every error is a TAXII error
message (title, description, http_status as a string) that names nothing internal.
"""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from app.taxii import service as taxii_service
from tests.conftest import TAXII
from tests.taxii.helpers import (
    LEAKS,
    assert_taxii_error,
    check_taxii_200,
    envelope,
    get_ok,
    indicator,
    manifest_url,
    objects_url,
    post_ok,
    status_url,
    stored_rows,
    versions_url,
)


@pytest.fixture
def raw_client(app):
    """A client that returns server errors as responses instead of raising them."""
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def endpoints(client, analyst, api, collection) -> dict[str, str]:
    """Every readable TAXII endpoint, with content in the collection."""
    obj = indicator()
    status = post_ok(client, api, collection.id, analyst, [obj])
    return {
        "discovery": "/taxii2/",
        "api root": f"{api}/",
        "collections": f"{api}/collections/",
        "collection": f"{api}/collections/{collection.id}/",
        "objects": objects_url(api, collection.id),
        "manifest": manifest_url(api, collection.id),
        "object": objects_url(api, collection.id, obj["id"]),
        "versions": versions_url(api, collection.id, obj["id"]),
        "status": status_url(api, status["id"]),
    }


GOOD_ACCEPT = [
    TAXII,
    "application/taxii+json",
    "application/taxii+json; version=2.1",
    "application/json",
    "*/*",
    "application/*",
    None,  # no Accept header at all
    "text/html, application/xhtml+xml, */*;q=0.8",  # a browser
    "application/taxii+json;version=2.0, application/taxii+json;version=2.1",
]


@pytest.mark.parametrize("accept", GOOD_ACCEPT)
def test_acceptable_accept_headers_get_taxii_json(client, analyst, endpoints, accept):
    headers = {"Authorization": analyst["Authorization"]}
    if accept is not None:
        headers["Accept"] = accept
    for name, url in endpoints.items():
        response = client.get(url, headers=headers)
        assert response.status_code == 200, (name, response.text)
        assert response.headers["content-type"] == TAXII, name
        check_taxii_200(response)


BAD_ACCEPT = [
    "application/xml",
    "text/html",
    "application/taxii+json;version=2.0",
    "application/taxii+json;version=3.0",
    "application/stix+json;version=2.1",
    "application/taxii+json;q=0",
]


@pytest.mark.parametrize("accept", BAD_ACCEPT)
def test_unacceptable_accept_headers_are_406(client, analyst, endpoints, accept):
    for _name, url in endpoints.items():
        response = client.get(url, headers=analyst | {"Accept": accept})
        assert_taxii_error(response, 406)


def test_406_on_post_too_and_nothing_stored(client, analyst, api, collection, session):
    response = client.post(
        objects_url(api, collection.id),
        content=envelope([indicator()]),
        headers=analyst | {"Accept": "application/xml", "Content-Type": TAXII},
    )
    assert_taxii_error(response, 406)
    assert stored_rows(session, collection.id) == 0


def test_delete_answers_with_the_taxii_media_type(client, analyst, api, collection):
    obj = indicator()
    post_ok(client, api, collection.id, analyst, [obj])
    response = client.delete(objects_url(api, collection.id, obj["id"]), headers=analyst)
    assert response.status_code == 200
    assert response.headers["content-type"] == TAXII


def error_requests(api: str, collection_id: str, object_id: str) -> dict[str, tuple]:
    """(method, url, extra headers, body, expected status) for requests that must fail."""
    objects = objects_url(api, collection_id)
    return {
        "no token": ("GET", objects, {"Authorization": ""}, None, 401),
        "bad token": ("GET", objects, {"Authorization": "Bearer nonsense"}, None, 401),
        "basic auth": ("GET", objects, {"Authorization": "Basic dXNlcjpwYXNz"}, None, 401),
        "unknown path": ("GET", f"{api}/nothing/here/", {}, None, 404),
        "unknown collection": ("GET", objects_url(api, str(uuid.uuid4())), {}, None, 404),
        "unknown object": ("GET", objects_url(api, collection_id, f"indicator--{uuid.uuid4()}"), {}, None, 404),
        "unknown status": ("GET", status_url(api, str(uuid.uuid4())), {}, None, 404),
        "method not allowed": ("PUT", objects, {}, b"{}", 405),
        "post on manifest": ("POST", manifest_url(api, collection_id), {"Content-Type": TAXII}, b"{}", 405),
        "delete collection": ("DELETE", f"{api}/collections/{collection_id}/", {}, None, 405),
        "bad filter": ("GET", objects + "?match[version]=latest", {}, None, 400),
        "bad limit": ("GET", objects + "?limit=-5", {}, None, 400),
        "unknown filter": ("GET", objects + "?match[colour]=red", {}, None, 400),
        "bad next": ("GET", objects + "?next=abc", {}, None, 400),
        "not acceptable": ("GET", objects, {"Accept": "application/xml"}, None, 406),
        "bad json": ("POST", objects, {"Content-Type": TAXII}, b"{nope", 400),
        "not an envelope": ("POST", objects, {"Content-Type": TAXII}, b"[]", 400),
        "bad content type": ("POST", objects, {"Content-Type": "text/plain"}, b"{}", 415),
        "too large": ("POST", objects, {"Content-Type": TAXII}, b" " * (256 * 1024 + 1), 413),
        "partner posts": ("POST", objects, {"Content-Type": TAXII, "as": "partner"}, b'{"objects": []}', 403),
        "partner deletes": ("DELETE", objects_url(api, collection_id, object_id), {"as": "partner"}, None, 403),
        "nul in filter": ("GET", objects + "?match[type]=in%00dicator", {}, None, 400),
        "nul in id": ("GET", objects_url(api, collection_id, "indicator--%00"), {}, None, 404),
        "nul in collection": ("GET", objects_url(api, "a%00b"), {}, None, 404),
        "nul in status": ("GET", status_url(api, "a%00b"), {}, None, 404),
    }


@pytest.mark.parametrize("case", list(error_requests("", "", "")))
def test_every_error_is_a_taxii_error_message(raw_client, analyst, partner_usa, api, collection, settings, case):
    # The object need not exist: a partner's delete is refused before any lookup.
    method, url, extra, body, status = error_requests(api, collection.id, f"indicator--{uuid.uuid4()}")[case]
    if status == 413:
        assert len(body) > settings.max_content_length
    headers = dict(partner_usa if extra.pop("as", None) == "partner" else analyst) | extra
    headers = {k: v for k, v in headers.items() if v}
    response = raw_client.request(method, url, headers=headers, content=body)
    error = assert_taxii_error(response, status)
    assert error["description"]


def test_internal_errors_are_generic_taxii_500s(raw_client, analyst, api, collection, monkeypatch):
    """An unexpected failure reaches the client as a bare TAXII 500, without its SQL or a trace."""

    def failing(*args, **kwargs):
        raise RuntimeError("SELECT body FROM stix_object WHERE secret = 1 on db.internal:5432")

    monkeypatch.setattr(taxii_service, "versions_page", failing)
    response = raw_client.get(objects_url(api, collection.id), headers=analyst)
    body = assert_taxii_error(response, 500)
    assert "secret" not in response.text and "db.internal" not in response.text
    assert body["title"]


def test_database_outages_are_generic_taxii_503s(raw_client, analyst, api, collection, monkeypatch):
    """A lost database connection is a TAXII 503 with Retry-After (issue 8), still without SQL or host."""

    def failing(*args, **kwargs):
        raise OperationalError(
            "SELECT body FROM stix_object WHERE secret = 1",
            {"secret": 1},
            Exception("connection lost to db.internal:5432"),
        )

    monkeypatch.setattr(taxii_service, "versions_page", failing)
    response = raw_client.get(objects_url(api, collection.id), headers=analyst)
    assert_taxii_error(response, 503)
    assert response.headers["retry-after"].isdigit()
    assert "secret" not in response.text and "db.internal" not in response.text


@pytest.mark.parametrize(
    "params",
    [
        {"match[id]": "x" * 5000},
        {"match[type]": "\u2603" * 300},
        {"match[version]": "\uff12\uff10\uff12\uff10-01-01T00:00:00Z"},  # full-width digits
        {"added_after": "2020-01-01T00:00:00." + "9" * 5000 + "Z"},
        {"limit": "9" * 5000},
        {"limit": "\u0663"},  # ARABIC-INDIC DIGIT THREE
        {"next": "." * 3},
        {"next": "e30.e30.e30"},
        {"match[spec_version]": "2.1\u0000"},
    ],
)
def test_odd_query_values_never_cause_a_server_error(raw_client, analyst, api, collection, params):
    response = raw_client.get(objects_url(api, collection.id), headers=analyst, params=params)
    assert response.status_code < 500, response.text
    assert response.headers["content-type"] == TAXII
    assert not any(leak in response.text for leak in LEAKS)
    if response.status_code == 200:
        check_taxii_200(response)
    else:
        assert_taxii_error(response, response.status_code)


def test_version_timestamps_before_year_1000_are_four_digit_years(client, analyst, api, collection):
    """Emitted timestamps keep the YYYY form for any year (glibc's %Y does not pad)."""
    old = indicator() | {
        "created": "0900-01-01T00:00:00.000Z",
        "modified": "0900-01-01T00:00:00.000Z",
        "valid_from": "0900-01-01T00:00:00Z",
    }
    status = post_ok(client, api, collection.id, analyst, [old])
    assert status["successes"][0]["version"] == "0900-01-01T00:00:00.000000Z"
    record = get_ok(client, manifest_url(api, collection.id), analyst)["objects"][0]
    assert record["version"] == "0900-01-01T00:00:00.000000Z"
    assert get_ok(client, versions_url(api, collection.id, old["id"]), analyst)["versions"] == [record["version"]]

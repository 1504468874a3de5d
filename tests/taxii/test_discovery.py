"""TAXII 2.1 discovery (section 4.1) and API root information (section 4.2)."""

from urllib.parse import urlsplit

import pytest

from tests.conftest import TAXII
from tests.taxii.helpers import assert_taxii_error, get_ok, objects_url

PRINCIPALS = {
    "analyst": {},
    "partner": {"subject": "usa-feed", "nation": "USA", "roles": ("partner",)},
    "auditor": {"subject": "auditor-1", "roles": ("auditor",)},
    "admin": {"subject": "admin-1", "roles": ("admin",)},
}


@pytest.mark.parametrize("who", sorted(PRINCIPALS))
def test_discovery_names_the_api_root(client, auth, settings, who):
    body = get_ok(client, "/taxii2/", auth(**PRINCIPALS[who]))
    assert isinstance(body["title"], str) and body["title"]
    assert body["api_roots"] and all(isinstance(root, str) for root in body["api_roots"])
    assert body["default"] in body["api_roots"]
    # Every advertised API root is an absolute URL that answers.
    for root in body["api_roots"]:
        parts = urlsplit(root)
        assert parts.scheme in {"http", "https"} and parts.netloc
        assert parts.path == f"/taxii2/{settings.api_root}/"
        get_ok(client, parts.path, auth(**PRINCIPALS[who]))


def test_discovery_without_a_slash_is_not_a_server_error(client, analyst):
    response = client.get("/taxii2", headers=analyst)
    assert response.status_code < 500


def test_api_root_information(client, analyst, settings, api):
    body = get_ok(client, f"{api}/", analyst)
    assert isinstance(body["title"], str) and body["title"]
    assert TAXII in body["versions"]
    assert all(v.startswith("application/taxii+json") for v in body["versions"])
    assert body["max_content_length"] == settings.max_content_length
    assert isinstance(body["max_content_length"], int)


@pytest.mark.parametrize("path", ["/taxii2/", "/taxii2/{root}/", "/taxii2/{root}/collections/"])
def test_a_bearer_token_is_required(client, settings, path):
    response = client.get(path.format(root=settings.api_root), headers={"Accept": TAXII})
    assert_taxii_error(response, 401)
    assert response.headers["www-authenticate"].lower().startswith("bearer")


def test_a_forged_token_is_refused(client, analyst):
    header, payload, signature = analyst["Authorization"].removeprefix("Bearer ").split(".")
    forged = f"Bearer {header}.{payload}.{signature[:-4]}AAAA"
    assert_taxii_error(client.get("/taxii2/", headers=analyst | {"Authorization": forged}), 401)


@pytest.mark.parametrize(
    "suffix",
    [
        "",
        "collections/",
        "collections/{collection}/",
        "collections/{collection}/objects/",
        "collections/{collection}/manifest/",
        "status/00000000-0000-4000-8000-000000000000/",
    ],
)
def test_unknown_api_root_is_404(client, analyst, collection, suffix):
    response = client.get(f"/taxii2/no-such-root/{suffix.format(collection=collection.id)}", headers=analyst)
    assert_taxii_error(response, 404)


def test_unknown_api_root_refuses_posts_too(client, analyst, collection):
    url = objects_url("/taxii2/no-such-root", collection.id)
    response = client.post(url, headers=analyst | {"Content-Type": TAXII}, content=b'{"objects": []}')
    assert_taxii_error(response, 404)

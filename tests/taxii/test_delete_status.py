"""Delete An Object (TAXII 2.1 section 5.6): analysts only; all versions unless narrowed.

(The status endpoint is covered with Add Objects, in test_add_objects.py.)
"""

from __future__ import annotations

import uuid

import pytest

from app.taxii import service as taxii_service
from tests.taxii.helpers import (
    assert_taxii_error,
    get_ok,
    indicator,
    ipv4,
    manifest_url,
    objects_url,
    post_ok,
    stored_rows,
    taxii_time,
    versions_of,
    versions_url,
)


@pytest.fixture
def posted(client, analyst, api, collection):
    """Indicator A in three versions, and a bystander B."""
    a, b = versions_of(3), indicator()
    post_ok(client, api, collection.id, analyst, [*a, b])
    return a, b


def delete(client, headers, api, collection, object_id, params=None):
    return client.delete(objects_url(api, collection.id, object_id), headers=headers, params=params)


def test_analyst_deletes_every_version_by_default(client, analyst, api, collection, session, posted):
    a, b = posted
    response = delete(client, analyst, api, collection, a[0]["id"])
    assert response.status_code == 200, response.text
    assert stored_rows(session, collection.id, a[0]["id"]) == 0
    assert stored_rows(session, collection.id, b["id"]) == 1
    assert_taxii_error(client.get(objects_url(api, collection.id, a[0]["id"]), headers=analyst), 404)
    assert_taxii_error(client.get(versions_url(api, collection.id, a[0]["id"]), headers=analyst), 404)
    records = get_ok(client, manifest_url(api, collection.id), analyst, {"match[version]": "all"})["objects"]
    assert [r["id"] for r in records] == [b["id"]]
    # Deleting it again: it no longer exists.
    assert_taxii_error(delete(client, analyst, api, collection, a[0]["id"]), 404)


@pytest.mark.parametrize(
    "selector,remaining", [("v2", [0, 2]), ("first", [1, 2]), ("last", [0, 1]), ("v1,v3", [1]), ("all", [])]
)
def test_delete_selected_versions(client, analyst, api, collection, session, posted, selector, remaining):
    a, b = posted
    text = selector
    for index, obj in enumerate(a):
        text = text.replace(f"v{index + 1}", obj["modified"])
    response = delete(client, analyst, api, collection, a[0]["id"], {"match[version]": text})
    assert response.status_code == 200, response.text
    assert stored_rows(session, collection.id, a[0]["id"]) == len(remaining)
    assert stored_rows(session, collection.id, b["id"]) == 1
    if remaining:
        left = get_ok(client, versions_url(api, collection.id, a[0]["id"]), analyst)["versions"]
        assert left == [taxii_time(a[i]["modified"]) for i in remaining]
        last = get_ok(client, objects_url(api, collection.id, a[0]["id"]), analyst)["objects"]
        assert last == [a[remaining[-1]]]
    else:
        assert_taxii_error(client.get(objects_url(api, collection.id, a[0]["id"]), headers=analyst), 404)


def test_delete_spec_version_that_matches_nothing_keeps_everything(client, analyst, api, collection, session, posted):
    a, _ = posted
    response = delete(client, analyst, api, collection, a[0]["id"], {"match[spec_version]": "2.0"})
    assert response.status_code in {200, 404}
    assert stored_rows(session, collection.id, a[0]["id"]) == 3


def test_delete_observable(client, analyst, api, collection, session):
    sco = ipv4("192.0.2.200")
    post_ok(client, api, collection.id, analyst, [sco])
    assert delete(client, analyst, api, collection, sco["id"]).status_code == 200
    assert stored_rows(session, collection.id) == 0


def test_partner_may_not_delete(client, partner_usa, analyst, api, collection, session, posted):
    a, _ = posted
    assert_taxii_error(delete(client, partner_usa, api, collection, a[0]["id"]), 403)
    assert stored_rows(session, collection.id, a[0]["id"]) == 3
    assert len(get_ok(client, versions_url(api, collection.id, a[0]["id"]), analyst)["versions"]) == 3


def test_partner_with_write_right_still_may_not_delete(client, auth, analyst, api, session):
    dropbox = taxii_service.create_collection(
        session,
        title=f"dropbox {uuid.uuid4().hex[:8]}",
        read_roles={"partner", "analyst"},
        write_roles={"partner", "analyst"},
    )
    partner = auth(subject="usa-feed", nation="USA", roles=("partner",))
    obj = indicator()
    post_ok(client, api, dropbox.id, partner, [obj])
    response = client.delete(objects_url(api, dropbox.id, obj["id"]), headers=partner)
    assert_taxii_error(response, 403)
    assert stored_rows(session, dropbox.id) == 1


def test_delete_needs_a_write_grant_on_the_collection(client, analyst, api, session):
    read_only = taxii_service.create_collection(
        session, title=f"read-only {uuid.uuid4().hex[:8]}", read_roles={"analyst"}, write_roles=set()
    )
    response = client.delete(objects_url(api, read_only.id, f"indicator--{uuid.uuid4()}"), headers=analyst)
    assert_taxii_error(response, 403)


@pytest.mark.parametrize(
    "claims", [{"subject": "auditor-1", "roles": ("auditor",)}, {"subject": "admin-1", "roles": ("admin",)}]
)
def test_principals_who_cannot_see_the_collection_get_404(client, auth, api, collection, session, posted, claims):
    a, _ = posted
    assert_taxii_error(delete(client, auth(**claims), api, collection, a[0]["id"]), 404)
    assert stored_rows(session, collection.id) == 4


def test_delete_unknown_object_is_404(client, analyst, api, collection, session, posted):
    assert_taxii_error(delete(client, analyst, api, collection, f"indicator--{uuid.uuid4()}"), 404)
    assert stored_rows(session, collection.id) == 4


def test_delete_in_another_collection_does_not_touch_this_one(client, analyst, api, collection, session, posted):
    a, _ = posted
    other = taxii_service.create_collection(
        session, title=f"other {uuid.uuid4().hex[:8]}", read_roles={"analyst"}, write_roles={"analyst"}
    )
    assert_taxii_error(client.delete(objects_url(api, other.id, a[0]["id"]), headers=analyst), 404)
    assert stored_rows(session, collection.id, a[0]["id"]) == 3


@pytest.mark.parametrize(
    "params",
    [
        {"match[type]": "indicator"},
        {"match[id]": "x"},
        {"limit": "1"},
        {"added_after": "2020-01-01T00:00:00Z"},
        {"match[version]": "newest"},
        {"match[version]": ""},
    ],
)
def test_delete_with_bad_parameters_is_400_and_deletes_nothing(
    client, analyst, api, collection, session, posted, params
):
    a, _ = posted
    assert_taxii_error(delete(client, analyst, api, collection, a[0]["id"], params), 400)
    assert stored_rows(session, collection.id) == 4


def test_unauthenticated_delete_is_401(client, api, collection, session, posted):
    a, _ = posted
    assert_taxii_error(client.delete(objects_url(api, collection.id, a[0]["id"])), 401)
    assert stored_rows(session, collection.id) == 4

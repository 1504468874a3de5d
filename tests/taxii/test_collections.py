"""Collections (TAXII 2.1 sections 5.1, 5.2): what each requester is told, and what it may do.

`can_read`/`can_write` are computed per requester from the Casbin role rights and the roles the
collection grants; a collection the requester may neither read nor write answers 404 exactly as a
collection that does not exist, and is left out of the list (DESIGN.md sections 2 and 5).
"""

from __future__ import annotations

import uuid

import pytest

from app.taxii import service as taxii_service
from tests.taxii.helpers import (
    STIX_MEDIA_TYPE,
    assert_taxii_error,
    collection_url,
    get_ok,
    indicator,
    manifest_url,
    objects_url,
    post_envelope,
    post_ok,
    stored_rows,
    versions_url,
)

PRINCIPALS = {
    "analyst": {},
    "partner": {"subject": "usa-feed", "nation": "USA", "roles": ("partner",)},
    "auditor": {"subject": "auditor-1", "roles": ("auditor",)},
    "admin": {"subject": "admin-1", "roles": ("admin",)},
    "analyst+auditor": {"subject": "analyst-2", "roles": ("analyst", "auditor")},
}

# Collections by the roles they grant: (read roles, write roles).
GRANTS = {
    "shared": ({"partner", "analyst"}, {"analyst"}),
    "home-only": ({"analyst"}, {"analyst"}),
    "partner-dropbox": ({"analyst"}, {"partner", "analyst"}),
    "partner-exchange": ({"partner"}, {"partner"}),
    "staff": ({"auditor", "admin", "analyst"}, {"admin"}),
    "nobody": (set(), set()),
}

# What each principal is told about each collection: (can_read, can_write), or None for "not there".
# Auditors and admins hold no TAXII read/write right, so a grant to their role gives them nothing.
EXPECTED = {
    ("analyst", "shared"): (True, True),
    ("analyst", "home-only"): (True, True),
    ("analyst", "partner-dropbox"): (True, True),
    ("analyst", "partner-exchange"): None,
    ("analyst", "staff"): (True, False),
    ("analyst", "nobody"): None,
    ("partner", "shared"): (True, False),
    ("partner", "home-only"): None,
    ("partner", "partner-dropbox"): (False, True),
    ("partner", "partner-exchange"): (True, True),
    ("partner", "staff"): None,
    ("partner", "nobody"): None,
    ("analyst+auditor", "staff"): (True, False),
    ("analyst+auditor", "partner-dropbox"): (True, True),
}
for _who in ("auditor", "admin"):
    for _name in GRANTS:
        EXPECTED[(_who, _name)] = None


@pytest.fixture
def collections(session) -> dict[str, str]:
    """One fresh collection per grant pattern, by name: its id."""
    created = {}
    for name, (read_roles, write_roles) in GRANTS.items():
        created[name] = taxii_service.create_collection(
            session,
            title=f"{name} {uuid.uuid4().hex[:8]}",
            description=f"the {name} collection",
            read_roles=read_roles,
            write_roles=write_roles,
        ).id
    return created


def test_collections_list_is_computed_per_requester(client, auth, api, collections):
    for who, claims in PRINCIPALS.items():
        body = get_ok(client, f"{api}/collections/", auth(**claims))
        listed = {c["id"]: c for c in body.get("collections", [])}
        for name, collection_id in collections.items():
            expected = EXPECTED.get((who, name), "unspecified")
            if expected == "unspecified":
                continue
            if expected is None:
                assert collection_id not in listed, (who, name)
                continue
            resource = listed.get(collection_id)
            assert resource is not None, (who, name)
            assert resource["can_read"] is expected[0] and resource["can_write"] is expected[1], (who, name, resource)
        for resource in listed.values():
            assert resource["can_read"] or resource["can_write"], "a listed collection must be usable"


@pytest.mark.parametrize("who,name", sorted(k for k, v in EXPECTED.items() if v is not None))
def test_single_collection_matches_its_list_entry(client, auth, api, collections, who, name):
    headers = auth(**PRINCIPALS[who])
    resource = get_ok(client, collection_url(api, collections[name]), headers)
    assert resource["id"] == collections[name]
    assert resource["title"].startswith(name)
    assert (resource["can_read"], resource["can_write"]) == EXPECTED[(who, name)]
    assert type(resource["can_read"]) is bool and type(resource["can_write"]) is bool
    assert STIX_MEDIA_TYPE in resource["media_types"]
    listed = {c["id"]: c for c in get_ok(client, f"{api}/collections/", headers)["collections"]}
    assert listed[collections[name]] == resource


@pytest.mark.parametrize("who,name", sorted(k for k, v in EXPECTED.items() if v is None))
def test_unusable_collection_is_indistinguishable_from_a_missing_one(client, auth, api, collections, who, name):
    headers = auth(**PRINCIPALS[who])
    hidden_id, missing_id = collections[name], str(uuid.uuid4())
    for path in (collection_url, objects_url, manifest_url):
        hidden = client.get(path(api, hidden_id), headers=headers)
        missing = client.get(path(api, missing_id), headers=headers)
        assert_taxii_error(hidden, 404)
        assert_taxii_error(missing, 404)
        assert hidden.json() == missing.json()
        assert name not in hidden.text


def test_principal_without_collections_gets_an_empty_resource(client, auth, api, collections):
    body = get_ok(client, f"{api}/collections/", auth(**PRINCIPALS["admin"]))
    assert "collections" not in body


def test_write_only_collection_refuses_reads_with_403(client, auth, analyst, api, collections, session):
    partner = auth(**PRINCIPALS["partner"])
    dropbox = collections["partner-dropbox"]
    obj = indicator()
    post_ok(client, api, dropbox, partner, [obj])
    assert stored_rows(session, dropbox) == 1
    for url in (
        objects_url(api, dropbox),
        manifest_url(api, dropbox),
        objects_url(api, dropbox, obj["id"]),
        versions_url(api, dropbox, obj["id"]),
    ):
        assert_taxii_error(client.get(url, headers=partner), 403)
    # The home analyst may read the collection (what it sees of partner items is the releasability rule's call).
    get_ok(client, objects_url(api, dropbox), analyst)


def test_posting_to_a_hidden_collection_is_404_and_stores_nothing(client, auth, api, collections, session):
    partner = auth(**PRINCIPALS["partner"])
    hidden = collections["home-only"]
    response = post_envelope(client, api, hidden, partner, [indicator()])
    assert_taxii_error(response, 404)
    assert stored_rows(session, hidden) == 0


def test_read_only_collection_refuses_writes_with_403(client, auth, api, collections, session):
    partner = auth(**PRINCIPALS["partner"])
    shared = collections["shared"]
    response = post_envelope(client, api, shared, partner, [indicator()])
    assert_taxii_error(response, 403)
    assert stored_rows(session, shared) == 0


def test_partner_of_another_nation_sees_the_same_grants(client, auth, api, collections):
    gbr = auth(subject="gbr-feed", nation="GBR", roles=("partner",))
    listed = {c["id"]: c for c in get_ok(client, f"{api}/collections/", gbr)["collections"]}
    assert (listed[collections["shared"]]["can_read"], listed[collections["shared"]]["can_write"]) == (True, False)
    assert collections["home-only"] not in listed

"""Finding items: each filter, keyset paging with bound cursors, and who may search."""

from __future__ import annotations

import pytest

from tests.items.api_helpers import assert_problem, post_simple


def _find(client, headers, **params) -> dict:
    response = client.get("/api/v1/items", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _ids(client, headers, **params) -> set[str]:
    return {item["id"] for item in _find(client, headers, **params)["items"]}


@pytest.fixture
def catalogue(client, home, collection) -> dict[str, dict]:
    """Five items in a fresh collection, different in every filtered field."""
    posts = {
        "secret_usa": {
            "type": "indicator",
            "name": "Lantern beacon",
            "pattern": "[ipv4-addr:value = '192.0.2.1']",
            "banner": "SECRET//REL TO USA",
        },
        "nato": {
            "type": "malware",
            "name": "Harbour loader",
            "description": "Loader seen in the LANTERN wave",
            "banner": "RESTRICTED//REL TO NATO",
        },
        "noforn": {"type": "malware", "name": "Quiet RAT", "banner": "SECRET//NOFORN"},
        "public": {"type": "vulnerability", "name": "CVE-2026-1234", "banner": "UNCLASSIFIED//REL TO ALL"},
        "actor": {"type": "threat-actor", "name": "COBALT 100%_sure", "banner": "CONFIDENTIAL//REL TO FVEY"},
    }
    return {key: post_simple(client, home, collection.id, **form) for key, form in posts.items()}


def test_filters(client, home, collection, catalogue):
    ids = {key: item["id"] for key, item in catalogue.items()}
    scope = {"collection": collection.id}
    assert _ids(client, home, **scope) == set(ids.values())
    assert _ids(client, home, type="malware", **scope) == {ids["nato"], ids["noforn"]}
    assert _ids(client, home, banner="RESTRICTED//REL TO NATO", **scope) == {ids["nato"]}
    assert _ids(client, home, banner="R//REL TO NATO, NLD", **scope) == {ids["nato"]}  # any spelling of the label
    # Releasable-to asks the TAXII decision: CAN is NATO and FVEY but cleared RESTRICTED only.
    assert _ids(client, home, releasable_to="CAN", **scope) == {ids["nato"], ids["public"]}
    assert _ids(client, home, releasable_to="USA", **scope) == {
        ids["secret_usa"],
        ids["nato"],
        ids["public"],
        ids["actor"],
    }
    assert _ids(client, home, q="lantern", **scope) == {ids["secret_usa"], ids["nato"]}  # name or description
    assert _ids(client, home, q="100%_", **scope) == {ids["actor"]}  # LIKE wildcards are literal
    assert _ids(client, home, originator="NLD", **scope) == set(ids.values())
    assert _ids(client, home, originator="USA", **scope) == set()
    created = catalogue["public"]["object"]["created"]
    assert ids["public"] in _ids(client, home, created_after=created, **scope)
    assert ids["secret_usa"] not in _ids(client, home, created_after=created, **scope)
    assert _ids(client, home, modified_before=catalogue["secret_usa"]["object"]["modified"], **scope) == set()
    assert _ids(client, home, collection="no-such-collection") == set()


def test_only_the_newest_version_is_listed(client, home, collection, catalogue):
    item = catalogue["nato"]
    client.post(f"/api/v1/items/{item['id']}/versions", headers=home, json={"changes": {"name": "Harbour v2"}})
    found = [i for i in _find(client, home, collection=collection.id)["items"] if i["id"] == item["id"]]
    assert [i["object"]["name"] for i in found] == ["Harbour v2"]
    assert _ids(client, home, q="Harbour loader", collection=collection.id) == set()


def test_keyset_paging_walks_everything_once(client, home, collection, catalogue):
    seen, params = [], {"collection": collection.id, "limit": 2}
    while True:
        page = _find(client, home, **params)
        seen += [item["id"] for item in page["items"]]
        assert len(page["items"]) <= 2
        if not page["more"]:
            assert page["next"] is None
            break
        params["next"] = page["next"]
    assert sorted(seen) == sorted(item["id"] for item in catalogue.values())
    assert seen[0] == catalogue["actor"]["id"]  # newest first


def test_cursors_are_bound_to_the_filters_and_the_principal(client, headers_for, home, collection, catalogue):
    page = _find(client, home, collection=collection.id, limit=1)
    assert page["more"]
    assert_problem(
        client.get(
            "/api/v1/items", headers=home, params={"collection": collection.id, "type": "malware", "next": page["next"]}
        ),
        400,
    )
    other = headers_for(subject="analyst-2")
    assert_problem(
        client.get("/api/v1/items", headers=other, params={"collection": collection.id, "next": page["next"]}), 400
    )
    assert_problem(client.get("/api/v1/items", headers=home, params={"next": "garbage"}), 400)


def test_bad_filters_are_refused_with_their_names(client, home):
    assert_problem(client.get("/api/v1/items", headers=home, params={"banner": "SECRET//REL TO MORDOR"}), 400, "banner")
    assert_problem(client.get("/api/v1/items", headers=home, params={"releasable_to": "ZZZ"}), 400, "releasable_to")
    assert_problem(
        client.get("/api/v1/items", headers=home, params={"created_after": "last week"}), 400, "created_after"
    )
    assert_problem(client.get("/api/v1/items", headers=home, params={"limit": 0}), 400, "limit")


def test_lowered_clearance_searches_less(client, headers_for, collection, catalogue):
    junior = headers_for(subject="junior", clearance="RESTRICTED")
    assert _ids(client, junior, collection=collection.id) == {catalogue["nato"]["id"], catalogue["public"]["id"]}


def test_partners_may_not_search(client, headers_for):
    assert_problem(client.get("/api/v1/items", headers=headers_for(subject="x", nation="USA", roles=("partner",))), 403)

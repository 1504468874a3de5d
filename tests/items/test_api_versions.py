"""Versions, revocation and history through the analyst API; the third-party rule on partners' items."""

from __future__ import annotations

import json
import uuid

from tests.conftest import TAXII
from tests.items.api_helpers import (
    assert_problem,
    assert_valid_stix,
    counts,
    post_simple,
    statement,
    taxii_objects,
)


def _history(client, headers, object_id, **params) -> list[dict]:
    response = client.get(f"/api/v1/items/{object_id}/versions", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()["versions"]


def test_update_makes_a_new_version_with_a_new_label(client, home, collection):
    item = post_simple(
        client, home, collection.id, type="malware", name="LANTERN", description="first", banner="SECRET//REL TO USA"
    )
    response = client.post(
        f"/api/v1/items/{item['id']}/versions",
        headers=home,
        json={"changes": {"description": "second"}, "banner": "CONFIDENTIAL//REL TO NATO"},
    )
    assert response.status_code == 201, response.text
    new = response.json()
    assert_valid_stix(new["object"])
    assert new["object"]["description"] == "second" and new["banner"] == "CONFIDENTIAL//REL TO NLD, NATO"
    assert new["object"]["modified"] > item["object"]["modified"]
    assert new["object"]["created"] == item["object"]["created"]
    versions = _history(client, home, item["id"])
    assert [v["object"]["description"] for v in versions] == ["first", "second"]
    assert [v["banner"] for v in versions] == ["SECRET//REL TO NLD, USA", "CONFIDENTIAL//REL TO NLD, NATO"]
    latest = client.get(f"/api/v1/items/{item['id']}", headers=home).json()
    assert latest["version"] == new["version"]


def test_update_can_remove_and_relabel_fields(client, home, collection):
    item = post_simple(
        client,
        home,
        collection.id,
        type="malware",
        name="x",
        description="d",
        banner="SECRET",
        field_banners={"description": "SECRET//NOFORN"},
    )
    new = client.post(
        f"/api/v1/items/{item['id']}/versions", headers=home, json={"remove": ["description"], "field_banners": {}}
    ).json()
    assert "description" not in new["object"] and "granular_markings" not in new["object"]


def test_refused_updates_store_nothing(client, session, home, collection):
    item = post_simple(
        client,
        home,
        collection.id,
        type="indicator",
        name="x",
        pattern="[ipv4-addr:value = '1.2.3.4']",
        banner="SECRET",
    )
    before = counts(session)
    url = f"/api/v1/items/{item['id']}/versions"
    assert_problem(
        client.post(url, headers=home, json={"changes": {"created": "2020-01-01T00:00:00.000Z"}}),
        422,
        "changes.created",
    )
    assert_problem(client.post(url, headers=home, json={"banner": "SECRET//REL TO NARNIA"}), 422, "banner")
    assert_problem(client.post(url, headers=home, json={"changes": {"pattern": "[nonsense"}}), 422, "changes.pattern")
    assert_problem(client.post(url, headers=home, json={"remove": ["pattern"]}), 422, "changes.pattern")
    assert_problem(client.post(f"/api/v1/items/indicator--{uuid.uuid4()}/versions", headers=home, json={}), 404)
    assert counts(session) == before
    assert len(_history(client, home, item["id"])) == 1


def test_revoke_and_history(client, home, collection):
    item = post_simple(client, home, collection.id, type="campaign", name="Invoice wave", banner="SECRET")
    response = client.post(f"/api/v1/items/{item['id']}/revoke", headers=home, json={})
    assert response.status_code == 201, response.text
    revoked = response.json()
    assert revoked["revoked"] is True and revoked["object"]["revoked"] is True
    assert_valid_stix(revoked["object"])
    assert [v["revoked"] for v in _history(client, home, item["id"])] == [False, True]
    assert_problem(client.post(f"/api/v1/items/{item['id']}/revoke", headers=home), 409)


def test_observables_are_not_versioned(client, home, collection):
    item = post_simple(client, home, collection.id, type="ipv4-addr", value="203.0.113.200", banner="SECRET")
    assert_problem(client.post(f"/api/v1/items/{item['id']}/revoke", headers=home), 409)
    assert_problem(client.post(f"/api/v1/items/{item['id']}/versions", headers=home, json={}), 409)


def _push_as_usa(client, api, collection_id, headers_for, banner: str) -> dict:
    marking = statement(banner)
    indicator = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.uuid4()}",
        "created": "2026-02-01T00:00:00.000Z",
        "modified": "2026-02-01T00:00:00.000Z",
        "name": "from USA",
        "pattern": "[ipv4-addr:value = '192.0.2.44']",
        "pattern_type": "stix",
        "valid_from": "2026-02-01T00:00:00Z",
        "object_marking_refs": [marking["id"]],
    }
    usa = headers_for(subject="usa-feed", nation="USA", roles=("partner",))
    response = client.post(
        f"{api}/collections/{collection_id}/objects/",
        headers=usa | {"Accept": TAXII, "Content-Type": TAXII},
        content=json.dumps({"objects": [marking, indicator]}),
    )
    assert response.status_code == 202 and response.json()["failure_count"] == 0, response.text
    return indicator


def test_third_party_rule_on_partner_items(client, session, api, headers_for, home, shared):
    pushed = _push_as_usa(client, api, shared.id, headers_for, "SECRET//REL TO USA, GBR")
    url = f"/api/v1/items/{pushed['id']}/versions"
    before = counts(session)
    for wider in ("SECRET//REL TO USA, GBR, FRA", "CONFIDENTIAL//REL TO USA, GBR", "SECRET//REL TO ALL"):
        body = assert_problem(client.post(url, headers=home, json={"banner": wider}), 422)
        assert "third-party" in body["detail"]
    assert counts(session) == before
    narrower = client.post(url, headers=home, json={"banner": "SECRET//REL TO GBR", "changes": {"name": "edited"}})
    assert narrower.status_code == 201, narrower.text
    assert narrower.json()["originator"] == "USA" and narrower.json()["submitter"] == "NLD"
    assert narrower.json()["banner"] == "SECRET//REL TO USA, GBR"
    # Partners are served the new version by the same rule: USA (originator) and GBR yes, FRA no.
    ref = narrower.json()["object"]["object_marking_refs"][0]
    for nation, expected in (("USA", True), ("GBR", True), ("FRA", False)):
        served = taxii_objects(
            client, api, shared.id, headers_for(subject=f"{nation}-feed", nation=nation, roles=("partner",))
        )
        names = {o.get("name") for o in served if o["id"] == pushed["id"]}
        assert ("edited" in names) is expected, nation
        assert (ref in {o["id"] for o in served}) is expected, nation  # the definition travels with it
    # Without a new banner the originator's label is kept, and the version is accepted.
    kept = client.post(f"/api/v1/items/{pushed['id']}/revoke", headers=home)
    assert kept.status_code == 201 and kept.json()["originator"] == "USA"

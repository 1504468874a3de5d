"""Tearlines: a derived object at a lower label reaches partners through TAXII; the original never does."""

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


def _partner(headers_for, nation: str) -> dict:
    return headers_for(subject=f"{nation.lower()}-feed", nation=nation, roles=("partner",))


def _usa_malware(client, api: str, headers_for, collection_id: str, name: str, day: str) -> dict:
    """USA pushes its own malware object, marked SECRET//REL TO USA, GBR, through TAXII; returns it."""
    marking = statement("SECRET//REL TO USA, GBR")
    pushed = {
        "type": "malware",
        "spec_version": "2.1",
        "id": f"malware--{uuid.uuid4()}",
        "created": f"{day}T00:00:00.000Z",
        "modified": f"{day}T00:00:00.000Z",
        "name": name,
        "is_family": True,
        "object_marking_refs": [marking["id"]],
    }
    response = client.post(
        f"{api}/collections/{collection_id}/objects/",
        headers=_partner(headers_for, "USA") | {"Accept": TAXII, "Content-Type": TAXII},
        content=json.dumps({"objects": [marking, pushed]}),
    )
    assert response.status_code == 202 and response.json()["failure_count"] == 0, response.text
    return pushed


def _secret_indicator(client, home, collection_id) -> dict:
    return post_simple(
        client,
        home,
        collection_id,
        type="indicator",
        name="Lantern C2",
        description="Source: liaison officer in Ankara",
        pattern="[ipv4-addr:value = '192.0.2.80']",
        banner="SECRET//REL TO USA, GBR",
        field_banners={"description": "SECRET//NOFORN", "name": "UNCLASSIFIED//REL TO ALL"},
    )


def test_tearline_is_served_to_a_partner_that_cannot_see_the_original(client, api, headers_for, home, collection):
    original = _secret_indicator(client, home, collection.id)
    response = client.post(
        f"/api/v1/items/{original['id']}/tearlines", headers=home, json={"banner": "RESTRICTED//REL TO NATO"}
    )
    assert response.status_code == 201, response.text
    result = response.json()
    derived, relationship = result["derived"]["object"], result["relationship"]["object"]
    assert result["removed"] == ["description"]
    assert "description" not in derived and derived["name"] == "Lantern C2"
    assert derived["pattern"] == original["object"]["pattern"] and derived["id"] != original["id"]
    assert result["derived"]["banner"] == "RESTRICTED//REL TO NLD, NATO"
    assert relationship["relationship_type"] == "derived-from"
    assert (relationship["source_ref"], relationship["target_ref"]) == (derived["id"], original["id"])
    for each in result["stored"]:
        assert_valid_stix(each["object"])

    # Canada (NATO, cleared RESTRICTED) gets the derived object over TAXII, and nothing that names the original.
    can = _partner(headers_for, "CAN")
    served = taxii_objects(client, api, collection.id, can)
    served_ids = {o["id"] for o in served}
    assert derived["id"] in served_ids
    assert original["id"] not in served_ids and relationship["id"] not in served_ids
    assert original["id"] not in json.dumps(served)
    by_id = client.get(f"{api}/collections/{collection.id}/objects/{original['id']}/", headers=can | {"Accept": TAXII})
    assert by_id.status_code == 404
    # The USA may see the original, so it also gets the relationship (and the original without its NOFORN field).
    usa_served = {o["id"]: o for o in taxii_objects(client, api, collection.id, _partner(headers_for, "USA"))}
    assert {original["id"], derived["id"], relationship["id"]} <= usa_served.keys()
    assert "description" not in usa_served[original["id"]]


def test_a_required_property_above_the_target_refuses_the_tearline(client, session, home, collection):
    item = post_simple(
        client,
        home,
        collection.id,
        type="indicator",
        name="x",
        pattern="[ipv4-addr:value = '192.0.2.81']",
        banner="SECRET//REL TO USA",
        field_banners={"pattern": "SECRET//REL TO USA"},
    )
    before = counts(session)
    body = assert_problem(
        client.post(f"/api/v1/items/{item['id']}/tearlines", headers=home, json={"banner": "RESTRICTED//REL TO NATO"}),
        422,
        "banner",
    )
    assert "pattern" in body["detail"]
    assert counts(session) == before


def test_bad_targets_and_unknown_items(client, session, home, collection):
    item = _secret_indicator(client, home, collection.id)
    before = counts(session)
    url = f"/api/v1/items/{item['id']}/tearlines"
    body = assert_problem(client.post(url, headers=home, json={"banner": "RESTRICTED//REL TO ATLANTIS"}), 422, "banner")
    assert "'ATLANTIS'" in body["detail"]
    assert_problem(
        client.post(f"/api/v1/items/indicator--{uuid.uuid4()}/tearlines", headers=home, json={"banner": "RESTRICTED"}),
        404,
    )
    assert_problem(
        client.post(url, headers=home, json={"banner": "RESTRICTED", "version": "2001-01-01T00:00:00Z"}), 404
    )
    assert counts(session) == before


def test_partner_items_cannot_be_released_wider_than_their_originator_allows(
    client, session, api, headers_for, home, shared
):
    pushed = _usa_malware(client, api, headers_for, shared.id, "USA's malware", "2026-03-01")
    url = f"/api/v1/items/{pushed['id']}/tearlines"
    before = counts(session)
    for wider in ("RESTRICTED//REL TO NATO", "SECRET//REL TO USA, GBR, CAN", "CONFIDENTIAL//REL TO USA, GBR"):
        body = assert_problem(client.post(url, headers=home, json={"banner": wider}), 422, "banner")
        assert "USA" in body["detail"]
    assert counts(session) == before
    inside = client.post(url, headers=home, json={"banner": "SECRET//REL TO GBR, USA"})
    assert inside.status_code == 201, inside.text
    assert inside.json()["derived"]["originator"] == "NLD"
    # The derived object carries the USA's content: it stays inside the USA's release however it is relabelled.
    derived_id = inside.json()["derived"]["id"]
    before = counts(session)
    assert_problem(
        client.post(f"/api/v1/items/{derived_id}/tearlines", headers=home, json={"banner": "RESTRICTED//REL TO NATO"}),
        422,
        "banner",
    )
    assert_problem(
        client.post(f"/api/v1/items/{derived_id}/versions", headers=home, json={"banner": "SECRET//REL TO ALL"}),
        422,
        "banner",
    )
    assert counts(session) == before
    relabelled = client.post(
        f"/api/v1/items/{derived_id}/versions", headers=home, json={"banner": "SECRET//REL TO GBR"}
    )
    assert relabelled.status_code == 201, relabelled.text


def test_full_stix_versions_of_a_partner_derived_object_stay_inside(client, session, api, headers_for, home, shared):
    pushed = _usa_malware(client, api, headers_for, shared.id, "USA's other malware", "2026-03-02")
    derived = client.post(
        f"/api/v1/items/{pushed['id']}/tearlines", headers=home, json={"banner": "SECRET//REL TO USA"}
    ).json()["derived"]["object"]
    wide = statement("UNCLASSIFIED//REL TO ALL")
    relabelled = derived | {"modified": "2030-01-01T00:00:00.000Z", "object_marking_refs": [wide["id"]]}
    bundle = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": [wide, relabelled]}
    before = counts(session)
    assert_problem(
        client.post("/api/v1/items/stix", headers=home, json={"collection": shared.id, "stix": bundle}),
        422,
        "stix.objects[1].object_marking_refs",
    )
    assert counts(session) == before


def test_taxii_versions_of_a_partner_derived_object_stay_inside(client, session, api, headers_for, home, shared):
    """The third-party rule holds on every route: TAXII ingest refuses a tearline relabelled wider than its source."""
    pushed = _usa_malware(client, api, headers_for, shared.id, "USA's third malware", "2026-03-03")
    taxii = {"Accept": TAXII, "Content-Type": TAXII}
    derived = client.post(
        f"/api/v1/items/{pushed['id']}/tearlines", headers=home, json={"banner": "SECRET//REL TO USA"}
    ).json()["derived"]["object"]
    objects_url = f"{api}/collections/{shared.id}/objects/"
    before = counts(session)
    for banner in ("UNCLASSIFIED//REL TO ALL", "SECRET//REL TO USA, GBR, CAN", "CONFIDENTIAL//REL TO USA, GBR"):
        wide = statement(banner)
        relabelled = derived | {"modified": "2030-01-01T00:00:00.000Z", "object_marking_refs": [wide["id"]]}
        status = client.post(
            objects_url, headers=home | taxii, content=json.dumps({"objects": [wide, relabelled]})
        ).json()
        refused = {f["id"]: f["message"] for f in status.get("failures", [])}
        assert status["failure_count"] == 1 and relabelled["id"] in refused, status
        assert refused[relabelled["id"]].startswith("third-party rule:") and "USA" in refused[relabelled["id"]]
    # Only the banners' definitions were stored (they mark nothing); no version of the derived object was.
    assert counts(session)[0] == before[0] + 3
    history = client.get(f"/api/v1/items/{derived['id']}/versions", headers=home).json()["versions"]
    assert len(history) == 1 and not history[0]["version"].startswith("2030"), history
    inside = statement("SECRET//REL TO GBR, USA")
    narrower = derived | {"modified": "2030-01-02T00:00:00.000Z", "object_marking_refs": [inside["id"]]}
    status = client.post(objects_url, headers=home | taxii, content=json.dumps({"objects": [inside, narrower]})).json()
    assert status["failure_count"] == 0 and status["success_count"] == 2, status

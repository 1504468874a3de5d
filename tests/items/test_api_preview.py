"""Preview: per partner, the version TAXII would serve and the properties it would lose, checked against TAXII."""

from __future__ import annotations

import uuid

from tests.conftest import PARTNERS, TAXII
from tests.items.api_helpers import assert_problem, post_simple


def _taxii_last(client, api, collection_id, headers_for, nation, object_id) -> dict | None:
    headers = headers_for(subject=f"{nation.lower()}-feed", nation=nation, roles=("partner",)) | {"Accept": TAXII}
    response = client.get(f"{api}/collections/{collection_id}/objects/{object_id}/", headers=headers)
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    (obj,) = response.json()["objects"]
    return obj


def test_preview_matches_what_taxii_serves(client, api, headers_for, home, collection):
    item = post_simple(
        client,
        home,
        collection.id,
        type="malware",
        name="Quiet RAT",
        description="from HUMINT",
        banner="SECRET//REL TO USA, GBR, FRA",
        field_banners={"description": "SECRET//REL TO USA"},
    )
    second = client.post(
        f"/api/v1/items/{item['id']}/versions",
        headers=home,
        json={"changes": {"name": "Quiet RAT v2"}, "banner": "SECRET//REL TO USA"},
    ).json()
    response = client.get(f"/api/v1/items/{item['id']}/preview", headers=home)
    assert response.status_code == 200, response.text
    preview = response.json()
    everyone = {view["nation"]: view for view in preview["partners"]}
    # Other tests may register inactive partners in the shared database: they are listed, served nothing.
    assert all(view["served_version"] is None for view in everyone.values() if not view["active"])
    views = {nation: view for nation, view in everyone.items() if view["active"]}
    assert set(views) == {nation for nation, _, _ in PARTNERS}
    assert views["USA"]["served_version"] == second["version"] and views["USA"]["redacted"] == []
    # The second version, for USA only, withdrew the first from GBR (docs/design.md section 7b).
    assert views["GBR"]["served_version"] is None and views["GBR"]["visible_versions"] == []
    assert views["USA"]["visible_versions"] == [item["version"], second["version"]]
    for nation in ("FRA", "DEU", "CAN"):  # FRA is named, but cleared CONFIDENTIAL only
        assert views[nation]["served_version"] is None and views[nation]["visible_versions"] == []
    # The same decision as TAXII, partner by partner.
    for nation, view in views.items():
        served = _taxii_last(client, api, collection.id, headers_for, nation, item["id"])
        if view["served_version"] is None:
            assert served is None, nation
        else:
            assert served["modified"][:23] == view["served_version"][:23], nation
            assert all(prop not in served for prop in view["redacted"]), nation
            assert "description" in served or "description" in view["redacted"], nation


def test_preview_honours_collection_access(client, session, api, headers_for, home):
    from app.taxii import admin
    from app.taxii.admin import CollectionIn

    only_gbr = admin.create(
        session,
        CollectionIn(
            title=f"gbr only {uuid.uuid4().hex[:6]}",
            read_roles=["partner", "analyst"],
            write_roles=["analyst"],
            read_partners=["GBR"],
        ),
    )
    item = post_simple(client, home, only_gbr.id, type="malware", name="x", banner="UNCLASSIFIED//REL TO ALL")
    views = {v["nation"]: v for v in client.get(f"/api/v1/items/{item['id']}/preview", headers=home).json()["partners"]}
    assert views["GBR"]["can_read_collection"] and views["GBR"]["served_version"] == item["version"]
    assert not views["USA"]["can_read_collection"] and views["USA"]["served_version"] is None
    assert _taxii_last(client, api, only_gbr.id, headers_for, "USA", item["id"]) is None
    assert _taxii_last(client, api, only_gbr.id, headers_for, "GBR", item["id"]) is not None


def test_preview_of_unknown_items_and_by_partners(client, headers_for, home):
    assert_problem(client.get(f"/api/v1/items/malware--{uuid.uuid4()}/preview", headers=home), 404)
    partner = headers_for(subject="usa-feed", nation="USA", roles=("partner",))
    assert_problem(client.get(f"/api/v1/items/malware--{uuid.uuid4()}/preview", headers=partner), 403)


def test_a_lowered_clearance_previews_only_what_it_may_see(client, headers_for, home, collection):
    item = post_simple(
        client,
        home,
        collection.id,
        type="malware",
        name="x",
        banner="RESTRICTED//REL TO NATO",
        description="d",
        field_banners={"description": "SECRET//REL TO USA"},
    )
    client.post(
        f"/api/v1/items/{item['id']}/versions",
        headers=home,
        json={"changes": {"name": "y"}, "banner": "SECRET//REL TO USA, GBR"},
    )
    junior = headers_for(subject="junior", clearance="RESTRICTED")
    preview = client.get(f"/api/v1/items/{item['id']}/preview", headers=junior).json()
    assert preview["limited_to_your_clearance"] is True
    usa = next(v for v in preview["partners"] if v["nation"] == "USA")
    gbr = next(v for v in preview["partners"] if v["nation"] == "GBR")
    # The SECRET version and the SECRET description are above the junior's clearance: never mentioned.
    assert usa["visible_versions"] == [item["version"]] and usa["served_version"] == item["version"]
    assert gbr["redacted"] == []
    full = client.get(f"/api/v1/items/{item['id']}/preview", headers=home).json()
    assert full["limited_to_your_clearance"] is False
    assert next(v for v in full["partners"] if v["nation"] == "GBR")["redacted"] == ["description"]

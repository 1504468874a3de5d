"""Posting items: the simple form becomes valid STIX 2.1; full STIX keeps its markings; refusals store nothing."""

from __future__ import annotations

import uuid

import pytest

from app.items.identity import home_identity_id
from app.markings.labels import canonical_banner, label_marking_id, parse_banner
from tests.conftest import HOME
from tests.items.api_helpers import (
    assert_problem,
    assert_valid_stix,
    counts,
    post_simple,
    statement,
)

SOME_ID = "malware--2c37eae4-1907-4eea-afae-d6856a135def"
SIMPLE_FORMS = {
    "indicator": {"name": "Phish sender", "description": "sender", "pattern": "[email-addr:value = 'a@b.example']"},
    "malware": {"name": "LANTERN RAT", "is_family": True},
    "threat-actor": {"name": "COBALT LANTERN"},
    "intrusion-set": {"name": "LANTERN set"},
    "campaign": {"name": "Invoice wave"},
    "attack-pattern": {"name": "Spearphishing attachment"},
    "vulnerability": {"name": "CVE-2026-0001"},
    "report": {"name": "Weekly", "object_refs": [SOME_ID]},
    "note": {"description": "Seen again on Monday.", "object_refs": [SOME_ID]},
    "sighting": {"sighting_of_ref": "indicator--2c37eae4-1907-4eea-afae-d6856a135def"},
    "relationship": {
        "relationship_type": "uses",
        "source_ref": "threat-actor--2c37eae4-1907-4eea-afae-d6856a135def",
        "target_ref": SOME_ID,
    },
    "ipv4-addr": {"value": "203.0.113.77"},
    "domain-name": {"value": "lantern-mirror.example"},
    "url": {"value": "https://lantern-mirror.example/invoice"},
}


def label_id_of(app, banner: str) -> str:
    mappings = app.state.mappings
    return label_marking_id(canonical_banner(parse_banner(banner, originator=HOME, mappings=mappings), mappings))


@pytest.mark.parametrize("stix_type", sorted(SIMPLE_FORMS))
def test_simple_form_round_trips_to_valid_stix(client, app, home, collection, stix_type):
    banner = "SECRET//REL TO USA, GBR"
    response = client.post(
        "/api/v1/items",
        headers=home,
        json={"type": stix_type, "banner": banner, "collection": collection.id} | SIMPLE_FORMS[stix_type],
    )
    assert response.status_code == 201, response.text
    stored = response.json()["stored"]
    item = stored[-1]
    obj = item["object"]
    for each in stored:
        assert_valid_stix(each["object"])
    assert obj["type"] == stix_type and obj["spec_version"] == "2.1"
    assert obj["object_marking_refs"] == [label_id_of(app, banner)]
    assert item["banner"] == "SECRET//REL TO NLD, GBR, USA" and item["originator"] == HOME
    if "created" in obj:  # SDOs and SROs; cyber observables have no creator
        assert obj["created_by_ref"] == home_identity_id(HOME)
        assert home_identity_id(HOME) in {s["id"] for s in stored}
    # What was stored is what is read back.
    again = client.get(f"/api/v1/items/{obj['id']}", headers=home, params={"collection": collection.id})
    assert again.status_code == 200 and again.json()["object"] == obj


def test_field_banners_become_granular_markings(client, app, home, collection):
    item = post_simple(
        client,
        home,
        collection.id,
        type="indicator",
        name="x",
        description="only for us",
        pattern="[ipv4-addr:value = '198.51.100.1']",
        banner="SECRET//REL TO USA, GBR",
        field_banners={"description": "SECRET//NOFORN"},
    )
    granular = item["object"]["granular_markings"]
    assert granular == [{"marking_ref": label_id_of(app, "SECRET//NOFORN"), "selectors": ["description"]}]
    assert_valid_stix(item["object"])


def test_the_home_identity_is_one_object(client, home, collection):
    for name in ("a", "b"):
        post_simple(client, home, collection.id, type="malware", name=name, banner="UNCLASSIFIED//REL TO ALL")
    history = client.get(
        f"/api/v1/items/{home_identity_id(HOME)}/versions", headers=home, params={"collection": collection.id}
    ).json()
    assert len(history["versions"]) == 1  # posting again is an exact duplicate, never a second version


@pytest.mark.parametrize(
    "form, path, needle",
    [
        ({"banner": "SECRET//REL TO USA, XYZ"}, "banner", "'XYZ'"),
        ({"banner": "SECRET//REL TO USA//NOFRN"}, "banner", "'NOFRN'"),
        ({"banner": "SEKRET"}, "banner", "'SEKRET'"),
        ({"pattern": "[ipv4-addr:value = ]"}, "pattern", "mismatched input"),
        ({"valid_from": "yesterday"}, "valid_from", ""),
        ({"colour": "red"}, "colour", "not a property"),
        ({"field_banners": {"nothing": "SECRET"}}, "field_banners.nothing", "no such property"),
        ({"field_banners": {"description": "SECRET//REL TO QQQ"}}, "field_banners.description", "'QQQ'"),
        ({"type": "marking-definition"}, "type", "unsupported"),
        ({"id": "indicator--2c37eae4-1907-4eea-afae-d6856a135def"}, "id", "set by the service"),
    ],
)
def test_refused_simple_forms_name_the_field_and_store_nothing(client, session, home, collection, form, path, needle):
    base = {
        "type": "indicator",
        "name": "x",
        "description": "d",
        "pattern": "[ipv4-addr:value = '1.2.3.4']",
        "banner": "SECRET//REL TO USA",
        "collection": collection.id,
    }
    before = counts(session)
    body = assert_problem(client.post("/api/v1/items", headers=home, json=base | form), 422, path)
    assert needle in next(e["message"] for e in body["errors"] if e["path"] == path)
    assert counts(session) == before


def test_missing_required_form_fields_are_400_with_paths(client, home, collection):
    body = assert_problem(client.post("/api/v1/items", headers=home, json={"name": "x"}), 400, "type", "banner")
    assert body["instance"] == "/api/v1/items"


def test_full_stix_bundle_keeps_its_markings(client, home, collection):
    marking = statement("CONFIDENTIAL//REL TO NATO")
    indicator = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.uuid4()}",
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "pattern": "[domain-name:value = 'x.example']",
        "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z",
        "object_marking_refs": [marking["id"]],
    }
    bundle = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": [marking, indicator]}
    response = client.post("/api/v1/items/stix", headers=home, json={"collection": collection.id, "stix": bundle})
    assert response.status_code == 201, response.text
    stored = {s["id"]: s for s in response.json()["stored"]}
    assert stored[indicator["id"]]["banner"] == "CONFIDENTIAL//REL TO NLD, NATO"
    single = dict(indicator, id=f"indicator--{uuid.uuid4()}")
    response = client.post("/api/v1/items/stix", headers=home, json={"collection": collection.id, "stix": single})
    assert response.status_code == 201, response.text
    assert response.json()["stored"][-1]["banner"] == "CONFIDENTIAL//REL TO NLD, NATO"


def _indicator(**changes) -> dict:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.uuid4()}",
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "pattern": "[domain-name:value = 'y.example']",
        "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z",
    } | changes


@pytest.mark.parametrize(
    "bad, path",
    [
        (_indicator(valid_from="not a time"), "stix.objects[2].valid_from"),
        (_indicator(created="2026-01-01T00:00:00Z"), "stix.objects[2].created"),  # validator: millisecond precision
        (_indicator(pattern_type=None), "stix.objects[2].pattern_type"),
        # Parses, but its marking is unknown: refused by labelling, after the first objects were written.
        (
            _indicator(object_marking_refs=[f"marking-definition--{uuid.uuid4()}"]),
            "stix.objects[2].object_marking_refs",
        ),
    ],
)
def test_one_bad_object_refuses_the_whole_bundle(client, session, home, collection, bad, path):
    bad = {k: v for k, v in bad.items() if v is not None}
    marking = statement("SECRET//REL TO USA")
    good = _indicator(object_marking_refs=[marking["id"]])
    bundle = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": [marking, good, bad]}
    before = counts(session)
    assert_problem(
        client.post("/api/v1/items/stix", headers=home, json={"collection": collection.id, "stix": bundle}), 422, path
    )
    assert counts(session) == before
    assert client.get(f"/api/v1/items/{good['id']}", headers=home).status_code == 404


def test_partners_auditors_and_strangers_are_refused(client, headers_for, collection):
    form = {"type": "malware", "name": "x", "banner": "SECRET", "collection": collection.id}
    partner = headers_for(subject="usa-feed", nation="USA", roles=("partner",))
    auditor = headers_for(subject="auditor", roles=("auditor",))
    for headers in (partner, auditor):
        assert_problem(client.post("/api/v1/items", headers=headers, json=form), 403)
        assert_problem(client.get("/api/v1/items", headers=headers), 403)
    assert_problem(client.post("/api/v1/items", json=form), 401)


def test_unknown_or_unwritable_collection_is_refused(client, session, home, collection):
    from app.taxii import service as taxii_service

    read_only = taxii_service.create_collection(session, title="read only", read_roles={"analyst"}, write_roles=set())
    before = counts(session)
    for collection_id in (str(uuid.uuid4()), read_only.id):
        assert_problem(
            client.post(
                "/api/v1/items",
                headers=home,
                json={"type": "malware", "name": "x", "banner": "SECRET", "collection": collection_id},
            ),
            404 if collection_id != read_only.id else 403,
            "collection",
        )
    assert counts(session) == before


def test_a_lowered_clearance_does_not_see_higher_items(client, headers_for, home, collection):
    item = post_simple(client, home, collection.id, type="malware", name="secret one", banner="SECRET")
    restricted = headers_for(subject="junior", clearance="RESTRICTED")
    assert_problem(client.get(f"/api/v1/items/{item['id']}", headers=restricted), 404)
    assert client.get(f"/api/v1/items/{item['id']}", headers=home).status_code == 200


def test_structural_limits_apply_with_paths(client, session, settings, home, collection):
    deep: dict = {}
    node = deep
    for _ in range(settings.max_nesting_depth + 2):
        node["x_nested"] = {}
        node = node["x_nested"]
    before = counts(session)
    obj = _indicator(x_deep=deep)
    assert_problem(
        client.post("/api/v1/items/stix", headers=home, json={"collection": collection.id, "stix": obj}), 400, "stix"
    )
    assert counts(session) == before

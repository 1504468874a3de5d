"""Serve-side closure (issue 19, findings 1 and 2).

1. A served object never names a stored object the requester may not see: a version whose
   required reference names one is withheld (absent everywhere), an optional entry naming one is
   removed from the served copy, and ids not stored here are served as they are.
2. Whatever is withheld is absent everywhere: 404 by id, not counted in ``more``, no ``next``
   leading to an empty page.
"""

from __future__ import annotations

import uuid

import pytest
from sqlmodel import Session

from app.taxii import service as taxii_service
from tests.conftest import memoised
from tests.taxii.helpers import (
    assert_valid_stix,
    get_ok,
    indicator,
    malware,
    manifest_url,
    objects_url,
    post_ok,
    stix_time,
    versions_url,
)
from tests.taxii.test_releasability import banner, marked

CREATED = stix_time(1)


@pytest.fixture
def who(auth) -> dict[str, dict]:
    headers = memoised(auth)
    return {
        "analyst": headers(),
        "usa": headers(subject="usa-feed", nation="USA", roles=("partner",)),
        "fra": headers(subject="fra-feed", nation="FRA", roles=("partner",)),
        "fra_restricted": headers(subject="fra-feed", nation="FRA", roles=("partner",), clearance="RESTRICTED"),
    }


@pytest.fixture
def shared(session: Session):
    return taxii_service.create_collection(
        session, title=f"closure {uuid.uuid4().hex[:8]}", read_roles={"partner", "analyst"}, write_roles={"analyst"}
    )


def relationship(source: dict, target: dict, *markings: dict) -> dict:
    obj = {
        "type": "relationship",
        "spec_version": "2.1",
        "id": f"relationship--{uuid.uuid4()}",
        "created": CREATED,
        "modified": CREATED,
        "relationship_type": "indicates",
        "source_ref": source["id"],
        "target_ref": target["id"],
    }
    return marked(obj, *markings)


def report(refs: list[str], *markings: dict) -> dict:
    obj = {
        "type": "report",
        "spec_version": "2.1",
        "id": f"report--{uuid.uuid4()}",
        "created": CREATED,
        "modified": CREATED,
        "name": "closure report",
        "published": CREATED,
        "object_refs": refs,
    }
    return marked(obj, *markings)


def ids_served(client, api, collection_id, headers) -> dict[str, dict]:
    body = get_ok(client, objects_url(api, collection_id), headers, params={"limit": "200"})
    return {obj["id"]: obj for obj in body.get("objects", [])}


@pytest.fixture
def stocked(client, api, shared, who) -> dict:
    """An indicator everyone sees, a malware only USA sees, and objects naming them."""
    everyone = banner("UNCLASSIFIED//REL TO USA, FRA")
    usa_only = banner("SECRET//REL TO USA")
    seen, hidden = marked(indicator(), everyone), marked(malware(), usa_only)
    objects = {
        "seen": seen,
        "hidden": hidden,
        "to_hidden": relationship(seen, hidden, everyone),
        "to_seen": relationship(seen, seen | {"id": f"indicator--{uuid.uuid4()}"}, everyone),
        "mixed_report": report([seen["id"], hidden["id"]], everyone),
        "hidden_only_report": report([hidden["id"]], everyone),
        "unstored_report": report([f"malware--{uuid.uuid4()}"], everyone),
    }
    objects["report_of_withheld"] = report([seen["id"], objects["to_hidden"]["id"]], everyone)
    post_ok(client, api, shared.id, who["analyst"], [everyone, usa_only, *objects.values()])
    return objects


def test_a_required_reference_to_a_hidden_object_withholds_the_version(client, api, shared, who, stocked):
    fra, usa = ids_served(client, api, shared.id, who["fra"]), ids_served(client, api, shared.id, who["usa"])
    for name in ("to_hidden", "hidden_only_report"):
        assert stocked[name]["id"] not in fra, name
        assert stocked[name]["id"] in usa, name
        for url in (
            objects_url(api, shared.id, stocked[name]["id"]),
            versions_url(api, shared.id, stocked[name]["id"]),
        ):
            assert client.get(url, headers=who["fra"]).status_code == 404
    manifest = get_ok(client, manifest_url(api, shared.id), who["fra"])
    assert stocked["to_hidden"]["id"] not in {entry["id"] for entry in manifest["objects"]}
    assert stocked["hidden"]["id"] not in str(fra)  # named nowhere in what FRA received


def test_an_optional_entry_naming_a_hidden_object_is_removed(client, api, shared, who, stocked):
    fra = ids_served(client, api, shared.id, who["fra"])
    mixed = fra[stocked["mixed_report"]["id"]]
    assert mixed["object_refs"] == [stocked["seen"]["id"]]
    assert_valid_stix(mixed)
    by_id = get_ok(client, objects_url(api, shared.id, stocked["mixed_report"]["id"]), who["fra"])["objects"][0]
    assert by_id == mixed
    usa = ids_served(client, api, shared.id, who["usa"])
    assert usa[stocked["mixed_report"]["id"]]["object_refs"] == stocked["mixed_report"]["object_refs"]


def test_a_report_never_names_a_relationship_withheld_from_the_reader(client, api, shared, who, stocked):
    fra = ids_served(client, api, shared.id, who["fra"])
    assert fra[stocked["report_of_withheld"]["id"]]["object_refs"] == [stocked["seen"]["id"]]


def test_ids_not_stored_here_are_served_as_they_are(client, api, shared, who, stocked):
    fra = ids_served(client, api, shared.id, who["fra"])
    assert fra[stocked["unstored_report"]["id"]] == stocked["unstored_report"]
    assert fra[stocked["to_seen"]["id"]]["target_ref"] == stocked["to_seen"]["target_ref"]


def test_a_lowered_clearance_token_is_closed_over_too(client, api, shared, who):
    """The demo's finding: an FRA token lowered to RESTRICTED got a relationship whose target_ref was
    a malware id that answered 404 for that token."""
    open_label, confidential = banner("UNCLASSIFIED//REL TO FRA"), banner("CONFIDENTIAL//REL TO FRA")
    seen, target = marked(indicator(), open_label), marked(malware(), confidential)
    link = relationship(seen, target, open_label)
    post_ok(client, api, shared.id, who["analyst"], [open_label, confidential, seen, target, link])
    assert link["id"] in ids_served(client, api, shared.id, who["fra"])
    lowered = ids_served(client, api, shared.id, who["fra_restricted"])
    assert link["id"] not in lowered and target["id"] not in str(lowered)


def test_an_object_in_a_collection_the_reader_may_not_read_counts_as_hidden(client, api, session, who):
    everyone = banner("UNCLASSIFIED//REL TO USA, FRA")
    usa_collection = taxii_service.create_collection(
        session, title=f"usa {uuid.uuid4().hex[:8]}", read_roles={"partner", "analyst"}, write_roles={"analyst"}
    )
    usa_collection.read_partners = "USA"
    session.add(usa_collection)
    session.commit()
    default = taxii_service.create_collection(
        session, title=f"all {uuid.uuid4().hex[:8]}", read_roles={"partner", "analyst"}, write_roles={"analyst"}
    )
    elsewhere = marked(malware(), everyone)  # releasable to FRA, but in a collection only USA reads
    post_ok(client, api, usa_collection.id, who["analyst"], [everyone, elsewhere])
    seen = marked(indicator(), everyone)
    link = relationship(seen, elsewhere, everyone)
    post_ok(client, api, default.id, who["analyst"], [everyone, seen, link])
    assert link["id"] not in ids_served(client, api, default.id, who["fra"])
    assert link["id"] in ids_served(client, api, default.id, who["usa"])


def test_withheld_versions_are_not_counted_and_lead_to_no_empty_page(client, api, shared, who, stocked):
    """With limit=1, paging FRA through the collection meets only versions it is served: every page
    has one, and the last says more: false (finding 2)."""
    params = {"limit": "1"}
    seen_ids, pages = [], 0
    while True:
        body = get_ok(client, objects_url(api, shared.id), who["fra"], params=params)
        pages += 1
        assert len(body.get("objects", [])) == 1, body
        seen_ids += [obj["id"] for obj in body["objects"]]
        if not body.get("more"):
            assert "next" not in body
            break
        params = {"limit": "1", "next": body["next"]}
    assert set(seen_ids) == set(ids_served(client, api, shared.id, who["fra"]))


def _location(regions: dict[str, dict], *markings: dict) -> dict:
    """A location whose only identifying properties (region, country) each carry a granular marking."""
    obj = {
        "type": "location",
        "spec_version": "2.1",
        "id": f"location--{uuid.uuid4()}",
        "created": CREATED,
        "modified": CREATED,
        "name": "somewhere",
        "region": "western-europe",
        "country": "NL",
        "granular_markings": [
            {"marking_ref": regions["region"]["id"], "selectors": ["region"]},
            {"marking_ref": regions["country"]["id"], "selectors": ["country"]},
        ],
    }
    return marked(obj, *markings)


def test_a_version_that_two_hidden_markings_would_leave_invalid_is_absent(client, api, shared, who):
    """Finding 2: a location releasable to FRA whose region and country carry markings FRA may not
    see must answer like an absent one: 404 by id, versions and manifest alike, nothing counted."""
    everyone = banner("UNCLASSIFIED//REL TO USA, FRA")
    region, country = banner("SECRET//REL TO USA"), banner("SECRET//REL TO USA, GBR")
    place = _location({"region": region, "country": country}, everyone)
    post_ok(client, api, shared.id, who["analyst"], [everyone, region, country, place])
    for url in (objects_url(api, shared.id, place["id"]), versions_url(api, shared.id, place["id"])):
        assert client.get(url, headers=who["fra"]).status_code == 404
    absent = f"location--{uuid.uuid4()}"
    assert client.get(objects_url(api, shared.id, absent), headers=who["fra"]).status_code == 404
    assert place["id"] not in str(get_ok(client, manifest_url(api, shared.id), who["fra"]))
    body = get_ok(client, objects_url(api, shared.id), who["fra"], params={"limit": "1", "match[type]": "location"})
    assert body.get("objects", []) == [] and body.get("more") is False and "next" not in body
    # USA sees both markings and gets the whole location.
    assert get_ok(client, objects_url(api, shared.id, place["id"]), who["usa"])["objects"][0] == place

"""Releasability over TAXII: each partner gets exactly what its labels allow, on every path."""

from __future__ import annotations

import uuid

import pytest
import stix2
from sqlalchemy import func, select

from app.items.models import StixObject
from app.taxii import service as taxii_service
from tests.taxii.helpers import (
    assert_valid_stix,
    check_status_document,
    get_ok,
    ids,
    indicator,
    manifest_url,
    new_version,
    objects_url,
    post_envelope,
    post_ok,
    versions_url,
    walk,
)

PARTNERS = {
    "usa": ("USA", "usa-feed"),
    "gbr": ("GBR", "gbr-feed"),
    "fra": ("FRA", "fra-feed"),
    "can": ("CAN", "can-feed"),
}


def banner(text: str) -> dict:
    """A statement marking whose statement is a banner."""
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": f"marking-definition--{uuid.uuid4()}",
        "created": "2024-01-01T00:00:00.000Z",
        "definition_type": "statement",
        "definition": {"statement": text},
    }


def _stored(session, collection_id: str) -> int:
    return session.execute(
        select(func.count()).select_from(StixObject).where(StixObject.collection_id == collection_id)
    ).scalar_one()


def marked(obj: dict, *definitions: dict) -> dict:
    return obj | {"object_marking_refs": [d["id"] for d in definitions]}


@pytest.fixture
def who(auth):
    headers = {
        key: auth(subject=subject, nation=nation, roles=("partner",)) for key, (nation, subject) in PARTNERS.items()
    }
    return headers | {"home": auth()}


@pytest.fixture
def shared(session):
    """A collection partners may read and write (for pushes) and analysts may write."""
    return taxii_service.create_collection(
        session,
        title=f"shared {uuid.uuid4().hex[:6]}",
        read_roles={"partner", "analyst"},
        write_roles={"partner", "analyst"},
    )


def _types(client, api, collection_id, headers, stix_type="indicator", **params) -> set[str]:
    pages = walk(client, objects_url(api, collection_id), headers, {"match[type]": stix_type, "limit": "2"} | params)
    return {o["id"] for page in pages for o in page.get("objects", [])}


def test_each_partner_receives_exactly_its_releasable_set(client, api, collection, who):
    s_usa_gbr, c_nato, s_noforn, s_fvey = (
        banner("SECRET//REL TO USA, GBR"),
        banner("CONFIDENTIAL//REL TO NATO"),
        banner("SECRET//REL TO USA//NOFORN"),
        banner("S//REL TO FVEY"),
    )
    objects = {
        "usa_gbr": marked(indicator(), s_usa_gbr),
        "nato": marked(indicator(), c_nato),
        "noforn": marked(indicator(), s_noforn),
        "fvey": marked(indicator(), s_fvey),
        "green": marked(indicator(), stix2.TLP_GREEN),
        "amber": marked(indicator(), stix2.TLP_AMBER),
        "unmarked": indicator(),
    }
    post_ok(client, api, collection.id, who["home"], [s_usa_gbr, c_nato, s_noforn, s_fvey, *objects.values()])
    expected = {
        "usa": {"usa_gbr", "nato", "fvey", "green"},
        "gbr": {"usa_gbr", "nato", "fvey", "green"},
        "fra": {"nato", "green"},  # CONFIDENTIAL: NATO at C yes; SECRET labels no
        "can": {"green"},  # RESTRICTED clearance
        "home": set(objects),
    }
    for principal, names in expected.items():
        assert _types(client, api, collection.id, who[principal]) == {objects[n]["id"] for n in names}, principal
        for name, obj in objects.items():
            status = client.get(objects_url(api, collection.id, obj["id"]), headers=who[principal]).status_code
            assert status == (200 if name in names else 404), (principal, name)


def test_token_lowered_clearance_narrows(client, api, collection, who, auth):
    secret = banner("SECRET//REL TO USA")
    obj = marked(indicator(), secret)
    post_ok(client, api, collection.id, who["home"], [secret, obj])
    lowered = auth(subject="usa-low", nation="USA", roles=("partner",), clearance="CONFIDENTIAL")
    assert obj["id"] in _types(client, api, collection.id, who["usa"])
    assert obj["id"] not in _types(client, api, collection.id, lowered)


def test_marking_definitions_of_served_objects_are_served(client, api, collection, who):
    nato = banner("CONFIDENTIAL//REL TO NATO")
    obj = marked(indicator(), nato, stix2.TLP_GREEN)
    post_ok(client, api, collection.id, who["home"], [nato, obj])
    for principal in ("fra", "usa"):
        for ref in obj["object_marking_refs"]:
            body = get_ok(client, objects_url(api, collection.id, ref), who[principal])
            assert ids(body) == [ref]
        served = _types(client, api, collection.id, who[principal], "marking-definition")
        assert set(obj["object_marking_refs"]) <= served
    # CAN (RESTRICTED) sees no object referencing them, so not even the public TLP definition:
    # a definition never tells of the hidden versions it marks.
    for ref in obj["object_marking_refs"]:
        assert client.get(objects_url(api, collection.id, ref), headers=who["can"]).status_code == 404
    assert _types(client, api, collection.id, who["can"], "marking-definition") == set()
    green = marked(indicator(), stix2.TLP_GREEN)
    post_ok(client, api, collection.id, who["home"], [green])
    assert _types(client, api, collection.id, who["can"], "marking-definition") == {stix2.TLP_GREEN.id}


def test_versions_are_labelled_one_by_one(client, api, collection, who):
    rel_fra, rel_usa = banner("UNCLASSIFIED//REL TO FRA, USA"), banner("SECRET//REL TO USA")
    # A SECRET first version for USA, then a wider one: FRA sees the second, the first does not exist
    # for it. (The other way round, the narrower newer version would withdraw the older one from FRA:
    # tests/recall/.)
    first = marked(indicator(), rel_usa)
    second = marked(new_version(first, 1), rel_fra)
    post_ok(client, api, collection.id, who["home"], [rel_fra, rel_usa, first, second])
    url = objects_url(api, collection.id, first["id"])
    assert [o["modified"] for o in get_ok(client, url, who["usa"])["objects"]] == [second["modified"]]
    assert [o["modified"] for o in get_ok(client, url, who["fra"])["objects"]] == [second["modified"]]
    assert len(get_ok(client, versions_url(api, collection.id, first["id"]), who["usa"])["versions"]) == 2
    versions = get_ok(client, versions_url(api, collection.id, first["id"]), who["fra"])["versions"]
    assert len(versions) == 1
    manifest = get_ok(
        client, manifest_url(api, collection.id), who["fra"], {"match[id]": first["id"], "match[version]": "all"}
    )
    assert len(manifest["objects"]) == 1


def test_granular_marking_redacts_the_property(client, api, collection, who):
    secret = banner("SECRET//REL TO USA")
    obj = marked(indicator(description="sensitive details"), stix2.TLP_GREEN) | {
        "granular_markings": [{"marking_ref": secret["id"], "selectors": ["description"]}]
    }
    post_ok(client, api, collection.id, who["home"], [secret, obj])
    for principal, sees_description in (("usa", True), ("fra", False), ("home", True)):
        served = get_ok(client, objects_url(api, collection.id, obj["id"]), who[principal])["objects"][0]
        assert ("description" in served) is sees_description, principal
        assert_valid_stix(served)
        if not sees_description:
            assert "granular_markings" not in served
            assert secret["id"] not in str(served)


def test_granular_marking_on_a_required_property_withholds_the_version(client, api, collection, who):
    secret = banner("SECRET//REL TO USA")
    first = marked(indicator(), stix2.TLP_GREEN)
    second = marked(new_version(first, 1), stix2.TLP_GREEN) | {
        "granular_markings": [{"marking_ref": secret["id"], "selectors": ["pattern"]}]
    }
    post_ok(client, api, collection.id, who["home"], [secret, first, second])
    url = objects_url(api, collection.id, first["id"])
    assert [o["modified"] for o in get_ok(client, url, who["usa"])["objects"]] == [second["modified"]]
    # FRA may not see the pattern of the second version: it gets the first as the latest.
    assert [o["modified"] for o in get_ok(client, url, who["fra"])["objects"]] == [first["modified"]]
    assert len(get_ok(client, versions_url(api, collection.id, first["id"]), who["fra"])["versions"]) == 1


def test_partner_originated_objects_follow_the_third_party_rule(client, api, shared, who, session):
    rel_gbr = banner("SECRET//REL TO USA, GBR")
    pushed = marked(indicator(), rel_gbr)
    post_ok(client, api, shared.id, who["usa"], [rel_gbr, pushed])
    stored = session.execute(
        select(StixObject).where(StixObject.collection_id == shared.id, StixObject.object_id == pushed["id"])
    ).scalar_one()
    assert (stored.originator, stored.submitter) == ("USA", "USA")
    assert pushed["id"] in _types(client, api, shared.id, who["gbr"])
    assert pushed["id"] not in _types(client, api, shared.id, who["fra"])
    assert pushed["id"] in _types(client, api, shared.id, who["home"])

    # The home analyst may narrow a new version, never widen it or lower its classification.
    wider, lower = banner("SECRET//REL TO USA, GBR, FRA"), banner("CONFIDENTIAL//REL TO USA, GBR")
    refused = post_envelope(
        client,
        api,
        shared.id,
        who["home"],
        [wider, lower, marked(new_version(pushed, 1), wider), marked(new_version(pushed, 2), lower)],
    ).json()
    assert refused["failure_count"] == 2
    assert all("third-party rule" in f["message"] for f in refused["failures"])
    narrower = banner("TOP SECRET//REL TO USA")
    post_ok(client, api, shared.id, who["home"], [narrower, marked(new_version(pushed, 3), narrower)])
    latest = session.execute(
        select(StixObject)
        .where(StixObject.collection_id == shared.id, StixObject.object_id == pushed["id"])
        .order_by(StixObject.version_us.desc())
        .limit(1)
    ).scalar_one()
    assert (latest.originator, latest.submitter) == ("USA", "NLD")
    # The narrower new version exists only for USA and the home nation, and it withdraws the older
    # one from GBR (docs/design.md section 7b): GBR, which pulled it, is told with a recall notice.
    url = objects_url(api, shared.id, pushed["id"])
    assert client.get(url, headers=who["gbr"]).status_code == 404
    # USA, the originator, is never withdrawn from its own item (and TOP SECRET is above its clearance).
    assert [o["modified"] for o in get_ok(client, url, who["usa"])["objects"]] == [pushed["modified"]]
    notes = get_ok(client, objects_url(api, shared.id), who["gbr"], {"match[type]": "note"})["objects"]
    assert [n["object_refs"] for n in notes] == [[pushed["id"]]]


@pytest.mark.parametrize(
    "statement, token",
    [
        ("SUPER SECRET//REL TO USA", "SUPER SECRET"),
        ("SECRET//REL TO USA, XYZ", "XYZ"),
        ("SECRET//REL TO USA//EYESONLY", "EYESONLY"),
    ],
)
def test_unknown_tokens_are_refused_by_name_and_nothing_is_stored(
    client, api, collection, who, session, statement, token
):
    bad = banner(statement)
    obj = marked(indicator(), bad)
    status = post_envelope(client, api, collection.id, who["home"], [bad, obj]).json()
    assert status["success_count"] == 0 and status["failure_count"] == 2
    assert all(token in failure["message"] for failure in status["failures"])
    assert _stored(session, collection.id) == 0


def test_unknown_marking_definition_is_refused_by_id(client, api, collection, who, session):
    missing = f"marking-definition--{uuid.uuid4()}"
    status = post_envelope(
        client, api, collection.id, who["home"], [indicator() | {"object_marking_refs": [missing]}]
    ).json()
    assert status["failure_count"] == 1 and missing in status["failures"][0]["message"]
    assert _stored(session, collection.id) == 0


def test_partner_change_applies_at_once(client, api, collection, who, session):
    from app.partners.service import save_partner

    secret = banner("SECRET//REL TO CAN")
    obj = marked(indicator(), secret)
    post_ok(client, api, collection.id, who["home"], [secret, obj])
    assert obj["id"] not in _types(client, api, collection.id, who["can"])
    save_partner(session, nation="CAN", clearance=3, groups=["FVEY", "NATO"], home_nation="NLD")
    try:
        assert obj["id"] in _types(client, api, collection.id, who["can"])
    finally:
        save_partner(session, nation="CAN", clearance=1, groups=["FVEY", "NATO"], home_nation="NLD")
    assert obj["id"] not in _types(client, api, collection.id, who["can"])


def test_a_partner_cannot_take_over_an_object_hidden_from_it(client, api, shared, who):
    """Pushing a new version of an object whose versions are all hidden from you is refused exactly
    as pushing over another nation's visible object is: the refusal names no originator and does
    not say whether you may see the object; nothing is stored (issue 18: takeover)."""
    usa_only = banner("SECRET//REL TO USA")
    secret = marked(indicator(), usa_only)
    post_ok(client, api, shared.id, who["usa"], [usa_only, secret])
    gbr_label = banner("UNCLASSIFIED//REL TO GBR, FRA")
    probe = marked(new_version(secret, 1, description="probe"), gbr_label)
    hidden = check_status_document(post_envelope(client, api, shared.id, who["gbr"], [gbr_label, probe]))
    assert "USA" not in str(hidden)
    # The same push over a USA object GBR may see.
    everyone = banner("UNCLASSIFIED//REL TO GBR, FRA")
    open_usa = marked(indicator(), everyone)
    post_ok(client, api, shared.id, who["usa"], [everyone, open_usa])
    visible = check_status_document(
        post_envelope(client, api, shared.id, who["gbr"], [gbr_label, marked(new_version(open_usa, 1), gbr_label)])
    )
    refusal = [f["message"] for f in hidden["failures"]]
    assert refusal and refusal == [f["message"] for f in visible["failures"]]
    # Nothing of the probe was stored: FRA sees neither it nor the USA-only version.
    url = objects_url(api, shared.id, secret["id"])
    assert client.get(url, headers=who["fra"]).status_code == 404
    assert [o["modified"] for o in get_ok(client, url, who["usa"])["objects"]] == [secret["modified"]]

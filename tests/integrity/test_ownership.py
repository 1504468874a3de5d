"""Ownership of objects and marking definitions, and attribution (issue 18, findings 1, 2 and 6).

Each test reproduces a finding of the outside test: a partner planting a marking definition
under a label's id, a partner taking over an object hidden from it, a partner claiming the home
nation's identity.
"""

from __future__ import annotations

import orjson
from sqlmodel import Session

from app.items.identity import home_identity_id
from app.markings.labels import canonical_banner, label_marking_definition, parse_banner
from app.partners.models import Partner
from tests.conftest import HOME, TAXII
from tests.integrity.conftest import API, TLP_WHITE, indicator, statement


def push(client, headers: dict, collection_id: str, objects: list[dict]) -> dict:
    """POST an envelope over TAXII; the status resource."""
    response = client.post(
        f"{API}/collections/{collection_id}/objects/",
        headers=headers | {"Accept": TAXII, "Content-Type": TAXII},
        content=orjson.dumps({"objects": objects}),
    )
    assert response.status_code == 202, response.text
    return response.json()


def get_object(client, headers: dict, collection_id: str, object_id: str):
    return client.get(f"{API}/collections/{collection_id}/objects/{object_id}/", headers=headers | {"Accept": TAXII})


def label_definition(app, banner: str) -> dict:
    return label_marking_definition(
        parse_banner(banner, originator=HOME, mappings=app.state.mappings), app.state.mappings
    )


def post_item(client, headers: dict, collection_id: str, banner: str) -> str:
    response = client.post(
        "/api/v1/items",
        headers=headers,
        json={
            "collection": collection_id,
            "type": "indicator",
            "name": "owned",
            "banner": banner,
            "pattern": "[domain-name:value = 'owned.example']",
        },
    )
    assert response.status_code == 201, response.text
    return response.json()["stored"][-1]["id"]


def test_a_partner_cannot_plant_a_definition_under_a_labels_id(app, client, headers_for, writable, fra):
    """Finding 1: FRA posts, under the id of a label in use, an older statement releasing it to FRA;
    an analyst's later edit that leaves the banner alone must keep the label, and FRA must not read it."""
    analyst = headers_for()
    banner = "CONFIDENTIAL//REL TO GBR, USA"
    item = post_item(client, analyst, writable.id, banner)
    in_use = label_definition(app, banner)
    plant = statement("UNCLASSIFIED//REL TO FRA", marking_id=in_use["id"], created="2019-01-01T00:00:00.000Z")
    refused = push(client, fra, writable.id, [plant])
    assert refused["failure_count"] == 1 and refused["success_count"] == 0
    # The same plant under the id of a banner nobody uses reads the same: no oracle of banners in use.
    unused = label_definition(app, "CONFIDENTIAL//REL TO DEU, CAN")
    other = push(client, fra, writable.id, [plant | {"id": unused["id"]}])
    assert [f["message"] for f in other["failures"]] == [f["message"] for f in refused["failures"]]

    edited = client.post(f"/api/v1/items/{item}/versions", headers=analyst, json={"changes": {"description": "x"}})
    assert edited.status_code == 201, edited.text
    assert edited.json()["banner"] == canonical_banner(
        parse_banner(banner, originator=HOME, mappings=app.state.mappings), app.state.mappings
    )
    assert get_object(client, fra, writable.id, item).status_code == 404


def test_a_stored_definition_is_never_replaced(app, client, headers_for, writable, fra):
    """STIX forbids versioning a marking definition: a different one under a stored id is refused, from anyone."""
    analyst = headers_for()
    mine = statement("UNCLASSIFIED//REL TO FRA")
    assert push(client, analyst, writable.id, [mine])["success_count"] == 1
    for headers in (analyst, fra):
        changed = push(client, headers, writable.id, [mine | {"created": "2025-01-01T00:00:00.000Z"}])
        assert changed["failure_count"] == 1, changed
    assert push(client, fra, writable.id, [mine])["success_count"] == 1  # an exact copy is a duplicate


def test_a_partner_cannot_take_over_an_object_hidden_from_it(app, client, headers_for, writable, fra, gbr):
    """Finding 2: FRA, which cannot see the home nation's indicator, posts its id with a later
    modified, TLP:WHITE and the home identity as author; nothing of it may be stored."""
    analyst = headers_for()
    label = label_definition(app, "CONFIDENTIAL//REL TO GBR")
    original = indicator("home's", label["id"], created_by_ref=home_identity_id(HOME))
    assert push(client, analyst, writable.id, [label, original])["success_count"] == 2
    takeover = original | {"modified": "2026-11-25T09:00:00.000Z", "object_marking_refs": [TLP_WHITE], "name": "FRA's"}
    status = push(client, fra, writable.id, [takeover])
    assert status["failure_count"] == 1 and "NLD" not in str(status)
    unattributed = push(client, fra, writable.id, [{k: v for k, v in takeover.items() if k != "created_by_ref"}])
    assert unattributed["failure_count"] == 1 and "NLD" not in str(unattributed)

    served = get_object(client, gbr, writable.id, original["id"])
    assert served.status_code == 200
    assert [o["name"] for o in served.json()["objects"]] == ["home's"]
    item = client.get(f"/api/v1/items/{original['id']}", headers=analyst)
    assert item.status_code == 200 and item.json()["originator"] == HOME


def test_ownership_refusals_read_the_same_for_hidden_and_visible_objects(app, client, headers_for, writable, fra):
    analyst = headers_for()
    hidden_label, open_label = (
        label_definition(app, "SECRET//REL TO USA"),
        label_definition(app, "UNCLASSIFIED//REL TO FRA"),
    )
    hidden, visible = indicator("hidden", hidden_label["id"]), indicator("visible", open_label["id"])
    assert push(client, analyst, writable.id, [hidden_label, open_label, hidden, visible])["failure_count"] == 0

    def attempt(target: dict) -> dict:
        # The same version timestamp as the stored one: before, a hidden one answered "conflicts".
        status = push(client, fra, writable.id, [target | {"name": "FRA's"}])
        return _normalised(status, target["id"])

    assert attempt(hidden) == attempt(visible)
    assert (
        attempt(hidden | {"modified": "2026-12-01T00:00:00.000Z"})["failures"][0]["message"]
        == attempt(visible | {"modified": "2026-12-01T00:00:00.000Z"})["failures"][0]["message"]
    )


def test_a_hidden_definition_reads_as_unknown(app, client, headers_for, writable, fra):
    """Finding 3: referencing a definition FRA may not see answers like one that does not exist."""
    analyst = headers_for()
    hidden = statement("SECRET//REL TO USA")
    assert push(client, analyst, writable.id, [hidden])["success_count"] == 1
    absent = statement("SECRET//REL TO USA")
    answers = []
    for definition in (hidden, absent):
        obj = indicator("probe", definition["id"])
        answers.append(_normalised(push(client, fra, writable.id, [obj]), obj["id"], definition["id"]))
    assert answers[0] == answers[1] and answers[0]["failure_count"] == 1


def test_posting_a_canonical_label_definition_reads_the_same_whether_it_is_stored(
    app, client, headers_for, writable, fra
):
    """Label ids are computable: posting the exact definition of a banner in use and of one unused
    must answer alike (no "duplicate" message), or FRA could enumerate the banners in use."""
    analyst = headers_for()
    used = label_definition(app, "SECRET//REL TO GBR")
    assert push(client, analyst, writable.id, [used, indicator("u", used["id"])])["failure_count"] == 0
    unused = label_definition(app, "SECRET//REL TO CAN, GBR")
    answers = [_normalised(push(client, fra, writable.id, [d]), d["id"]) for d in (used, unused)]
    assert answers[0] == answers[1]


def test_attribution(app, client, headers_for, writable, fra, session: Session):
    """Finding 6: a partner's object names its own registered identity, or none (then it is set)."""
    claims_home = push(client, fra, writable.id, [indicator("claims home", created_by_ref=home_identity_id(HOME))])
    assert claims_home["failure_count"] == 1 and "created_by_ref" in claims_home["failures"][0]["message"]
    plain = indicator("plain")
    assert push(client, fra, writable.id, [plain])["success_count"] == 1
    stored = get_object(client, fra, writable.id, plain["id"]).json()["objects"][0]
    assert stored["created_by_ref"] == home_identity_id("FRA")
    # The analyst may not author an object as FRA.
    as_fra = push(client, headers_for(), writable.id, [indicator("as FRA", created_by_ref=home_identity_id("FRA"))])
    assert as_fra["failure_count"] == 1
    # An identity registered for FRA is accepted from FRA.
    cert = "identity--0b9a2c4e-7d1f-4a55-9e6b-3c2d1f0e9a87"
    partner = session.get(Partner, "FRA")
    partner.identities = f"{home_identity_id('FRA')},{cert}"
    session.add(partner)
    session.commit()
    try:
        assert push(client, fra, writable.id, [indicator("cert", created_by_ref=cert)])["success_count"] == 1
    finally:
        partner.identities = ""
        session.add(partner)
        session.commit()


def _normalised(status: dict, *ids: str) -> dict:
    """A status resource without what differs between two requests: its id, time and the ids posted."""
    text = orjson.dumps({k: v for k, v in status.items() if k not in ("id", "request_timestamp")}).decode()
    for number, object_id in enumerate(ids):
        text = text.replace(object_id, f"<id {number}>")
    body = orjson.loads(text)
    for entry in body["successes"] + body["failures"]:
        entry["version"] = "<version>"
    return body


def test_a_partner_is_not_told_that_a_success_was_a_duplicate(client, writable, fra):
    obj = indicator("twice")
    first, second = (_normalised(push(client, fra, writable.id, [obj]), obj["id"]) for _ in range(2))
    assert first == second and first["success_count"] == 1


def test_each_nation_keeps_its_own_copy_of_an_observable(app, client, headers_for, writable, fra, gbr):
    """An observable's id is computed from its value, so FRA naming one the home nation holds hidden
    from it stores FRA's own copy, as if the id were absent (a refusal told FRA it was stored here);
    neither copy takes over, nor withdraws, the other."""
    analyst = headers_for()
    label = label_definition(app, "CONFIDENTIAL//REL TO GBR")
    home_copy = {
        "type": "domain-name",
        "spec_version": "2.1",
        "id": "domain-name--3c10e93f-798e-5a26-a0c1-08156efab7f5",
        "value": "example.com",
        "object_marking_refs": [label["id"]],
    }
    assert push(client, analyst, writable.id, [label, home_copy])["success_count"] == 2
    assert get_object(client, fra, writable.id, home_copy["id"]).status_code == 404
    fra_copy = {k: v for k, v in home_copy.items() if k != "object_marking_refs"}  # FRA's: originator only
    status = push(client, fra, writable.id, [fra_copy])
    assert (status["success_count"], status["failure_count"]) == (1, 0), status
    served = get_object(client, fra, writable.id, home_copy["id"])
    assert served.status_code == 200 and [o.get("object_marking_refs") for o in served.json()["objects"]] == [None]
    again = push(client, fra, writable.id, [fra_copy])
    assert again["success_count"] == 1  # its own copy: a duplicate, nothing new stored
    # GBR still gets the home nation's copy (FRA's newer one, released to FRA alone, withdraws nothing),
    # and never FRA's.
    for_gbr = get_object(client, gbr, writable.id, home_copy["id"])
    assert for_gbr.status_code == 200
    assert [o.get("object_marking_refs") for o in for_gbr.json()["objects"]] == [[label["id"]]]
    versions = client.get(f"/api/v1/items/{home_copy['id']}/versions", headers=analyst).json()["versions"]
    assert sorted(v["originator"] for v in versions) == ["FRA", HOME]

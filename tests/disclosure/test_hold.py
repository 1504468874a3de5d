"""Held items are absent for every partner until an officer releases them; each action's effect."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from app.items.models import StoredChange
from tests.disclosure.helpers import by_id_status, decide, partner_ids, post_marked, review_of
from tests.policy.oracle import tlp_id
from tests.recall.helpers import pull
from tests.taxii.helpers import indicator, malware, manifest_url, objects_url, post_ok, versions_url, walk


def _absent_everywhere(client, api, collection_id, headers, object_id, home_headers):
    assert object_id not in partner_ids(client, api, collection_id, headers)
    assert by_id_status(client, api, collection_id, headers, object_id) == 404
    assert client.get(versions_url(api, collection_id, object_id), headers=headers).status_code == 404
    manifest = [r for page in walk(client, manifest_url(api, collection_id), headers) for r in page.get("objects", [])]
    assert object_id not in {r["id"] for r in manifest}
    # Nor in the date headers: the held version is the collection's newest, and they do not name it.
    home = client.get(manifest_url(api, collection_id), headers=home_headers).json()["objects"]
    held_added = {r["date_added"] for r in home if r["id"] == object_id}
    last = client.get(objects_url(api, collection_id), headers=headers).headers.get("X-TAXII-Date-Added-Last")
    assert held_added and last not in held_added


def test_a_held_item_is_absent_for_partners_and_present_for_the_home_nation(
    client, api, collection, analyst, officer, usa
):
    item = post_marked(client, api, collection.id, analyst, "CONFIDENTIAL//REL TO USA, GBR")
    _absent_everywhere(client, api, collection.id, usa, item["id"], analyst)
    assert item["id"] in partner_ids(client, api, collection.id, analyst)
    review = review_of(client, officer, item["id"])
    assert review["banner"] == "CONFIDENTIAL//REL TO NLD, GBR, USA"
    assert (review["state"], review["submitted_by"], review["two_person"]) == ("pending", "analyst-1", False)


def test_tlp_green_is_released_as_marked_by_the_rules(client, api, collection, analyst, usa):
    green = indicator() | {"object_marking_refs": [tlp_id("2.0:green")]}
    post_ok(client, api, collection.id, analyst, [green])
    assert green["id"] in partner_ids(client, api, collection.id, usa)


def test_release_as_marked_serves_it_as_newly_added_and_wakes_push_and_streams(
    client, api, collection, analyst, officer, usa, gbr, who, session
):
    item = post_marked(client, api, collection.id, analyst, "CONFIDENTIAL//REL TO USA")
    before = client.get(objects_url(api, collection.id), headers=usa)
    last_seen = before.headers.get("X-TAXII-Date-Added-Last")
    changes = session.execute(select(func.count()).select_from(StoredChange)).scalar_one()
    answer = decide(client, officer, [review_of(client, officer, item["id"])["id"]])
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcomes"][0]["released_to"] == ["USA"]
    params = {"added_after": last_seen} if last_seen else {}
    after = [
        o["id"] for page in walk(client, objects_url(api, collection.id), usa, params) for o in page.get("objects", [])
    ]
    assert item["id"] in after  # newer than anything USA had read
    assert item["id"] not in partner_ids(client, api, collection.id, gbr)  # not released to GBR
    session.expire_all()
    assert session.execute(select(func.count()).select_from(StoredChange)).scalar_one() > changes


def test_decline_keeps_it_hidden_and_tells_the_analyst_why(client, api, collection, analyst, officer, usa):
    item = post_marked(client, api, collection.id, analyst, "RESTRICTED//REL TO USA")
    review = review_of(client, officer, item["id"])
    answer = client.post(
        "/api/v1/disclosure/decisions",
        headers=officer,
        json={"reviews": [review["id"]], "action": "decline", "reason": "source protection"},
    )
    assert answer.status_code == 200, answer.text
    _absent_everywhere(client, api, collection.id, usa, item["id"], analyst)
    mine = client.get("/api/v1/disclosure/mine", headers=analyst).json()["reviews"]
    (state,) = [r for r in mine if r["id"] == review["id"]]
    assert (state["state"], state["reason"], state["decided_by"]) == ("declined", "source protection", "officer-a")
    assert decide(client, officer, [review["id"]]).status_code == 409  # decided once


def test_narrow_releases_a_new_version_marked_with_the_narrower_label(
    client, api, collection, analyst, officer, usa, gbr
):
    item = post_marked(client, api, collection.id, analyst, "CONFIDENTIAL//REL TO USA, GBR")
    review = review_of(client, officer, item["id"])
    wider = decide(client, officer, [review["id"]], "narrow", banner="CONFIDENTIAL//REL TO USA, GBR, FRA")
    assert wider.status_code == 422  # no wider than the marking
    answer = decide(client, officer, [review["id"]], "narrow", banner="CONFIDENTIAL//REL TO USA")
    assert answer.status_code == 200, answer.text
    (served,) = [o for o in pull(client, api, collection.id, usa, "all") if o["id"] == item["id"]]
    assert served["modified"] != item["modified"]  # the held version itself stays held
    assert item["id"] not in partner_ids(client, api, collection.id, gbr)
    definitions = {o["id"]: o for o in pull(client, api, collection.id, usa) if o["type"] == "marking-definition"}
    (label,) = [definitions[ref] for ref in served["object_marking_refs"] if ref in definitions]
    assert "REL TO NLD, USA" in str(label)  # what USA holds says what it was released


def test_tearline_releases_a_derived_object_only(client, api, collection, analyst, officer, usa):
    item = post_marked(client, api, collection.id, analyst, "CONFIDENTIAL//REL TO USA, GBR")
    review = review_of(client, officer, item["id"])
    answer = decide(client, officer, [review["id"]], "tearline", banner="UNCLASSIFIED//REL TO USA")
    assert answer.status_code == 200, answer.text
    derived = answer.json()["outcomes"][0]["result_id"]
    seen = partner_ids(client, api, collection.id, usa)
    assert derived in seen and item["id"] not in seen


def test_an_analyst_may_not_decide_on_an_item_it_posted(client, api, collection, who):
    both = who("analyst+officer", "dual-1")
    officer = who("officer", "officer-b")
    item = post_marked(client, api, collection.id, both, "CONFIDENTIAL//REL TO USA")
    review = review_of(client, officer, item["id"])
    assert decide(client, both, [review["id"]]).status_code == 403
    assert decide(client, officer, [review["id"]]).status_code == 200


def test_two_person_rule_from_secret(client, api, collection, analyst, who, usa):
    first, second = who("officer", "officer-a"), who("officer", "officer-c")
    item = post_marked(client, api, collection.id, analyst, "SECRET//REL TO USA")
    review = review_of(client, first, item["id"])
    assert review["two_person"] is True
    proposed = decide(client, first, [review["id"]])
    assert proposed.status_code == 200 and proposed.json()["outcomes"][0]["awaiting_second_officer"] is True
    assert item["id"] not in partner_ids(client, api, collection.id, usa)
    assert decide(client, first, [review["id"]]).status_code == 409  # the same officer twice
    assert decide(client, second, [review["id"]], "narrow", banner="SECRET//REL TO USA").status_code == 409
    assert decide(client, second, [review["id"]]).status_code == 200
    assert item["id"] in partner_ids(client, api, collection.id, usa)


def test_partners_and_auditors_cannot_use_the_queue(client, api, collection, analyst, officer, who, usa):
    item = post_marked(client, api, collection.id, analyst, "RESTRICTED//REL TO USA")
    review = review_of(client, officer, item["id"])
    for headers in (usa, who("auditor"), analyst):
        assert client.get("/api/v1/disclosure/queue", headers=headers).status_code == 403
        assert decide(client, headers, [review["id"]]).status_code == 403
    assert item["id"] not in partner_ids(client, api, collection.id, usa)


def test_a_reference_to_a_held_item_is_closed_until_it_is_released(client, api, collection, analyst, officer, usa):
    held = post_marked(client, api, collection.id, analyst, "RESTRICTED//REL TO USA")
    target = malware() | {"object_marking_refs": [tlp_id("2.0:green")]}
    relationship = {
        "type": "relationship",
        "spec_version": "2.1",
        "id": f"relationship--{uuid.uuid4()}",
        "created": "2024-01-01T00:00:00.000Z",
        "modified": "2024-01-01T00:00:00.000Z",
        "relationship_type": "indicates",
        "source_ref": held["id"],
        "target_ref": target["id"],
        "object_marking_refs": [tlp_id("2.0:green")],
    }
    post_ok(client, api, collection.id, analyst, [target, relationship])
    seen = partner_ids(client, api, collection.id, usa)
    assert target["id"] in seen and relationship["id"] not in seen  # it names a held item: withheld
    assert by_id_status(client, api, collection.id, usa, relationship["id"]) == 404
    assert decide(client, officer, [review_of(client, officer, held["id"])["id"]]).status_code == 200
    assert {held["id"], relationship["id"]} <= partner_ids(client, api, collection.id, usa)


def test_a_report_and_what_it_names_are_released_in_one_action(client, api, collection, analyst, officer, usa):
    text = "RESTRICTED//REL TO USA"
    first = post_marked(client, api, collection.id, analyst, text)
    second = post_marked(client, api, collection.id, analyst, text)
    unrelated = post_marked(client, api, collection.id, analyst, text)
    report = {
        "type": "report",
        "spec_version": "2.1",
        "id": f"report--{uuid.uuid4()}",
        "created": "2024-01-01T00:00:00.000Z",
        "modified": "2024-01-01T00:00:00.000Z",
        "name": "LANTERN infrastructure",
        "published": "2024-01-01T00:00:00Z",
        "object_refs": [first["id"], second["id"]],
    }
    report = post_marked(client, api, collection.id, analyst, text, report)
    listed = client.get(
        "/api/v1/disclosure/queue", headers=officer, params={"referenced_by": report["id"], "limit": 1000}
    ).json()["reviews"]
    assert {r["object_id"] for r in listed} == {report["id"], first["id"], second["id"]}
    preview = client.post("/api/v1/disclosure/preview", headers=officer, json={"reviews": [r["id"] for r in listed]})
    (usa_view,) = [p for p in preview.json()["partners"] if p["nation"] == "USA"]
    assert usa_view["would_receive"] == 3  # the report's references are released with it
    assert decide(client, officer, [r["id"] for r in listed]).status_code == 200
    seen = partner_ids(client, api, collection.id, usa)
    assert {report["id"], first["id"], second["id"]} <= seen and unrelated["id"] not in seen

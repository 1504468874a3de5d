"""Each decision is an audit record committed with it; auditors list decisions and find an officer's."""

from __future__ import annotations

from sqlalchemy import select

from app.audit.models import AuditRecord, AuditWritten
from tests.disclosure.helpers import decide, post_marked, review_of


def _last_decision_record(session) -> AuditRecord:
    session.expire_all()
    record = (
        session.execute(
            select(AuditRecord)
            .where(AuditRecord.route.contains("/disclosure/decisions"))
            .order_by(AuditRecord.seq.desc())
        )
        .scalars()
        .first()
    )
    assert record is not None
    return record


def test_a_release_is_on_record_with_what_went_to_whom_and_why(client, api, collection, who, session):
    analyst, officer, auditor = who("analyst"), who("officer", "officer-rec"), who("auditor")
    item = post_marked(client, api, collection.id, analyst, "RESTRICTED//REL TO USA, FRA")
    review = review_of(client, officer, item["id"])
    answer = client.post(
        "/api/v1/disclosure/decisions",
        headers=officer,
        json={"reviews": [review["id"]], "action": "release", "reason": "approved for the coalition cell"},
    )
    assert answer.status_code == 200, answer.text
    record = _last_decision_record(session)
    assert (record.subject, record.decision) == ("officer-rec", "allow")
    assert "released to FRA, USA" in (record.reason or "") and "approved for the coalition cell" in (
        record.reason or ""
    )
    written = session.get(AuditWritten, record.seq)
    assert written is not None and item["id"] in written.pairs
    assert client.get("/api/v1/audit/verify", headers=auditor).json()["ok"] is True

    listed = client.get("/api/v1/audit/disclosures", headers=auditor, params={"officer": "officer-rec"}).json()
    (entry,) = [d for d in listed["decisions"] if d["id"] == review["id"]]
    assert (entry["state"], entry["decided_by"], entry["released_to"]) == ("released", "officer-rec", ["FRA", "USA"])
    others = client.get("/api/v1/audit/disclosures", headers=auditor, params={"officer": "someone-else"}).json()
    assert review["id"] not in {d["id"] for d in others["decisions"]}
    assert client.get("/api/v1/audit/disclosures", headers=officer).status_code == 403


def test_a_refused_decision_changes_nothing_and_is_on_record_as_refused(client, api, collection, who, session):
    analyst, officer = who("analyst"), who("officer", "officer-ref")
    item = post_marked(client, api, collection.id, analyst, "RESTRICTED//REL TO USA")
    review = review_of(client, officer, item["id"])
    bad = decide(client, officer, [review["id"], "00000000-0000-4000-8000-000000000000"])
    assert bad.status_code == 404  # the batch is all or nothing
    assert review_of(client, officer, item["id"])["state"] == "pending"
    session.expire_all()
    refused = (
        session.execute(
            select(AuditRecord)
            .where(AuditRecord.route.contains("/disclosure/decisions"), AuditRecord.subject == "officer-ref")
            .order_by(AuditRecord.seq.desc())
        )
        .scalars()
        .first()
    )
    assert refused is not None and refused.status == 404


def test_an_officer_does_not_see_items_above_its_clearance(client, api, collection, who):
    analyst = who("analyst")
    low = who("officer", "officer-low", clearance="RESTRICTED")
    high = who("officer", "officer-high")
    item = post_marked(client, api, collection.id, analyst, "CONFIDENTIAL//REL TO USA")
    review = review_of(client, high, item["id"])
    queue = client.get("/api/v1/disclosure/queue", headers=low, params={"limit": 1000}).json()["reviews"]
    assert item["id"] not in {r["object_id"] for r in queue}
    assert client.get(f"/api/v1/disclosure/reviews/{review['id']}", headers=low).status_code == 404
    assert decide(client, low, [review["id"]]).status_code == 404

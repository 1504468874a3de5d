"""An analyst's explicit recall, and a partner's acknowledgement, through the HTTP API."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.audit.models import AuditRecord, AuditWritten
from tests.recall.helpers import RECALL_EXTENSION, Nations, notices_for, pull
from tests.taxii.helpers import indicator, new_version, objects_url, post_ok, taxii_time
from tests.taxii.test_releasability import banner, marked


@pytest.fixture
def nations(auth) -> Nations:
    return Nations(auth)


def _item_with_two_versions(client, api, collection_id, nations):
    wide = banner("UNCLASSIFIED//REL TO USA, FRA, DEU")
    first = marked(indicator(), wide)
    second = marked(new_version(first, 1), wide)
    post_ok(client, api, collection_id, nations.home, [wide, first])
    pull(client, api, collection_id, nations["FRA"])  # FRA holds the first version
    post_ok(client, api, collection_id, nations.home, [wide, second])
    pull(client, api, collection_id, nations["USA"], version="all")  # USA holds both
    return first, second


def test_explicit_recall_of_one_version_notifies_its_recipients_only(client, api, collection, nations, session):
    first, second = _item_with_two_versions(client, api, collection.id, nations)
    answer = client.post(
        f"/api/v1/items/{first['id']}/recall",
        headers=nations.home,
        json={"reason": "Reporting error.", "action": "do-not-disseminate", "versions": [second["modified"]]},
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["notified"] == ["USA"] and body["versions"] == [taxii_time(second["modified"])]
    (notice,) = notices_for(client, api, collection.id, nations["USA"])
    properties = notice["extensions"][RECALL_EXTENSION]
    assert properties["recalled_versions"] == [taxii_time(second["modified"])]
    assert (properties["reason"], properties["action"]) == ("Reporting error.", "do-not-disseminate")
    assert notices_for(client, api, collection.id, nations["FRA"]) == []  # FRA never held the second
    # The recalled version is withdrawn from every partner; the first stays served.
    for nation in ("USA", "FRA", "DEU"):
        served = {
            o["modified"]
            for o in pull(client, api, collection.id, nations[nation], version="all")
            if o["id"] == first["id"]
        }
        assert served == {first["modified"]}
    # The recall's write record names what it stored: the notice among them.
    record = (
        session.execute(
            select(AuditRecord).where(AuditRecord.route.contains("/recall")).order_by(AuditRecord.seq.desc())
        )
        .scalars()
        .first()
    )
    assert record is not None and record.written_count and record.written_count >= 2
    written = session.get(AuditWritten, record.seq)
    assert written is not None and notice["id"] in written.pairs


def test_recall_of_all_versions_and_the_refusals(client, api, collection, nations):
    first, _ = _item_with_two_versions(client, api, collection.id, nations)
    url = f"/api/v1/items/{first['id']}/recall"
    assert client.post(url, headers=nations["USA"], json={"reason": "x"}).status_code == 403
    assert client.post(url, json={"reason": "x"}).status_code == 401
    bad = client.post(url, headers=nations.home, json={"reason": "x", "versions": ["2001-01-01T00:00:00.000Z"]})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    assert client.post(url, headers=nations.home, json={"reason": ""}).status_code == 400
    assert client.post(url, headers=nations.home, json={"reason": "x", "action": "burn"}).status_code == 400
    absent = client.post(
        "/api/v1/items/indicator--00000000-0000-4000-8000-000000000000/recall",
        headers=nations.home,
        json={"reason": "x"},
    )
    assert absent.status_code == 404
    answer = client.post(url, headers=nations.home, json={"reason": "Withdrawn."})
    assert answer.status_code == 201 and answer.json()["notified"] == ["FRA", "USA"]
    for nation in ("USA", "FRA", "DEU"):
        assert client.get(objects_url(api, collection.id, first["id"]), headers=nations[nation]).status_code == 404
    assert notices_for(client, api, collection.id, nations["DEU"]) == []
    # Recalling again tells no one twice.
    again = client.post(url, headers=nations.home, json={"reason": "Withdrawn."})
    assert again.status_code == 201 and again.json()["notified"] == []
    assert len(notices_for(client, api, collection.id, nations["FRA"])) == 1


def test_acknowledgement_is_the_recipients_alone(client, api, collection, nations, auth):
    first, _ = _item_with_two_versions(client, api, collection.id, nations)
    client.post(f"/api/v1/items/{first['id']}/recall", headers=nations.home, json={"reason": "Withdrawn."})
    (notice,) = notices_for(client, api, collection.id, nations["FRA"])
    url = f"/api/v1/recalls/{notice['id']}/acknowledgement"
    absent = client.post(
        "/api/v1/recalls/note--00000000-0000-4000-8000-000000000000/acknowledgement", headers=nations["USA"]
    )
    other = client.post(url, headers=nations["USA"])  # USA's own notice is another one
    assert absent.status_code == other.status_code == 404
    assert absent.json()["detail"] == other.json()["detail"]
    assert client.post(url, headers=nations.home).status_code == 403  # analysts do not acknowledge
    first_ack = client.post(url, headers=nations["FRA"])
    assert first_ack.status_code == 200 and first_ack.json()["acknowledged_by"] == "fra-recall"
    again = client.post(url, headers=auth(subject="fra-other", nation="FRA", roles=("partner",)))
    assert again.status_code == 200 and again.json() == first_ack.json()
    listed = client.get("/api/v1/recalls", headers=nations["FRA"]).json()["notices"]
    assert [(n["notice_id"], n["acknowledged_by"]) for n in listed if n["notice_id"] == notice["id"]] == [
        (notice["id"], "fra-recall")
    ]
    assert notice["id"] not in {
        n["notice_id"] for n in client.get("/api/v1/recalls", headers=nations["DEU"]).json()["notices"]
    }

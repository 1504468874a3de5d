"""Recall from a partner's and an attacker's side: what an outside probe found, each reproduced.

1. A partner's recall note honoured for an object it merely stored first (a TLP definition).
2. An explicit recall's reason reaching the recipients of a tearline at the tearline's lower label.
3. An explicitly recalled version served again once stored in another collection.
4. Notice ids computable from a recall id, so another nation's notice could be tested for.
5. A reference id longer than the store holds: 500 on PostgreSQL.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from app.recall.models import Recall
from tests.recall.helpers import RECALL_EXTENSION, Nations, notices_for, pull
from tests.taxii.helpers import indicator, objects_url, post_envelope, post_ok
from tests.taxii.test_releasability import banner, marked, shared  # noqa: F401  (a fixture)

TLP_WHITE = "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"


@pytest.fixture
def nations(auth) -> Nations:
    return Nations(auth)


def _recall_note(object_id: str, versions: list[str], reason: str = "Partner says so.") -> dict:
    created = "2024-06-01T00:00:00.000Z"
    return {
        "type": "note",
        "spec_version": "2.1",
        "id": f"note--{uuid.uuid4()}",
        "created": created,
        "modified": created,
        "content": "recall",
        "object_refs": [object_id],
        "extensions": {
            RECALL_EXTENSION: {
                "extension_type": "property-extension",
                "recall_id": str(uuid.uuid4()),
                "recalled_object": object_id,
                "recalled_versions": versions,
                "reason": reason,
                "action": "destroy",
                "issued": created,
            }
        },
    }


def test_a_partner_cannot_recall_a_definition_it_stored_first(client, api, collection, shared, nations, session):  # noqa: F811
    post_ok(client, api, shared.id, nations["FRA"], [marked(indicator(), {"id": TLP_WHITE})])
    home_item = marked(indicator(), {"id": TLP_WHITE})
    post_ok(client, api, collection.id, nations.home, [home_item])
    for nation in ("USA", "GBR"):
        pull(client, api, collection.id, nations[nation])
    post_ok(client, api, shared.id, nations["FRA"], [_recall_note(TLP_WHITE, ["2017-01-20T00:00:00.000Z"])])
    session.expire_all()
    assert session.execute(select(Recall).where(Recall.object_id == TLP_WHITE)).first() is None
    for nation in ("USA", "GBR"):
        assert notices_for(client, api, collection.id, nations[nation]) == []
        assert client.get(objects_url(api, collection.id, TLP_WHITE), headers=nations[nation]).status_code == 200


def test_a_derived_notice_never_carries_the_sources_reason(client, api, collection, nations):
    secret = banner("SECRET//REL TO USA")
    item = marked(indicator(description="details"), secret)
    post_ok(client, api, collection.id, nations.home, [secret, item])
    pull(client, api, collection.id, nations["USA"])
    derived = client.post(
        f"/api/v1/items/{item['id']}/tearlines",
        headers=nations.home,
        json={"banner": "SECRET//REL TO USA, GBR", "collection": collection.id},
    )
    assert derived.status_code == 201, derived.text
    pull(client, api, collection.id, nations["GBR"])
    reason = "SECRET: source ORCHID compromised."
    answer = client.post(f"/api/v1/items/{item['id']}/recall", headers=nations.home, json={"reason": reason})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["notified"] == ["USA"] and body["derived_notified"] == ["GBR"]
    (notice,) = notices_for(client, api, collection.id, nations["GBR"])
    assert reason not in str(notice) and "ORCHID" not in str(notice)


def test_an_explicitly_recalled_version_stays_withdrawn_in_another_collection(client, api, collection, shared, nations):  # noqa: F811
    wide = banner("UNCLASSIFIED//REL TO USA, FRA")
    item = marked(indicator(), wide)
    post_ok(client, api, collection.id, nations.home, [wide, item])
    pull(client, api, collection.id, nations["USA"])
    answer = client.post(f"/api/v1/items/{item['id']}/recall", headers=nations.home, json={"reason": "Withdrawn."})
    assert answer.status_code == 201
    post_ok(client, api, shared.id, nations.home, [wide, item])
    for nation in ("USA", "FRA"):
        assert client.get(objects_url(api, shared.id, item["id"]), headers=nations[nation]).status_code == 404


def test_notice_ids_are_not_computable(client, api, collection, nations):
    wide, narrow = banner("UNCLASSIFIED//REL TO USA, FRA"), banner("UNCLASSIFIED//REL TO GBR")
    item = marked(indicator(), wide)
    post_ok(client, api, collection.id, nations.home, [wide, item])
    for nation in ("USA", "FRA"):
        pull(client, api, collection.id, nations[nation])
    client.post(f"/api/v1/items/{item['id']}/recall", headers=nations.home, json={"reason": "Withdrawn."})
    notices = [notices_for(client, api, collection.id, nations[nation])[0] for nation in ("FRA", "USA")]
    # Random (version 4) UUIDs: nothing in FRA's notice (its recall id, the collection) yields USA's id.
    assert {uuid.UUID(n["id"].split("--", 1)[1]).version for n in notices} == {4}
    assert narrow  # (a banner unused: the recall needs no new version)


def test_an_overlong_reference_is_refused_not_a_server_error(client, api, shared, nations):  # noqa: F811
    long_ref = f"{'x' * 260}--{uuid.uuid4()}"
    note = {
        "type": "note",
        "spec_version": "2.1",
        "id": f"note--{uuid.uuid4()}",
        "created": "2024-06-01T00:00:00.000Z",
        "modified": "2024-06-01T00:00:00.000Z",
        "content": "x",
        "object_refs": [long_ref],
    }
    answer = post_envelope(client, api, shared.id, nations["FRA"], [note])
    assert answer.status_code == 202, answer.text
    assert answer.json()["failure_count"] == 1

"""Recipients of an object are exactly the partners that pulled it over TAXII (taxii2-client, live server)."""

from __future__ import annotations

import uuid

import pytest
import requests
from sqlmodel import Session
from taxii2client.common import TokenAuth
from taxii2client.v21 import Server, as_pages

from app.taxii import service as taxii_service
from tests.audit.conftest import labelled_indicator

pytestmark = pytest.mark.e2e


def _pull(live_server: str, token: str, collection_id: str) -> set[str]:
    server = Server(f"{live_server}/taxii2/", auth=TokenAuth(token))
    collection = next(c for root in server.api_roots for c in root.collections if c.id == collection_id)
    return {o["id"] for page in as_pages(collection.get_objects, per_request=2) for o in page.get("objects", [])}


def test_recipients_match_the_partners_that_pulled(app, live_server, settings, make_token):
    with Session(app.state.engine) as session:
        collection_id = taxii_service.create_collection(
            session,
            title=f"recipients {uuid.uuid4().hex[:8]}",
            read_roles={"partner", "analyst"},
            write_roles={"analyst"},
        ).id
    fvey = labelled_indicator("UNCLASSIFIED//REL TO FVEY")  # USA, GBR, CAN may see it; FRA, DEU may not
    usa_only = labelled_indicator("SECRET//REL TO USA")
    base = f"{live_server}/taxii2/{settings.api_root}/collections/{collection_id}/objects/"
    posted = requests.post(
        base,
        json={"objects": fvey + usa_only},
        timeout=30,
        headers={
            "Authorization": f"Bearer {make_token(subject='e2e-analyst')}",
            "Content-Type": "application/taxii+json;version=2.1",
            "Accept": "application/taxii+json;version=2.1",
        },
    )
    assert posted.status_code == 202, posted.text

    pulls = {}
    for nation in ("USA", "GBR", "FRA"):  # CAN and DEU do not pull
        token = make_token(subject=f"{nation.lower()}-e2e", nation=nation, roles=("partner",))
        pulls[nation] = _pull(live_server, token, collection_id)
    assert fvey[1]["id"] in pulls["USA"] and fvey[1]["id"] in pulls["GBR"] and fvey[1]["id"] not in pulls["FRA"]

    auditor = {"Authorization": f"Bearer {make_token(subject='e2e-auditor', roles=('auditor',))}"}
    for md_or_obj in (*fvey, *usa_only):
        response = requests.get(f"{live_server}/api/v1/audit/recipients/{md_or_obj['id']}", headers=auditor, timeout=30)
        assert response.status_code == 200
        nations = {r["nation"] for r in response.json()["recipients"]}
        expected = {nation for nation, ids in pulls.items() if md_or_obj["id"] in ids}
        assert nations == expected, md_or_obj["id"]
    assert {
        r["nation"]
        for r in requests.get(
            f"{live_server}/api/v1/audit/recipients/{usa_only[1]['id']}", headers=auditor, timeout=30
        ).json()["recipients"]
    } == {"USA"}

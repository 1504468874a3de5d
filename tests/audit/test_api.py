"""The auditor API: filtered records with keyset paging, recipients, exports, verify; read-only."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.audit.service import record_event
from app.taxii import service as taxii_service
from tests.audit.conftest import labelled_indicator, post_objects

RECORDS = "/api/v1/audit/records"


@pytest.fixture
def auditor(auth) -> dict:
    return auth(subject="auditor-1", roles=("auditor",))


@pytest.fixture(scope="module")
def pulled(app, auth, settings):
    """USA pulls twice and GBR once an object in two versions; FRA is refused the one it asks for."""
    api = f"/taxii2/{settings.api_root}"
    with Session(app.state.engine) as session:
        collection_id = taxii_service.create_collection(
            session,
            title=f"audit api {uuid.uuid4().hex[:8]}",
            read_roles={"partner", "analyst"},
            write_roles={"analyst"},
        ).id
    object_id = f"indicator--{uuid.uuid4()}"
    first = labelled_indicator("UNCLASSIFIED//REL TO FVEY", object_id=object_id)
    second = labelled_indicator("UNCLASSIFIED//REL TO USA", object_id=object_id, modified="2025-03-02T10:00:00.000Z")
    tag = uuid.uuid4().hex[:8]
    path = f"{api}/collections/{collection_id}/objects/{object_id}/versions/"

    def pull(nation: str) -> None:
        client.get(path, headers=auth(subject=f"{nation.lower()}-{tag}", nation=nation, roles=("partner",)))

    with TestClient(app) as client:
        # GBR pulls the first version before the second (USA only) withdraws it from GBR.
        post_objects(client, auth(), api, collection_id, first)
        pull("GBR")
        post_objects(client, auth(), api, collection_id, second)
        for nation in ("USA", "USA", "FRA"):
            pull(nation)
    return object_id, tag, collection_id


def test_recipients_list_every_version_and_nation_with_first_and_last_time(client, auditor, pulled):
    object_id, _, _ = pulled
    response = client.get(f"/api/v1/audit/recipients/{object_id}", headers=auditor)
    assert response.status_code == 200
    got = {(r["version"], r["nation"]): r for r in response.json()["recipients"]}
    assert set(got) == {
        ("2025-03-01T10:00:00.000000Z", "USA"),
        ("2025-03-02T10:00:00.000000Z", "USA"),
        ("2025-03-01T10:00:00.000000Z", "GBR"),
    }
    usa = got[("2025-03-01T10:00:00.000000Z", "USA")]
    assert usa["times"] == 2 and usa["first_received"] < usa["last_received"]
    assert got[("2025-03-01T10:00:00.000000Z", "GBR")]["times"] == 1


def test_filters_combine_and_keyset_paging_visits_each_record_once(client, auditor, pulled):
    object_id, tag, collection_id = pulled
    refused = client.get(RECORDS, params={"subject": f"fra-{tag}", "decision": "deny"}, headers=auditor).json()
    assert [r["status"] for r in refused["records"]] == [404]
    assert refused["records"][0]["reason"].startswith("hidden object requested")

    by_object = client.get(RECORDS, params={"object_id": object_id}, headers=auditor).json()["records"]
    assert sorted(r["nation"] for r in by_object) == ["GBR", "USA", "USA"]

    seen, after = [], None
    while True:
        params = {"collection_id": collection_id, "route": "/taxii2/", "limit": 2, "nation": "USA"}
        page = client.get(RECORDS, params={**params, **({"after": after} if after else {})}, headers=auditor).json()
        seen += [r["seq"] for r in page["records"]]
        if page["next"] is None:
            break
        after = page["next"]
    assert len(seen) == len(set(seen)) == 2 and seen == sorted(seen)

    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert client.get(RECORDS, params={"since": future}, headers=auditor).json()["records"] == []


def test_one_record_shows_its_served_versions(client, auditor, pulled):
    object_id, tag, _ = pulled
    [record] = client.get(RECORDS, params={"subject": f"gbr-{tag}"}, headers=auditor).json()["records"]
    detail = client.get(f"{RECORDS}/{record['seq']}", headers=auditor).json()
    assert detail["served"] == [{"id": object_id, "version": "2025-03-01T10:00:00.000000Z"}]
    assert client.get(f"{RECORDS}/999999999", headers=auditor).status_code == 404


def test_export_streams_ndjson_and_csv_safe_for_spreadsheets(app, client, auditor):
    tag = uuid.uuid4().hex[:8]
    since = datetime.now(UTC).isoformat()
    record_event(
        app.state.engine,
        request_id=f"csv-{tag}",
        subject=f'=HYPERLINK("x")-{tag}',
        nation="USA",
        roles=["partner"],
        method="GET",
        route="/taxii2/",
        status=200,
        decision="allow",
        served=[("indicator--x", "2025-01-01T00:00:00.000Z")],
    )
    lines = client.get("/api/v1/audit/export", params={"since": since, "format": "ndjson"}, headers=auditor)
    assert lines.headers["content-type"].startswith("application/x-ndjson")
    docs = [orjson.loads(line) for line in lines.text.splitlines()]
    ours = [d for d in docs if d["request_id"] == f"csv-{tag}"]
    assert ours and ours[0]["served"] == [["indicator--x", "2025-01-01T00:00:00.000Z"]]

    table = client.get("/api/v1/audit/export", params={"since": since, "format": "csv"}, headers=auditor)
    assert table.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(table.text)))
    [row] = [r for r in rows if r["request_id"] == f"csv-{tag}"]
    assert row["subject"] == f'\'=HYPERLINK("x")-{tag}'
    assert row["served"] == "indicator--x@2025-01-01T00:00:00.000Z"
    assert not any(cell.startswith(("=", "+", "@")) for r in rows for cell in r.values())


def test_verify_endpoint_reports_the_chain(client, auditor):
    report = client.get("/api/v1/audit/verify", headers=auditor).json()
    assert report["ok"] is True and report["checked"] == report["head_seq"] > 0
    assert client.get("/api/v1/audit/verify", params={"start": 5, "end": 2}, headers=auditor).status_code == 400


def test_nobody_can_change_or_delete_records(client, auditor, analyst):
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for path in (RECORDS, f"{RECORDS}/1", "/api/v1/audit/verify", "/api/v1/audit/recipients/x"):
            for headers in (auditor, analyst):
                assert client.request(method, path, headers=headers).status_code == 405, (method, path)


@pytest.mark.parametrize("roles", [("analyst",), ("admin",)])
def test_only_auditors_read_the_log(client, auth, roles):
    response = client.get(RECORDS, headers=auth(subject="curious", roles=roles))
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")


def test_bad_filters_are_refused(client, auditor):
    for params in ({"decision": "maybe"}, {"nation": "usa"}, {"limit": 0}, {"since": "yesterday"}):
        response = client.get(RECORDS, params=params, headers=auditor)
        assert response.status_code == 400, params
        assert response.headers["content-type"].startswith("application/problem+json")

"""Every kind of request yields exactly one record with the right who, what, decision and reason."""

from __future__ import annotations

import uuid

import pytest

from tests.audit.conftest import labelled_indicator, post_objects, records_for

REL_USA = "SECRET//REL TO USA"
REL_ALL = "UNCLASSIFIED//REL TO FVEY, NATO"


def _one(app, request_id: str) -> dict:
    records = records_for(app.state.engine, request_id)
    assert len(records) == 1, records
    return records[0]


@pytest.fixture
def stocked(client, analyst, api, collection):
    """A collection with one object every partner may see and one only USA may see."""
    shared, secret = labelled_indicator(REL_ALL), labelled_indicator(REL_USA)
    post_objects(client, analyst, api, collection.id, shared + secret)
    return collection.id, shared[1]["id"], secret[1]["id"]


def test_allowed_pull_records_the_exact_versions_served(app, client, auth, api, stocked, rid):
    collection_id, shared_id, secret_id = stocked
    request_id = rid()
    headers = {**auth(subject="fra-feed", nation="FRA", roles=("partner",)), "X-Request-ID": request_id}
    response = client.get(f"{api}/collections/{collection_id}/objects/", headers=headers)
    assert response.status_code == 200
    served_ids = {o["id"] for o in response.json()["objects"]}
    assert shared_id in served_ids and secret_id not in served_ids

    record = _one(app, request_id)
    assert (record["subject"], record["nation"], record["roles"]) == ("fra-feed", "FRA", "partner")
    assert (record["method"], record["status"], record["decision"], record["reason"]) == ("GET", 200, "allow", None)
    assert record["route"] == f"{api}/collections/{collection_id}/objects/"
    assert record["collection_id"] == collection_id and record["recipient_nation"] == "FRA"
    assert record["client"] == "testclient"
    assert {object_id for object_id, _ in record["served"]} == served_ids
    assert record["served_count"] == len(response.json()["objects"])


@pytest.mark.parametrize("endpoint", ["manifest/", "objects/{id}/", "objects/{id}/versions/"])
def test_manifest_single_object_and_versions_count_as_served(app, client, partner_usa, api, stocked, rid, endpoint):
    collection_id, _, secret_id = stocked
    request_id = rid()
    path = f"{api}/collections/{collection_id}/{endpoint.format(id=secret_id)}"
    response = client.get(path, headers={**partner_usa, "X-Request-ID": request_id})
    assert response.status_code == 200
    record = _one(app, request_id)
    assert record["decision"] == "allow" and record["nation"] == "USA"
    assert secret_id in {object_id for object_id, _ in record["served"]}


def test_hidden_object_is_recorded_as_hidden_but_answered_like_an_absent_one(app, client, auth, api, stocked, rid):
    collection_id, _, secret_id = stocked
    fra = auth(subject="fra-feed", nation="FRA", roles=("partner",))
    hidden_id, absent_id = rid(), rid()
    hidden = client.get(
        f"{api}/collections/{collection_id}/objects/{secret_id}/", headers={**fra, "X-Request-ID": hidden_id}
    )
    absent = client.get(
        f"{api}/collections/{collection_id}/objects/indicator--{uuid.uuid4()}/",
        headers={**fra, "X-Request-ID": absent_id},
    )
    assert hidden.status_code == absent.status_code == 404
    assert hidden.json() == absent.json()
    hidden_record, absent_record = _one(app, hidden_id), _one(app, absent_id)
    assert hidden_record["decision"] == absent_record["decision"] == "deny"
    assert hidden_record["reason"].startswith("hidden object requested")
    assert absent_record["reason"].startswith("no such object")
    assert hidden_record["served"] == set() and hidden_record["served_count"] == 0


def test_missing_and_bad_tokens_are_recorded_as_refused(app, client, api, rid):
    missing, bad = rid(), rid()
    assert client.get("/taxii2/", headers={"X-Request-ID": missing}).status_code == 401
    assert client.get("/taxii2/", headers={"X-Request-ID": bad, "Authorization": "Bearer not.a.jwt"}).status_code == 401
    for request_id in (missing, bad):
        record = _one(app, request_id)
        assert (record["decision"], record["status"], record["nation"]) == ("deny", 401, "")
        assert record["reason"].startswith("bad token")


def test_forged_token_keeps_the_claimed_subject_marked_unverified(app, client, rid):
    from jose import jwt

    forged = jwt.encode({"sub": "mallory", "nation": "USA", "roles": ["partner"]}, "guess", algorithm="HS256")
    request_id = rid()
    response = client.get("/taxii2/", headers={"X-Request-ID": request_id, "Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    record = _one(app, request_id)
    assert record["subject"] == "unverified:mallory" and record["decision"] == "deny"


def test_missing_right_is_recorded_with_the_right_named(app, client, partner_usa, rid):
    request_id = rid()
    response = client.get("/api/v1/audit/records", headers={**partner_usa, "X-Request-ID": request_id})
    assert response.status_code == 403
    record = _one(app, request_id)
    assert (record["subject"], record["decision"]) == ("usa-feed", "deny")
    assert record["reason"] == "no right: audit read"


def test_refused_principal_is_recorded_as_no_right(app, client, auth, rid):
    request_id = rid()
    headers = {**auth(subject="sweden", nation="SWE", roles=("partner",)), "X-Request-ID": request_id}
    assert client.get("/taxii2/", headers=headers).status_code == 403
    record = _one(app, request_id)
    assert (record["subject"], record["nation"], record["decision"]) == ("sweden", "SWE", "deny")
    assert record["reason"].startswith("no right") and "not an active partner" in record["reason"]


def test_bad_input_is_recorded_with_the_error_detail(app, client, partner_usa, api, stocked, rid):
    collection_id, _, _ = stocked
    request_id = rid()
    response = client.get(
        f"{api}/collections/{collection_id}/objects/?limit=zero", headers={**partner_usa, "X-Request-ID": request_id}
    )
    assert response.status_code == 400
    record = _one(app, request_id)
    assert record["decision"] == "deny" and record["reason"].startswith("bad input")
    assert record["route"].endswith("?limit=zero") and record["served"] == set()


def test_push_is_recorded_and_serves_nothing(app, client, analyst, api, collection, rid):
    request_id = rid()
    response = client.post(
        f"{api}/collections/{collection.id}/objects/",
        json={"objects": labelled_indicator(REL_ALL)},
        headers={**analyst, "Content-Type": "application/taxii+json;version=2.1", "X-Request-ID": request_id},
    )
    assert response.status_code == 202
    record = _one(app, request_id)
    assert (record["method"], record["decision"], record["status"]) == ("POST", "allow", 202)
    assert record["collection_id"] == collection.id and record["served_count"] == 0


def test_health_and_docs_are_not_recorded(app, client, rid):
    for path in ("/healthz", "/openapi.json"):
        request_id = rid()
        client.get(path, headers={"X-Request-ID": request_id})
        assert records_for(app.state.engine, request_id) == []


def test_a_nul_byte_in_the_path_is_recorded_escaped(app, client, partner_usa, api, collection, rid):
    request_id = rid()
    response = client.get(
        f"{api}/collections/{collection.id}/objects/indicator--%00x/",
        headers={**partner_usa, "X-Request-ID": request_id},
    )
    assert response.status_code == 404
    record = _one(app, request_id)
    assert "indicator--\\x00x" in record["route"] and record["decision"] == "deny"

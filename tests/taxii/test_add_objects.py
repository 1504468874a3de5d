"""Add Objects (TAXII 2.1 section 5.4) and the status resource it returns (section 4.3).

Every refusal is checked against the database: a refused request stores nothing.
"""

from __future__ import annotations

import copy
import json
import uuid

import pytest

from app.taxii import service as taxii_service
from tests.conftest import TAXII
from tests.taxii.helpers import (
    assert_taxii_error,
    check_status_document,
    get_ok,
    indicator,
    ipv4,
    malware,
    new_version,
    objects_url,
    post_envelope,
    post_ok,
    status_url,
    stored_rows,
    taxii_time,
)


def post_raw(client, api, collection, headers, body: bytes, content_type: str = TAXII):
    return client.post(objects_url(api, collection.id), headers=headers | {"Content-Type": content_type}, content=body)


def test_accepted_objects_are_reported_and_stored(client, analyst, api, collection, session):
    objects = [indicator(), malware(), ipv4()]
    response = post_envelope(client, api, collection.id, analyst, objects)
    assert response.status_code == 202
    status = check_status_document(response)
    assert status["status"] == "complete"
    assert (status["total_count"], status["success_count"], status["failure_count"], status["pending_count"]) == (
        3,
        3,
        0,
        0,
    )
    assert [s["id"] for s in status["successes"]] == [o["id"] for o in objects]
    assert [s["version"] for s in status["successes"][:2]] == [taxii_time(o["modified"]) for o in objects[:2]]
    assert stored_rows(session, collection.id) == 3
    assert get_ok(client, objects_url(api, collection.id), analyst)["objects"] == objects


def invalid_objects() -> dict[str, object]:
    """Objects that are not valid STIX 2.1, each with a different fault."""
    base = indicator()
    missing = {k: v for k, v in indicator().items() if k != "pattern"}
    bad_id = indicator() | {"id": "indicator--not-a-uuid"}
    no_id = {k: v for k, v in indicator().items() if k != "id"}
    wrong_type = indicator() | {"type": "malware"}
    spec_20 = indicator() | {"spec_version": "2.0"}
    no_spec = {k: v for k, v in indicator().items() if k != "spec_version"}
    bad_created = indicator() | {"created": "yesterday"}
    bad_modified = indicator() | {"modified": "2020-13-45T00:00:00.000Z"}
    backwards = indicator() | {"modified": "2019-12-31T00:00:00.000Z"}  # modified before created
    bad_pattern = indicator() | {"pattern": "[this is not a pattern"}
    wide_digits = indicator() | {"created": "\uff12\uff10\uff12\uff10-01-01T00:00:00.000Z"}  # full-width 2020
    # Custom objects of unregistered types get no checks from stix2.parse: the server's own must hold.
    custom = {
        "type": "x-tearline-test",
        "spec_version": "2.1",
        "created": "2021-01-01T00:00:00.000Z",
        "modified": "2021-01-01T00:00:00.000Z",
    }
    custom_id_newline = custom | {"id": f"x-tearline-test--{uuid.uuid4()}\n"}
    custom_created_newline = custom | {
        "id": f"x-tearline-test--{uuid.uuid4()}",
        "created": "2021-01-01T00:00:00.000Z\n",
    }
    return {
        "missing required property": missing,
        "malformed id": bad_id,
        "no id": no_id,
        "type differs from id": wrong_type,
        "spec_version 2.0": spec_20,
        "no spec_version": no_spec,
        "unparseable created": bad_created,
        "impossible modified": bad_modified,
        "modified before created": backwards,
        "invalid pattern": bad_pattern,
        "non-ASCII digits in created": wide_digits,
        "custom object: newline after id": custom_id_newline,
        "custom object: newline after created": custom_created_newline,
        "not an object": "indicator",
        "a list": [base],
        "null": None,
    }


def test_invalid_objects_fail_one_by_one_while_valid_ones_are_stored(client, analyst, api, collection, session):
    bad = invalid_objects()
    good = [indicator(), malware()]
    submitted = [good[0], *bad.values(), good[1]]
    response = post_envelope(client, api, collection.id, analyst, submitted)
    assert response.status_code == 202, response.text
    status = check_status_document(response)
    assert status["total_count"] == len(submitted)
    assert status["success_count"] == 2 and status["failure_count"] == len(bad)
    assert [s["id"] for s in status["successes"]] == [o["id"] for o in good]
    for failure in status["failures"]:
        assert failure.get("message"), failure  # a reason for each
    failed_ids = {f["id"] for f in status["failures"]}
    for name, obj in bad.items():
        if isinstance(obj, dict) and isinstance(obj.get("id"), str):
            assert obj["id"] in failed_ids, name
    assert stored_rows(session, collection.id) == 2
    assert get_ok(client, objects_url(api, collection.id), analyst)["objects"] == good


@pytest.mark.parametrize("name", list(invalid_objects()))
def test_each_invalid_object_alone_is_a_failure(client, analyst, api, collection, session, name):
    response = post_envelope(client, api, collection.id, analyst, [invalid_objects()[name]])
    assert response.status_code == 202, response.text
    status = check_status_document(response)
    assert (status["success_count"], status["failure_count"]) == (0, 1), status
    assert stored_rows(session, collection.id) == 0


def test_exact_duplicate_is_a_success_stored_once(client, analyst, api, collection, session):
    obj, sco = indicator(), ipv4("192.0.2.77")
    post_ok(client, api, collection.id, analyst, [obj, sco])
    again = post_ok(client, api, collection.id, analyst, [copy.deepcopy(obj), copy.deepcopy(sco)])
    assert [s["id"] for s in again["successes"]] == [obj["id"], sco["id"]]
    # Property order does not make a different object.
    reordered = dict(reversed(list(obj.items())))
    post_ok(client, api, collection.id, analyst, [reordered])
    assert stored_rows(session, collection.id) == 2
    # The same object twice in one envelope.
    twin = indicator()
    status = post_ok(client, api, collection.id, analyst, [twin, copy.deepcopy(twin)])
    assert status["success_count"] == 2
    assert stored_rows(session, collection.id, twin["id"]) == 1


def test_same_version_with_other_content_is_a_failure(client, analyst, api, collection, session):
    original = indicator()
    post_ok(client, api, collection.id, analyst, [original])
    impostor = original | {"description": "a different object under the same id and version"}
    response = post_envelope(client, api, collection.id, analyst, [impostor])
    status = check_status_document(response)
    assert (status["success_count"], status["failure_count"]) == (0, 1)
    assert status["failures"][0]["id"] == original["id"]
    assert status["failures"][0]["version"]
    assert stored_rows(session, collection.id) == 1
    assert get_ok(client, objects_url(api, collection.id, original["id"]), analyst)["objects"] == [original]
    # Within one envelope too: the first wins, the second fails.
    fresh = indicator()
    clash = fresh | {"description": "clash"}
    status = check_status_document(post_envelope(client, api, collection.id, analyst, [fresh, clash]))
    assert (status["success_count"], status["failure_count"]) == (1, 1)
    assert get_ok(client, objects_url(api, collection.id, fresh["id"]), analyst)["objects"] == [fresh]


def test_new_version_is_stored_beside_the_old(client, analyst, api, collection, session):
    obj = indicator()
    newer = new_version(obj, 2)
    post_ok(client, api, collection.id, analyst, [obj])
    post_ok(client, api, collection.id, analyst, [newer])
    assert stored_rows(session, collection.id, obj["id"]) == 2


def test_created_and_modified_are_served_at_millisecond_precision(client, analyst, api, collection, session):
    """Seconds-precision created/modified are accepted (stix2 accepts them) yet served copies must be valid
    STIX 2.1, which wants them to the millisecond: get_ok validates what comes back."""
    coarse = indicator() | {
        "created": "2021-03-04T05:06:07Z",
        "modified": "2021-03-04T05:06:07Z",
        "valid_from": "2021-03-04T05:06:07Z",
    }
    status = post_ok(client, api, collection.id, analyst, [coarse])
    assert status["successes"][0]["version"] == "2021-03-04T05:06:07.000000Z"
    served = get_ok(client, objects_url(api, collection.id, coarse["id"]), analyst)["objects"][0]
    assert served["modified"].startswith("2021-03-04T05:06:07.")
    # Resubmitting the coarse original is still an exact duplicate.
    post_ok(client, api, collection.id, analyst, [coarse])
    assert stored_rows(session, collection.id) == 1


def test_custom_object_with_an_overlong_id_fails_alone(client, analyst, api, collection, session):
    long_type = "x-" + "a" * 240  # a legal STIX type (at most 250 characters)
    overlong = {
        "type": long_type,
        "id": f"{long_type}--{uuid.uuid4()}",
        "spec_version": "2.1",
        "created": "2021-01-01T00:00:00.000Z",
        "modified": "2021-01-01T00:00:00.000Z",
    }
    ok = indicator()
    response = post_envelope(client, api, collection.id, analyst, [overlong, ok])
    assert response.status_code == 202, response.text
    status = check_status_document(response)
    # Stored and served, or refused with a reason: never a server error, never the rest of the envelope lost.
    assert ok["id"] in [s["id"] for s in status["successes"]]
    assert status["success_count"] + status["failure_count"] == 2


def test_empty_envelope_is_accepted_with_nothing_to_do(client, analyst, api, collection, session):
    for body in (b"{}", b'{"objects": []}'):
        response = post_raw(client, api, collection, analyst, body)
        assert response.status_code == 202, response.text
        status = check_status_document(response)
        assert status["total_count"] == 0
    assert stored_rows(session, collection.id) == 0


@pytest.mark.parametrize(
    "body",
    [
        b"[" + json.dumps(indicator()).encode() + b"]",  # a bare JSON array
        json.dumps(
            {"type": "bundle", "id": "bundle--0e6a3f39-4b8f-4f7e-9d55-3d2c0f1a7b10", "objects": "nope"}
        ).encode(),
        b'"just a string"',
        b"42",
        b"null",
        b"",
        b'{"objects": [' + json.dumps(indicator()).encode(),  # truncated
        b"{'objects': []}",  # not JSON
        b'{"objects": {"id": "indicator--x"}}',
        b'{"objects": "indicator"}',
        b'{"objects": null}',
        b"\xff\xfe{\x00}\x00",  # not UTF-8
        b"[" * 5000 + b"]" * 5000,  # deeper than any parser should follow
    ],
)
def test_non_envelope_body_is_400_and_stores_nothing(client, analyst, api, collection, session, body):
    response = post_raw(client, api, collection, analyst, body)
    assert_taxii_error(response, 400)
    assert stored_rows(session, collection.id) == 0


def test_objects_list_with_valid_objects_but_wrong_shape_stores_nothing(client, analyst, api, collection, session):
    """An envelope whose objects property is not a list is refused whole, even if it holds valid objects."""
    good = indicator()
    response = post_raw(client, api, collection, analyst, json.dumps({"objects": {"0": good}}).encode())
    assert_taxii_error(response, 400)
    assert stored_rows(session, collection.id) == 0


def _large_envelope(size: int) -> bytes:
    """An envelope of one valid indicator, padded by its description to exactly ``size`` bytes."""
    obj = indicator(description="")
    body = json.dumps({"objects": [obj]}).encode()
    obj["description"] = "x" * (size - len(body))
    body = json.dumps({"objects": [obj]}).encode()
    assert len(body) == size
    return body


def test_body_at_max_content_length_is_accepted(client, analyst, api, collection, settings, session):
    response = post_raw(client, api, collection, analyst, _large_envelope(settings.max_content_length))
    assert response.status_code == 202, response.text[:300]
    assert stored_rows(session, collection.id) == 1


def test_body_over_max_content_length_is_413(client, analyst, api, collection, settings, session):
    response = post_raw(client, api, collection, analyst, _large_envelope(settings.max_content_length + 1))
    body = assert_taxii_error(response, 413)
    assert str(settings.max_content_length) in body["description"]
    assert stored_rows(session, collection.id) == 0


def test_streamed_body_over_max_content_length_is_413(client, analyst, api, collection, settings, session):
    """Without a Content-Length (chunked upload), the limit still holds while reading."""
    payload = _large_envelope(settings.max_content_length + 4096)

    def chunks():
        for start in range(0, len(payload), 8192):
            yield payload[start : start + 8192]

    response = client.post(objects_url(api, collection.id), headers=analyst | {"Content-Type": TAXII}, content=chunks())
    assert_taxii_error(response, 413)
    assert stored_rows(session, collection.id) == 0


def test_lying_content_length_is_not_trusted(client, analyst, api, collection, settings, session):
    payload = _large_envelope(settings.max_content_length + 4096)

    def chunks():
        yield payload

    response = client.post(
        objects_url(api, collection.id),
        content=chunks(),
        headers=analyst | {"Content-Type": TAXII, "Content-Length": "100"},
    )
    assert response.status_code in {400, 413}, response.status_code
    assert stored_rows(session, collection.id) == 0


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/xml",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/taxii+json;version=2.0",
        "application/stix+json;version=2.0",
        "application/vnd.oasis.stix+json",
    ],
)
def test_wrong_content_type_is_415(client, analyst, api, collection, session, content_type):
    headers = dict(analyst)
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = client.post(
        objects_url(api, collection.id), headers=headers, content=json.dumps({"objects": [indicator()]}).encode()
    )
    assert_taxii_error(response, 415)
    assert stored_rows(session, collection.id) == 0


@pytest.mark.parametrize(
    "content_type",
    [TAXII, "application/taxii+json", "application/json", "application/taxii+json; version=2.1; charset=utf-8"],
)
def test_accepted_content_types(client, analyst, api, collection, session, content_type):
    response = post_envelope(client, api, collection.id, analyst, [indicator()], content_type=content_type)
    assert response.status_code == 202, response.text
    assert stored_rows(session, collection.id) == 1


def test_partner_without_write_right_is_403(client, partner_usa, api, collection, session):
    response = post_envelope(client, api, collection.id, partner_usa, [indicator()])
    assert_taxii_error(response, 403)
    assert stored_rows(session, collection.id) == 0


@pytest.mark.parametrize(
    "claims", [{"subject": "auditor-1", "roles": ("auditor",)}, {"subject": "admin-1", "roles": ("admin",)}]
)
def test_home_roles_without_taxii_rights_cannot_post(client, auth, api, collection, session, claims):
    response = post_envelope(client, api, collection.id, auth(**claims), [indicator()])
    assert_taxii_error(response, 404)  # they may neither read nor write it: as if absent
    assert stored_rows(session, collection.id) == 0


def test_unauthenticated_post_is_401(client, api, collection, session):
    response = post_envelope(client, api, collection.id, {"Accept": TAXII}, [indicator()])
    assert_taxii_error(response, 401)
    assert stored_rows(session, collection.id) == 0


def test_post_to_unknown_collection_is_404(client, analyst, api):
    response = post_envelope(client, api, str(uuid.uuid4()), analyst, [indicator()])
    assert_taxii_error(response, 404)


# ---------------------------------------------------------------- status


def test_poster_reads_the_status(client, analyst, api, collection):
    posted = post_envelope(client, api, collection.id, analyst, [indicator(), invalid_objects()["malformed id"]])
    status = check_status_document(posted)
    for slash in (True, False):  # taxii2-client asks without the trailing slash
        fetched = get_ok(client, status_url(api, status["id"], slash=slash), analyst)
        assert fetched == status


@pytest.mark.parametrize(
    "other",
    [
        {"subject": "analyst-other"},
        {"subject": "analyst-1", "nation": "USA", "roles": ("partner",)},  # same subject, another nation
        {"subject": "usa-feed", "nation": "USA", "roles": ("partner",)},
        {"subject": "auditor-1", "roles": ("auditor",)},
    ],
)
def test_status_is_404_to_anyone_else(client, analyst, auth, api, collection, other):
    status = post_ok(client, api, collection.id, analyst, [indicator()])
    for slash in (True, False):
        response = client.get(status_url(api, status["id"], slash=slash), headers=auth(**other))
        assert_taxii_error(response, 404)
    # Indistinguishable from a status that never existed.
    unknown = client.get(status_url(api, str(uuid.uuid4())), headers=auth(**other))
    assert unknown.json() == client.get(status_url(api, status["id"]), headers=auth(**other)).json()


@pytest.mark.parametrize("status_id", ["7b1e0c52-93c4-4b87-a1f1-2d4f6e8a9c03", "not-a-uuid", "x" * 300])
def test_unknown_status_is_404(client, analyst, api, status_id):
    assert_taxii_error(client.get(status_url(api, status_id), headers=analyst), 404)


def test_partner_reads_its_own_status(client, auth, api, session):
    dropbox = taxii_service.create_collection(
        session, title=f"dropbox {uuid.uuid4().hex[:8]}", read_roles={"analyst"}, write_roles={"partner", "analyst"}
    )
    partner = auth(subject="usa-feed", nation="USA", roles=("partner",))
    status = post_ok(client, api, dropbox.id, partner, [indicator()])
    assert get_ok(client, status_url(api, status["id"]), partner) == status
    gbr = auth(subject="usa-feed", nation="GBR", roles=("partner",))  # same subject, other nation
    assert_taxii_error(client.get(status_url(api, status["id"]), headers=gbr), 404)

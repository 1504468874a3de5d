"""Hostile input on the TAXII routes (issue 8, item 1), property-based with Hypothesis.

Every answer must be below 500, typed ``application/taxii+json;version=2.1``; every refusal a TAXII
error message without internals, and a refused request must leave every data table's row count as
it was. The structural limits (objects per envelope, string size, nesting depth) are exercised on
an app configured with small limits; the default ones on the session app.
"""

from __future__ import annotations

import json
import uuid

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from app.main import create_app
from app.taxii import service as taxii_service
from tests.conftest import TAXII
from tests.hardening import tally
from tests.hardening.conftest import row_counts
from tests.taxii.helpers import (
    LEAKS,
    assert_taxii_error,
    check_status_document,
    indicator,
    malware,
    manifest_url,
    objects_url,
    post_ok,
    status_url,
    versions_url,
)

EXAMPLES = 40
FUZZ = hsettings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

SAFE_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | SAFE_TEXT
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(SAFE_TEXT, children, max_size=4),
    max_leaves=15,
)
STIX_PROPERTIES = (
    "id",
    "type",
    "spec_version",
    "created",
    "modified",
    "pattern",
    "pattern_type",
    "valid_from",
    "object_marking_refs",
    "granular_markings",
    "name",
    "labels",
    "external_references",
    "extensions",
    "created_by_ref",
    "revoked",
)


def _answer_ok(response, before: dict, after_counts) -> None:
    """The invariants of every answer; a refusal changed nothing."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    assert response.headers["content-type"] == TAXII, response.headers
    assert not any(leak in response.text for leak in LEAKS), response.text[:500]
    if response.status_code >= 400:
        assert_taxii_error(response, response.status_code)
        assert after_counts() == before, "a refused request changed the database"
        tally.add("taxii refusals (4xx, database unchanged)")


def _post(client, api, collection_id, headers, body: bytes, content_type: str = TAXII):
    return client.post(objects_url(api, collection_id), content=body, headers=headers | {"Content-Type": content_type})


@pytest.fixture
def fuzz_env(raw_client, app, analyst, api, collection):
    return raw_client, (lambda: row_counts(app.state.engine)), analyst, api, collection.id


# ---------------------------------------------------------------- bodies


@FUZZ
@given(body=st.binary(max_size=400))
def test_arbitrary_bytes(fuzz_env, body):
    client, counts, analyst, api, cid = fuzz_env
    before = counts()
    _answer_ok(_post(client, api, cid, analyst, body), before, counts)
    tally.add("inputs tried: taxii bodies")


@FUZZ
@given(document=JSON_VALUES, wrap=st.booleans())
def test_arbitrary_json(fuzz_env, document, wrap):
    client, counts, analyst, api, cid = fuzz_env
    before = counts()
    body = {"objects": document} if wrap else document
    response = _post(client, api, cid, analyst, json.dumps(body).encode())
    _answer_ok(response, before, counts)
    if response.status_code == 202:
        status = check_status_document(response)
        assert status["success_count"] == 0, status  # nothing random is valid STIX
    tally.add("inputs tried: taxii bodies")


@FUZZ
@given(name=st.sampled_from(STIX_PROPERTIES), value=JSON_VALUES)
def test_mutated_stix_objects(fuzz_env, name, value):
    """A valid indicator with one property replaced by any JSON value: accepted or failed per object."""
    client, counts, analyst, api, cid = fuzz_env
    obj = indicator() | {name: value}
    before = counts()
    response = _post(client, api, cid, analyst, json.dumps({"objects": [obj]}).encode())
    _answer_ok(response, before, counts)
    if response.status_code == 202:
        status = check_status_document(response)
        assert status["total_count"] == 1
        for failure in status.get("failures", []):
            assert not any(leak in failure.get("message", "") for leak in LEAKS)
    tally.add("inputs tried: taxii bodies")


@FUZZ
@given(text=st.text(max_size=40), position=st.integers(min_value=0, max_value=300))
def test_invalid_utf8_and_lone_surrogates(fuzz_env, text, position):
    client, counts, analyst, api, cid = fuzz_env
    valid = json.dumps({"objects": [indicator(description=text or "x")]}).encode()
    position = min(position, len(valid))
    for body in (
        valid[:position] + b"\xff\xfe\xc3" + valid[position:],
        valid.replace(b'"description": "', b'"description": "\\ud800', 1),
        valid.replace(b'"description": "', b'"description": "\xed\xa0\x80', 1),
    ):
        before = counts()
        response = _post(client, api, cid, analyst, body)
        _answer_ok(response, before, counts)
        tally.add("inputs tried: taxii bodies")


@pytest.mark.parametrize("depth", [33, 200, 1100, 100_000])
@pytest.mark.parametrize("kind", ["list", "dict"])
def test_deep_nesting_is_refused(fuzz_env, depth, kind):
    client, counts, analyst, api, cid = fuzz_env
    opener, closer = ("[", "]") if kind == "list" else ('{"a":', "}")
    nested = opener * depth + "1" + closer * depth
    body = ('{"objects":[' + json.dumps(indicator())[:-1] + ',"x_deep":' + nested + "}]}").encode()
    before = counts()
    response = _post(client, api, cid, analyst, body)
    _answer_ok(response, before, counts)
    assert response.status_code in (400, 413), response.text[:300]
    tally.add("inputs tried: taxii bodies")


def test_bodies_over_max_content_length_are_413(fuzz_env, settings):
    client, counts, analyst, api, cid = fuzz_env
    padding = "x" * settings.max_content_length
    body = json.dumps({"objects": [indicator(description=padding)]}).encode()
    before = counts()
    _answer_ok(response := _post(client, api, cid, analyst, body), before, counts)
    assert response.status_code == 413

    def chunks():  # no Content-Length: the limit holds while streaming
        for _ in range(settings.max_content_length // 8192 + 2):
            yield b" " * 8192

    response = client.post(objects_url(api, cid), content=chunks(), headers=analyst | {"Content-Type": TAXII})
    _answer_ok(response, before, counts)
    assert response.status_code == 413
    response = client.post(
        objects_url(api, cid),
        content=b"{}",
        headers=analyst | {"Content-Type": TAXII, "Content-Length": "999999999999"},
    )
    assert response.status_code in (400, 413)  # a lying Content-Length never gets a 5xx
    tally.add("inputs tried: taxii bodies", 3)


# ---------------------------------------------------------------- structural limits


@pytest.fixture(scope="module")
def limited(settings):
    """An app with small structural limits, on the same database."""
    application = create_app(
        settings.model_copy(update={"max_objects_per_envelope": 20, "max_string_length": 1000, "max_nesting_depth": 6})
    )
    with TestClient(application, raise_server_exceptions=False) as client:
        yield application, client
    application.state.engine.dispose()


def test_structural_limits(limited, analyst, api, collection):
    application, client = limited
    counts = lambda: row_counts(application.state.engine)  # noqa: E731
    cases = {
        "too many objects": ([indicator() for _ in range(21)], 413),
        "string too long": ([indicator(description="d" * 1001)], 413),
        "property name too long": ([indicator() | {"x_" + "n" * 1000: 1}], 413),
        "nested too deep": ([indicator() | {"x_deep": [[[[[["too deep"]]]]]]}], 400),
        "too many objects of nothing": ([{}] * 21, 413),
    }
    for name, (objects, expected) in cases.items():
        before = counts()
        response = _post(client, api, collection.id, analyst, json.dumps({"objects": objects}).encode())
        assert response.status_code == expected, (name, response.text)
        _answer_ok(response, before, counts)
        tally.add("inputs tried: taxii bodies")
    # Just inside every limit: accepted.
    status = post_ok(
        client,
        api,
        collection.id,
        analyst,
        [indicator(description="d" * 1000) | {"x_ok": [[[["deep enough"]]]]} for _ in range(20)],
    )
    assert status["success_count"] == 20


# ---------------------------------------------------------------- media types

WRONG_TYPES = [
    "application/stix+json;version=2.1",
    "application/taxii+json;version=2.0",
    "text/plain",
    "application/xml",
    "multipart/form-data; boundary=x",
    "application/x-www-form-urlencoded",
    "application/taxii+json;version=3",
    "application/json, application/json",
    "",
]


@FUZZ
@given(
    content_type=st.sampled_from(WRONG_TYPES)
    | st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
)
def test_wrong_content_types(fuzz_env, content_type):
    client, counts, analyst, api, cid = fuzz_env
    before = counts()
    response = _post(client, api, cid, analyst, json.dumps({"objects": [indicator()]}).encode(), content_type)
    _answer_ok(response, before, counts)
    if content_type.split(";")[0].strip().lower() not in {"application/taxii+json", "application/json"}:
        assert response.status_code == 415, (content_type, response.status_code)
    tally.add("inputs tried: media types")


@FUZZ
@given(
    accept=st.sampled_from(
        [
            "text/html",
            "application/xml",
            "application/taxii+json;version=2.0",
            "application/json;q=0",
            "image/*",
            "text/*",
        ]
    )
    | st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
)
def test_odd_accept_headers(fuzz_env, accept):
    client, counts, analyst, api, cid = fuzz_env
    before = counts()
    response = client.get(objects_url(api, cid), headers=analyst | {"Accept": accept})
    _answer_ok(response, before, counts)
    assert response.status_code in (200, 406)
    tally.add("inputs tried: media types")


def test_missing_content_type_is_415(fuzz_env):
    client, counts, analyst, api, cid = fuzz_env
    before = counts()
    response = client.post(
        objects_url(api, cid), content=json.dumps({"objects": [indicator()]}).encode(), headers=analyst
    )
    _answer_ok(response, before, counts)
    assert response.status_code == 415


# ---------------------------------------------------------------- filters

PARAMS = [
    "added_after",
    "limit",
    "next",
    "match[id]",
    "match[type]",
    "match[version]",
    "match[spec_version]",
    "match[bogus]",
    "offset",
    "match[id][]",
]


@FUZZ
@given(
    params=st.lists(st.tuples(st.sampled_from(PARAMS), SAFE_TEXT), max_size=4),
    endpoint=st.sampled_from(["objects", "manifest", "object", "versions", "delete"]),
)
def test_bad_filter_values(fuzz_env, params, endpoint):
    client, counts, analyst, api, cid = fuzz_env
    object_id = f"indicator--{uuid.uuid4()}"
    url = {
        "objects": objects_url(api, cid),
        "manifest": manifest_url(api, cid),
        "object": objects_url(api, cid, object_id),
        "versions": versions_url(api, cid, object_id),
        "delete": objects_url(api, cid, object_id),
    }[endpoint]
    before = counts()
    method = client.delete if endpoint == "delete" else client.get
    response = method(url, headers=analyst, params=params)
    _answer_ok(response, before, counts)
    tally.add("inputs tried: filters")


# ---------------------------------------------------------------- next tokens and foreign ids


@FUZZ
@given(token=SAFE_TEXT | st.from_regex(r"\A[A-Za-z0-9_-]{10,60}(\.[A-Za-z0-9_-]{0,60}){4}\Z"))
def test_forged_next_tokens(fuzz_env, token):
    client, counts, analyst, api, cid = fuzz_env
    before = counts()
    response = client.get(objects_url(api, cid), headers=analyst, params={"next": token})
    _answer_ok(response, before, counts)
    assert response.status_code == 400
    tally.add("inputs tried: next tokens")


def test_replayed_next_tokens(raw_client, session, analyst, auth, partner_usa, api, collection):
    """A real cursor is refused when replayed by another principal, with another query, on another
    collection or endpoint, or tampered; the genuine continuation works (the control)."""
    post_ok(raw_client, api, collection.id, analyst, [indicator(), indicator(), malware()])
    other = taxii_service.create_collection(
        session, title=f"other {uuid.uuid4().hex[:8]}", read_roles={"partner", "analyst"}, write_roles={"analyst"}
    )
    url = objects_url(api, collection.id)
    for who in (analyst, partner_usa):
        first = raw_client.get(url, headers=who, params={"limit": 1})
        assert first.status_code == 200, first.text
    first = raw_client.get(url, headers=analyst, params={"limit": 1}).json()
    token = first["next"]
    assert raw_client.get(url, headers=analyst, params={"limit": 1, "next": token}).status_code == 200
    lowered = auth(clearance="CONFIDENTIAL")
    tampered = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
    replays = [
        (url, partner_usa, {"limit": 1, "next": token}),
        (url, lowered, {"limit": 1, "next": token}),  # same nation and subject, lower clearance
        (url, auth(subject="analyst-2"), {"limit": 1, "next": token}),
        (url, analyst, {"limit": 1, "next": token, "match[type]": "malware"}),
        (url, analyst, {"limit": 1, "next": token, "added_after": "2000-01-01T00:00:00Z"}),
        (objects_url(api, other.id), analyst, {"limit": 1, "next": token}),
        (manifest_url(api, collection.id), analyst, {"limit": 1, "next": token}),
        (url, analyst, {"limit": 1, "next": tampered}),
        (url, analyst, {"limit": 1, "next": token + "."}),
    ]
    for replay_url, who, params in replays:
        response = raw_client.get(replay_url, headers=who, params=params)
        assert_taxii_error(response, 400)
        tally.add("replayed next tokens refused")


def test_ids_of_other_collections(raw_client, session, analyst, partner_usa, api, collection, counts):
    """An object, a status or a collection reached through the wrong collection or principal is 404."""
    obj = indicator()
    status = post_ok(raw_client, api, collection.id, analyst, [obj])
    other = taxii_service.create_collection(
        session, title=f"other {uuid.uuid4().hex[:8]}", read_roles={"partner", "analyst"}, write_roles={"analyst"}
    )
    hidden = taxii_service.create_collection(
        session, title=f"hidden {uuid.uuid4().hex[:8]}", read_roles={"analyst"}, write_roles={"analyst"}
    )
    before = counts()
    probes = [
        ("get", objects_url(api, other.id, obj["id"]), analyst),
        ("get", versions_url(api, other.id, obj["id"]), analyst),
        ("delete", objects_url(api, other.id, obj["id"]), analyst),
        ("get", status_url(api, status["id"]), partner_usa),
        ("get", objects_url(api, str(uuid.uuid4())), analyst),
        ("get", objects_url(api, "../" + collection.id), analyst),
        ("get", objects_url(api, hidden.id), partner_usa),
    ]
    for method, url, who in probes:
        response = getattr(raw_client, method)(url, headers=who)
        assert response.status_code in (403, 404), (url, response.status_code, response.text)
        _answer_ok(response, before, counts)
        assert obj["id"] not in response.text
        tally.add("inputs tried: foreign ids")
    assert raw_client.get(objects_url(api, collection.id, obj["id"]), headers=analyst).status_code == 200

"""Get Objects and Get An Object (TAXII 2.1 sections 5.3 and 5.5): version selection and filters.

The dataset: indicator A in three versions (posted oldest first), malware M, and the observable S,
posted in that order, so their date_added order is A1, A2, A3, M, S.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.taxii import service as taxii_service
from app.taxii.models import Collection
from tests.taxii.helpers import (
    DATE_ADDED_FIRST,
    DATE_ADDED_LAST,
    assert_taxii_error,
    get_ok,
    id_versions,
    ids,
    ipv4,
    malware,
    manifest_url,
    objects_url,
    post_ok,
    taxii_time,
    versions_of,
)


@dataclass
class Dataset:
    a: list[dict]  # versions of indicator A, oldest first
    m: dict
    s: dict
    date_added: dict  # (id, version) -> date_added, from the manifest
    collection: Collection

    def key(self, obj: dict) -> tuple[str, str | None]:
        return obj["id"], obj.get("modified")


@pytest.fixture(scope="module")
def data(app, auth, settings) -> Dataset:
    """Posted once per database for the whole module: these tests only read."""
    api, analyst = f"/taxii2/{settings.api_root}", auth()
    with TestClient(app) as client, Session(app.state.engine) as session:
        collection = taxii_service.create_collection(
            session, title=f"objects {uuid.uuid4().hex[:8]}", read_roles={"partner", "analyst"}, write_roles={"analyst"}
        )
        a = versions_of(3)
        m, s = malware(), ipv4()
        post_ok(client, api, collection.id, analyst, a)
        post_ok(client, api, collection.id, analyst, [m, s])
        manifest = get_ok(client, manifest_url(api, collection.id), analyst, {"match[version]": "all"})
    date_added = {(r["id"], r["version"]): r["date_added"] for r in manifest["objects"]}
    return Dataset(a, m, s, date_added, collection)


@pytest.fixture
def collection(data) -> Collection:
    """The dataset's collection (replaces the per-test empty collection of conftest)."""
    return data.collection


def fetch(client, analyst, api, collection, params=None) -> dict:
    return get_ok(client, objects_url(api, collection.id), analyst, params)


def keys(body: dict) -> list[tuple[str, str | None]]:
    return [(o["id"], o.get("modified")) for o in body.get("objects", [])]


def test_objects_are_served_as_posted(client, analyst, api, collection, data):
    body = fetch(client, analyst, api, collection, {"match[version]": "all"})
    assert body["objects"] == [*data.a, data.m, data.s]
    assert body["more"] is False


def test_default_is_the_last_version(client, analyst, api, collection, data):
    body = fetch(client, analyst, api, collection)
    assert keys(body) == [data.key(data.a[2]), data.key(data.m), data.key(data.s)]
    assert body["objects"][0] == data.a[2]


@pytest.mark.parametrize(
    "versions,expected",
    [
        ("last", [2]),
        ("first", [0]),
        ("all", [0, 1, 2]),
        ("first,last", [0, 2]),
        ("last,first", [0, 2]),
        ("all,first", [0, 1, 2]),
    ],
)
def test_version_keywords(client, analyst, api, collection, data, versions, expected):
    body = fetch(client, analyst, api, collection, {"match[version]": versions})
    # M and S have a single version: it is both first and last, and is served once.
    assert keys(body) == [data.key(data.a[i]) for i in expected] + [data.key(data.m), data.key(data.s)]


def test_version_timestamps(client, analyst, api, collection, data):
    v1, v2, v3 = (o["modified"] for o in data.a)
    assert keys(fetch(client, analyst, api, collection, {"match[version]": v2})) == [data.key(data.a[1])]
    both = [data.key(data.a[0]), data.key(data.a[2])]
    assert keys(fetch(client, analyst, api, collection, {"match[version]": f"{v1},{v3}"})) == both
    assert keys(fetch(client, analyst, api, collection, [("match[version]", v3), ("match[version]", v1)])) == both
    # A timestamp and a keyword: A at v1, plus the last version of everything.
    mixed = fetch(client, analyst, api, collection, {"match[version]": f"{v1},last"})
    assert keys(mixed) == [data.key(data.a[0]), data.key(data.a[2]), data.key(data.m), data.key(data.s)]
    # A timestamp no object has matches nothing.
    assert "objects" not in fetch(client, analyst, api, collection, {"match[version]": "2019-06-01T00:00:00.000Z"})


@pytest.mark.parametrize("spelling", ["seconds", "millis", "micros", "nanos"])
def test_version_timestamps_at_any_precision(client, analyst, api, collection, data, spelling):
    v2 = data.a[1]["modified"]  # a whole second, e.g. 2020-01-02T00:00:00.000Z
    assert v2.endswith(":00.000Z")
    text = {
        "seconds": v2.replace(".000Z", "Z"),
        "millis": v2,
        "micros": taxii_time(v2),
        "nanos": v2.replace(".000Z", ".000000000Z"),
    }[spelling]
    assert keys(fetch(client, analyst, api, collection, {"match[version]": text})) == [data.key(data.a[1])]


def test_match_id(client, analyst, api, collection, data):
    a_id, m_id = data.a[0]["id"], data.m["id"]
    assert keys(fetch(client, analyst, api, collection, {"match[id]": a_id})) == [data.key(data.a[2])]
    expected = [data.key(data.a[2]), data.key(data.m)]
    assert keys(fetch(client, analyst, api, collection, {"match[id]": f"{m_id},{a_id}"})) == expected
    assert keys(fetch(client, analyst, api, collection, [("match[id]", m_id), ("match[id]", a_id)])) == expected
    all_of_a = fetch(client, analyst, api, collection, {"match[id]": a_id, "match[version]": "all"})
    assert keys(all_of_a) == [data.key(v) for v in data.a]
    assert "objects" not in fetch(client, analyst, api, collection, {"match[id]": f"indicator--{uuid.uuid4()}"})


def test_match_type(client, analyst, api, collection, data):
    assert keys(fetch(client, analyst, api, collection, {"match[type]": "indicator"})) == [data.key(data.a[2])]
    expected = [data.key(data.a[2]), data.key(data.s)]
    assert keys(fetch(client, analyst, api, collection, {"match[type]": "ipv4-addr,indicator"})) == expected
    assert (
        keys(fetch(client, analyst, api, collection, [("match[type]", "ipv4-addr"), ("match[type]", "indicator")]))
        == expected
    )
    assert "objects" not in fetch(client, analyst, api, collection, {"match[type]": "campaign"})
    # Filters combine with AND.
    both = fetch(client, analyst, api, collection, {"match[type]": "malware", "match[id]": data.a[0]["id"]})
    assert "objects" not in both
    typed_all = fetch(client, analyst, api, collection, {"match[type]": "indicator", "match[version]": "all"})
    assert keys(typed_all) == [data.key(v) for v in data.a]


@pytest.mark.parametrize("spec_version,expected", [("2.1", True), ("2.0", False), ("2.0,2.1", True)])
def test_match_spec_version(client, analyst, api, collection, data, spec_version, expected):
    body = fetch(client, analyst, api, collection, {"match[spec_version]": spec_version})
    if expected:
        assert keys(body) == [data.key(data.a[2]), data.key(data.m), data.key(data.s)]
    else:
        assert "objects" not in body


def test_added_after_is_strictly_after(client, analyst, api, collection, data):
    a2_added = data.date_added[(data.a[1]["id"], taxii_time(data.a[1]["modified"]))]
    a3_added = data.date_added[(data.a[2]["id"], taxii_time(data.a[2]["modified"]))]
    after_a2 = fetch(client, analyst, api, collection, {"added_after": a2_added, "match[version]": "all"})
    assert keys(after_a2) == [data.key(data.a[2]), data.key(data.m), data.key(data.s)]
    # With the default (last), A's last version was added after A2.
    assert keys(fetch(client, analyst, api, collection, {"added_after": a2_added})) == keys(after_a2)
    # Once A's last version is excluded by added_after, A is absent (its older versions are not last).
    after_a3 = fetch(client, analyst, api, collection, {"added_after": a3_added})
    assert keys(after_a3) == [data.key(data.m), data.key(data.s)]
    last_added = max(data.date_added.values())
    response_body = fetch(client, analyst, api, collection, {"added_after": last_added})
    assert "objects" not in response_body


def test_added_after_at_any_precision(client, analyst, api, collection, data):
    a3_added = data.date_added[(data.a[2]["id"], taxii_time(data.a[2]["modified"]))]
    after_a3 = [data.key(data.m), data.key(data.s)]
    # Extra digits beyond the microsecond: A3 (added at .xxxxxx000) is not after .xxxxxx000 nor .xxxxxx999.
    for nanos in ("000", "999"):
        body = fetch(client, analyst, api, collection, {"added_after": a3_added.replace("Z", nanos + "Z")})
        assert keys(body) == after_a3, nanos
    # Coarse timestamps well before or after everything.
    every = [data.key(data.a[2]), data.key(data.m), data.key(data.s)]
    for text in ("2000-01-01T00:00:00Z", "2000-01-01T00:00:00.1Z", "2000-01-01T00:00:00.123Z"):
        assert keys(fetch(client, analyst, api, collection, {"added_after": text})) == every, text
    assert "objects" not in fetch(client, analyst, api, collection, {"added_after": "9999-12-31T23:59:59Z"})


@pytest.mark.parametrize(
    "params",
    [
        {"added_after": "yesterday"},
        {"added_after": "2024-02-30T00:00:00Z"},
        {"added_after": "2024-01-01T00:00:00"},
        {"added_after": "2024-01-01"},
        [("added_after", "2024-01-01T00:00:00Z"), ("added_after", "2024-01-02T00:00:00Z")],
        {"match[version]": "latest"},
        {"match[version]": "2024-13-01T00:00:00Z"},
        {"match[version]": "\uff12\uff10\uff12\uff10-01-02T00:00:00.000Z"},  # full-width digits
        {"added_after": "\u0662\u0660\u0662\u0660-01-01T00:00:00Z"},  # Arabic-Indic digits
        {"added_after": "2020-01-01T00:00:00Z\n"},
        {"match[version]": "first,,last"},
        {"match[type]": ""},
        {"match[id]": ","},
        {"limit": "0"},
        {"limit": "-1"},
        {"limit": "ten"},
        {"limit": "1.5"},
        {"limit": ""},
        {"limit": "\u00b2"},  # a digit to str.isdigit(), not to int()
        [("limit", "5"), ("limit", "6")],
        {"match[foo]": "bar"},
        {"match[versions]": "all"},
        {"foo": "bar"},
        {"type": "indicator"},
    ],
)
def test_bad_parameters_are_400(client, analyst, api, collection, data, params):
    response = client.get(objects_url(api, collection.id), headers=analyst, params=params)
    assert_taxii_error(response, 400)


# ---------------------------------------------------------------- Get An Object


def test_get_object_defaults_to_last_version(client, analyst, api, collection, data):
    a_id = data.a[0]["id"]
    response = client.get(objects_url(api, collection.id, a_id), headers=analyst)
    body = get_ok(client, objects_url(api, collection.id, a_id), analyst)
    assert body["objects"] == [data.a[2]]
    a3_added = data.date_added[(a_id, taxii_time(data.a[2]["modified"]))]
    assert response.headers[DATE_ADDED_FIRST] == response.headers[DATE_ADDED_LAST] == a3_added


@pytest.mark.parametrize(
    "versions,expected",
    [
        ("first", [0]),
        ("last", [0 + 2]),
        ("all", [0, 1, 2]),
        ("first,last", [0, 2]),
        ("v2", [1]),
        ("v1,v3", [0, 2]),
    ],
)
def test_get_object_version_filter(client, analyst, api, collection, data, versions, expected):
    text = versions
    for index, obj in enumerate(data.a):
        text = text.replace(f"v{index + 1}", obj["modified"])
    body = get_ok(client, objects_url(api, collection.id, data.a[0]["id"]), analyst, {"match[version]": text})
    assert body["objects"] == [data.a[i] for i in expected]


def test_get_object_added_after_and_spec_version(client, analyst, api, collection, data):
    a_id = data.a[0]["id"]
    a1_added = data.date_added[(a_id, taxii_time(data.a[0]["modified"]))]
    body = get_ok(
        client, objects_url(api, collection.id, a_id), analyst, {"match[version]": "all", "added_after": a1_added}
    )
    assert body["objects"] == data.a[1:]
    body = get_ok(client, objects_url(api, collection.id, a_id), analyst, {"match[spec_version]": "2.1"})
    assert body["objects"] == [data.a[2]]


def test_get_object_whose_filters_match_nothing(client, analyst, api, collection, data):
    response = client.get(
        objects_url(api, collection.id, data.a[0]["id"]), headers=analyst, params={"match[spec_version]": "2.0"}
    )
    # The object exists, so either an empty envelope or a 404; never content or date headers.
    if response.status_code == 200:
        get_ok(client, objects_url(api, collection.id, data.a[0]["id"]), analyst, {"match[spec_version]": "2.0"})
        assert "objects" not in response.json()
    else:
        assert_taxii_error(response, 404)


def test_get_observable_by_id(client, analyst, api, collection, data):
    assert get_ok(client, objects_url(api, collection.id, data.s["id"]), analyst)["objects"] == [data.s]


@pytest.mark.parametrize(
    "object_id",
    [
        "indicator--6ba7b810-9dad-41d1-80b4-00c04fd430c8",  # well formed, never stored
        "indicator--not-a-uuid",
        "not-an-id",
        "x" * 400,
    ],
)
def test_get_unknown_object_is_404(client, analyst, api, collection, data, object_id):
    assert_taxii_error(client.get(objects_url(api, collection.id, object_id), headers=analyst), 404)


def test_object_in_another_collection_is_404(client, analyst, api, collection, data, session):
    other = taxii_service.create_collection(
        session, title=f"other {uuid.uuid4().hex[:8]}", read_roles={"analyst"}, write_roles={"analyst"}
    )
    assert_taxii_error(client.get(objects_url(api, other.id, data.m["id"]), headers=analyst), 404)
    assert "objects" not in get_ok(client, objects_url(api, other.id), analyst)


@pytest.mark.parametrize(
    "params",
    [{"match[id]": "x"}, {"match[type]": "indicator"}, {"limit": "0"}, {"match[version]": "newest"}, {"foo": "1"}],
)
def test_get_object_refuses_parameters_it_does_not_take(client, analyst, api, collection, data, params):
    response = client.get(objects_url(api, collection.id, data.a[0]["id"]), headers=analyst, params=params)
    assert_taxii_error(response, 400)


def test_manifest_and_objects_list_the_same_versions(client, analyst, api, collection, data):
    """The manifest and the objects endpoint list the same (id, version) pairs for the same filters."""
    params = {"match[version]": "all"}
    objects = fetch(client, analyst, api, collection, params)
    manifest = get_ok(client, manifest_url(api, collection.id), analyst, params)
    assert ids(objects) == ids(manifest)
    served = [(i, taxii_time(v)) for i, v in id_versions(objects) if v is not None]
    assert served == [(i, v) for i, v in id_versions(manifest) if i != data.s["id"]]

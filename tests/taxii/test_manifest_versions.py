"""Get Object Manifests (TAXII 2.1 section 5.4) and Get Object Versions (section 5.7), and the
``X-TAXII-Date-Added-First/Last`` headers and ``date_added`` order they share with Get Objects.
"""

from __future__ import annotations

import uuid
from itertools import pairwise

import pytest

from tests.taxii.helpers import (
    DATE_ADDED_FIRST,
    DATE_ADDED_LAST,
    TAXII_TIMESTAMP,
    assert_taxii_error,
    get_ok,
    indicator,
    ipv4,
    malware,
    manifest_url,
    new_version,
    objects_url,
    post_ok,
    taxii_time,
    versions_of,
    versions_url,
    walk,
)


def manifest(client, headers, api, collection, params=None) -> list[dict]:
    return get_ok(client, manifest_url(api, collection.id), headers, params).get("objects", [])


def test_manifest_records(client, analyst, api, collection):
    a = versions_of(2)
    m, s = malware(), ipv4()
    post_ok(client, api, collection.id, analyst, [*a, m, s])
    records = manifest(client, analyst, api, collection)
    assert [r["id"] for r in records] == [a[1]["id"], m["id"], s["id"]]
    # helpers.check_manifest_record checked the fields and formats; the versions are the objects' own.
    assert records[0]["version"] == taxii_time(a[1]["modified"])
    assert records[1]["version"] == taxii_time(m["modified"])
    # An observable has no modified/created: whatever version the server gives it must select it.
    scos = get_ok(client, objects_url(api, collection.id), analyst, {"match[version]": records[2]["version"]})
    assert [o["id"] for o in scos["objects"]] == [s["id"]]
    everything = manifest(client, analyst, api, collection, {"match[version]": "all"})
    assert [(r["id"], r["version"]) for r in everything] == (
        [(o["id"], taxii_time(o["modified"])) for o in [*a, m]] + [(s["id"], records[2]["version"])]
    )


def test_manifest_filters(client, analyst, api, collection):
    a = versions_of(3)
    m = malware()
    post_ok(client, api, collection.id, analyst, [*a, m])
    first = manifest(client, analyst, api, collection, {"match[version]": "first", "match[type]": "indicator"})
    assert [(r["id"], r["version"]) for r in first] == [(a[0]["id"], taxii_time(a[0]["modified"]))]
    by_id = manifest(client, analyst, api, collection, {"match[id]": m["id"]})
    assert [r["id"] for r in by_id] == [m["id"]]
    assert manifest(client, analyst, api, collection, {"match[spec_version]": "2.0"}) == []
    added = manifest(client, analyst, api, collection, {"match[version]": "all"})
    after = manifest(client, analyst, api, collection, {"match[version]": "all", "added_after": added[1]["date_added"]})
    assert after == added[2:]


def test_date_added_is_server_time_strictly_increasing_across_posts(client, analyst, api, collection):
    batches = [[indicator() for _ in range(3)], [malware()], [indicator(), ipv4("192.0.2.1")]]
    for batch in batches:
        post_ok(client, api, collection.id, analyst, batch)
    records = manifest(client, analyst, api, collection, {"match[version]": "all"})
    assert [r["id"] for r in records] == [o["id"] for batch in batches for o in batch]
    dates = [r["date_added"] for r in records]
    assert all(TAXII_TIMESTAMP.match(d) for d in dates)
    assert all(earlier < later for earlier, later in pairwise(dates))


@pytest.mark.parametrize("endpoint", ["objects", "object", "manifest", "versions"])
def test_date_added_headers_bound_the_page(client, analyst, api, collection, endpoint):
    a = versions_of(3)
    post_ok(client, api, collection.id, analyst, [indicator(), *a, indicator()])
    records = manifest(client, analyst, api, collection, {"match[version]": "all"})
    of_a = [r["date_added"] for r in records if r["id"] == a[0]["id"]]
    url = {
        "objects": objects_url(api, collection.id),
        "manifest": manifest_url(api, collection.id),
        "object": objects_url(api, collection.id, a[0]["id"]),
        "versions": versions_url(api, collection.id, a[0]["id"]),
    }[endpoint]
    params = {} if endpoint == "versions" else {"match[version]": "all"}
    if endpoint in {"objects", "manifest"}:
        params["match[id]"] = a[0]["id"]
    response = client.get(url, headers=analyst, params=params)
    get_ok(client, url, analyst, params)  # the shared checks
    assert (response.headers[DATE_ADDED_FIRST], response.headers[DATE_ADDED_LAST]) == (of_a[0], of_a[-1])
    # One page of one: both headers name the same version.
    single = client.get(url, headers=analyst, params=params | {"limit": "1"})
    assert single.headers[DATE_ADDED_FIRST] == single.headers[DATE_ADDED_LAST] == of_a[0]


@pytest.mark.parametrize("endpoint", ["objects", "manifest", "object", "versions"])
def test_no_date_added_headers_without_content(client, analyst, api, collection, endpoint):
    obj = indicator()
    post_ok(client, api, collection.id, analyst, [obj])
    last = manifest(client, analyst, api, collection)[-1]["date_added"]
    url = {
        "objects": objects_url(api, collection.id),
        "manifest": manifest_url(api, collection.id),
        "object": objects_url(api, collection.id, obj["id"]),
        "versions": versions_url(api, collection.id, obj["id"]),
    }[endpoint]
    response = client.get(url, headers=analyst, params={"added_after": last})
    assert response.status_code == 200
    get_ok(client, url, analyst, {"added_after": last})  # asserts the headers are absent
    assert "objects" not in response.json() and "versions" not in response.json()


def test_empty_collection_has_no_headers(client, analyst, api, collection):
    for url in (objects_url(api, collection.id), manifest_url(api, collection.id)):
        body = get_ok(client, url, analyst)
        assert body == {"more": False}


# ---------------------------------------------------------------- versions


def test_versions_lists_every_version(client, analyst, api, collection):
    a = versions_of(3)
    post_ok(client, api, collection.id, analyst, [*a, indicator()])
    body = get_ok(client, versions_url(api, collection.id, a[0]["id"]), analyst)
    assert body["versions"] == [taxii_time(v["modified"]) for v in a]
    assert body["more"] is False


def test_versions_posted_out_of_order(client, analyst, api, collection):
    a = versions_of(3)
    post_ok(client, api, collection.id, analyst, [a[2]])
    post_ok(client, api, collection.id, analyst, [a[0], a[1]])
    body = get_ok(client, versions_url(api, collection.id, a[0]["id"]), analyst)
    assert sorted(body["versions"]) == [taxii_time(v["modified"]) for v in a]
    # "last" is the newest version, whatever the order it was added in; "first" the oldest.
    last = get_ok(client, objects_url(api, collection.id, a[0]["id"]), analyst)
    assert last["objects"] == [a[2]]
    first = get_ok(client, objects_url(api, collection.id, a[0]["id"]), analyst, {"match[version]": "first"})
    assert first["objects"] == [a[0]]


def test_versions_added_after(client, analyst, api, collection):
    a = versions_of(3)
    for version in a:
        post_ok(client, api, collection.id, analyst, [version])
    records = manifest(client, analyst, api, collection, {"match[version]": "all"})
    body = get_ok(
        client, versions_url(api, collection.id, a[0]["id"]), analyst, {"added_after": records[0]["date_added"]}
    )
    assert body["versions"] == [taxii_time(v["modified"]) for v in a[1:]]
    spec = get_ok(client, versions_url(api, collection.id, a[0]["id"]), analyst, {"match[spec_version]": "2.1"})
    assert len(spec["versions"]) == 3
    assert "versions" not in get_ok(
        client, versions_url(api, collection.id, a[0]["id"]), analyst, {"match[spec_version]": "2.0"}
    )


def test_versions_paging(client, analyst, api, collection):
    a = versions_of(5)
    post_ok(client, api, collection.id, analyst, a)
    pages = walk(client, versions_url(api, collection.id, a[0]["id"]), analyst, {"limit": "2"})
    assert [len(p["versions"]) for p in pages] == [2, 2, 1]
    assert [v for p in pages for v in p["versions"]] == [taxii_time(v["modified"]) for v in a]


def test_versions_of_unknown_object_is_404(client, analyst, api, collection):
    post_ok(client, api, collection.id, analyst, [indicator()])
    response = client.get(versions_url(api, collection.id, f"indicator--{uuid.uuid4()}"), headers=analyst)
    assert_taxii_error(response, 404)


@pytest.mark.parametrize(
    "params",
    [
        {"match[version]": "all"},
        {"match[id]": "x"},
        {"match[type]": "indicator"},
        {"limit": "0"},
        {"added_after": "soon"},
    ],
)
def test_versions_refuses_parameters_it_does_not_take(client, analyst, api, collection, params):
    obj = indicator()
    post_ok(client, api, collection.id, analyst, [obj])
    response = client.get(versions_url(api, collection.id, obj["id"]), headers=analyst, params=params)
    assert_taxii_error(response, 400)


def test_new_version_moves_the_object_to_the_end_of_the_manifest(client, analyst, api, collection):
    first, other = indicator(), indicator()
    post_ok(client, api, collection.id, analyst, [first, other])
    newer = new_version(first, 5)
    post_ok(client, api, collection.id, analyst, [newer])
    records = manifest(client, analyst, api, collection)
    assert [(r["id"], r["version"]) for r in records] == [
        (other["id"], taxii_time(other["modified"])),
        (first["id"], taxii_time(newer["modified"])),
    ]

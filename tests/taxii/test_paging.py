"""Paging (TAXII 2.1 section 3.6): ``limit``, ``more`` and ``next``.

``next`` is a stateless keyset cursor (DESIGN.md section 5): walking it returns every object
exactly once in date_added order, even while objects are being added; it is bound to the
collection, the endpoint, the filters and the principal, and any other use is a 400.
"""

from __future__ import annotations

import base64
import json
import uuid
from itertools import pairwise

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.config.settings import Settings
from app.main import create_app
from app.taxii import service as taxii_service
from tests.taxii.helpers import (
    DATE_ADDED_FIRST,
    DATE_ADDED_LAST,
    assert_taxii_error,
    get_ok,
    ids,
    indicator,
    manifest_url,
    new_version,
    objects_url,
    post_ok,
    taxii_time,
    versions_of,
    versions_url,
    walk,
)

BULK = 201  # one more than max_page_size in the test settings


def _bulk_objects() -> list[dict]:
    return [indicator(created_days=i / 1000) for i in range(BULK)]


_BULK = None


@pytest.fixture(scope="module")
def bulk(app, auth, settings):
    """A collection of BULK objects, posted once per database: (collection id, objects in order)."""
    global _BULK
    if _BULK is None:  # the same objects in both databases: their validation results are cached
        _BULK = _bulk_objects()
    api = f"/taxii2/{settings.api_root}"
    with TestClient(app) as client, Session(app.state.engine) as session:
        collection = taxii_service.create_collection(
            session, title=f"bulk {uuid.uuid4().hex[:8]}", read_roles={"partner", "analyst"}, write_roles={"analyst"}
        )
        post_ok(client, api, collection.id, auth(), _BULK)
    return collection.id, _BULK


def test_default_page_size_and_clamp(client, analyst, api, settings, bulk):
    collection_id, objects = bulk
    assert settings.default_page_size < BULK and settings.max_page_size < BULK
    url = objects_url(api, collection_id)
    default = get_ok(client, url, analyst)
    assert ids(default) == [o["id"] for o in objects[: settings.default_page_size]]
    assert default["more"] is True and default["next"]
    clamped = get_ok(client, url, analyst, {"limit": str(settings.max_page_size * 5)})
    assert ids(clamped) == [o["id"] for o in objects[: settings.max_page_size]]
    assert clamped["more"] is True
    # The rest follows the clamped page.
    rest = get_ok(client, url, analyst, {"limit": str(settings.max_page_size * 5), "next": clamped["next"]})
    assert ids(rest) == [o["id"] for o in objects[settings.max_page_size :]]
    assert rest["more"] is False and "next" not in rest


@pytest.mark.parametrize("endpoint,limit", [("objects", 13), ("objects", 1), ("manifest", 40), ("manifest", 201)])
def test_walking_next_returns_everything_once_in_date_added_order(
    client, analyst, api, settings, bulk, endpoint, limit
):
    collection_id, objects = bulk
    url = objects_url(api, collection_id) if endpoint == "objects" else manifest_url(api, collection_id)
    if endpoint == "objects" and limit == 1:
        objects = objects[:5]  # keep it quick: stop after five pages of one
        pages = [get_ok(client, url, analyst, {"limit": "1"})]
        while len(pages) < 5:
            pages.append(get_ok(client, url, analyst, {"limit": "1", "next": pages[-1]["next"]}))
    else:
        pages = walk(client, url, analyst, {"limit": str(limit)})
        assert pages[-1]["more"] is False and all(p["more"] for p in pages[:-1])
    served = [i for page in pages for i in ids(page)]
    assert served == [o["id"] for o in objects]
    assert all(len(ids(page)) == min(limit, settings.max_page_size) for page in pages[:-1])


def test_pages_do_not_overlap_in_date_added(client, analyst, api, bulk):
    collection_id, _ = bulk
    url = manifest_url(api, collection_id)
    bounds, params = [], {"limit": "60"}
    while True:
        response = client.get(url, headers=analyst, params=params)
        bounds.append((response.headers[DATE_ADDED_FIRST], response.headers[DATE_ADDED_LAST]))
        body = response.json()
        records = body["objects"]
        assert bounds[-1] == (records[0]["date_added"], records[-1]["date_added"])
        if not body["more"]:
            break
        params = {"limit": "60", "next": body["next"]}
    assert all(previous[1] < following[0] for previous, following in pairwise(bounds))


def test_exact_page_has_no_more(client, analyst, api, collection):
    objects = [indicator() for _ in range(3)]
    post_ok(client, api, collection.id, analyst, objects)
    body = get_ok(client, objects_url(api, collection.id), analyst, {"limit": "3"})
    assert ids(body) == [o["id"] for o in objects]
    assert body["more"] is False and "next" not in body


def test_paging_with_filters(client, analyst, api, collection):
    a = versions_of(4)
    noise = [indicator() for _ in range(3)]
    post_ok(client, api, collection.id, analyst, [noise[0], a[0], noise[1], a[1], a[2], noise[2], a[3]])
    params = {"match[id]": a[0]["id"], "match[version]": "all", "limit": "3"}
    pages = walk(client, objects_url(api, collection.id), analyst, params)
    assert [o for page in pages for o in page["objects"]] == a
    assert len(pages) == 2


def test_concurrent_additions_between_pages(client, analyst, api, collection):
    """Objects added while a client pages appear after the ones it has, none skipped or repeated."""
    a, b, c, d, e = (indicator() for _ in range(5))
    post_ok(client, api, collection.id, analyst, [a, b, c, d, e])
    url = objects_url(api, collection.id)
    page1 = get_ok(client, url, analyst, {"limit": "2"})
    assert ids(page1) == [a["id"], b["id"]]
    # Meanwhile: two new objects, a new version of one already served (a) and of one not yet served (d).
    f, g = indicator(), indicator()
    a2, d2 = new_version(a, 3), new_version(d, 3)
    post_ok(client, api, collection.id, analyst, [f, a2, d2])
    page2 = get_ok(client, url, analyst, {"limit": "2", "next": page1["next"]})
    assert ids(page2) == [c["id"], e["id"]]
    post_ok(client, api, collection.id, analyst, [g])
    rest = walk(client, url, analyst, {"limit": "2", "next": page2["next"]})
    served = [(o["id"], o["modified"]) for page in [page1, page2, *rest] for o in page["objects"]]
    # d's old version was replaced as "last" before it was reached; a's new version follows as new content.
    expected = [a, b, c, e, f, a2, d2, g]
    assert served == [(o["id"], o["modified"]) for o in expected]
    assert len(set(served)) == len(served)


def test_concurrent_additions_with_all_versions(client, analyst, api, collection):
    first = [indicator() for _ in range(4)]
    post_ok(client, api, collection.id, analyst, first)
    url = manifest_url(api, collection.id)
    params = {"limit": "3", "match[version]": "all"}
    page1 = get_ok(client, url, analyst, params)
    later = [indicator() for _ in range(4)] + [new_version(first[0], 2)]
    post_ok(client, api, collection.id, analyst, later)
    rest = walk(client, url, analyst, params | {"next": page1["next"]})
    served = [(r["id"], r["version"]) for page in [page1, *rest] for r in page["objects"]]
    assert served == [(o["id"], taxii_time(o["modified"])) for o in first + later]
    dates = [r["date_added"] for page in [page1, *rest] for r in page["objects"]]
    assert dates == sorted(dates) and len(set(dates)) == len(dates)


# ---------------------------------------------------------------- next is bound and never trusted


@pytest.fixture
def first_page(client, analyst, api, collection):
    """Five objects and the first page of two, with its next token."""
    objects = versions_of(2) + [indicator() for _ in range(3)]
    post_ok(client, api, collection.id, analyst, objects)
    params = {"limit": "2", "match[version]": "all"}
    page = get_ok(client, objects_url(api, collection.id), analyst, params)
    assert page["more"] is True
    return params, page["next"], objects


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_next_resumes_for_its_owner(client, analyst, api, collection, first_page):
    params, token, objects = first_page
    body = get_ok(client, objects_url(api, collection.id), analyst, params | {"next": token})
    assert ids(body) == [o["id"] for o in objects[2:4]]
    # The same token again gives the same page: it is stateless. (Cursors are encrypted with a
    # fresh nonce, so the two `next` values differ in text but resume at the same place.)
    again = get_ok(client, objects_url(api, collection.id), analyst, params | {"next": token})
    assert {k: v for k, v in again.items() if k != "next"} == {k: v for k, v in body.items() if k != "next"}
    following = [
        get_ok(client, objects_url(api, collection.id), analyst, params | {"next": page["next"]})
        for page in (body, again)
    ]
    assert ids(following[0]) == ids(following[1]) == [o["id"] for o in objects[4:6]]


def tampered_tokens(token: str) -> dict[str, str]:
    """Variants of an encrypted cursor (JWE compact: header.key.iv.ciphertext.tag)."""
    header, key, iv, ciphertext, tag = token.split(".")
    flip = lambda part: part[:-2] + ("AA" if part[-2:] != "AA" else "BB")  # noqa: E731
    rewound = _b64(json.dumps({"k": 0}).encode())
    unsigned = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return {
        "flipped ciphertext": f"{header}.{key}.{iv}.{flip(ciphertext)}.{tag}",
        "flipped tag": f"{header}.{key}.{iv}.{ciphertext}.{flip(tag)}",
        "other iv": f"{header}.{key}.{flip(iv)}.{ciphertext}.{tag}",
        "plain payload": f"{header}.{key}.{iv}.{rewound}.{tag}",
        "alg none": f"{unsigned}.{rewound}.",
        "truncated": token[:-10],
        "garbage": "not-a-token",
        "empty": "",
        "non-ascii": "\u00e9t\u00e9",
    }


@pytest.mark.parametrize("kind", list(tampered_tokens("h.k.iv.ct.tag")))
def test_tampered_next_is_400(client, analyst, api, collection, first_page, kind):
    params, token, _ = first_page
    response = client.get(
        objects_url(api, collection.id), headers=analyst, params=params | {"next": tampered_tokens(token)[kind]}
    )
    assert_taxii_error(response, 400)


@pytest.mark.parametrize(
    "other",
    [
        {"subject": "analyst-other"},
        {"subject": "analyst-1", "roles": ("analyst", "auditor")},
        {"subject": "analyst-1", "clearance": "SECRET"},
        {"subject": "usa-feed", "nation": "USA", "roles": ("partner",)},
    ],
)
def test_next_of_another_principal_is_400(client, auth, api, collection, first_page, other):
    params, token, _ = first_page
    response = client.get(objects_url(api, collection.id), headers=auth(**other), params=params | {"next": token})
    assert_taxii_error(response, 400)


@pytest.mark.parametrize(
    "change",
    [
        {"match[version]": "last"},
        {"match[type]": "indicator"},
        {"match[spec_version]": "2.1"},
        {"added_after": "2000-01-01T00:00:00Z"},
        {"match[id]": "indicator--00000000-0000-4000-8000-000000000000"},
    ],
)
def test_next_with_other_filters_is_400(client, analyst, api, collection, first_page, change):
    params, token, _ = first_page
    response = client.get(objects_url(api, collection.id), headers=analyst, params=params | change | {"next": token})
    assert_taxii_error(response, 400)


def test_next_in_another_collection_is_400(client, analyst, api, collection, first_page, session):
    params, token, objects = first_page
    other = taxii_service.create_collection(
        session, title=f"other {uuid.uuid4().hex[:8]}", read_roles={"analyst"}, write_roles={"analyst"}
    )
    post_ok(client, api, other.id, analyst, objects)
    response = client.get(objects_url(api, other.id), headers=analyst, params=params | {"next": token})
    assert_taxii_error(response, 400)


def test_next_on_another_endpoint_is_400(client, analyst, api, collection, first_page):
    params, token, objects = first_page
    object_id = objects[0]["id"]
    assert_taxii_error(
        client.get(manifest_url(api, collection.id), headers=analyst, params=params | {"next": token}), 400
    )
    assert_taxii_error(
        client.get(objects_url(api, collection.id, object_id), headers=analyst, params=params | {"next": token}), 400
    )
    assert_taxii_error(
        client.get(versions_url(api, collection.id, object_id), headers=analyst, params={"limit": "2", "next": token}),
        400,
    )


def test_next_of_one_object_is_400_on_another(client, analyst, api, collection):
    a, b = versions_of(3), versions_of(3)
    post_ok(client, api, collection.id, analyst, a + b)
    page = get_ok(client, versions_url(api, collection.id, a[0]["id"]), analyst, {"limit": "1"})
    response = client.get(
        versions_url(api, collection.id, b[0]["id"]), headers=analyst, params={"limit": "1", "next": page["next"]}
    )
    assert_taxii_error(response, 400)
    page = get_ok(client, objects_url(api, collection.id, a[0]["id"]), analyst, {"limit": "1", "match[version]": "all"})
    response = client.get(
        objects_url(api, collection.id, b[0]["id"]),
        headers=analyst,
        params={"limit": "1", "match[version]": "all", "next": page["next"]},
    )
    assert_taxii_error(response, 400)


def test_next_works_across_app_instances_sharing_the_secret(app, settings, analyst, api, collection, first_page):
    """Stateless paging: a second instance with the same secret resumes the walk; one without it refuses."""
    params, token, objects = first_page
    twin = create_app(Settings(**settings.model_dump()))
    stranger = create_app(Settings(**(settings.model_dump() | {"secret_key": "another-secret"})))
    try:
        with TestClient(twin) as client:
            body = get_ok(client, objects_url(api, collection.id), analyst, params | {"next": token})
            assert ids(body) == [o["id"] for o in objects[2:4]]
        with TestClient(stranger) as client:
            response = client.get(objects_url(api, collection.id), headers=analyst, params=params | {"next": token})
            assert_taxii_error(response, 400)
    finally:
        twin.state.engine.dispose()
        stranger.state.engine.dispose()

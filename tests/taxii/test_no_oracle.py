"""No existence oracle (DESIGN.md section 2) at the TAXII routes.

The releasability engine decides which labels a principal sees; these tests fix that decision
(the visibility cache's ``visible_label_ids`` is replaced: home principals see a test label, partners do not) and check
that every endpoint treats a hidden version as one that does not exist: absent from objects,
manifest and versions, skipped by first/last, left out of ``more``/``next`` and of the
``X-TAXII-Date-Added-First/Last`` headers, 404 by id exactly like an unknown id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy import and_, or_, select, update

from app.db.timestamps import parse_us
from app.items.models import StixObject
from app.markings.models import Label
from tests.taxii.helpers import (
    DATE_ADDED_FIRST,
    DATE_ADDED_LAST,
    assert_taxii_error,
    get_ok,
    id_versions,
    indicator,
    manifest_url,
    objects_url,
    post_ok,
    taxii_time,
    versions_of,
    versions_url,
    walk,
)


@dataclass
class Hidden:
    a: list[dict]  # A1, A2 visible to all; A3 hidden from partners
    h: dict  # hidden from partners entirely
    b: dict
    c: dict
    date_added: dict  # (id, version) -> date_added, as the analyst sees it


@pytest.fixture
def hidden(app, client, analyst, api, collection, session, monkeypatch) -> Hidden:
    a, h, b, c = versions_of(3), indicator(), indicator(), indicator()
    # date_added order: A1, A2, H, B, C, A3 (the hidden versions are in the middle and at the end).
    post_ok(client, api, collection.id, analyst, [a[0], a[1], h, b, c])
    post_ok(client, api, collection.id, analyst, [a[2]])

    # An explicit id far from the sequence: on PostgreSQL the migration seeds label 1 with an explicit
    # id without advancing the sequence, so a sequence-drawn id would collide with it.
    label = Label(id=1_000_000 + uuid.uuid4().int % 1_000_000_000, key=f"TEST HIDDEN {uuid.uuid4()}", rank=4)
    session.add(label)
    session.commit()
    hidden_label = label.id
    session.execute(
        update(StixObject)
        .where(
            StixObject.collection_id == collection.id,
            or_(
                StixObject.object_id == h["id"],
                and_(StixObject.object_id == a[2]["id"], StixObject.version_us == parse_us(a[2]["modified"])),
            ),
        )
        .values(label_id=hidden_label)
    )
    session.commit()

    def visible_label_ids(db_session, principal):
        # Every label is visible except the test label, which only the home nation sees.
        every = sorted(db_session.execute(select(Label.id)).scalars())
        return every if principal.is_home else [label_id for label_id in every if label_id != hidden_label]

    monkeypatch.setattr(app.state.visibility, "visible_label_ids", visible_label_ids)
    records = get_ok(client, manifest_url(api, collection.id), analyst, {"match[version]": "all"})["objects"]
    return Hidden(a, h, b, c, {(r["id"], r["version"]): r["date_added"] for r in records})


def keyed(objects: list[dict]) -> list[tuple[str, str]]:
    return [(o["id"], o["modified"]) for o in objects]


def test_home_analyst_sees_everything(client, analyst, api, collection, hidden):
    body = get_ok(client, objects_url(api, collection.id), analyst)
    assert keyed(body["objects"]) == keyed([hidden.h, hidden.b, hidden.c, hidden.a[2]])


@pytest.mark.parametrize(
    "versions,expected",
    [
        ("last", ["a1", "b", "c"]),  # A's last visible version is A2 (listed by its date_added)
        ("first", ["a0", "b", "c"]),
        ("all", ["a0", "a1", "b", "c"]),
        ("a2", []),  # the hidden version's timestamp matches nothing
    ],
)
def test_objects_skip_hidden_versions(client, partner_usa, api, collection, hidden, versions, expected):
    if versions == "a2":
        versions = hidden.a[2]["modified"]
    named = {"a0": hidden.a[0], "a1": hidden.a[1], "b": hidden.b, "c": hidden.c}
    body = get_ok(client, objects_url(api, collection.id), partner_usa, {"match[version]": versions})
    assert keyed(body.get("objects", [])) == keyed([named[n] for n in expected])


def test_manifest_skips_hidden_versions(client, partner_usa, api, collection, hidden):
    records = get_ok(client, manifest_url(api, collection.id), partner_usa, {"match[version]": "all"})["objects"]
    visible = [hidden.a[0], hidden.a[1], hidden.b, hidden.c]
    assert id_versions({"objects": records}) == [(o["id"], taxii_time(o["modified"])) for o in visible]


def test_hidden_object_is_404_exactly_like_an_unknown_one(client, partner_usa, api, collection, hidden):
    unknown = f"indicator--{uuid.uuid4()}"
    for url_of in (lambda i: objects_url(api, collection.id, i), lambda i: versions_url(api, collection.id, i)):
        hidden_response = client.get(url_of(hidden.h["id"]), headers=partner_usa)
        unknown_response = client.get(url_of(unknown), headers=partner_usa)
        assert_taxii_error(hidden_response, 404)
        assert hidden_response.json() == assert_taxii_error(unknown_response, 404)
        assert hidden.h["id"] not in hidden_response.text
    by_filter = get_ok(client, objects_url(api, collection.id), partner_usa, {"match[id]": hidden.h["id"]})
    assert "objects" not in by_filter


def test_object_and_versions_of_a_partly_hidden_object(client, partner_usa, api, collection, hidden):
    a_id = hidden.a[0]["id"]
    assert get_ok(client, objects_url(api, collection.id, a_id), partner_usa)["objects"] == [hidden.a[1]]
    every = get_ok(client, objects_url(api, collection.id, a_id), partner_usa, {"match[version]": "all"})
    assert every["objects"] == hidden.a[:2]
    versions = get_ok(client, versions_url(api, collection.id, a_id), partner_usa)["versions"]
    assert versions == [taxii_time(v["modified"]) for v in hidden.a[:2]]


def test_headers_leave_hidden_versions_out(client, partner_usa, api, collection, hidden):
    a_id = hidden.a[0]["id"]
    a1, a2 = (hidden.date_added[(a_id, taxii_time(v["modified"]))] for v in hidden.a[:2])
    for url, params in (
        (objects_url(api, collection.id), {"match[id]": a_id, "match[version]": "all"}),
        (manifest_url(api, collection.id), {"match[id]": a_id, "match[version]": "all"}),
        (objects_url(api, collection.id, a_id), {"match[version]": "all"}),
        (versions_url(api, collection.id, a_id), {}),
    ):
        response = client.get(url, headers=partner_usa, params=params)
        assert (response.headers[DATE_ADDED_FIRST], response.headers[DATE_ADDED_LAST]) == (a1, a2), url
    # Only hidden content: no headers at all.
    after_c = hidden.date_added[(hidden.c["id"], taxii_time(hidden.c["modified"]))]
    response = client.get(
        objects_url(api, collection.id), headers=partner_usa, params={"added_after": after_c, "match[version]": "all"}
    )
    assert response.status_code == 200 and "objects" not in response.json()
    assert DATE_ADDED_FIRST not in response.headers and DATE_ADDED_LAST not in response.headers


@pytest.mark.parametrize("limit", [1, 2, 4])
def test_more_and_next_leave_hidden_versions_out(client, partner_usa, api, collection, hidden, limit):
    pages = walk(client, objects_url(api, collection.id), partner_usa, {"match[version]": "all", "limit": str(limit)})
    served = [o for page in pages for o in page["objects"]]
    assert keyed(served) == keyed([hidden.a[0], hidden.a[1], hidden.b, hidden.c])
    # Only hidden versions follow C: the page that ends with C says there is no more.
    assert len(pages) == -(-4 // limit)

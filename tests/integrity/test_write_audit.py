"""Every write commits with its audit record or not at all (issue 18, finding 4).

With inserts into ``audit_record`` failing in the database itself, each write route must answer
503 and store nothing; with the log healthy, the versions stored equal the versions the write
records name.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from app.db.timestamps import format_us
from app.markings.labels import label_marking_definition, parse_banner
from tests.conftest import HOME, TAXII
from tests.integrity.conftest import API, audit_outage, indicator, table_counts


@dataclass
class WriteCase:
    """One write route: how to prepare it (healthy log) and how to call it (log down)."""

    name: str
    prepare: Callable[[Any, dict, Any], dict]
    call: Callable[[Any, dict, Any, dict], Any]


def _post_item(client, headers, collection) -> dict:
    response = client.post(
        "/api/v1/items",
        headers=headers,
        json={
            "collection": collection.id,
            "type": "indicator",
            "name": "prepared",
            "banner": "UNCLASSIFIED",
            "pattern": "[domain-name:value = 'prepared.example']",
        },
    )
    assert response.status_code == 201, response.text
    return {"item": response.json()["stored"][-1]["id"]}


def _nothing(client, headers, collection) -> dict:
    return {}


def _feed_spec(collection) -> dict:
    return {
        "name": f"feed-{uuid.uuid4().hex[:8]}",
        "partner": "USA",
        "direction": "pull",
        "url": "http://127.0.0.1:9/taxii2/",
        "collection_id": str(uuid.uuid4()),
        "local_collection_id": collection.id,
    }


def _feed(client, headers, collection) -> dict:
    spec = _feed_spec(collection)
    response = client.post("/api/v1/feeds", headers=headers, json=spec)
    assert response.status_code == 201, response.text
    return {"feed": spec["name"]}


CASES = [
    WriteCase(
        "taxii add objects",
        _nothing,
        lambda c, h, col, p: c.post(
            f"{API}/collections/{col.id}/objects/",
            headers=h | {"Accept": TAXII, "Content-Type": TAXII},
            content=orjson.dumps({"objects": [indicator("x")]}),
        ),
    ),
    WriteCase(
        "taxii delete object",
        _post_item,
        lambda c, h, col, p: c.delete(
            f"{API}/collections/{col.id}/objects/{p['item']}/", headers=h | {"Accept": TAXII}
        ),
    ),
    WriteCase(
        "items simple form",
        _nothing,
        lambda c, h, col, p: c.post(
            "/api/v1/items",
            headers=h,
            json={
                "collection": col.id,
                "type": "indicator",
                "name": "n",
                "banner": "SECRET//REL TO USA",
                "pattern": "[domain-name:value = 'n.example']",
            },
        ),
    ),
    WriteCase(
        "items stix",
        _nothing,
        lambda c, h, col, p: c.post(
            "/api/v1/items/stix", headers=h, json={"collection": col.id, "stix": indicator("s")}
        ),
    ),
    WriteCase(
        "items new version",
        _post_item,
        lambda c, h, col, p: c.post(
            f"/api/v1/items/{p['item']}/versions",
            headers=h,
            json={"collection": col.id, "changes": {"description": "edited"}},
        ),
    ),
    WriteCase(
        "items revoke",
        _post_item,
        lambda c, h, col, p: c.post(f"/api/v1/items/{p['item']}/revoke", headers=h, json={"collection": col.id}),
    ),
    WriteCase(
        "items tearline",
        _post_item,
        lambda c, h, col, p: c.post(
            f"/api/v1/items/{p['item']}/tearlines",
            headers=h,
            json={"collection": col.id, "banner": "UNCLASSIFIED//REL TO NATO"},
        ),
    ),
    WriteCase(
        "collections create",
        _nothing,
        lambda c, h, col, p: c.post("/api/v1/collections", headers=h, json={"title": f"t {uuid.uuid4().hex[:6]}"}),
    ),
    WriteCase(
        "collections update",
        _nothing,
        lambda c, h, col, p: c.patch(f"/api/v1/collections/{col.id}", headers=h, json={"title": "renamed"}),
    ),
    WriteCase("feeds add", _nothing, lambda c, h, col, p: c.post("/api/v1/feeds", headers=h, json=_feed_spec(col))),
    WriteCase("feeds remove", _feed, lambda c, h, col, p: c.delete(f"/api/v1/feeds/{p['feed']}", headers=h)),
]


def _headers(headers_for, case: WriteCase) -> dict:
    admin = case.name.startswith(("collections", "feeds"))
    return headers_for(subject="admin-1", roles=("admin",)) if admin else headers_for()


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_a_write_whose_audit_record_fails_stores_nothing_and_answers_503(app, client, headers_for, writable, case):
    headers = _headers(headers_for, case)
    prepared = case.prepare(client, headers_for() if case.prepare is _post_item else headers, writable)
    engine = app.state.engine
    before = table_counts(engine)
    with audit_outage(engine):
        response = case.call(client, headers, writable, prepared)
        during = table_counts(engine)
    assert response.status_code == 503, response.text
    assert "audit" in response.text.lower() and "Traceback" not in response.text
    assert during == before, {name: (before[name], during[name]) for name in before if before[name] != during[name]}


def test_after_a_mixed_load_the_stored_versions_are_the_versions_the_write_records_name(
    app, client, headers_for, writable
):
    analyst, partner = headers_for(), headers_for(subject="fra-feed", nation="FRA", roles=("partner",))
    taxii = {"Accept": TAXII, "Content-Type": TAXII}
    marking = label_marking_definition(
        parse_banner("UNCLASSIFIED//REL TO FRA", originator=HOME, mappings=app.state.mappings), app.state.mappings
    )
    first = indicator("mixed 1", marking["id"])
    posts = [
        (analyst, [marking, first]),
        (analyst, [first]),  # an exact duplicate stores nothing
        (analyst, [indicator("mixed 2"), {"type": "indicator", "id": "bad"}]),  # one stored, one refused
        (partner, [indicator("mixed 3")]),
        (analyst, [first | {"modified": "2026-11-21T09:00:00.000Z", "name": "mixed 1 b"}]),
    ]
    for headers, objects in posts:
        response = client.post(
            f"{API}/collections/{writable.id}/objects/",
            headers=headers | taxii,
            content=orjson.dumps({"objects": objects}),
        )
        assert response.status_code == 202, response.text
    deleted = client.delete(
        f"{API}/collections/{writable.id}/objects/{first['id']}/",
        headers=analyst | taxii,
        params={"match[version]": "first"},
    )
    assert deleted.status_code == 200, deleted.text

    with app.state.engine.connect() as connection:
        stored = {
            (object_id, version_us)
            for object_id, version_us in connection.execute(
                text("SELECT object_id, version_us FROM stix_object WHERE collection_id = :c"), {"c": writable.id}
            )
        }
        named: dict[str, set[tuple[str, str]]] = {"POST": set(), "DELETE": set()}
        for method, pairs in connection.execute(
            text(
                "SELECT r.method, w.pairs FROM audit_record r JOIN audit_written w ON w.record_seq = r.seq "
                "WHERE r.collection_id = :c"
            ),
            {"c": writable.id},
        ):
            named[method] |= {tuple(pair) for pair in orjson.loads(pairs)}
    stored_named = {(object_id, format_us(version_us)) for object_id, version_us in stored}
    assert stored_named == named["POST"] - named["DELETE"]
    assert len(named["DELETE"]) == 1 and named["DELETE"] <= named["POST"]


@pytest.mark.parametrize("tamper", ["edit", "delete", "beyond head"])
def test_verify_covers_the_written_lists(app, client, headers_for, writable, tamper):
    response = client.post(
        f"{API}/collections/{writable.id}/objects/",
        headers=headers_for() | {"Accept": TAXII, "Content-Type": TAXII},
        content=orjson.dumps({"objects": [indicator("verified")]}),
    )
    assert response.status_code == 202, response.text
    engine = app.state.engine
    with engine.connect() as connection:
        seq, pairs = connection.execute(
            text("SELECT record_seq, pairs FROM audit_written ORDER BY record_seq DESC")
        ).first()
        head = connection.execute(text("SELECT seq FROM audit_head")).scalar_one()
    statements = {
        "edit": (
            "UPDATE audit_written SET pairs = :p WHERE record_seq = :s",
            {"p": pairs.replace("Z", "Y"), "s": seq},
            "UPDATE audit_written SET pairs = :p WHERE record_seq = :s",
            {"p": pairs, "s": seq},
        ),
        "delete": (
            "DELETE FROM audit_written WHERE record_seq = :s",
            {"s": seq},
            "INSERT INTO audit_written (record_seq, pairs) VALUES (:s, :p)",
            {"s": seq, "p": pairs},
        ),
        "beyond head": (
            "INSERT INTO audit_written (record_seq, pairs) VALUES (:s, :p)",
            {"s": head + 1000, "p": pairs},
            "DELETE FROM audit_written WHERE record_seq = :s",
            {"s": head + 1000},
        ),
    }
    do, do_args, undo, undo_args = statements[tamper]
    auditor = headers_for(subject="auditor-1", roles=("auditor",))
    with engine.begin() as connection:
        connection.execute(text(do), do_args)
    try:
        report = client.get("/api/v1/audit/verify", headers=auditor).json()
    finally:
        with engine.begin() as connection:
            connection.execute(text(undo), undo_args)
    assert report["ok"] is False, report
    assert "written list" in report["problem"]
    assert client.get("/api/v1/audit/verify", headers=auditor).json()["ok"] is True

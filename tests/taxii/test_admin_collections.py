"""Collection administration under /api/v1/collections: roles, per-partner lists, and TAXII honouring them."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from app.taxii.models import Collection

PROBLEM = "application/problem+json"


def _admin(auth) -> dict:
    return auth(subject="admin-1", roles=("admin",))


def _collections(session) -> int:
    session.expire_all()
    return session.execute(select(func.count()).select_from(Collection)).scalar_one()


def _problem(response, status: int, *paths: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert set(paths) <= {e["path"] for e in body.get("errors", [])}, body
    return body


def _taxii_ids(client, api, headers) -> set[str]:
    response = client.get(f"{api}/collections/", headers=headers)
    assert response.status_code == 200
    return {c["id"] for c in response.json().get("collections", [])}


def test_create_list_get_and_update(client, api, auth):
    admin = _admin(auth)
    body = {
        "title": f"FVEY phishing {uuid.uuid4().hex[:6]}",
        "description": "d",
        "read_roles": ["partner", "analyst"],
        "write_roles": ["analyst"],
        "read_partners": ["usa", "GBR"],
    }
    created = client.post("/api/v1/collections", headers=admin, json=body)
    assert created.status_code == 201, created.text
    collection = created.json()
    assert collection["read_partners"] == ["GBR", "USA"] and collection["write_partners"] == []
    assert collection["read_roles"] == ["analyst", "partner"]
    assert collection["id"] in {c["id"] for c in client.get("/api/v1/collections", headers=admin).json()}
    assert client.get(f"/api/v1/collections/{collection['id']}", headers=admin).json() == collection

    usa = auth(subject="usa-feed", nation="USA", roles=("partner",))
    fra = auth(subject="fra-feed", nation="FRA", roles=("partner",))
    assert collection["id"] in _taxii_ids(client, api, usa)
    assert collection["id"] not in _taxii_ids(client, api, fra)
    assert client.get(f"{api}/collections/{collection['id']}/", headers=fra).status_code == 404

    patched = client.patch(
        f"/api/v1/collections/{collection['id']}", headers=admin, json={"read_partners": ["FRA"], "title": "renamed"}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["title"] == "renamed" and patched.json()["description"] == "d"
    assert collection["id"] in _taxii_ids(client, api, fra)
    assert collection["id"] not in _taxii_ids(client, api, usa)
    cleared = client.patch(f"/api/v1/collections/{collection['id']}", headers=admin, json={"read_partners": []})
    assert cleared.json()["read_partners"] == []
    assert collection["id"] in _taxii_ids(client, api, usa) and collection["id"] in _taxii_ids(client, api, fra)


def test_write_partners_limit_pushes(client, api, auth):
    admin = _admin(auth)
    collection = client.post(
        "/api/v1/collections",
        headers=admin,
        json={
            "title": f"push {uuid.uuid4().hex[:6]}",
            "read_roles": ["partner"],
            "write_roles": ["partner"],
            "write_partners": ["GBR"],
        },
    ).json()
    usa = client.get(
        f"{api}/collections/{collection['id']}/", headers=auth(subject="u", nation="USA", roles=("partner",))
    ).json()
    gbr = client.get(
        f"{api}/collections/{collection['id']}/", headers=auth(subject="g", nation="GBR", roles=("partner",))
    ).json()
    assert (usa["can_read"], usa["can_write"]) == (True, False)
    assert (gbr["can_read"], gbr["can_write"]) == (True, True)


def test_refusals_change_nothing(client, session, auth):
    admin = _admin(auth)
    before = _collections(session)
    _problem(
        client.post("/api/v1/collections", headers=admin, json={"title": "x", "read_roles": ["partner", "wizard"]}),
        422,
        "read_roles",
    )
    _problem(
        client.post("/api/v1/collections", headers=admin, json={"title": "x", "read_partners": ["NLD", "ZZZ"]}),
        422,
        "read_partners",
    )
    _problem(client.post("/api/v1/collections", headers=admin, json={"title": ""}), 400, "title")
    _problem(client.post("/api/v1/collections", headers=admin, json={"title": "x", "colour": "red"}), 400, "colour")
    _problem(client.patch(f"/api/v1/collections/{uuid.uuid4()}", headers=admin, json={"title": "y"}), 404)
    _problem(client.get(f"/api/v1/collections/{uuid.uuid4()}", headers=admin), 404)
    for headers in (auth(), auth(subject="usa-feed", nation="USA", roles=("partner",)), {}):
        status = 401 if not headers else 403
        _problem(client.post("/api/v1/collections", headers=headers, json={"title": "x"}), status)
        _problem(client.get("/api/v1/collections", headers=headers), status)
    assert _collections(session) == before


def test_alias_must_be_unique(client, session, auth):
    admin = _admin(auth)
    alias = f"alias-{uuid.uuid4().hex[:6]}"
    assert client.post("/api/v1/collections", headers=admin, json={"title": "a", "alias": alias}).status_code == 201
    before = _collections(session)
    _problem(client.post("/api/v1/collections", headers=admin, json={"title": "b", "alias": alias}), 422, "alias")
    assert _collections(session) == before

"""Helpers of the analyst API tests: posting, problem checks, row counts, TAXII reads."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from stix2validator import ValidationOptions, validate_instance

from app.items.models import StixObject
from app.markings.models import Label
from tests.conftest import TAXII

PROBLEM = "application/problem+json"
_VALIDATION = ValidationOptions(version="2.1")


def post_simple(client, headers: dict, collection_id: str, **form) -> dict:
    """Post a simple-form item that must be accepted; returns the stored item (the last stored object)."""
    response = client.post("/api/v1/items", headers=headers, json={"collection": collection_id} | form)
    assert response.status_code == 201, response.text
    return response.json()["stored"][-1]


def assert_problem(response, status: int, *paths: str) -> dict:
    """An RFC 9457 problem with ``status``; each of ``paths`` is named in its ``errors``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    for name in ("Traceback", "sqlalchemy", "SELECT ", ".py"):
        assert name not in response.text
    named = {e["path"] for e in body.get("errors", [])}
    for path in paths:
        assert path in named, (path, body)
    return body


def assert_valid_stix(obj: dict) -> None:
    """stix2-validator accepts ``obj`` with no error."""
    result = validate_instance(obj, _VALIDATION)
    assert result.is_valid, [str(e) for e in result.errors]


def counts(session) -> tuple[int, int]:
    """(object versions, labels) stored, to prove a refused request stored nothing."""
    session.expire_all()
    versions = session.execute(select(func.count()).select_from(StixObject)).scalar_one()
    labels = session.execute(select(func.count()).select_from(Label)).scalar_one()
    return versions, labels


def taxii_objects(client, api: str, collection_id: str, headers: dict, **params) -> list[dict]:
    """Every object a principal is served from a collection (all pages)."""
    objects, query = [], {"match[version]": "all", "limit": "100"} | params
    while True:
        response = client.get(
            f"{api}/collections/{collection_id}/objects/", headers=headers | {"Accept": TAXII}, params=query
        )
        assert response.status_code == 200, response.text
        body = response.json()
        objects += body.get("objects", [])
        if not body.get("more"):
            return objects
        query = query | {"next": body["next"]}


def statement(text: str) -> dict:
    """A statement marking whose statement is a banner."""
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": f"marking-definition--{uuid.uuid4()}",
        "created": "2024-01-01T00:00:00.000Z",
        "definition_type": "statement",
        "definition": {"statement": text},
    }

"""Helpers for the TAXII 2.1 endpoint tests.

- URLs of the endpoints of one collection;
- STIX 2.1 objects (as plain dicts) built with the stix2 library, with explicit versions;
- posting envelopes and reading the status;
- :func:`get_ok`, which every successful read goes through: it checks the media type, the
  ``more``/``next`` pair, the ``X-TAXII-Date-Added-First/Last`` headers, the timestamp format of
  everything the server emits, and validates every returned STIX object with stix2-validator;
- :func:`assert_taxii_error`, the one check of every error body;
- row counts straight from the database, to prove that refused requests stored nothing.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache

import stix2
from sqlalchemy import func, select
from sqlmodel import Session
from stix2validator import ValidationOptions, validate_instance

from app.items.models import StixObject
from tests.conftest import TAXII

STIX_MEDIA_TYPE = "application/stix+json;version=2.1"
# Every timestamp the server emits (TAXII headers, date_added, versions, status): microseconds, UTC.
TAXII_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
DATE_ADDED_FIRST = "X-TAXII-Date-Added-First"
DATE_ADDED_LAST = "X-TAXII-Date-Added-Last"
# Substrings that would betray internals in an error body.
LEAKS = (
    "Traceback",
    'File "',
    "sqlalchemy",
    "psycopg",
    "sqlite3",
    "SELECT ",
    "INSERT ",
    "UPDATE ",
    "stix_object",
    "taxii_status",
    "/work/",
    ".py",
)
BASE_TIME = datetime(2020, 1, 1, tzinfo=UTC)
_VALIDATION = ValidationOptions(version="2.1")


# ---------------------------------------------------------------- URLs


def collection_url(api: str, collection_id: str) -> str:
    return f"{api}/collections/{collection_id}/"


def objects_url(api: str, collection_id: str, object_id: str | None = None) -> str:
    url = f"{api}/collections/{collection_id}/objects/"
    return f"{url}{object_id}/" if object_id else url


def versions_url(api: str, collection_id: str, object_id: str) -> str:
    return f"{objects_url(api, collection_id, object_id)}versions/"


def manifest_url(api: str, collection_id: str) -> str:
    return f"{api}/collections/{collection_id}/manifest/"


def status_url(api: str, status_id: str, *, slash: bool = True) -> str:
    return f"{api}/status/{status_id}" + ("/" if slash else "")


# ---------------------------------------------------------------- STIX objects


def stix_time(days: float = 0, *, base: datetime = BASE_TIME) -> str:
    """A STIX timestamp (millisecond precision, as STIX 2.1 requires for created/modified)."""
    moment = base + timedelta(days=days)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def taxii_time(stix_timestamp: str) -> str:
    """The same instant as the server emits it: microsecond precision."""
    head, _, fraction = stix_timestamp.rstrip("Z").partition(".")
    return f"{head}.{fraction[:6].ljust(6, '0')}Z"


def to_dict(obj) -> dict:
    return obj if isinstance(obj, dict) else json.loads(obj.serialize())


def indicator(*, created_days: float = 0, modified_days: float | None = None, **properties) -> dict:
    """A valid STIX 2.1 indicator with a fresh id (unless given) and explicit created/modified."""
    created = stix_time(created_days)
    defaults = {
        "name": "test indicator",
        "description": "an indicator built by the TAXII tests",
        "pattern": f"[ipv4-addr:value = '198.51.100.{uuid.uuid4().int % 250 + 1}']",
        "pattern_type": "stix",
        "valid_from": created,
        "created": created,
        "modified": stix_time(created_days if modified_days is None else modified_days),
    }
    return to_dict(stix2.Indicator(**(defaults | properties)))


def malware(**properties) -> dict:
    created = stix_time(0.25)  # not a version of the indicators built by versions_of()
    defaults = {
        "name": "test malware",
        "description": "a malware family",
        "is_family": True,
        "created": created,
        "modified": created,
    }
    return to_dict(stix2.Malware(**(defaults | properties)))


def ipv4(value: str = "203.0.113.9") -> dict:
    """A cyber-observable: it has no created/modified, so its version is server-chosen."""
    return to_dict(stix2.IPv4Address(value=value))


def new_version(obj: dict, modified_days: float, **changes) -> dict:
    """A new version of ``obj`` modified ``modified_days`` after the base time."""
    parsed = stix2.parse(obj, version="2.1")
    return to_dict(parsed.new_version(modified=stix_time(modified_days), **changes))


def versions_of(count: int, **properties) -> list[dict]:
    """``count`` versions of one indicator, modified on consecutive days (oldest first)."""
    first = indicator(**properties)
    return [first] + [new_version(first, days, description=f"version {days + 1}") for days in range(1, count)]


# ---------------------------------------------------------------- requests


def envelope(objects: list) -> bytes:
    """A TAXII envelope; ``objects`` may hold stix2 objects, dicts or any other JSON value."""
    return json.dumps({"objects": [to_dict(o) if hasattr(o, "serialize") else o for o in objects]}).encode()


def post_envelope(client, api: str, collection_id: str, headers: dict, objects: list, *, content_type: str = TAXII):
    """POST objects as a TAXII envelope; returns the raw response."""
    return client.post(
        objects_url(api, collection_id), headers=headers | {"Content-Type": content_type}, content=envelope(objects)
    )


def post_ok(client, api: str, collection_id: str, headers: dict, objects: list) -> dict:
    """POST objects that must all be accepted; returns the status resource."""
    response = post_envelope(client, api, collection_id, headers, objects)
    assert response.status_code == 202, response.text
    status = check_status_document(response)
    assert status["failure_count"] == 0, status["failures"]
    assert status["success_count"] == len(objects)
    return status


def check_status_document(response) -> dict:
    """Shape of a TAXII status resource, as returned by POST and by the status endpoint."""
    assert response.headers["content-type"] == TAXII
    status = response.json()
    for name in ("id", "status", "total_count", "success_count", "failure_count", "pending_count"):
        assert name in status, name
    uuid.UUID(status["id"])
    assert status["status"] in {"complete", "pending"}
    assert status["total_count"] == status["success_count"] + status["failure_count"] + status["pending_count"]
    assert len(status.get("successes", [])) == status["success_count"]
    assert len(status.get("failures", [])) == status["failure_count"]
    assert len(status.get("pendings", [])) == status["pending_count"]
    if "request_timestamp" in status:
        assert TAXII_TIMESTAMP.match(status["request_timestamp"]), status["request_timestamp"]
    for entry in status.get("successes", []) + status.get("failures", []):
        assert isinstance(entry["id"], str) and isinstance(entry["version"], str)
        assert not any(leak in entry.get("message", "") for leak in LEAKS), entry
    for entry in status.get("successes", []):
        assert TAXII_TIMESTAMP.match(entry["version"]), entry
    return status


def get_ok(client, url: str, headers: dict, params=None) -> dict:
    """GET a TAXII resource that must answer 200, check everything any 200 must satisfy, return the body."""
    response = client.get(url, headers=headers, params=params)
    assert response.status_code == 200, (url, params, response.status_code, response.text)
    check_taxii_200(response)
    return response.json()


def check_taxii_200(response) -> None:
    assert response.headers["content-type"] == TAXII
    body = response.json()
    assert isinstance(body, dict)
    if "more" in body or "next" in body:
        assert isinstance(body.get("more", False), bool)
        # `next` is sent exactly when more is true.
        assert ("next" in body) == (body.get("more") is True), body
        if "next" in body:
            assert isinstance(body["next"], str) and body["next"]
    paged = "more" in body  # objects, object, manifest and versions always carry `more`
    items = body.get("objects", body.get("versions")) if paged else None
    assert items is None or (isinstance(items, list) and items), "an empty list is left out, not sent empty"
    first, last = response.headers.get(DATE_ADDED_FIRST), response.headers.get(DATE_ADDED_LAST)
    if paged and items:
        assert first is not None and last is not None, "both date_added headers on every 200 with content"
        assert TAXII_TIMESTAMP.match(first) and TAXII_TIMESTAMP.match(last), (first, last)
        assert first <= last
    else:
        assert first is None and last is None, "no date_added headers without content"
    for item in body.get("objects", []):
        if "media_type" in item:  # a manifest record
            check_manifest_record(item)
        else:
            assert_valid_stix(item)
    for version in body.get("versions", []) if paged else []:
        assert TAXII_TIMESTAMP.match(version), version
    if paged and body.get("objects") and "media_type" in body["objects"][0]:
        dates = [record["date_added"] for record in body["objects"]]
        assert dates == sorted(dates) and len(set(dates)) == len(dates), "date_added strictly increasing"
        assert (first, last) == (dates[0], dates[-1])


def check_manifest_record(record: dict) -> None:
    assert set(record) == {"id", "date_added", "version", "media_type"}, record
    assert TAXII_TIMESTAMP.match(record["date_added"]) and TAXII_TIMESTAMP.match(record["version"]), record
    assert record["media_type"] == STIX_MEDIA_TYPE


def assert_valid_stix(obj: dict) -> None:
    """The object validates with stix2-validator (results cached by content: validation is slow)."""
    errors = _validation_errors(json.dumps(obj, sort_keys=True))
    assert not errors, f"{obj.get('id')} is not valid STIX 2.1: {errors}"


@cache
def _validation_errors(text: str) -> tuple[str, ...]:
    result = validate_instance(json.loads(text), _VALIDATION)
    return () if result.is_valid else tuple(str(error) for error in result.errors)


def walk(client, url: str, headers: dict, params: dict | None = None) -> list[dict]:
    """Follow ``next`` from the first page to the last; returns every page body (each checked by get_ok)."""
    params = dict(params or {})
    pages = [get_ok(client, url, headers, params)]
    while pages[-1].get("more"):
        pages.append(get_ok(client, url, headers, params | {"next": pages[-1]["next"]}))
        assert len(pages) < 1000, "paging does not terminate"
    return pages


def ids(body: dict) -> list[str]:
    return [o["id"] for o in body.get("objects", [])]


def id_versions(body: dict) -> list[tuple[str, str]]:
    """(id, modified-or-version) of each returned object or manifest record."""
    return [(o["id"], o.get("version") or o.get("modified")) for o in body.get("objects", [])]


def assert_taxii_error(response, status: int) -> dict:
    """A TAXII error message: title, description, http_status as a string, TAXII media type, no internals."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == TAXII
    body = response.json()
    assert isinstance(body.get("title"), str) and body["title"]
    assert isinstance(body.get("description", ""), str)
    assert body.get("http_status") == str(status)
    assert not any(leak in response.text for leak in LEAKS), response.text
    return body


# ---------------------------------------------------------------- database


def stored_rows(session: Session, collection_id: str, object_id: str | None = None) -> int:
    """Stored object versions in a collection (optionally of one object), read from the database."""
    query = select(func.count()).select_from(StixObject).where(StixObject.collection_id == collection_id)
    if object_id is not None:
        query = query.where(StixObject.object_id == object_id)
    count = session.execute(query).scalar_one()
    session.rollback()  # hold no snapshot or lock between checks
    return count

"""Validate STIX 2.1 objects and store them as new versions in a collection.

Storing is two steps so that the collection lock is held only for the writes:
:func:`validate` (CPU only, no lock) and :func:`store` (inside the caller's
transaction). :func:`store` serialises writers per collection by updating the
collection row first, so ``date_added`` is unique and strictly increasing per
collection, and commit order equals ``date_added`` order, which keyset paging
and ``added_after`` rely on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson
import stix2
from sqlalchemy import insert, select, update
from sqlmodel import Session

from app.items.models import StixObject
from app.markings.service import label_for_new_object
from app.taxii.models import Collection
from app.timestamps import format_us, now_us, parse_us

_STIX_ID = re.compile(r"^([a-z0-9][a-z0-9-]*[a-z0-9])--[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Longest id the object_id column holds. STIX allows types of 250 characters (ids of 288), but an id
# that does not fit must fail as that one object, not abort the whole envelope in the database.
_MAX_ID_LENGTH = StixObject.__table__.c.object_id.type.length
# A created/modified timestamp with fewer than three fractional digits (already checked by parse_us).
_SUB_MILLISECOND = re.compile(r"^(.+T\d{2}:\d{2}:\d{2})(?:\.(\d{1,2}))?Z$")


@dataclass(frozen=True)
class Outcome:
    """What happened to one submitted object."""

    object_id: str
    version: str | None
    ok: bool
    message: str | None = None


@dataclass(frozen=True)
class ValidObject:
    """A submitted object that passed validation, with the columns it will be stored under."""

    content: dict
    object_id: str
    type: str
    spec_version: str
    version_us: int | None
    created_us: int | None


class InvalidObject(ValueError):
    """The submitted object is not valid STIX 2.1; the message says why."""


def _timestamp(obj: dict, name: str) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    try:
        return parse_us(value)
    except ValueError as exc:
        raise InvalidObject(f"{name}: {exc}") from None


def _to_milliseconds(obj: dict) -> dict:
    """``obj`` with created/modified given to the millisecond.

    STIX 2.1 (section 3.2) requires that precision and stix2-validator enforces it, but the stix2
    library accepts coarser values such as ``2020-06-18T00:00:00Z``. Padding the fraction with
    zeros keeps the instant (so the version) and makes the stored copy, which is served as is,
    valid STIX 2.1; resubmitting the coarse original is still an exact duplicate.
    """
    padded = {}
    for name in ("created", "modified"):
        match = _SUB_MILLISECOND.fullmatch(obj[name]) if isinstance(obj.get(name), str) else None
        if match:
            padded[name] = f"{match.group(1)}.{(match.group(2) or '').ljust(3, '0')}Z"
    return obj | padded if padded else obj


def validate(obj: object) -> ValidObject:
    """Check one submitted object; raise InvalidObject with the reason when it is not STIX 2.1."""
    if not isinstance(obj, dict):
        raise InvalidObject("an object must be a JSON object")
    object_id, object_type = obj.get("id"), obj.get("type")
    if isinstance(object_id, str) and len(object_id) > _MAX_ID_LENGTH:
        raise InvalidObject(f"id: longer than the {_MAX_ID_LENGTH} characters this server stores")
    # fullmatch: with match, "$" also accepts a trailing newline ("indicator--<uuid>\n").
    if not isinstance(object_id, str) or not _STIX_ID.fullmatch(object_id):
        raise InvalidObject("id: must be <type>--<UUID>")
    if object_type != object_id.split("--", 1)[0]:
        raise InvalidObject("type: must match the type in the id")
    if obj.get("spec_version") != "2.1":
        raise InvalidObject("spec_version: only STIX 2.1 objects are accepted")
    try:
        stix2.parse(obj, allow_custom=True, version="2.1")
    except Exception as exc:  # stix2 raises many exception types; each is a validation failure
        raise InvalidObject(f"invalid STIX 2.1: {exc}") from None
    created_us = _timestamp(obj, "created")
    modified_us = _timestamp(obj, "modified")
    if created_us is not None and modified_us is not None and modified_us < created_us:
        # A STIX 2.1 MUST (section 3.2) that stix2.parse does not check.
        raise InvalidObject("modified: must not be earlier than created")
    version_us = modified_us if modified_us is not None else created_us  # not `or`: 0 is the epoch
    return ValidObject(_to_milliseconds(obj), object_id, object_type, "2.1", version_us, created_us)


def _failure(obj: object, message: str) -> Outcome:
    object_id = obj.get("id") if isinstance(obj, dict) and isinstance(obj.get("id"), str) else ""
    version = obj.get("modified") or obj.get("created") if isinstance(obj, dict) else None
    return Outcome(object_id, version if isinstance(version, str) else None, False, message)


def validate_all(objects: list) -> tuple[list[ValidObject], list[Outcome]]:
    """Split submitted objects into valid ones and failure outcomes."""
    valid, failures = [], []
    for index, obj in enumerate(objects):
        try:
            valid.append(validate(obj))
        except InvalidObject as exc:
            failures.append(_failure(obj, f"object {index}: {exc}"))
    return valid, failures


def _lock_collection(session: Session, collection_id: str) -> int:
    """Take the collection's write lock (row lock on PostgreSQL, write lock on SQLite); return its hwm."""
    session.execute(
        update(Collection)
        .where(Collection.id == collection_id)
        .values(date_added_hwm=Collection.date_added_hwm)
    )
    return session.execute(select(Collection.date_added_hwm).where(Collection.id == collection_id)).scalar_one()


def store(session: Session, collection_id: str, objects: list[ValidObject], *, originator: str) -> list[Outcome]:
    """Store valid objects as new versions; exact duplicates succeed, conflicting ones fail. No commit."""
    if not objects:
        return []
    hwm = _lock_collection(session, collection_id)
    next_date_added = max(now_us(), hwm + 1)

    stored: dict[tuple[str, int], dict] = {
        (row.object_id, row.version_us): orjson.loads(row.body)
        for row in session.execute(
            select(StixObject.object_id, StixObject.version_us, StixObject.body).where(
                StixObject.collection_id == collection_id,
                StixObject.object_id.in_({o.object_id for o in objects}),
            )
        )
    }

    label_id = label_for_new_object(session)
    outcomes, rows = [], []
    for obj in objects:
        version_us = obj.version_us
        if version_us is None:
            # Without created/modified (most SCOs) the version is date_added, so an identical
            # resubmission is recognised by content rather than by version.
            version_us = next(
                (v for (i, v), content in stored.items() if i == obj.object_id and content == obj.content),
                next_date_added,
            )
        version = format_us(version_us)
        key = (obj.object_id, version_us)
        existing = stored.get(key)
        if existing is not None:
            if existing == obj.content:
                outcomes.append(Outcome(obj.object_id, version, True, "duplicate of a stored version"))
            else:
                outcomes.append(Outcome(obj.object_id, version, False,
                                        "a different object with this id and version was already submitted"))
            continue
        stored[key] = obj.content
        rows.append({
            "collection_id": collection_id,
            "object_id": obj.object_id,
            "type": obj.type,
            "spec_version": obj.spec_version,
            "version_us": version_us,
            "created_us": obj.created_us,
            "date_added_us": next_date_added,
            "label_id": label_id,
            "originator": originator,
            "has_granular": bool(obj.content.get("granular_markings")),
            "body": orjson.dumps(obj.content).decode(),
        })
        outcomes.append(Outcome(obj.object_id, version, True))
        next_date_added += 1

    if rows:
        session.execute(insert(StixObject), rows)
        session.execute(
            update(Collection).where(Collection.id == collection_id).values(date_added_hwm=next_date_added - 1)
        )
    return outcomes

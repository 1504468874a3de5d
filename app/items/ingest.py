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
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import orjson
from sqlalchemy import case, or_, select, update
from sqlmodel import Session, col

from app.db.bulk import insert_rows
from app.db.lists import in_list
from app.db.timestamps import format_us, now_us, parse_us
from app.db.written import note_written
from app.items import patterns, provenance, stix_validation
from app.items.admission import DUPLICATE, Admission
from app.items.attribution import registered_identities
from app.items.changes import StoredBatch, after_store, announce_stored
from app.items.labeling import LabeledObject, Labeler, LabelRefused, marking_refs
from app.items.models import ObjectReference, StixObject
from app.items.side_tables import new_row, object_references, store_side_tables
from app.items.store import MARKING_DEFINITION
from app.markings.mappings import Mappings
from app.markings.service import intern_labels
from app.taxii.models import Collection

_STIX_ID = re.compile(
    r"^([a-z0-9][a-z0-9-]*[a-z0-9])--[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
# Longest id the object_id column holds. STIX allows types of 250 characters (ids of 288), but an id
# that does not fit must fail as that one object, not abort the whole envelope in the database.
_MAX_PROPERTY_LENGTH: int = ObjectReference.__table__.c.prop.type.length  # type: ignore[attr-defined]  # String(250)
_MAX_ID_LENGTH: int = StixObject.__table__.c.object_id.type.length  # type: ignore[attr-defined]  # a String(255) column; TypeEngine does not declare length
# A created/modified timestamp with fewer than three fractional digits (already checked by parse_us).
_SUB_MILLISECOND = re.compile(r"^(.+T\d{2}:\d{2}:\d{2})(?:\.(\d{1,2}))?Z$")

# Indicators' patterns are checked by stix2-patterns' own verdict, cached per pattern shape (see patterns).
patterns.install()


# Slots: a thousand of each per envelope, which live until it is stored (fewer objects for the
# garbage collector to walk, and cheaper to build).
@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one submitted object."""

    object_id: str
    version: str | None
    ok: bool
    message: str | None = None


@dataclass(frozen=True, slots=True)
class ValidObject:
    """A submitted object that passed validation, with the columns it will be stored under."""

    content: dict[str, Any]
    object_id: str
    type: str
    spec_version: str
    version_us: int | None
    created_us: int | None


class InvalidObject(ValueError):
    """The submitted object is not valid STIX 2.1; the message says why."""


def _timestamp(obj: dict[str, Any], name: str) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    try:
        return parse_us(value)
    except ValueError as exc:
        raise InvalidObject(f"{name}: {exc}") from None


def _to_milliseconds(obj: dict[str, Any]) -> dict[str, Any]:
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
    unstorable = _unstorable_reference(obj)
    if unstorable is not None:
        raise InvalidObject(unstorable)
    if obj.get("spec_version") != "2.1":
        raise InvalidObject("spec_version: only STIX 2.1 objects are accepted")
    padded = _to_milliseconds(obj)  # what is stored, so what must be valid
    try:
        stix_validation.check(padded)
    except stix_validation.StixInvalid as exc:
        raise InvalidObject(f"invalid STIX 2.1: {exc}") from None
    return _padded_columns(padded)


def _unstorable_reference(obj: dict[str, Any]) -> str | None:
    """Why a reference of ``obj`` cannot be kept in the side tables (top-level ``*_ref``/``*_refs``
    and granular marking references), or None: an id longer than the column, a property name longer
    than its column, or a NUL character, which PostgreSQL refuses in text. Refused here, the object
    fails alone; in the insert, the whole envelope failed with a 500 (PostgreSQL only)."""
    for key, value in obj.items():
        if isinstance(value, str) and key.endswith("_ref"):
            refs = [value]
        elif isinstance(value, list) and key.endswith("_refs"):
            refs = [ref for ref in value if isinstance(ref, str)]
        else:
            continue
        if problem := _unstorable(key, refs):
            return problem
    for marking in obj.get("granular_markings") or []:
        ref = marking.get("marking_ref") if isinstance(marking, dict) else None
        if isinstance(ref, str) and (problem := _unstorable("granular_markings", [ref])):
            return problem
    return None


def _unstorable(key: str, refs: list[str]) -> str | None:
    if "\x00" in key or any("\x00" in ref for ref in refs):
        return f"{key!r}: a reference property or id holding a NUL character, which this server cannot store"
    if len(key) > _MAX_PROPERTY_LENGTH:
        return f"a reference property name longer than the {_MAX_PROPERTY_LENGTH} characters this server stores"
    if any(len(ref) > _MAX_ID_LENGTH for ref in refs):
        return f"{key}: a reference longer than the {_MAX_ID_LENGTH} characters this server stores"
    return None


def _columns(obj: dict[str, Any]) -> ValidObject:
    """The stored columns of an object whose id, type and spec_version are already checked."""
    return _padded_columns(_to_milliseconds(obj))


def _padded_columns(obj: dict[str, Any]) -> ValidObject:
    """:func:`_columns` of an object whose timestamps are already given to the millisecond."""
    object_id, object_type = obj["id"], obj["type"]
    created_us = _timestamp(obj, "created")
    modified_us = _timestamp(obj, "modified")
    if created_us is not None and modified_us is not None and modified_us < created_us:
        # A STIX 2.1 MUST (section 3.2); also checked by stix_validation, but _columns serves stored
        # definitions too, which are not validated again.
        raise InvalidObject("modified: must not be earlier than created")
    version_us = modified_us if modified_us is not None else created_us  # not `or`: 0 is the epoch
    return ValidObject(obj, object_id, object_type, "2.1", version_us, created_us)


def _failure(obj: object, message: str) -> Outcome:
    object_id = cast(str, obj.get("id")) if isinstance(obj, dict) and isinstance(obj.get("id"), str) else ""
    version = obj.get("modified") or obj.get("created") if isinstance(obj, dict) else None
    return Outcome(object_id, version if isinstance(version, str) else None, False, message)


def validate_all(objects: Sequence[object]) -> tuple[list[ValidObject], list[Outcome]]:
    """Split submitted objects into valid ones and failure outcomes."""
    valid, failures = [], []
    for index, obj in enumerate(objects):
        try:
            valid.append(validate(obj))
        except InvalidObject as exc:
            failures.append(_failure(obj, f"object {index}: {exc}"))
    return valid, failures


def lock_collection(session: Session, collection_id: str) -> int:
    """Take the collection's write lock (row lock on PostgreSQL, write lock on SQLite); return its hwm."""
    session.execute(
        update(Collection).where(col(Collection.id) == collection_id).values(date_added_hwm=Collection.date_added_hwm)
    )
    # SQLModel's Session.execute types its rows as Any.
    return cast(
        int,
        session.execute(select(col(Collection.date_added_hwm)).where(col(Collection.id) == collection_id)).scalar_one(),
    )


def store(
    session: Session,
    collection_id: str,
    objects: list[ValidObject],
    *,
    submitter: str,
    mappings: Mappings,
    home_nation: str,
    visible_label_ids: list[int] | None = None,
) -> list[Outcome]:
    """Label and store valid objects as new versions. No commit.

    Exact duplicates succeed, conflicting versions and unlabelable objects fail one by one.
    ``visible_label_ids`` are the submitter's (None: it sees everything, as the home nation does).
    Marking definitions the objects reference but the submission lacks (TLP, or held in another
    collection) are stored in this collection too, so partners can fetch what they are shown.
    """
    if not objects:
        return []
    labeler = Labeler(
        session, mappings, home_nation=home_nation, submitter=submitter, visible_label_ids=visible_label_ids
    )
    contents = [o.content for o in objects]
    labeler.prepare(contents)
    referenced_ids = {ref for content in contents for ref in marking_refs(content)}
    reported = {id(o) for o in objects}
    # New versions of tearlines stay inside what the partners whose content they carry released.
    partner_bounds = provenance.derived_bounds(session, (o.object_id for o in objects), home_nation)

    hwm = lock_collection(session, collection_id)
    next_date_added = max(now_us(), hwm + 1)
    # One probe of the object-id index per id, for three things: the versions already in this
    # collection (duplicates and conflicts), whose objects these are (every collection), and the
    # marking definitions stored under these ids anywhere (they are immutable).
    # The collection is tested in the select list, not the WHERE clause: given both, PostgreSQL came
    # to scan the collection's date_added index instead of probing the object_id index, a scan that
    # grows with the collection (2 s per envelope at 200,000 objects, so a bulk load went quadratic).
    in_collection = col(StixObject.collection_id) == collection_id
    dialect = session.get_bind().dialect.name
    is_definition = col(StixObject.type) == MARKING_DEFINITION
    held = session.execute(
        select(
            col(StixObject.object_id),
            col(StixObject.version_us),
            col(StixObject.originator),
            case((or_(in_collection, is_definition), StixObject.body), else_=None).label("body"),
            in_collection.label("here"),
            is_definition.label("definition"),
        )
        .where(in_list(col(StixObject.object_id), dialect, {o.object_id for o in objects} | referenced_ids))
        .order_by(col(StixObject.pk))
    ).all()
    submitted = {o.object_id for o in objects}
    # A cyber observable's id is computed from its value (STIX 2.1 section 2.9), so two nations observing
    # one thing name it alike: each nation's copy is its own. Owning it by the first copy stored would
    # refuse a partner's copy exactly when the home nation holds one hidden from it, telling it so.
    observables = {o.object_id for o in objects if o.version_us is None and o.created_us is None}
    labeler.learn_originators(
        (row.object_id, row.originator) for row in held if row.object_id in submitted - observables
    )
    # Definitions taken from the store were validated when they were stored: only their columns are
    # needed (re-parsing 200 definitions per envelope cost more than labelling its objects). TLP
    # definitions come from the shipped tables and are validated like a submission.
    referenced = [
        _columns(d) if d["id"] in labeler.stored_definitions else validate(d)
        for d in labeler.referenced_definitions(contents)
    ]
    admission = Admission(
        submitter=submitter,
        home_nation=home_nation,
        mappings=mappings,
        owners=dict(labeler.originators),
        identities=registered_identities(session, {submitter, home_nation, *labeler.originators.values()}, home_nation),
    )
    for row in held:
        if row.body is None:
            continue  # neither here nor a definition: only its originator was wanted
        body = orjson.loads(row.body)  # read, never changed: one parse serves both maps
        if row.here and (row.object_id not in observables or row.originator == submitter):
            admission.here[(row.object_id, row.version_us)] = body
        if row.definition:
            admission.definitions.setdefault(row.object_id, []).append(body)

    outcomes: list[Outcome] = []
    labeled_rows: list[tuple[ValidObject, LabeledObject, int, int]] = []  # (object, label, version, date_added)
    written: list[tuple[str, str]] = []  # (object id, version) of each, for the audit record
    for obj in referenced + objects:
        report = outcomes.append if id(obj) in reported else (lambda _outcome: None)
        version_us = obj.version_us
        if version_us is None:
            # Without created/modified (most SCOs) the version is date_added, so an identical
            # resubmission is recognised by content rather than by version.
            version_us = next(
                (v for (i, v), content in admission.here.items() if i == obj.object_id and content == obj.content),
                next_date_added,
            )
        if id(obj) not in reported and (obj.object_id, version_us) in admission.here:
            # A referenced definition this collection holds: a version held here is never stored
            # again (a duplicate or a conflict), and this one has no outcome to report.
            continue
        version = format_us(version_us)
        screened = admission.screen(obj.object_id, obj.type, obj.content, version_us)
        if screened.duplicate or screened.refusal is not None:
            report(
                Outcome(
                    obj.object_id, version, screened.duplicate, DUPLICATE if screened.duplicate else screened.refusal
                )
            )
            continue
        if screened.content is not obj.content:  # its author set (app.items.attribution)
            obj = replace(obj, content=screened.content)
        try:
            labeled = labeler.label(obj.content)
        except LabelRefused as exc:
            report(Outcome(obj.object_id, version, False, str(exc)))
            continue
        placed = admission.place(obj.object_id, obj.content, version_us)
        if placed.duplicate or placed.refusal is not None:
            report(Outcome(obj.object_id, version, placed.duplicate, DUPLICATE if placed.duplicate else placed.refusal))
            continue
        widened = provenance.widened_bound(
            labeled.label, partner_bounds.get(obj.object_id, ()), home_nation=home_nation, mappings=mappings
        )
        if widened is not None:
            report(
                Outcome(
                    obj.object_id, version, False, f"third-party rule: {provenance.beyond_message(widened, mappings)}"
                )
            )
            continue
        admission.stored(obj.object_id, version_us, obj.content)
        labeled_rows.append((obj, labeled, version_us, next_date_added))
        written.append((obj.object_id, version))
        report(Outcome(obj.object_id, version, True))
        next_date_added += 1  # before the next object: an SCO's version is its date_added

    # Labels are interned in one batch (one query for those already known) rather than per object.
    label_ids = intern_labels(
        session,
        (spec for _, labeled, _, _ in labeled_rows for spec in [labeled.label, *labeled.granular.values()]),
        mappings,
    )
    entries = [object_references(obj.content) for obj, _, _, _ in labeled_rows]
    rows = [
        new_row(
            labeled,
            obj.object_id,
            obj.type,
            obj.spec_version,
            obj.created_us,
            collection_id=collection_id,
            submitter=submitter,
            version_us=version_us,
            date_added_us=date_added_us,
            label_ids=label_ids,
            has_refs=bool(named),
        )
        for (obj, labeled, version_us, date_added_us), named in zip(labeled_rows, entries, strict=True)
    ]

    if rows:
        # Core inserts on the session's connection (same transaction), without the ORM's per-row
        # bulk bookkeeping, which cost more than the database's own work; COPY on PostgreSQL.
        insert_rows(session.connection(), StixObject.__table__, rows)
        note_written(session, written)
        session.execute(
            update(Collection).where(col(Collection.id) == collection_id).values(date_added_hwm=next_date_added - 1)
        )
        store_side_tables(
            session, collection_id, rows, [labeled for _, labeled, _, _ in labeled_rows], label_ids, entries
        )
        announce_stored(session, collection_id, next_date_added - 1)
        # Objects with another version, stored before or in this same batch: a version may withdraw another.
        stored_ids = Counter(row["object_id"] for row in rows)
        prior = frozenset(row.object_id for row in held if row.object_id in stored_ids) | {
            object_id for object_id, count in stored_ids.items() if count > 1
        }
        after_store(session, StoredBatch(collection_id, rows, prior))
    return outcomes

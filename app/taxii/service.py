"""TAXII 2.1 service logic: collection access, pages of objects, manifests, versions, add, delete, status.

Functions take plain arguments and a session so that tests can call them
without HTTP. Visibility comes in as ``visible_label_ids`` and is applied in
SQL by :mod:`app.items.store`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import orjson
from sqlalchemy import Row, case, delete, select
from sqlmodel import Session, col

from app.auth.principal import Principal
from app.db.timestamps import format_us, now_us
from app.db.written import note_written
from app.http.errors import ApiError, not_found
from app.items import ingest
from app.items.models import StixObject
from app.items.predicates import ReferenceVerdict, reference_verdicts
from app.items.references import remove_hidden
from app.items.store import (
    VersionFilter,
    read_page,
    version_query,
)
from app.markings.granular import redact
from app.markings.mappings import Mappings
from app.policy.enforcer import RoleRights
from app.taxii.media import STIX_MEDIA_TYPE
from app.taxii.models import Collection, StatusResource


@dataclass(frozen=True)
class Access:
    """What a principal may do with one collection."""

    can_read: bool
    can_write: bool
    can_delete: bool


def collection_access(rights: RoleRights, principal: Principal, collection: Collection) -> Access:
    """Rights come from a role that both has the Casbin right and is granted on the collection."""

    def granted(action: str, collection_access_kind: str) -> bool:
        roles = principal.roles & collection.roles(collection_access_kind)
        if not principal.is_home and not collection.admits_partner(collection_access_kind, principal.nation):
            return False  # the collection lists its partners for this access, and this one is not listed
        return rights.allows(roles, "taxii", action)

    return Access(granted("read", "read"), granted("write", "write"), granted("delete", "write"))


def collection_resource(collection: Collection, access: Access) -> dict[str, Any]:
    """The TAXII collection resource as the requester sees it."""
    resource: dict[str, Any] = {
        "id": collection.id,
        "title": collection.title,
        "description": collection.description,
        "can_read": access.can_read,
        "can_write": access.can_write,
        "media_types": [STIX_MEDIA_TYPE],
    }
    if collection.alias:
        resource["alias"] = collection.alias
    return resource


def create_collection(
    session: Session,
    *,
    title: str,
    description: str = "",
    read_roles: set[str] | list[str],
    write_roles: set[str] | list[str],
    alias: str | None = None,
    collection_id: str | None = None,
) -> Collection:
    """Create a collection granting ``read_roles`` and ``write_roles``. Commits."""
    collection = Collection(
        id=collection_id or str(uuid.uuid4()),
        alias=alias,
        title=title,
        description=description,
        read_roles=",".join(sorted(set(read_roles))),
        write_roles=",".join(sorted(set(write_roles))),
    )
    session.add(collection)
    session.commit()
    session.refresh(collection)
    return collection


def all_collections(session: Session) -> list[Collection]:
    """Every collection, for operators."""
    return list(session.execute(select(Collection).order_by(Collection.title, Collection.id)).scalars())


def readable_collections(session: Session, rights: RoleRights, principal: Principal) -> tuple[str, ...]:
    """Ids of the collections the principal may read: where a referenced object must be visible to it."""
    return tuple(c.id for c in all_collections(session) if collection_access(rights, principal, c).can_read)


def list_collections(session: Session, rights: RoleRights, principal: Principal) -> list[dict[str, Any]]:
    """Collections the principal may read or write; the others are not mentioned."""
    resources = []
    for collection in all_collections(session):
        access = collection_access(rights, principal, collection)
        if access.can_read or access.can_write:
            resources.append(collection_resource(collection, access))
    return resources


def open_collection(
    session: Session, rights: RoleRights, principal: Principal, collection_id: str, need: str | None = None
) -> tuple[Collection, Access]:
    """The collection and the principal's access to it; 404 if it may neither read nor write it.

    ``need`` ("read", "write" or "delete") turns a missing right into 403 on a collection the
    principal already knows of.
    """
    collection = session.get(Collection, collection_id)
    if collection is None:
        raise not_found("No such collection.")
    access = collection_access(rights, principal, collection)
    if not (access.can_read or access.can_write):
        raise not_found("No such collection.")
    if need and not getattr(access, f"can_{need}"):
        raise ApiError(403, f"You may not {need} objects in this collection.")
    return collection, access


class ServedVersion(NamedTuple):
    """One version as served to one principal; ``body`` is redacted JSON text when it must be.

    A named tuple, not a dataclass: a page builds a thousand of them, and a frozen dataclass's
    constructor cost more than reading the row."""

    date_added_us: int
    object_id: str
    version_us: int
    spec_version: str
    body: str | None


@dataclass(frozen=True)
class ServedPage:
    """The versions served on one page, whether more follow, and the last date_added read."""

    rows: list[ServedVersion]
    more: bool
    last_read_us: int | None


def _served(
    row: Row[int, str, int, str, str | None, str | None, int, bool, str],
    visible: set[int],
    verdicts: dict[int, ReferenceVerdict],
) -> ServedVersion | None:
    # Unpacked by position: a thousand rows a page, and Row's attribute lookup by name cost more
    # than everything else done here.
    date_added_us, object_id, version_us, spec_version, granular, body, pk, _has_refs, _submitter = row
    verdict = verdicts.get(pk)
    if verdict is not None and verdict.withheld:
        return None  # a required entry names an object withheld from the requester itself
    hidden_entries = verdict.hidden if verdict is not None else None
    if not granular and not hidden_entries:
        return ServedVersion(date_added_us, object_id, version_us, spec_version, body)
    content: dict[str, Any] | None = None
    hidden = {ref for ref, label_id in orjson.loads(granular).items() if label_id not in visible} if granular else set()
    if hidden:
        # Hidden markings whose removal would leave invalid STIX withhold the version in SQL (the
        # sets of object_withhold), so this redaction is valid; stix2 need not re-parse one marking.
        # A row with granular markings has has_granular set, so its body was selected (not NULL).
        content = redact(orjson.loads(cast(str, body)), hidden, parsed_valid=len(hidden) == 1)
        if content is None:
            return None  # a combination of markings whose sets were not all recorded (older data)
    if hidden_entries and body is not None:
        # Reference closure: entries naming objects hidden from the requester are removed; a
        # version whose required entries are all hidden was withheld in SQL.
        content = remove_hidden(content if content is not None else orjson.loads(body), hidden_entries)
    if content is not None:
        body = orjson.dumps(content).decode()
    return ServedVersion(date_added_us, object_id, version_us, spec_version, body)


# Built once, so that app.items.store reuses a principal's page statement across its pages.
# _served unpacks the rows in this order.
_PAGE_COLUMNS = {
    with_body: (
        StixObject.date_added_us,
        StixObject.object_id,
        StixObject.version_us,
        StixObject.spec_version,
        StixObject.granular,
        (
            col(StixObject.body)
            if with_body
            else case((col(StixObject.has_granular), col(StixObject.body)), else_=None)
        ).label("body"),
        StixObject.pk,
        StixObject.has_refs,
        StixObject.submitter,
    )
    for with_body in (True, False)
}


def own_nation(principal: Principal) -> str | None:
    """The nation whose versions reference closure serves whole to ``principal``: a partner's own
    (it wrote their references itself); None for the home nation, whose principals' clearances differ."""
    return None if principal.is_home else principal.nation


def versions_page(
    session: Session,
    collection_id: str,
    visible: list[int],
    flt: VersionFilter,
    *,
    after_us: int | None,
    limit: int,
    with_body: bool,
    readable: tuple[str, ...] | None = None,
    own_nation: str | None = None,
) -> ServedPage:
    """One page of visible versions, granular markings and reference closure applied. Without
    ``with_body`` only versions carrying granular markings load their JSON (to check they can be
    served at all). ``readable``: the collections the requester may read (None: every one).
    ``own_nation``: a partner requester's nation (:func:`own_nation`); its own versions are served
    as it wrote them, reference closure aside."""
    visible_set = set(visible)
    while True:
        page = read_page(
            session,
            collection_id,
            visible,
            flt,
            after_us=after_us,
            limit=limit,
            columns=_PAGE_COLUMNS[with_body],
            readable=readable,
            own_nation=own_nation,
        )
        referencing = [row[6] for row in page.rows if row[7] and row[8] != own_nation]
        verdicts = reference_verdicts(session, referencing, visible, readable, own_nation)
        served = [version for row in page.rows if (version := _served(row, visible_set, verdicts)) is not None]
        last_read = page.rows[-1].date_added_us if page.rows else None
        if served or not page.more:
            return ServedPage(served, page.more, last_read)
        # Every row of the page was withheld after the query (rare: reference chains deeper than the
        # query follows): read on, so that no page that says "more" is empty.
        after_us = last_read


def manifest_record(row: ServedVersion) -> dict[str, str]:
    """One TAXII manifest record."""
    return {
        "id": row.object_id,
        "date_added": format_us(row.date_added_us),
        "version": format_us(row.version_us),
        "media_type": f"application/stix+json;version={row.spec_version}",
    }


def require_visible_object(
    session: Session,
    collection_id: str,
    visible: list[int],
    object_id: str,
    readable: tuple[str, ...] | None = None,
    own_nation: str | None = None,
) -> None:
    """404 unless some version of the object is served: hidden, withheld and absent answer alike.

    Asked of the page function itself (a page of one over every version), so that whatever it
    withholds after the query (reference chains deeper than the query follows) is absent here too.
    """
    every = VersionFilter(ids=(object_id,), versions=("all",))
    if not versions_page(
        session,
        collection_id,
        visible,
        every,
        after_us=None,
        limit=1,
        with_body=False,
        readable=readable,
        own_nation=own_nation,
    ).rows:
        raise not_found("No such object.")


def delete_object(session: Session, collection_id: str, visible: list[int], object_id: str, flt: VersionFilter) -> int:
    """Delete the visible versions of ``object_id`` that match ``flt``; return how many. Commits."""
    require_visible_object(session, collection_id, visible, object_id)
    query = version_query(
        collection_id,
        visible,
        VersionFilter(ids=(object_id,), versions=flt.versions, spec_versions=flt.spec_versions),
        (StixObject.pk, StixObject.version_us),
    )
    rows = session.execute(query).all()
    pks = [pk for pk, _ in rows]
    if pks:
        session.execute(delete(StixObject).where(col(StixObject.pk).in_(pks)))
        note_written(session, ((object_id, format_us(version_us)) for _, version_us in rows))
    session.commit()
    return len(pks)


def _status_entry(outcome: ingest.Outcome, *, remark: bool = True) -> dict[str, str]:
    entry = {"id": outcome.object_id, "version": outcome.version or ""}
    if outcome.message and remark:
        entry["message"] = outcome.message
    return entry


def status_document(status: StatusResource) -> dict[str, Any]:
    """The TAXII status resource."""
    details = orjson.loads(status.details)
    return {
        "id": status.id,
        "status": status.status,
        "request_timestamp": format_us(status.request_timestamp_us),
        "total_count": status.total_count,
        "success_count": status.success_count,
        "successes": details["successes"],
        "failure_count": status.failure_count,
        "failures": details["failures"],
        "pending_count": status.pending_count,
        "pendings": details["pendings"],
    }


def add_objects(
    session: Session,
    collection_id: str,
    principal: Principal,
    objects: list[Any],
    *,
    mappings: Mappings,
    home_nation: str,
    visible: list[int] | None = None,
) -> StatusResource:
    """Validate, label and store an envelope's objects and its status resource in one transaction. Commits.

    ``visible`` are the poster's visible label ids (None only for home-nation callers, who see all).
    """
    request_timestamp = now_us()
    valid, failures = ingest.validate_all(objects)
    outcomes = (
        ingest.store(
            session,
            collection_id,
            valid,
            submitter=principal.nation,
            mappings=mappings,
            home_nation=home_nation,
            visible_label_ids=visible,
        )
        + failures
    )
    # A partner is not told that a success was a duplicate: of a version hidden from it, that
    # would say the version exists (label definitions have computable content).
    successes = [_status_entry(o, remark=principal.is_home) for o in outcomes if o.ok]
    failed = [_status_entry(o) for o in outcomes if not o.ok]
    status = StatusResource(
        id=str(uuid.uuid4()),
        collection_id=collection_id,
        owner_subject=principal.subject,
        owner_nation=principal.nation,
        status="complete",
        request_timestamp_us=request_timestamp,
        total_count=len(objects),
        success_count=len(successes),
        failure_count=len(failed),
        pending_count=0,
        details=orjson.dumps({"successes": successes, "failures": failed, "pendings": []}).decode(),
    )
    session.add(status)
    session.commit()
    return status


def get_status(session: Session, principal: Principal, status_id: str) -> StatusResource:
    """A status resource, only for the principal that posted it; any other gets 404."""
    status = session.get(StatusResource, status_id)
    if status is None or (status.owner_subject, status.owner_nation) != (principal.subject, principal.nation):
        raise not_found("No such status resource.")
    return status

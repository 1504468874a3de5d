"""TAXII 2.1 service logic: collection access, pages of objects, manifests, versions, add, delete, status.

Functions take plain arguments and a session so that tests can call them
without HTTP. Visibility comes in as ``visible_label_ids`` and is applied in
SQL by :mod:`app.items.store`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import orjson
from sqlalchemy import delete, select
from sqlmodel import Session

from app.auth.principal import Principal
from app.errors import ApiError, not_found
from app.items import ingest
from app.items.models import StixObject
from app.items.store import Page, VersionFilter, has_visible_version, read_page, version_query
from app.policy.enforcer import RoleRights
from app.taxii.media import STIX_MEDIA_TYPE
from app.taxii.models import Collection, StatusResource
from app.timestamps import format_us, now_us


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
        return rights.allows(roles, "taxii", action)

    return Access(granted("read", "read"), granted("write", "write"), granted("delete", "write"))


def collection_resource(collection: Collection, access: Access) -> dict:
    """The TAXII collection resource as the requester sees it."""
    resource = {
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


def create_collection(session: Session, *, title: str, description: str = "", read_roles: set[str] | list[str],
                      write_roles: set[str] | list[str], alias: str | None = None,
                      collection_id: str | None = None) -> Collection:
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


def list_collections(session: Session, rights: RoleRights, principal: Principal) -> list[dict]:
    """Collections the principal may read or write; the others are not mentioned."""
    resources = []
    for collection in all_collections(session):
        access = collection_access(rights, principal, collection)
        if access.can_read or access.can_write:
            resources.append(collection_resource(collection, access))
    return resources


def open_collection(session: Session, rights: RoleRights, principal: Principal, collection_id: str,
                    need: str | None = None) -> tuple[Collection, Access]:
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


def objects_page(session: Session, collection_id: str, visible: list[int], flt: VersionFilter, *,
                 after_us: int | None, limit: int) -> Page:
    """Rows (date_added_us, body) of one page of objects."""
    return read_page(session, collection_id, visible, flt, after_us=after_us, limit=limit,
                     columns=(StixObject.date_added_us, StixObject.body))


def manifest_page(session: Session, collection_id: str, visible: list[int], flt: VersionFilter, *,
                  after_us: int | None, limit: int) -> Page:
    """Rows (date_added_us, object_id, version_us, spec_version) of one manifest page."""
    return read_page(session, collection_id, visible, flt, after_us=after_us, limit=limit,
                     columns=(StixObject.date_added_us, StixObject.object_id, StixObject.version_us,
                              StixObject.spec_version))


def manifest_record(row) -> dict:
    """One TAXII manifest record."""
    return {
        "id": row.object_id,
        "date_added": format_us(row.date_added_us),
        "version": format_us(row.version_us),
        "media_type": f"application/stix+json;version={row.spec_version}",
    }


def require_visible_object(session: Session, collection_id: str, visible: list[int], object_id: str) -> None:
    """404 unless some version of the object is visible: hidden and absent answer alike."""
    if not has_visible_version(session, collection_id, visible, object_id):
        raise not_found("No such object.")


def delete_object(session: Session, collection_id: str, visible: list[int], object_id: str,
                  flt: VersionFilter) -> int:
    """Delete the visible versions of ``object_id`` that match ``flt``; return how many. Commits."""
    require_visible_object(session, collection_id, visible, object_id)
    query = version_query(collection_id, visible, VersionFilter(
        ids=(object_id,), versions=flt.versions, spec_versions=flt.spec_versions), (StixObject.pk,))
    pks = list(session.execute(query).scalars())
    if pks:
        session.execute(delete(StixObject).where(StixObject.pk.in_(pks)))
    session.commit()
    return len(pks)


def _status_entry(outcome: ingest.Outcome) -> dict:
    entry = {"id": outcome.object_id, "version": outcome.version or ""}
    if outcome.message:
        entry["message"] = outcome.message
    return entry


def status_document(status: StatusResource) -> dict:
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


def add_objects(session: Session, collection_id: str, principal: Principal, objects: list) -> StatusResource:
    """Validate and store an envelope's objects and its status resource in one transaction. Commits."""
    request_timestamp = now_us()
    valid, failures = ingest.validate_all(objects)
    outcomes = ingest.store(session, collection_id, valid, originator=principal.nation) + failures
    successes = [_status_entry(o) for o in outcomes if o.ok]
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

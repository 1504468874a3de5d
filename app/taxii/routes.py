"""TAXII 2.1 routes under ``/taxii2/``: parse the request, call the service, shape the response."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, cast

import orjson
from fastapi import APIRouter, Depends, Request
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from app.audit.context import note_collection, note_served
from app.auth.principal import Principal
from app.config.settings import Settings
from app.db.timestamps import format_us
from app.http.body import read_body
from app.http.dependencies import (
    SESSION,
    get_mappings,
    get_principal,
    get_role_rights,
    get_settings,
    get_visibility,
)
from app.http.errors import ApiError, not_found
from app.http.limits import check_envelope
from app.markings.mappings import Mappings
from app.policy.enforcer import RoleRights
from app.policy.visibility import VisibilityCache
from app.taxii import service
from app.taxii.filters import parse_page_request
from app.taxii.media import (
    TaxiiResponse,
    require_taxii_accept,
    require_taxii_content_type,
)
from app.taxii.paging import CursorBinding, make_cursor, read_cursor
from app.taxii.service import ServedPage


async def _no_nul_in_path(request: Request) -> None:
    """404 for a path holding a NUL character: no API root, collection, object or status id has
    one, and PostgreSQL refuses NUL in a query, which would otherwise be a 500."""
    if "\x00" in request.scope["path"]:
        raise not_found()


router = APIRouter(
    prefix="/taxii2", tags=["TAXII 2.1"], dependencies=[Depends(_no_nul_in_path), Depends(require_taxii_accept)]
)


def _json(document: dict[str, Any], status_code: int = 200, headers: dict[str, str] | None = None) -> TaxiiResponse:
    return TaxiiResponse(orjson.dumps(document), status_code=status_code, headers=headers)


def _may_discover(rights: RoleRights, principal: Principal) -> None:
    if not rights.allows(principal.roles, "taxii", "discover"):
        raise ApiError(403, "You may not use the TAXII service.")


async def _api_root(api_root: str, settings: Settings = Depends(get_settings)) -> str:
    if api_root != settings.api_root:
        raise not_found("No such API root.")
    return api_root


@router.get("/", summary="TAXII discovery")
def discovery(
    request: Request,
    principal: Principal = Depends(get_principal),
    settings: Settings = Depends(get_settings),
    rights: RoleRights = Depends(get_role_rights),
) -> TaxiiResponse:
    """The server's title and its one API root; needs the TAXII discover right."""
    _may_discover(rights, principal)
    root_url = f"{str(request.base_url).rstrip('/')}/taxii2/{settings.api_root}/"
    return _json(
        {
            "title": "Tearline TAXII 2.1 server",
            "description": f"Intelligence exchange of {settings.home_nation}",
            "default": root_url,
            "api_roots": [root_url],
        }
    )


@router.get("/{api_root}/", summary="API root information")
def api_root_information(
    api_root: str = Depends(_api_root),
    principal: Principal = Depends(get_principal),
    settings: Settings = Depends(get_settings),
    rights: RoleRights = Depends(get_role_rights),
) -> TaxiiResponse:
    """The API root's title, TAXII version and max_content_length; needs the TAXII discover right."""
    _may_discover(rights, principal)
    return _json(
        {
            "title": settings.api_root_title,
            "description": f"Collections shared by {settings.home_nation}",
            "versions": ["application/taxii+json;version=2.1"],
            "max_content_length": settings.max_content_length,
        }
    )


@router.get("/{api_root}/status/{status_id}/", summary="Status of an Add Objects request")
@router.get("/{api_root}/status/{status_id}", include_in_schema=False)
def get_status(
    status_id: str,
    api_root: str = Depends(_api_root),
    principal: Principal = Depends(get_principal),
    session: Session = SESSION,
) -> TaxiiResponse:
    """The status of an Add Objects request; only its poster may read it, anyone else gets 404."""
    return _json(service.status_document(service.get_status(session, principal, status_id)))


@router.get("/{api_root}/collections/", summary="Collections")
def get_collections(
    api_root: str = Depends(_api_root),
    principal: Principal = Depends(get_principal),
    session: Session = SESSION,
    rights: RoleRights = Depends(get_role_rights),
) -> TaxiiResponse:
    """The collections you may read or write; the others are not mentioned."""
    _may_discover(rights, principal)
    collections = service.list_collections(session, rights, principal)
    return _json({"collections": collections} if collections else {})


@router.get("/{api_root}/collections/{collection_id}/", summary="One collection")
def get_collection(
    collection_id: str,
    api_root: str = Depends(_api_root),
    principal: Principal = Depends(get_principal),
    session: Session = SESSION,
    rights: RoleRights = Depends(get_role_rights),
) -> TaxiiResponse:
    """One collection and your access to it; 404 if you may neither read nor write it."""
    collection, access = service.open_collection(session, rights, principal, collection_id)
    return _json(service.collection_resource(collection, access))


@dataclass(frozen=True)
class Ctx:
    """Everything a collection route needs, resolved once per request."""

    principal: Principal
    session: Session
    settings: Settings
    rights: RoleRights
    visibility: VisibilityCache
    mappings: Mappings

    def visible(self) -> list[int]:
        """The label ids the principal may see."""
        return self.visibility.visible_label_ids(self.session, self.principal)

    def readable(self) -> tuple[str, ...]:
        """The collections the principal may read, where what a served object names must be visible."""
        return service.readable_collections(self.session, self.rights, self.principal)


async def _ctx(
    api_root: str = Depends(_api_root),
    principal: Principal = Depends(get_principal),
    session: Session = SESSION,
    settings: Settings = Depends(get_settings),
    rights: RoleRights = Depends(get_role_rights),
    visibility: VisibilityCache = Depends(get_visibility),
    mappings: Mappings = Depends(get_mappings),
) -> Ctx:
    return Ctx(principal, session, settings, rights, visibility, mappings)


def _paged(
    request: Request,
    ctx: Ctx,
    *,
    endpoint: str,
    collection_id: str,
    object_id: str | None = None,
    with_body: bool,
    shape: Callable[[ServedPage, str | None], bytes],
) -> TaxiiResponse:
    """Shared flow of the four paged endpoints: access, filters, cursor, page, headers."""
    note_collection(request, collection_id)
    # Readable collections first: that loads every collection into the session, where opening this
    # one then finds it without another round trip to the database.
    readable = ctx.readable()
    service.open_collection(ctx.session, ctx.rights, ctx.principal, collection_id, need="read")
    visible = ctx.visible()
    page_request = parse_page_request(request, endpoint, ctx.settings)
    flt = page_request.flt
    if object_id is not None:
        service.require_visible_object(
            ctx.session, collection_id, visible, object_id, readable, service.own_nation(ctx.principal)
        )
        flt = replace(flt, ids=(object_id,))
    binding: CursorBinding = {
        "collection_id": collection_id,
        "endpoint": f"{endpoint}:{object_id or ''}",
        "query": flt.digest_parts(),
        "principal": ctx.principal,
    }
    after_us = None
    if page_request.next_token is not None:
        after_us = read_cursor(ctx.settings.cursor_secret, page_request.next_token, **binding)
    page = service.versions_page(
        ctx.session,
        collection_id,
        visible,
        flt,
        after_us=after_us,
        limit=page_request.limit,
        with_body=with_body,
        readable=readable,
        own_nation=service.own_nation(ctx.principal),
    )
    next_token = None
    if page.more:
        # A page has more only when it read more than limit (>= 1) rows, so it has a last one.
        assert page.last_read_us is not None
        next_token = make_cursor(ctx.settings.cursor_secret, after_us=page.last_read_us, **binding)
    # Objects, manifest entries and version lists all tell the client these versions exist.
    note_served(request, [(row.object_id, format_us(row.version_us)) for row in page.rows])
    headers = {}
    if page.rows:
        headers = {
            "X-TAXII-Date-Added-First": format_us(page.rows[0].date_added_us),
            "X-TAXII-Date-Added-Last": format_us(page.rows[-1].date_added_us),
        }
    return TaxiiResponse(shape(page, next_token), headers=headers)


def _paging_prefix(page: ServedPage, next_token: str | None) -> bytes:
    prefix = b'{"more":' + (b"true" if page.more else b"false")
    if next_token:
        prefix += b',"next":' + orjson.dumps(next_token)
    return prefix


def _envelope(page: ServedPage, next_token: str | None) -> bytes:
    """Stored JSON text is joined as is, never re-parsed."""
    body = _paging_prefix(page, next_token)
    if page.rows:
        body += b',"objects":[' + ",".join(cast(Iterable[str], (row.body for row in page.rows))).encode() + b"]"
    return body + b"}"


def _manifest(page: ServedPage, next_token: str | None) -> bytes:
    body = _paging_prefix(page, next_token)
    if page.rows:
        body += b',"objects":' + orjson.dumps([service.manifest_record(row) for row in page.rows])
    return body + b"}"


def _versions(page: ServedPage, next_token: str | None) -> bytes:
    body = _paging_prefix(page, next_token)
    if page.rows:
        body += b',"versions":' + orjson.dumps([format_us(row.version_us) for row in page.rows])
    return body + b"}"


@router.get("/{api_root}/collections/{collection_id}/objects/", summary="Get objects")
def get_objects(request: Request, collection_id: str, ctx: Ctx = Depends(_ctx)) -> TaxiiResponse:
    """One page of the collection's objects you may see, granular markings applied; ``next`` continues."""
    return _paged(request, ctx, endpoint="objects", collection_id=collection_id, with_body=True, shape=_envelope)


@router.get("/{api_root}/collections/{collection_id}/manifest/", summary="Get object manifests")
def get_manifest(request: Request, collection_id: str, ctx: Ctx = Depends(_ctx)) -> TaxiiResponse:
    """One page of manifest records (id, date_added, version, media_type) of the object versions you may see."""
    return _paged(request, ctx, endpoint="manifest", collection_id=collection_id, with_body=False, shape=_manifest)


@router.get("/{api_root}/collections/{collection_id}/objects/{object_id}/", summary="Get an object")
def get_object(request: Request, collection_id: str, object_id: str, ctx: Ctx = Depends(_ctx)) -> TaxiiResponse:
    """The versions of one object you may see (by default the latest); 404 if you may see none."""
    return _paged(
        request,
        ctx,
        endpoint="object",
        collection_id=collection_id,
        object_id=object_id,
        with_body=True,
        shape=_envelope,
    )


@router.get("/{api_root}/collections/{collection_id}/objects/{object_id}/versions/", summary="Get object versions")
def get_object_versions(
    request: Request, collection_id: str, object_id: str, ctx: Ctx = Depends(_ctx)
) -> TaxiiResponse:
    """The version timestamps of one object you may see, in the order they were added; 404 if you may see none."""
    return _paged(
        request,
        ctx,
        endpoint="versions",
        collection_id=collection_id,
        object_id=object_id,
        with_body=False,
        shape=_versions,
    )


@router.delete("/{api_root}/collections/{collection_id}/objects/{object_id}/", summary="Delete an object")
def delete_object(request: Request, collection_id: str, object_id: str, ctx: Ctx = Depends(_ctx)) -> TaxiiResponse:
    """Delete the versions of one object you may see (by default all of them); needs the delete right."""
    service.open_collection(ctx.session, ctx.rights, ctx.principal, collection_id, need="delete")
    flt = parse_page_request(request, "delete", ctx.settings).flt
    service.delete_object(ctx.session, collection_id, ctx.visible(), object_id, flt)
    return TaxiiResponse(b"", status_code=200)


def _envelope_objects(body: bytes) -> list[Any]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ApiError(400, "The request body is not valid JSON.") from None
    if not isinstance(document, dict):
        raise ApiError(400, "The request body must be a TAXII envelope (a JSON object).")
    objects = document.get("objects", [])
    if not isinstance(objects, list):
        raise ApiError(400, "The envelope's objects property must be a list.")
    return objects


@router.post(
    "/{api_root}/collections/{collection_id}/objects/",
    summary="Add objects",
    status_code=202,
    dependencies=[Depends(require_taxii_content_type)],
)
async def add_objects(request: Request, collection_id: str, ctx: Ctx = Depends(_ctx)) -> TaxiiResponse:
    """Validate, label and store the objects of a TAXII envelope; answers with the completed status resource."""
    await run_in_threadpool(service.open_collection, ctx.session, ctx.rights, ctx.principal, collection_id, "write")
    objects = _envelope_objects(await read_body(request, ctx.settings.max_content_length))
    check_envelope(objects, ctx.settings)
    visible = await run_in_threadpool(ctx.visible)

    def add_and_describe() -> dict[str, Any]:
        # Both in a worker thread: the status row is expired after commit and reloads from the
        # database, which must never block the event loop (it would wait on the pool it feeds).
        status = service.add_objects(
            ctx.session,
            collection_id,
            ctx.principal,
            objects,
            mappings=ctx.mappings,
            home_nation=ctx.settings.home_nation,
            visible=visible,
        )
        return service.status_document(status)

    return _json(await run_in_threadpool(add_and_describe), status_code=202)

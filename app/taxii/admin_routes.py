"""Collection administration under ``/api/v1/collections`` (role ``admin``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlmodel import Session

from app.audit.context import note_collection
from app.auth.principal import Principal
from app.http.body import body_docs, json_body
from app.http.dependencies import SESSION, get_principal, get_role_rights
from app.http.errors import ApiError
from app.items.problems import problem_responses
from app.policy.enforcer import RoleRights
from app.taxii import admin
from app.taxii.admin import CollectionIn, CollectionOut, CollectionPatch

_ERRORS = problem_responses(
    s400="Malformed request",
    s401="No or bad token",
    s403="Not an administrator",
    s404="No such collection",
    s422="Refused; `errors` lists each field with its path",
)


def _admin(principal: Principal = Depends(get_principal), rights: RoleRights = Depends(get_role_rights)) -> Principal:
    if not principal.is_home or not rights.allows(principal.roles, "collections", "manage"):
        raise ApiError(403, "You may not administer collections.")
    return principal


router = APIRouter(
    prefix="/api/v1/collections", tags=["collections"], responses=_ERRORS, dependencies=[Depends(_admin)]
)


@router.get("", response_model=list[CollectionOut], summary="List collections")
def list_collections(session: Session = SESSION) -> list[dict[str, Any]]:
    """Every collection, by title."""
    return [admin.collection_out(c) for c in admin.listing(session)]


@router.post(
    "",
    status_code=201,
    response_model=CollectionOut,
    summary="Create a collection",
    openapi_extra=body_docs(CollectionIn),
)
def create_collection(
    request: Request,
    body: CollectionIn = Depends(json_body(CollectionIn, _admin)),
    session: Session = SESSION,
) -> dict[str, Any]:
    """Create a collection; unknown roles, unregistered partners or a taken alias are refused field by field."""
    collection = admin.create(session, body)
    note_collection(request, collection.id)
    return admin.collection_out(collection)


@router.get("/{collection_id}", response_model=CollectionOut, summary="One collection")
def get_collection(request: Request, collection_id: str, session: Session = SESSION) -> dict[str, Any]:
    """One collection; 404 if there is no such collection."""
    note_collection(request, collection_id)
    return admin.collection_out(admin.get(session, collection_id))


@router.patch(
    "/{collection_id}",
    response_model=CollectionOut,
    summary="Update a collection",
    openapi_extra=body_docs(CollectionPatch),
)
def update_collection(
    request: Request,
    collection_id: str,
    body: CollectionPatch = Depends(json_body(CollectionPatch, _admin)),
    session: Session = SESSION,
) -> dict[str, Any]:
    """Change the fields given and keep the others; an alias of "" removes the alias."""
    note_collection(request, collection_id)
    return admin.collection_out(admin.update(session, collection_id, body))

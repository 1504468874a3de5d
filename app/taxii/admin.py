"""Collection administration (role ``admin``): create, update and list collections.

A collection grants read and write to roles, and may narrow what partners get to listed
nations (``read_partners`` / ``write_partners``; empty means every partner the roles admit).
:func:`app.taxii.service.collection_access` applies both on every TAXII request. Unknown
roles and nations that are not registered partners are refused: access is never granted to a
name nobody can check.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlmodel import Session, col

from app.auth.principal import ROLES
from app.http.errors import ApiError, not_found
from app.items.problems import FieldError, ItemRefused
from app.partners.models import Partner
from app.taxii.models import Collection
from app.taxii.service import all_collections


class CollectionIn(BaseModel):
    """A new collection."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "title": "Phishing campaigns",
                    "description": "Shared with FVEY partners",
                    "read_roles": ["partner", "analyst"],
                    "write_roles": ["analyst"],
                    "read_partners": ["USA", "GBR"],
                }
            ]
        },
    )

    title: str = Field(min_length=1, max_length=200)
    description: str = ""
    alias: str | None = Field(None, min_length=1, max_length=100)
    read_roles: list[str] = Field(default_factory=list, description="Roles that may read: partner, analyst, ...")
    write_roles: list[str] = Field(default_factory=list, description="Roles that may write.")
    read_partners: list[str] = Field(
        default_factory=list, description="Partner nations that may read; [] = every partner the roles admit."
    )
    write_partners: list[str] = Field(default_factory=list, description="Partner nations that may write; as above.")


class CollectionPatch(BaseModel):
    """Changes to a collection; absent fields are kept."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = None
    alias: str | None = Field(None, max_length=100, description='"" removes the alias.')
    read_roles: list[str] | None = None
    write_roles: list[str] | None = None
    read_partners: list[str] | None = None
    write_partners: list[str] | None = None


class CollectionOut(BaseModel):
    """A collection as administrators see it."""

    id: str
    title: str
    description: str
    alias: str | None
    read_roles: list[str]
    write_roles: list[str]
    read_partners: list[str]
    write_partners: list[str]


def collection_out(collection: Collection) -> dict[str, Any]:
    """The administrators' view of a collection."""
    return {
        "id": collection.id,
        "title": collection.title,
        "description": collection.description,
        "alias": collection.alias,
        "read_roles": sorted(collection.roles("read")),
        "write_roles": sorted(collection.roles("write")),
        "read_partners": sorted(collection.partners("read")),
        "write_partners": sorted(collection.partners("write")),
    }


def _checked(session: Session, changes: dict[str, Any], collection_id: str | None = None) -> dict[str, Any]:
    """The changes as column values; unknown roles or partners, or a taken alias, are refused per field."""
    errors: list[FieldError] = []
    values: dict[str, Any] = {}
    partners = set(session.execute(select(col(Partner.nation))).scalars())
    for name, value in changes.items():
        if name in ("read_roles", "write_roles"):
            unknown = sorted(set(value) - ROLES)
            if unknown:
                errors.append(FieldError(name, f"unknown role(s) {', '.join(unknown)}; roles are {sorted(ROLES)}"))
            values[name] = ",".join(sorted(set(value)))
        elif name in ("read_partners", "write_partners"):
            nations = {n.strip().upper() for n in value}
            unknown = sorted(nations - partners)
            if unknown:
                errors.append(FieldError(name, f"not registered partner(s): {', '.join(unknown)}"))
            values[name] = ",".join(sorted(nations))
        elif name == "alias":
            values[name] = value or None
        else:
            values[name] = value
    if values.get("alias"):
        taken = session.execute(select(col(Collection.id)).where(col(Collection.alias) == values["alias"])).scalar()
        if taken is not None and taken != collection_id:
            errors.append(FieldError("alias", "another collection has this alias"))
    if errors:
        raise ItemRefused(errors, lead="The collection was not changed")
    return values


def create(session: Session, data: CollectionIn) -> Collection:
    """Store a new collection. Commits."""
    values = _checked(session, data.model_dump())
    collection = Collection(id=str(uuid.uuid4()), **values)
    session.add(collection)
    session.commit()
    session.refresh(collection)
    return collection


def get(session: Session, collection_id: str) -> Collection:
    """One collection, or 404."""
    collection = session.get(Collection, collection_id)
    if collection is None:
        raise not_found("No such collection.")
    return collection


def update(session: Session, collection_id: str, patch: CollectionPatch) -> Collection:
    """Apply the fields given in ``patch``. Commits."""
    collection = get(session, collection_id)
    changes = patch.model_dump(exclude_unset=True)
    if any(value is None for name, value in changes.items() if name != "alias"):
        raise ApiError(400, "Only alias may be null; leave other fields out to keep them.")
    for name, value in _checked(session, changes, collection.id).items():
        setattr(collection, name, value)
    session.add(collection)
    session.commit()
    session.refresh(collection)
    return collection


def listing(session: Session) -> list[Collection]:
    """Every collection, by title."""
    return all_collections(session)

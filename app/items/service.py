"""Analyst item service: post objects in one transaction, update, revoke.

Functions take plain arguments and a session; routes only parse and shape. Reads of versions
and history are in :mod:`app.items.versions`: they apply the requester's visible label ids in
SQL and remove granular-marked properties it may not see, like TAXII.
Every write is all or nothing: anything refused rolls the whole request back.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select
from sqlmodel import Session, SQLModel, col

from app.auth.principal import Principal
from app.db.timestamps import format_us, now_us, parse_us
from app.http.errors import ApiError
from app.items import ingest
from app.items.identity import home_identity_id
from app.items.models import StixObject
from app.items.problems import FieldError, ItemRefused, join_path, refuse
from app.items.provenance import check_within_partners, partner_bounds
from app.items.stix_checks import check_objects
from app.items.versions import ROW_COLUMNS, ItemVersion, latest_version
from app.markings.labels import (
    LABEL_CREATED,
    LabelSpec,
    canonical_banner,
    label_marking_definition,
    parse_banner,
)
from app.markings.mappings import Mappings
from app.markings.models import Label
from app.markings.tokens import UnknownToken
from app.policy.enforcer import RoleRights
from app.taxii import service as taxii_service
from app.taxii.models import Collection

UNMODIFIABLE = ("id", "type", "spec_version", "created", "created_by_ref", "modified")


@dataclass(frozen=True)
class ItemEnv:
    """What the item service needs about the requester and the instance."""

    principal: Principal
    mappings: Mappings
    rights: RoleRights
    home_nation: str
    visible: list[int]


def stix_timestamp(micros: int) -> str:
    """A STIX created/modified value: millisecond precision, as STIX 2.1 requires."""
    return format_us(micros)[:23] + "Z"


def writable_collection(session: Session, env: ItemEnv, collection_id: str, path: str = "collection") -> Collection:
    """The collection, if the requester may write to it; otherwise a refusal at ``path``."""
    try:
        collection, _ = taxii_service.open_collection(session, env.rights, env.principal, collection_id, "write")
    except ApiError as exc:
        raise refuse(path, "no such collection, or you may not write to it", status=exc.status) from None
    return collection


def store_objects(
    session: Session,
    env: ItemEnv,
    collection_id: str,
    located: list[tuple[str, object]],
    *,
    allow_custom: bool = True,
    also: Sequence[SQLModel] = (),
    commit: bool = True,
) -> list[ItemVersion]:
    """Check, label and store objects in one transaction; all are stored, or none. Commits (unless
    ``commit`` is False: then it flushes, and the caller's transaction goes on).

    ``located`` pairs each object with its path in the request, so every refusal names where;
    ``also`` are rows stored in the same transaction. Returns the stored versions (exact duplicates of stored versions included) in request order.
    """
    errors = check_objects(located, allow_custom=allow_custom)
    if errors:
        raise ItemRefused(errors)
    valid = [ingest.validate(obj) for _, obj in located]
    try:
        outcomes = ingest.store(
            session,
            collection_id,
            valid,
            submitter=env.principal.nation,
            mappings=env.mappings,
            home_nation=env.home_nation,
            visible_label_ids=env.visible,
        )
        refused = [
            FieldError(_refusal_path(path, o.message or ""), o.message or "refused")
            for (path, _), o in zip(located, outcomes)
            if not o.ok
        ]
        if refused:
            raise ItemRefused(refused)
        session.add_all(also)
        if commit:
            session.commit()
        else:
            session.flush()
    except BaseException:
        session.rollback()
        raise
    return stored_versions(session, collection_id, outcomes)


def stored_versions(session: Session, collection_id: str, outcomes: list[ingest.Outcome]) -> list[ItemVersion]:
    """The versions ``outcomes`` name, read back as stored (the poster sees what it wrote)."""
    keys = [(o.object_id, parse_us(o.version)) for o in outcomes if o.version]
    rows = session.execute(
        select(*ROW_COLUMNS)
        .join(Label, col(Label.id) == StixObject.label_id)
        .where(col(StixObject.collection_id) == collection_id, col(StixObject.object_id).in_({k[0] for k in keys}))
    )
    by_key = {(row.object_id, row.version_us): row for row in rows}
    return [
        ItemVersion(
            row.object_id,
            row.type,
            row.collection_id,
            row.version_us,
            row.date_added_us,
            row.key,
            row.originator,
            row.submitter,
            orjson.loads(row.body),
        )
        for row in (by_key.get(key) for key in keys)
        if row is not None
    ]


def _refusal_path(path: str, message: str) -> str:
    # Ingest refuses labels as "markings: ..." or "third-party rule: ...": both are about the markings.
    if message.startswith(("markings:", "third-party rule:")):
        return join_path(path, "object_marking_refs")
    return path


STATEMENT_NAMESPACE = uuid.UUID("5d0f3f7e-2b8a-4a44-9e0b-1f6c3c2d8a57")
"""UUIDv5 namespace of the banner statements that relabel partners' items (see :func:`label_for`)."""


def label_for(
    banner: str, path: str, *, originator: str, mappings: Mappings, home_nation: str
) -> tuple[LabelSpec, dict[str, Any]]:
    """The label of a banner and a marking definition expressing it; unknown tokens are refused at ``path``.

    For the home nation's items the definition is Tearline's label extension. A partner's item
    keeps its partner originator (the third-party rule), but the definition is a new object this
    nation stores, and a label-extension definition naming another originator cannot be: so it
    is a statement marking of the partner-originated banner. Read against the item it gives the
    partner's label; read as an object of its own it is released to the same nations.
    """
    try:
        spec = parse_banner(banner, originator=originator, mappings=mappings)
        if originator == home_nation:
            return spec, label_marking_definition(spec, mappings)
        statement = canonical_banner(spec, mappings)
    except UnknownToken as exc:
        raise refuse(path, str(exc)) from None
    return spec, {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": f"marking-definition--{uuid.uuid5(STATEMENT_NAMESPACE, statement)}",
        "created": LABEL_CREATED,
        "name": statement,
        "definition_type": "statement",
        "definition": {"statement": statement},
    }


def granular_for(
    field_banners: dict[str, str],
    obj: dict[str, Any],
    *,
    originator: str,
    mappings: Mappings,
    home_nation: str,
    base: str = "field_banners",
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Granular markings for ``{selector: banner}`` and their marking definitions, or field errors."""
    errors: list[FieldError] = []
    by_ref: dict[str, list[str]] = {}
    definitions: dict[str, dict[str, Any]] = {}
    for selector, banner in field_banners.items():
        path = join_path(base, selector)
        if selector.split(".")[0].split("[")[0] not in obj or selector in UNMODIFIABLE[:3]:
            errors.append(FieldError(path, "no such property on this object"))
            continue
        try:
            _, definition = label_for(banner, path, originator=originator, mappings=mappings, home_nation=home_nation)
        except ItemRefused as exc:
            errors.extend(exc.errors)
            continue
        definitions[definition["id"]] = definition
        by_ref.setdefault(definition["id"], []).append(selector)
    if errors:
        raise ItemRefused(errors)
    markings = [{"marking_ref": ref, "selectors": sorted(selectors)} for ref, selectors in by_ref.items()]
    return markings, list(definitions.values())


def _next_modified(current: dict[str, Any]) -> str:
    """``now``, or just after the current version when its ``modified`` lies ahead of the clock."""
    now = now_us() // 1000 * 1000
    current_us = parse_us(current.get("modified") or current["created"])
    return stix_timestamp(max(now, current_us // 1000 * 1000 + 1000))


def update_item(
    session: Session,
    env: ItemEnv,
    object_id: str,
    *,
    changes: dict[str, Any],
    remove: list[str],
    banner: str | None,
    field_banners: dict[str, str] | None,
    collection_id: str | None,
) -> list[ItemVersion]:
    """Store a new version built from the newest visible one. Commits.

    ``banner`` replaces the object-level label (TLP markings are kept); ``field_banners``
    replaces the granular markings. On a partner's item the labels keep its originator, and
    ingest refuses any that widens what the originator released (the third-party rule).
    """
    current = latest_version(session, env.visible, object_id, collection_id)
    if "created" not in current.content:
        raise refuse("", "cyber observables have no versions; post a new object instead", status=409)
    errors = [
        FieldError(join_path("changes", name), "cannot be changed in a new version")
        for name in changes
        if name in UNMODIFIABLE
    ]
    errors += [FieldError(join_path("remove", name), "cannot be removed") for name in remove if name in UNMODIFIABLE]
    if errors:
        raise ItemRefused(errors)
    new = {k: v for k, v in current.content.items() if k not in remove} | changes
    new = {k: v for k, v in new.items() if v is not None}
    new["modified"] = _next_modified(current.content)
    extra: list[tuple[str, dict[str, Any]]] = []
    if banner is not None:
        spec, definition = label_for(
            banner, "banner", originator=current.originator, mappings=env.mappings, home_nation=env.home_nation
        )
        if current.originator == env.home_nation:
            # A derived object (tearline) of a partner's item stays inside that partner's release.
            check_within_partners(
                spec,
                partner_bounds(session, object_id, env.home_nation),
                home_nation=env.home_nation,
                mappings=env.mappings,
            )
        tlp = [ref for ref in new.get("object_marking_refs", []) if ref in env.mappings.tlp]
        new["object_marking_refs"] = [definition["id"], *tlp]
        extra.append(("banner", definition))
    if field_banners is not None:
        new.pop("granular_markings", None)
        markings, definitions = granular_for(
            field_banners, new, originator=current.originator, mappings=env.mappings, home_nation=env.home_nation
        )
        if markings:
            new["granular_markings"] = markings
        extra += [("field_banners", d) for d in definitions]
    writable_collection(session, env, current.collection_id)
    return store_objects(session, env, current.collection_id, [*extra, ("changes", new)])[-1:]


def revoke_item(session: Session, env: ItemEnv, object_id: str, collection_id: str | None) -> ItemVersion:
    """Store a ``revoked: true`` version of the newest visible one, same markings. Commits."""
    current = latest_version(session, env.visible, object_id, collection_id)
    if "created" not in current.content:
        raise refuse("", "cyber observables cannot be revoked", status=409)
    if current.content.get("revoked"):
        raise refuse("", "the item is already revoked", status=409)
    new = current.content | {"revoked": True, "modified": _next_modified(current.content)}
    writable_collection(session, env, current.collection_id)
    return store_objects(session, env, current.collection_id, [("", new)])[-1]


def created_by_home(obj: dict[str, Any], home_nation: str) -> dict[str, Any]:
    """``obj`` with ``created_by_ref`` set to the home identity when the type has that property."""
    if "created" in obj and "created_by_ref" not in obj:
        return obj | {"created_by_ref": home_identity_id(home_nation)}
    return obj

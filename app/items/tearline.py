"""Releasable versions ("tearlines"): a derived object at a target label, without what exceeds it.

From one version of an item and a target banner this stores, in one transaction:

- the *derived object*: a new object of the same type, created by the home nation, labelled
  with the target, without every property whose granular marking exceeds the target (a label
  exceeds it when someone the target admits could not see it: higher rank, a nation outside
  it, or a caveat the target drops);
- a ``derived-from`` relationship from the derived object to the original. It names the
  original's id, so it carries the *original's* label: whoever may see it may see the
  original, and the derived object never points anyone at a version hidden from them.

Refused: a result that is not valid STIX 2.1 (a required property was removed), and, for a
partner's item, a target wider than the partner's own release (the third-party rule).
Properties without a granular marking are the analyst's to release: they are kept.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import orjson
from sqlalchemy import select
from sqlmodel import Session, col

from app.db.timestamps import now_us, parse_us
from app.http.errors import not_found
from app.items.identity import home_identity, home_identity_id
from app.items.labeling import label_within
from app.items.models import ItemDerivation, StixObject
from app.items.problems import refuse
from app.items.provenance import (
    as_originator,
    check_within_partners,
    partner_bounds,
)
from app.items.service import (
    ItemEnv,
    label_for,
    stix_timestamp,
    store_objects,
    writable_collection,
)
from app.items.versions import ItemVersion, item_versions
from app.markings.granular import redact, required_properties
from app.markings.labels import label_marking_definition
from app.markings.models import Label
from app.markings.service import label_spec, label_specs

# Properties of the original that describe the original itself, not its content.
_NOT_CARRIED = ("id", "created", "modified", "created_by_ref", "revoked", "object_marking_refs", "granular_markings")


@dataclass(frozen=True)
class Tearline:
    """What :func:`produce` stored."""

    derived: ItemVersion
    relationship: ItemVersion
    removed: list[str]
    stored: list[ItemVersion]


def _choose(versions: list[ItemVersion], version: str | None) -> ItemVersion:
    if version is None:
        return max(versions, key=lambda v: (v.version_us, v.date_added_us))
    try:
        wanted = parse_us(version)
    except ValueError as exc:
        raise refuse("version", str(exc)) from None
    matching = [v for v in versions if v.version_us == wanted]
    if not matching:
        raise not_found("No such version of this item.")
    return matching[-1]


def produce(
    session: Session,
    env: ItemEnv,
    object_id: str,
    *,
    target_banner: str,
    collection_id: str | None,
    version: str | None,
    derived_id: str | None = None,
    commit: bool = True,
) -> Tearline:
    """Derive and store a releasable version of ``object_id`` at ``target_banner``. Commits, unless
    ``commit`` is False (the caller's transaction goes on). ``derived_id``: the new object's id, when
    the caller needs it before (default: a new random id)."""
    home, mappings = env.home_nation, env.mappings
    versions = item_versions(session, env.visible, object_id, collection_id)
    if not versions:
        raise not_found("No such item.")
    original = _choose(versions, version)
    if "created" not in original.content:
        raise refuse("", "tearlines are made from domain objects and relationships, not cyber observables")
    if original.content.get("revoked"):
        raise refuse("", "the item is revoked", status=409)
    writable_collection(session, env, original.collection_id)

    target, target_definition = label_for(target_banner, "banner", originator=home, mappings=mappings, home_nation=home)
    label_id, granular = session.execute(
        select(col(StixObject.label_id), col(StixObject.granular)).where(
            col(StixObject.collection_id) == original.collection_id,
            col(StixObject.object_id) == object_id,
            col(StixObject.version_us) == original.version_us,
        )
    ).one()
    label_row = session.get(Label, label_id)
    assert label_row is not None  # stix_object.label_id is a NOT NULL foreign key to label.id
    original_label = label_spec(label_row)
    bounds = partner_bounds(session, object_id, home)
    if original.originator != home:
        bounds.append(original_label)
    check_within_partners(target, bounds, home_nation=home, mappings=mappings)

    # Which granular markings exceed the target: someone the target admits could not see them.
    refs = orjson.loads(granular) if granular else {}
    labels = label_specs(session, refs.values())
    exceeding = {
        ref
        for ref, lid in refs.items()
        if not label_within(as_originator(target, labels[lid].originator, home), labels[lid], mappings)
    }
    removed = sorted(
        {
            s
            for g in original.content.get("granular_markings", [])
            if g.get("marking_ref") in exceeding
            for s in g.get("selectors", [])
        }
    )
    content = redact(original.content, exceeding)
    if content is None:
        required = required_properties(original.type)
        lost = [s for s in removed if s.split(".")[0] in required] or removed
        raise refuse(
            "banner",
            "the result would not be valid STIX 2.1: required properties are marked above "
            f"the target ({', '.join(lost)})",
        )

    now = stix_timestamp(now_us())
    derived = {k: v for k, v in content.items() if k not in _NOT_CARRIED} | {
        "id": derived_id or f"{original.type}--{uuid.uuid4()}",
        "created": now,
        "modified": now,
        "created_by_ref": home_identity_id(home),
        "object_marking_refs": [target_definition["id"]],
    }
    relationship_label = as_originator(original_label, home, home)
    relationship_definition = label_marking_definition(relationship_label, mappings)
    relationship = {
        "type": "relationship",
        "spec_version": "2.1",
        "id": f"relationship--{uuid.uuid4()}",
        "created": now,
        "modified": now,
        "relationship_type": "derived-from",
        "source_ref": derived["id"],
        "target_ref": object_id,
        "created_by_ref": home_identity_id(home),
        "object_marking_refs": [relationship_definition["id"]],
    }
    located: list[tuple[str, object]] = [
        ("banner", target_definition),
        ("", relationship_definition),
        ("", home_identity(home)),
        ("derived", derived),
        ("relationship", relationship),
    ]
    stored = store_objects(
        session,
        env,
        original.collection_id,
        located,
        also=[ItemDerivation(derived_id=derived["id"], source_id=object_id)],
        commit=commit,
    )
    by_id = {v.object_id: v for v in stored}
    return Tearline(by_id[derived["id"]], by_id[relationship["id"]], removed, stored)

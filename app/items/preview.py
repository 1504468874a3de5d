"""Preview: which version of an item each registered partner would be served, and what it would lose.

Nothing here decides anything of its own: each partner is turned into the Principal its
token would give (as :func:`app.http.dependencies.principal_from_claims` builds a partner's, at
the partner agreement's clearance), its collection access comes from
:func:`app.taxii.service.collection_access`, its visible labels from the
``VisibilityCache``, and its versions from :func:`app.taxii.service.versions_page` (the
TAXII read itself). Redacted properties are the selectors of granular markings whose labels
it may not see. An analyst whose token lowers the clearance previews only within it.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import func, select
from sqlmodel import Session, col

from app.auth.principal import Principal
from app.db.timestamps import format_us
from app.http.errors import not_found
from app.items.models import ObjectReference, StixObject
from app.items.predicates import Labels, hidden_reference
from app.items.service import ItemEnv
from app.items.store import VersionFilter
from app.items.versions import latest_version
from app.markings.classification import TOP_RANK
from app.partners.models import Partner
from app.partners.service import list_partners
from app.policy.visibility import VisibilityCache
from app.taxii import service as taxii_service
from app.taxii.models import Collection

_PAGE = 500


def partner_principal(partner: Partner) -> Principal:
    """The principal of a token of this partner that claims no lower clearance."""
    return Principal(
        f"preview:{partner.nation}",
        partner.nation,
        frozenset({"partner"}),
        partner.clearance,
        frozenset(partner.group_list),
        is_home=False,
    )


def _served_versions(
    session: Session,
    collection_id: str,
    visible: list[int],
    object_id: str,
    versions: tuple[str, ...],
    readable: tuple[str, ...],
    own_nation: str,
) -> list[taxii_service.ServedVersion]:
    flt = VersionFilter(ids=(object_id,), versions=versions)
    served, after = [], None
    while True:
        page = taxii_service.versions_page(
            session,
            collection_id,
            visible,
            flt,
            after_us=after,
            limit=_PAGE,
            with_body=False,
            readable=readable,
            own_nation=own_nation,
        )
        served += page.rows
        if not page.more:
            return served
        after = page.last_read_us


def _redacted(
    session: Session, collection_id: str, object_id: str, version_us: int, visible: set[int], analyst_visible: set[int]
) -> list[str]:
    granular, body = session.execute(
        select(col(StixObject.granular), col(StixObject.body)).where(
            col(StixObject.collection_id) == collection_id,
            col(StixObject.object_id) == object_id,
            col(StixObject.version_us) == version_us,
        )
    ).one()
    return redacted_selectors(granular, body, visible, analyst_visible)


def redacted_selectors(
    granular: str | None, body: str | None, visible: set[int], reader_visible: set[int]
) -> list[str]:
    """Selectors of a version's granular markings whose labels a partner may not see (``visible``),
    among those the preview's reader may see: a preview never tells of properties hidden from its reader."""
    if not granular or not body:
        return []
    hidden = {
        ref
        for ref, label_id in orjson.loads(granular).items()
        if label_id not in visible and label_id in reader_visible
    }
    markings = orjson.loads(body).get("granular_markings", [])
    return sorted({s for m in markings if m.get("marking_ref") in hidden for s in m.get("selectors", [])})


def limiting_references(
    session: Session, pk: int, visible: list[int], readable: tuple[str, ...], analyst_visible: list[int]
) -> list[dict[str, Any]]:
    """The references of a version that name objects a partner may not see (and the analyst may).

    ``required``: the version cannot be served to the partner while they are hidden (reference
    closure withholds it); otherwise the partner gets a copy without them. Fix the label of the
    referenced object, or of this one, to change that.
    """
    return limiting_references_of(session, [pk], visible, readable, analyst_visible).get(pk, [])


def limiting_references_of(
    session: Session, pks: list[int], visible: list[int], readable: tuple[str, ...], reader_visible: list[int]
) -> dict[int, list[dict[str, Any]]]:
    """:func:`limiting_references` of several versions (pk -> entries), in one query."""
    dialect = session.get_bind().dialect.name
    partner_labels, reader_labels = Labels(visible, dialect=dialect), Labels(reader_visible, dialect=dialect)
    entry = ObjectReference
    rows = session.execute(
        select(col(entry.object_pk), col(entry.prop), col(entry.ref_id), func.max(col(entry.group_no)))
        .where(
            col(entry.object_pk).in_(pks),
            hidden_reference(col(entry.ref_id), partner_labels, readable),
            ~hidden_reference(col(entry.ref_id), reader_labels, None),
        )
        .group_by(col(entry.object_pk), col(entry.prop), col(entry.ref_id))
        .order_by(col(entry.object_pk), col(entry.prop), col(entry.ref_id))
    ).all()
    found: dict[int, list[dict[str, Any]]] = {}
    for pk, prop, ref_id, group in rows:
        found.setdefault(pk, []).append({"property": prop, "id": ref_id, "required": group >= 0})
    return found


def preview(
    session: Session, env: ItemEnv, visibility: VisibilityCache, object_id: str, collection_id: str | None
) -> dict[str, Any]:
    """Per registered partner: collection access, visible versions, the served one and its redactions."""
    newest = latest_version(session, env.visible, object_id, collection_id)  # 404 unless the analyst sees it
    collection = session.get(Collection, newest.collection_id)
    if collection is None:
        raise not_found("No such collection.")
    analyst_visible = set(env.visible)
    views = []
    for partner in list_partners(session):
        principal = partner_principal(partner)
        access = taxii_service.collection_access(env.rights, principal, collection)
        view = {
            "nation": partner.nation,
            "active": partner.active,
            "clearance": env.mappings.rank_names[partner.clearance],
            "can_read_collection": access.can_read,
            "served_version": None,
            "visible_versions": [],
            "redacted": [],
            "limiting_references": [],
        }
        if partner.active and access.can_read:
            # Within the analyst's own visibility: a lowered clearance previews only what it may see.
            visible = sorted(set(visibility.visible_label_ids(session, principal)) & analyst_visible)
            readable = taxii_service.readable_collections(session, env.rights, principal)
            view["limiting_references"] = limiting_references(session, newest.pk, visible, readable, env.visible)
            every = _served_versions(session, collection.id, visible, object_id, ("all",), readable, partner.nation)
            view["visible_versions"] = [format_us(v.version_us) for v in sorted(every, key=lambda v: v.version_us)]
            last = _served_versions(session, collection.id, visible, object_id, ("last",), readable, partner.nation)
            if last:
                view["served_version"] = format_us(last[0].version_us)
                view["redacted"] = _redacted(
                    session, collection.id, object_id, last[0].version_us, set(visible), analyst_visible
                )
        views.append(view)
    return {
        "id": object_id,
        "collection": collection.id,
        "partners": views,
        "limited_to_your_clearance": env.principal.clearance < TOP_RANK,
    }

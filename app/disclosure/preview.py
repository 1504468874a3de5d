"""What each partner would receive if held versions were released as marked (the officer's preview).

Decided as the reads decide, for each registered partner at its agreement's clearance
(:func:`app.items.preview.partner_principal`): whether it may read the collection, whether the
marked label releases to it, which granular-marked properties it would lose, and which references
name objects it does not see (removed from its copy, or, for a required reference, withholding the
version). For a batch, one union: per partner, the items it would receive.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from app.disclosure.models import DisclosureReview
from app.items.models import ObjectWithhold, StixObject
from app.items.preview import limiting_references_of, partner_principal, redacted_selectors
from app.partners.service import list_partners
from app.policy.enforcer import RoleRights
from app.policy.visibility import VisibilityCache
from app.recall.service import Deciding, RecallEnv
from app.taxii import service as taxii_service


def preview(
    session: Session,
    reviews: list[DisclosureReview],
    *,
    rights: RoleRights,
    visibility: VisibilityCache,
    recall_env: RecallEnv,
    officer_visible: list[int],
) -> list[dict[str, Any]]:
    """Per registered partner: collection access, and per review whether it would receive the item and what it would lose."""
    deciding = Deciding(session, recall_env)
    pks = [_pk(r) for r in reviews]
    # The granular markings and body of the versions that carry any (what a partner may lose).
    marked = {
        pk: (granular, body)
        for pk, granular, body in session.execute(
            select(col(StixObject.pk), col(StixObject.granular), col(StixObject.body)).where(
                col(StixObject.pk).in_(pks), col(StixObject.has_granular)
            )
        ).all()
    }
    reader = set(officer_visible)
    withhold: dict[int, dict[int, set[int]]] = {}
    for pk, set_no, label_id in session.execute(
        select(col(ObjectWithhold.object_pk), col(ObjectWithhold.set_no), col(ObjectWithhold.label_id)).where(
            col(ObjectWithhold.object_pk).in_(pks)
        )
    ).all():
        withhold.setdefault(pk, {}).setdefault(set_no, set()).add(label_id)
    views = []
    for partner in list_partners(session):
        principal = partner_principal(partner)
        visible = set(visibility.visible_label_ids(session, principal)) & reader
        readable = taxii_service.readable_collections(session, rights, principal)
        limits = (
            limiting_references_of(session, pks, sorted(visible), readable, officer_visible) if partner.active else {}
        )
        can_read = {r.id: partner.active and r.collection_id in readable for r in reviews}
        released = {r.id: partner.nation in deciding.seers(deciding.spec(r.marked_label_id)) for r in reviews}
        # Released together, the batch's items may name each other: those the partner receives are seen.
        together = {r.object_id for r in reviews if can_read[r.id] and released[r.id]}
        items = []
        for review in reviews:
            refs = [ref for ref in limits.get(_pk(review), []) if ref["id"] not in together]
            withheld = any(r["required"] for r in refs) or any(
                not (labels & visible) for labels in withhold.get(_pk(review), {}).values()
            )
            items.append(
                {
                    "review": review.id,
                    "object_id": review.object_id,
                    "can_read_collection": can_read[review.id],
                    "releasable": released[review.id],
                    "would_receive": can_read[review.id] and released[review.id] and not withheld,
                    "redacted": redacted_selectors(*marked.get(_pk(review), (None, None)), visible, reader)
                    if released[review.id]
                    else [],
                    "limiting_references": refs,
                }
            )
        views.append(
            {
                "nation": partner.nation,
                "active": partner.active,
                "clearance": recall_env.mappings.rank_names[partner.clearance],
                "would_receive": sum(1 for item in items if item["would_receive"]),
                "items": items,
            }
        )
    return views


def _pk(review: DisclosureReview) -> int:
    """The held version's row (-1, matching nothing, once it is deleted)."""
    return review.object_pk if review.object_pk is not None else -1

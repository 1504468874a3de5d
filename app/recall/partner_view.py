"""The recall services behind the routes: an analyst's explicit recall, a partner's notices and acknowledgements.

A partner sees a notice only when it is addressed to its nation and its label is visible to the
requester (the notice is a stored version like any other); otherwise the answer is the one an
absent notice gets.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select, update
from sqlmodel import Session, col

from app.auth.principal import Principal
from app.db.timestamps import format_us, now_us, parse_us
from app.http.errors import ApiError
from app.items.models import StixObject
from app.items.problems import refuse
from app.items.versions import item_versions
from app.recall.detect import recall_versions
from app.recall.models import Recall, RecallNotice
from app.recall.schemas import RecallRequest
from app.recall.service import RecallEnv

_NO_NOTICE = "No such recall notice."


def issue_explicit(
    session: Session, env: RecallEnv, principal: Principal, visible: list[int], object_id: str, request: RecallRequest
) -> dict[str, Any]:
    """Recall the versions ``request`` names (all the analyst may see, by default). No commit."""
    stored = item_versions(session, visible, object_id, request.collection)
    if not stored:
        raise ApiError(404, "No such item.")
    available = {v.version_us: v for v in stored}
    if request.versions is None:
        chosen = set(available)
    else:
        try:
            chosen = {parse_us(text) for text in request.versions}
        except ValueError:
            raise refuse("versions", "each version is a STIX timestamp such as 2026-01-01T00:00:00.000Z") from None
        missing = sorted(chosen - available.keys())
        if missing:
            raise refuse("versions", f"no such version of this item: {format_us(missing[0])}")
    newest = max((available[v] for v in chosen), key=lambda v: (v.version_us, v.date_added_us))
    outcome = recall_versions(
        session,
        env,
        object_id,
        chosen,
        cause="explicit",
        reason=request.reason,
        action=request.action,
        issued_by=principal.subject,
        collection_id=newest.collection_id,
    )
    return {
        "recall_id": outcome.plan.id,
        "object_id": object_id,
        "collection": newest.collection_id,
        "versions": [format_us(v) for v in sorted(chosen)],
        "notified": sorted(outcome.plan.held),
        "derived_notified": sorted(outcome.derived_notified),
    }


def _visible_notices(
    session: Session, principal: Principal, visible: list[int], notice_id: str | None = None
) -> list[Any]:
    query = (
        select(RecallNotice, Recall)
        .join(Recall, col(Recall.id) == RecallNotice.recall_id)
        .join(
            StixObject,
            (col(StixObject.object_id) == RecallNotice.notice_id)
            & (col(StixObject.collection_id) == RecallNotice.collection_id),
        )
        .where(col(RecallNotice.nation) == principal.nation, col(StixObject.label_id).in_(visible))
        .order_by(col(Recall.issued_us).desc(), col(RecallNotice.notice_id))
    )
    if notice_id is not None:
        query = query.where(col(RecallNotice.notice_id) == notice_id)
    return list(session.execute(query).all())


def notices_of(session: Session, principal: Principal, visible: list[int]) -> list[dict[str, Any]]:
    """The notices addressed to the principal's nation that its clearance reaches, newest first."""
    return [_notice_view(notice, recall) for notice, recall in _visible_notices(session, principal, visible)]


def acknowledge(session: Session, principal: Principal, visible: list[int], notice_id: str) -> dict[str, Any]:
    """Record the acknowledgement of a notice (the first stands). No commit."""
    rows = _visible_notices(session, principal, visible, notice_id)
    if not rows:
        raise ApiError(404, _NO_NOTICE)
    notice, recall = rows[0]
    view = _notice_view(notice, recall)
    if notice.acknowledged_us is None:
        at = now_us()
        view |= {"acknowledged": format_us(at), "acknowledged_by": principal.subject}
        session.execute(
            update(RecallNotice)
            .where(
                col(RecallNotice.recall_id) == notice.recall_id,
                col(RecallNotice.nation) == notice.nation,
                col(RecallNotice.collection_id) == notice.collection_id,
                col(RecallNotice.acknowledged_us).is_(None),
            )
            .values(acknowledged_us=at, acknowledged_by=principal.subject)
        )
    return {k: view[k] for k in ("notice_id", "recall_id")} | {
        "acknowledged": view["acknowledged"],
        "acknowledged_by": view["acknowledged_by"],
    }


def _notice_view(notice: RecallNotice, recall: Recall) -> dict[str, Any]:
    return {
        "notice_id": notice.notice_id,
        "notice_version": format_us(notice.notice_version_us),
        "recall_id": recall.id,
        "recalled_object": recall.object_id,
        "recalled_versions": orjson.loads(notice.versions),
        "reason": recall.reason,
        "action": recall.action,
        "issued": format_us(recall.issued_us),
        "acknowledged": format_us(notice.acknowledged_us) if notice.acknowledged_us is not None else None,
        "acknowledged_by": notice.acknowledged_by,
    }

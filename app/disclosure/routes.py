"""Disclosure routes: officers' queue, preview and decisions; analysts' own items; auditors' record.

Officers hold ``disclosure read`` and ``disclosure decide``; analysts ``disclosure follow`` (their own
items' state and reason); auditors read decisions under ``audit read``. Partners have none of these.
A decision commits with its audit record, whose reason names the action, the nations released to and
the officer's reason.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlmodel import Session

from app.audit.context import audit_context, note_collection, note_served
from app.auth.principal import Principal
from app.db.timestamps import format_us
from app.disclosure import queue, service
from app.disclosure.hold import DisclosureEnv
from app.disclosure.models import DisclosureReview
from app.disclosure.preview import preview
from app.disclosure.schemas import DecisionRequest, PreviewRequest
from app.http.body import body_docs, json_body
from app.http.dependencies import SESSION, get_mappings, get_role_rights, get_visibility, require_right
from app.http.errors import ApiError
from app.markings.mappings import Mappings
from app.policy.enforcer import RoleRights
from app.policy.visibility import VisibilityCache
from app.recall.service import RecallEnv

router = APIRouter(prefix="/api/v1", tags=["disclosure"])
_reader, _decider = require_right("disclosure", "read"), require_right("disclosure", "decide")
Reader = Annotated[Principal, Depends(_reader)]
Decider = Annotated[Principal, Depends(_decider)]
Follower = Annotated[Principal, Depends(require_right("disclosure", "follow"))]
Auditor = Annotated[Principal, Depends(require_right("audit", "read"))]
ReviewId = Annotated[str, Path(max_length=64)]


def _envs(request: Request) -> tuple[DisclosureEnv, RecallEnv]:
    return request.app.state.disclosure_env, request.app.state.recall_env


@router.get("/disclosure/queue", summary="Items waiting for a disclosure decision, oldest first")
def pending_queue(
    principal: Reader,
    session: Session = SESSION,
    mappings: Mappings = Depends(get_mappings),
    collection: str | None = Query(None, max_length=255),
    referenced_by: str | None = Query(
        None, max_length=288, description="Only this object (e.g. a report) and the objects it names."
    ),
    limit: int = Query(100, ge=1, le=queue.MAX_PAGE),
    after: str | None = Query(None, max_length=128),
) -> dict[str, Any]:
    """Held items within your clearance; `next` gives the following page."""
    try:
        reviews, more = queue.pending(
            session, principal, collection_id=collection, referenced_by=referenced_by, limit=limit, after=after
        )
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    return {"reviews": service.describe(session, reviews, mappings), "next": more}


@router.get("/disclosure/reviews/{review_id}", summary="One held item: its content and what each partner would receive")
def one_review(
    review_id: ReviewId,
    request: Request,
    principal: Reader,
    session: Session = SESSION,
    mappings: Mappings = Depends(get_mappings),
    rights: RoleRights = Depends(get_role_rights),
    visibility: VisibilityCache = Depends(get_visibility),
) -> dict[str, Any]:
    """The review, the item as stored (held), the marking definitions released with it, and the
    per-partner preview of releasing it as marked."""
    review = service.review_for(session, principal, review_id)
    content = service.held_content(session, review)
    markings = service.held_markings(session, review, content, mappings)
    note_served(request, [(review.object_id, format_us(review.version_us))])
    note_served(request, [(m["id"], m.get("modified") or m["created"]) for m in markings])
    note_collection(request, review.collection_id)
    return {
        "review": service.describe(session, [review], mappings)[0],
        "content": content,
        "markings": markings,
        "partners": _preview(request, session, principal, [review], rights, visibility),
    }


@router.post("/disclosure/preview", summary="What each partner would receive of several held items released together")
def union_preview(
    request: Request,
    principal: Reader,
    body: PreviewRequest = Depends(json_body(PreviewRequest, _reader)),
    session: Session = SESSION,
    rights: RoleRights = Depends(get_role_rights),
    visibility: VisibilityCache = Depends(get_visibility),
) -> dict[str, Any]:
    """One preview of the union: per partner, each item it would receive and what it would lose."""
    reviews = service.reviews_for(session, principal, body.reviews)
    return {"partners": _preview(request, session, principal, reviews, rights, visibility)}


def _preview(
    request: Request,
    session: Session,
    principal: Principal,
    reviews: list[DisclosureReview],
    rights: RoleRights,
    visibility: VisibilityCache,
) -> list[dict[str, Any]]:
    _, recall_env = _envs(request)
    officer_visible = visibility.visible_label_ids(session, principal)
    return preview(
        session, reviews, rights=rights, visibility=visibility, recall_env=recall_env, officer_visible=officer_visible
    )


@router.post(
    "/disclosure/decisions",
    summary="Release, narrow, tearline or decline held items",
    openapi_extra=body_docs(DecisionRequest),
)
def make_decision(
    request: Request,
    principal: Decider,
    body: DecisionRequest = Depends(json_body(DecisionRequest, _decider)),
    session: Session = SESSION,
    mappings: Mappings = Depends(get_mappings),
    rights: RoleRights = Depends(get_role_rights),
    visibility: VisibilityCache = Depends(get_visibility),
) -> dict[str, Any]:
    """Apply one decision to each listed review, all or none. Under the two-person rule the first
    officer's release is recorded as a proposal (`awaiting_second_officer`)."""
    env, recall_env = _envs(request)
    officer = service.Officer(principal, env, recall_env, rights, visibility.visible_label_ids(session, principal))
    decision = service.Decision(body.action, body.reason, body.banner)
    outcomes = service.decide(session, officer, body.reviews, decision)
    nations = sorted({n for o in outcomes for n in o.released_to})
    proposed = sum(1 for o in outcomes if o.awaiting_second_officer)
    audit_context(request).reason = (
        f"disclosure {body.action} of {len(outcomes)} item(s)"
        + (f", {proposed} proposed for a second officer" if proposed else "")
        + f"; released to {', '.join(nations) or 'no partner'}; reason: {body.reason}"
    )
    session.commit()
    request.app.state.disclosure_metrics.observe_released(session, body.reviews)
    return {"outcomes": [o.__dict__ for o in outcomes]}


@router.get("/disclosure/mine", summary="The disclosure state of items your requests stored")
def my_items(
    principal: Follower, session: Session = SESSION, mappings: Mappings = Depends(get_mappings)
) -> dict[str, Any]:
    """Newest first: each held item's state, and the officer's reason once decided."""
    return {
        "reviews": service.describe(
            session, queue.submitted_by(session, principal.subject, principal.clearance), mappings
        )
    }


@router.get("/disclosure/speed", summary="Time from post to release, per collection and classification")
def release_speed(
    principal: Reader, session: Session = SESSION, mappings: Mappings = Depends(get_mappings)
) -> dict[str, Any]:
    """p50 and p95 seconds from post to release, with counts released, declined and waiting."""
    return {"speed": queue.speed(session, principal.clearance, mappings)}


@router.get("/audit/disclosures", summary="Disclosure decisions (auditors)")
def decisions(
    principal: Auditor,
    session: Session = SESSION,
    mappings: Mappings = Depends(get_mappings),
    officer: str | None = Query(None, max_length=255, description="Only decisions this officer made or proposed."),
    state: str | None = Query(None, pattern="^(released|declined|replaced)$"),
    limit: int = Query(200, ge=1, le=queue.MAX_PAGE),
) -> dict[str, Any]:
    """Newest decision first: who decided (and who proposed, under the two-person rule), when, the
    action, what was released to whom, and the reason."""
    rows = queue.decided(session, principal.clearance, officer=officer, state=state, limit=limit)
    return {"decisions": service.describe(session, rows, mappings)}

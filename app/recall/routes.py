"""Recall routes: an analyst recalls versions, a partner lists and acknowledges its notices.

``POST /api/v1/items/{id}/recall`` (analysts, ``recalls issue``) withdraws versions from every
partner and notifies the nations that received them. ``GET /api/v1/recalls`` and
``POST /api/v1/recalls/{notice id}/acknowledgement`` (partners, ``recalls acknowledge``) serve a
partner its own notices; another nation's notice, one its clearance does not reach and an absent
one all answer the same 404. Auditors' reports are in :mod:`app.recall.report_routes`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from sqlmodel import Session

from app.audit.context import note_collection, note_served
from app.auth.principal import Principal
from app.db.columns import STIX_ID_LENGTH
from app.http.body import body_docs, json_body
from app.http.dependencies import SESSION, get_visibility, require_right
from app.policy.visibility import VisibilityCache
from app.recall import partner_view
from app.recall.schemas import Acknowledgement, NoticeList, RecallOut, RecallRequest
from app.recall.service import RecallEnv

router = APIRouter(prefix="/api/v1", tags=["recall"])
_issuer = require_right("recalls", "issue")
Analyst = Annotated[Principal, Depends(_issuer)]
Partner = Annotated[Principal, Depends(require_right("recalls", "acknowledge"))]
NoticeId = Annotated[str, Path(max_length=STIX_ID_LENGTH)]
ObjectId = Annotated[str, Path(max_length=STIX_ID_LENGTH)]


def _env(request: Request) -> RecallEnv:
    env: RecallEnv = request.app.state.recall_env
    return env


@router.post(
    "/items/{object_id}/recall",
    response_model=RecallOut,
    status_code=201,
    summary="Recall versions of an item",
    openapi_extra=body_docs(RecallRequest),
)
def recall_item(
    object_id: ObjectId,
    request: Request,
    principal: Analyst,
    # The body is read only once the token and the right have passed (docs/design.md section 2a).
    body: RecallRequest = Depends(json_body(RecallRequest, _issuer)),
    session: Session = SESSION,
    visibility: VisibilityCache = Depends(get_visibility),
) -> dict[str, Any]:
    """Withdraw versions (all by default) from every partner nation, and notify each nation that
    received one. The reason is sent to the recipients as written."""
    visible = visibility.visible_label_ids(session, principal)
    result = partner_view.issue_explicit(session, _env(request), principal, visible, object_id, body)
    note_collection(request, result["collection"])
    session.commit()
    return result


@router.get("/recalls", response_model=NoticeList, summary="Your recall notices")
def my_notices(
    request: Request,
    principal: Partner,
    session: Session = SESSION,
    visibility: VisibilityCache = Depends(get_visibility),
) -> dict[str, Any]:
    """The recall notices addressed to your nation that your clearance reaches, newest first."""
    visible = visibility.visible_label_ids(session, principal)
    notices = partner_view.notices_of(session, principal, visible)
    # Listing a notice discloses it as a pull would: it counts as received.
    note_served(request, ((n["notice_id"], n["notice_version"]) for n in notices))
    return {"notices": notices}


@router.post(
    "/recalls/{notice_id}/acknowledgement", response_model=Acknowledgement, summary="Acknowledge a recall notice"
)
def acknowledge(
    notice_id: NoticeId,
    principal: Partner,
    session: Session = SESSION,
    visibility: VisibilityCache = Depends(get_visibility),
) -> dict[str, Any]:
    """Record that your nation has acted on a notice. Acknowledging again changes nothing."""
    visible = visibility.visible_label_ids(session, principal)
    answer = partner_view.acknowledge(session, principal, visible, notice_id)
    session.commit()
    return answer

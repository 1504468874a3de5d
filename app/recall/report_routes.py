"""Auditors' recall reports under ``/api/v1/audit/recalls``: who was told, who received, who acknowledged.

Every route needs the ``audit read`` right, as the rest of the auditor API; only GET routes exist.
Every parameter is range-checked before a query runs (times within years 1-9999 in UTC, ``since``
before ``until``, ids no wider than their columns and without NUL, cursors this server returned):
anything else is a 400 problem document, never a 500. The answers are built by
:mod:`app.recall.report`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from sqlmodel import Session

from app.audit.query import FilterError
from app.auth.principal import Principal
from app.db.columns import STIX_ID_LENGTH
from app.http.dependencies import SESSION, require_right
from app.http.errors import ApiError
from app.recall import report

router = APIRouter(prefix="/api/v1/audit/recalls", tags=["audit"])
Auditor = Annotated[Principal, Depends(require_right("audit", "read"))]
MAX_PAGE = 1000
CURSOR_LENGTH = 200


@router.get("", summary="Recalls, newest first, with how far each recipient has got", response_model=None)
def list_recalls(
    _: Auditor,
    object_id: Annotated[str | None, Query(max_length=STIX_ID_LENGTH, description="Recalls of this object")] = None,
    since: Annotated[datetime | None, Query(description="Issued at or after (UTC if no zone)")] = None,
    until: Annotated[datetime | None, Query(description="Issued before (UTC if no zone)")] = None,
    outstanding: Annotated[
        bool | None, Query(description="true: a notice is unacknowledged; false: every notice is acknowledged")
    ] = None,
    after: Annotated[str | None, Query(max_length=CURSOR_LENGTH, description="`next` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    session: Session = SESSION,
) -> dict[str, Any]:
    """Recalls matching the filters, newest first; pass `next` as `after` for the following page."""
    try:
        since_us = None if since is None else report.time_us(since, "since")
        until_us = None if until is None else report.time_us(until, "until")
        recalls, cursor = report.list_recalls(
            session,
            object_id=object_id,
            since_us=since_us,
            until_us=until_us,
            outstanding=outstanding,
            after=after,
            limit=limit,
        )
    except FilterError as exc:
        raise ApiError(400, str(exc)) from None
    answer: dict[str, Any] = {"recalls": recalls, "more": cursor is not None}
    if cursor is not None:
        answer["next"] = cursor
    return answer


@router.get(
    "/{recall_id}", summary="One recall: each recipient's notice, receipt and acknowledgement", response_model=None
)
def get_recall(
    _: Auditor,
    recall_id: Annotated[str, Path(max_length=64)],
    session: Session = SESSION,
) -> dict[str, Any]:
    """The recall, each recipient nation's notice and state, and the recalls derived from it; 404 if there is none."""
    answer = report.recall_report(session, recall_id)
    if answer is None:
        raise ApiError(404, "No such recall.")
    return answer

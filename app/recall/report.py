"""Auditors' view of recalls: every recall, and per recipient nation whether its notice was received and acknowledged.

A notice is *received* when an audit record's served list carried it (its id and version) to its
nation: the recipients index says which record did so first, and when and by whom. A notice is
*acknowledged* when its nation's principal said so (``recall_notice.acknowledged_us``). Each
recipient is in one state: ``notified`` (stored, not yet served), ``received`` or
``acknowledged`` (whether or not a receipt was recorded).

Like the auditor's other questions, both reports first index the served lists written
since the index last moved (:func:`app.audit.index.index_pending`), so the answer includes every
record. Nothing else is written. Filter values are checked before any query runs
(:class:`app.audit.query.FilterError`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Engine, and_, exists, func, or_, select
from sqlmodel import Session, col

from app.audit.index import index_pending
from app.audit.models import AuditRecord
from app.audit.query import MAX_SEQ, OBJ, SERVED, D, FilterError, H, R, in_utc
from app.db.columns import STIX_ID_LENGTH
from app.db.timestamps import format_us
from app.recall.models import Recall, RecallNotice

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_ID_LENGTH = 64  # the width of recall.id
_BATCH = 500  # notice ids per query: well within every database's bound-parameter limit


@dataclass(frozen=True)
class Receipt:
    """The first audit record whose served list carried a notice to its nation."""

    seq: int
    at: str
    subject: str


def time_us(moment: datetime, name: str) -> int:
    """``moment`` (naive means UTC) in microseconds since the epoch; FilterError when out of range."""
    return (in_utc(moment, name) - _EPOCH) // _MICROSECOND


def _engine(session: Session) -> Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


def _fields(recall: Recall) -> dict[str, Any]:
    return {
        "recall_id": recall.id,
        "object_id": recall.object_id,
        "cause": recall.cause,
        "reason": recall.reason,
        "action": recall.action,
        "issued": format_us(recall.issued_us),
        "issued_by": recall.issued_by,
        "trigger_version": format_us(recall.trigger_version_us) if recall.trigger_version_us is not None else None,
        "parent_id": recall.parent_id,
        "source_note_id": recall.source_note_id,
    }


def _receipts(session: Session, notices: Sequence[RecallNotice]) -> dict[tuple[str, str, str], Receipt]:
    """(notice id, version, nation) -> the first covered record that served that version to that nation."""
    head = select(H.seq).where(H.id == 1).scalar_subquery()
    ids = sorted({n.notice_id for n in notices})
    found: dict[tuple[str, str, str], Receipt] = {}
    for start in range(0, len(ids), _BATCH):
        first = (
            select(OBJ.object_id, D.version, D.nation, func.min(D.record_seq).label("seq"))
            .select_from(SERVED)
            .where(OBJ.object_id.in_(ids[start : start + _BATCH]), D.record_seq <= head)
            .group_by(OBJ.object_id, D.version, D.nation)
            .subquery()
        )
        query = select(first.c.object_id, first.c.version, first.c.nation, R.seq, R.at, R.subject).join_from(
            first, AuditRecord.__table__, R.seq == first.c.seq
        )
        for object_id, version, nation, seq, at, subject in session.execute(query):
            found[(object_id, version, nation)] = Receipt(seq, at, subject)
    return found


def _receipt_of(receipts: dict[tuple[str, str, str], Receipt], notice: RecallNotice) -> Receipt | None:
    return receipts.get((notice.notice_id, format_us(notice.notice_version_us), notice.nation))


def _notices(session: Session, recall_ids: Iterable[str]) -> list[RecallNotice]:
    ids = sorted(set(recall_ids))
    notices: list[RecallNotice] = []
    for start in range(0, len(ids), _BATCH):
        query = (
            select(RecallNotice)
            .where(col(RecallNotice.recall_id).in_(ids[start : start + _BATCH]))
            .order_by(col(RecallNotice.recall_id), col(RecallNotice.nation), col(RecallNotice.collection_id))
        )
        notices += session.execute(query).scalars()
    return notices


def encode_cursor(recall: Recall) -> str:
    """The opaque cursor that follows ``recall`` in newest-first order."""
    return base64.urlsafe_b64encode(orjson.dumps([recall.issued_us, recall.id])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """The (issued_us, id) of a cursor from :func:`encode_cursor`; FilterError when it is not one."""
    try:
        value = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise FilterError("after is not a cursor this server returned.") from None
    if not (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], int)
        and not isinstance(value[0], bool)
        and -MAX_SEQ - 1 <= value[0] <= MAX_SEQ
        and isinstance(value[1], str)
        and len(value[1]) <= _ID_LENGTH
        and "\x00" not in value[1]
    ):
        raise FilterError("after is not a cursor this server returned.")
    return value[0], value[1]


def _conditions(
    object_id: str | None, since_us: int | None, until_us: int | None, outstanding: bool | None, after: str | None
) -> list[ColumnElement[bool]]:
    if object_id is not None and ("\x00" in object_id or len(object_id) > STIX_ID_LENGTH):
        raise FilterError(f"object_id must be at most {STIX_ID_LENGTH} characters, without a NUL character.")
    if since_us is not None and until_us is not None and since_us >= until_us:
        raise FilterError("since must be before until.")
    clauses: list[ColumnElement[bool]] = []
    if object_id is not None:
        clauses.append(col(Recall.object_id) == object_id)
    if since_us is not None:
        clauses.append(col(Recall.issued_us) >= since_us)
    if until_us is not None:
        clauses.append(col(Recall.issued_us) < until_us)
    if outstanding is not None:
        pending = exists().where(
            col(RecallNotice.recall_id) == col(Recall.id), col(RecallNotice.acknowledged_us).is_(None)
        )
        clauses.append(pending if outstanding else ~pending)
    if after is not None:
        issued_us, recall_id = decode_cursor(after)
        clauses.append(
            or_(
                col(Recall.issued_us) < issued_us,
                and_(col(Recall.issued_us) == issued_us, col(Recall.id) < recall_id),
            )
        )
    return clauses


def list_recalls(
    session: Session,
    *,
    object_id: str | None = None,
    since_us: int | None = None,
    until_us: int | None = None,
    outstanding: bool | None = None,
    after: str | None = None,
    limit: int = 100,
) -> tuple[list[dict[str, Any]], str | None]:
    """Recalls newest first, each with how many nations were notified, received and acknowledged
    its notices and which nations are outstanding; the page and the cursor of the next (or None).

    ``since_us`` is inclusive and ``until_us`` exclusive (issue times); ``outstanding`` True keeps
    the recalls with a notice not yet acknowledged, False those whose every notice is; ``after`` is
    the cursor of the previous page. FilterError for a value no query should carry.
    """
    if limit < 1:
        raise FilterError("limit must be at least 1.")
    clauses = _conditions(object_id, since_us, until_us, outstanding, after)
    index_pending(_engine(session))
    query = (
        select(Recall).where(*clauses).order_by(col(Recall.issued_us).desc(), col(Recall.id).desc()).limit(limit + 1)
    )
    recalls = list(session.execute(query).scalars())
    more = len(recalls) > limit
    recalls = recalls[:limit]
    notices = _notices(session, (r.id for r in recalls))
    receipts = _receipts(session, notices)
    by_recall: dict[str, list[RecallNotice]] = {}
    for notice in notices:
        by_recall.setdefault(notice.recall_id, []).append(notice)
    page = []
    for recall in recalls:
        mine = by_recall.get(recall.id, [])
        page.append(
            _fields(recall)
            | {
                "nations": len(mine),
                "received": sum(1 for n in mine if _receipt_of(receipts, n) is not None),
                "acknowledged": sum(1 for n in mine if n.acknowledged_us is not None),
                "outstanding": sorted({n.nation for n in mine if n.acknowledged_us is None}),
            }
        )
    return page, (encode_cursor(recalls[-1]) if more else None)


def _recipient(notice: RecallNotice, receipt: Receipt | None) -> dict[str, Any]:
    if notice.acknowledged_us is not None:
        state = "acknowledged"
    elif receipt is not None:
        state = "received"
    else:
        state = "notified"
    return {
        "nation": notice.nation,
        "notice_id": notice.notice_id,
        "collection_id": notice.collection_id,
        "versions": orjson.loads(notice.versions),
        "notified": format_us(notice.notice_version_us),
        "received": receipt.at if receipt else None,
        "received_by": receipt.subject if receipt else None,
        "received_seq": receipt.seq if receipt else None,
        "acknowledged": format_us(notice.acknowledged_us) if notice.acknowledged_us is not None else None,
        "acknowledged_by": notice.acknowledged_by,
        "state": state,
    }


def recall_report(session: Session, recall_id: str) -> dict[str, Any] | None:
    """One recall: its fields, each recipient's notice and state, and the recalls derived from it;
    None when there is no such recall."""
    if "\x00" in recall_id or len(recall_id) > _ID_LENGTH:
        return None  # no recall has such an id, and PostgreSQL refuses a NUL in a query
    index_pending(_engine(session))
    recall = session.get(Recall, recall_id)
    if recall is None:
        return None
    notices = _notices(session, [recall.id])
    receipts = _receipts(session, notices)
    derived = session.execute(
        select(col(Recall.id)).where(col(Recall.parent_id) == recall.id).order_by(col(Recall.issued_us), col(Recall.id))
    ).scalars()
    return _fields(recall) | {
        "recipients": [_recipient(n, _receipt_of(receipts, n)) for n in notices],
        "derived": list(derived),
    }

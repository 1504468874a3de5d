"""Reading disclosure reviews: the officers' queue, an analyst's own items, auditors' decisions, speed.

Every listing is bounded by the reader's clearance: a review whose item is above it is not listed.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from app.auth.principal import Principal
from app.disclosure.models import DECLINED, PENDING, DisclosureReview
from app.items.models import ObjectReference, StixObject
from app.markings.mappings import Mappings

MAX_PAGE = 1000


def pending(
    session: Session,
    reader: Principal,
    *,
    collection_id: str | None = None,
    referenced_by: str | None = None,
    limit: int = 100,
    after: str | None = None,
) -> tuple[list[DisclosureReview], str | None]:
    """Held versions waiting for a decision, oldest first; the next page's ``after`` when there is more.

    ``referenced_by``: only the object of that id and the objects its stored versions name."""
    query = select(DisclosureReview).where(
        col(DisclosureReview.state) == PENDING,
        col(DisclosureReview.rank) <= reader.clearance,
        col(DisclosureReview.object_pk).is_not(None),  # deleted since it was posted: nothing to decide
    )
    if collection_id is not None:
        query = query.where(col(DisclosureReview.collection_id) == collection_id)
    if referenced_by is not None:
        # A report and what it names (its object_refs), to decide on together.
        named = (
            select(col(ObjectReference.ref_id))
            .join(StixObject, col(StixObject.pk) == col(ObjectReference.object_pk))
            .where(col(StixObject.object_id) == referenced_by)
        )
        query = query.where(
            (col(DisclosureReview.object_id) == referenced_by) | col(DisclosureReview.object_id).in_(named)
        )
    if after is not None:
        posted, _, review_id = after.partition(":")
        if not posted.isdigit() or not review_id:
            raise ValueError("after: not a cursor this server gave")
        query = query.where(
            (col(DisclosureReview.posted_us) > int(posted))
            | ((col(DisclosureReview.posted_us) == int(posted)) & (col(DisclosureReview.id) > review_id))
        )
    rows = list(
        session.execute(query.order_by(col(DisclosureReview.posted_us), col(DisclosureReview.id)).limit(limit + 1))
        .scalars()
        .all()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, f"{rows[-1].posted_us}:{rows[-1].id}" if more else None


def submitted_by(session: Session, subject: str, clearance: int, limit: int = 200) -> list[DisclosureReview]:
    """The reviews of versions this subject's requests stored, newest first."""
    query = (
        select(DisclosureReview)
        .where(col(DisclosureReview.submitted_by) == subject, col(DisclosureReview.rank) <= clearance)
        .order_by(col(DisclosureReview.posted_us).desc())
        .limit(limit)
    )
    return list(session.execute(query).scalars().all())


def decided(
    session: Session, clearance: int, *, officer: str | None = None, state: str | None = None, limit: int = 200
) -> list[DisclosureReview]:
    """Decided reviews, newest decision first; ``officer``: those it decided or proposed."""
    query = select(DisclosureReview).where(
        col(DisclosureReview.decided_us).is_not(None), col(DisclosureReview.rank) <= clearance
    )
    if officer is not None:
        query = query.where(
            (col(DisclosureReview.decided_by) == officer) | (col(DisclosureReview.proposed_by) == officer)
        )
    if state is not None:
        query = query.where(col(DisclosureReview.state) == state)
    return list(session.execute(query.order_by(col(DisclosureReview.decided_us).desc()).limit(limit)).scalars().all())


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def speed(session: Session, clearance: int, mappings: Mappings) -> list[dict[str, Any]]:
    """Seconds from post to release, p50 and p95, per collection and classification; and what waits."""
    rows = session.execute(
        select(
            col(DisclosureReview.collection_id),
            col(DisclosureReview.rank),
            col(DisclosureReview.state),
            col(DisclosureReview.posted_us),
            col(DisclosureReview.decided_us),
        ).where(col(DisclosureReview.rank) <= clearance)
    ).all()
    released: dict[tuple[str, int], list[float]] = defaultdict(list)
    waiting: dict[tuple[str, int], int] = defaultdict(int)
    declined: dict[tuple[str, int], int] = defaultdict(int)
    for collection_id, rank, state, posted_us, decided_us in rows:
        key = (collection_id, rank)
        if state == PENDING:
            waiting[key] += 1
        elif state == DECLINED:
            declined[key] += 1
        elif decided_us is not None:
            released[key].append((decided_us - posted_us) / 1e6)
    keys = sorted(set(released) | set(waiting) | set(declined))
    return [
        {
            "collection": collection_id,
            "classification": mappings.rank_names[rank],
            "released": len(released[(collection_id, rank)]),
            "declined": declined[(collection_id, rank)],
            "waiting": waiting[(collection_id, rank)],
            "p50_seconds": _percentile(released[(collection_id, rank)], 0.5)
            if released[(collection_id, rank)]
            else None,
            "p95_seconds": _percentile(released[(collection_id, rank)], 0.95)
            if released[(collection_id, rank)]
            else None,
        }
        for collection_id, rank in keys
    ]

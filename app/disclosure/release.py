"""Releasing held versions: each leaves its held label for its release label, as newly added.

A released version gets a new ``date_added`` (the collection's next, under its write lock), so for
partners it arrives like a version stored now: in ``added_after`` pulls, at the head of every live
stream and in every push feed, woken by the same outbox row and signal as a new version
(:func:`app.items.changes.announce_stored`). No partner saw it before, so moving it leaks nothing;
the home nation sees it move to the end of the collection. The hooks after the hold then run on it
as on a version just stored (recall: a release that narrows an older version withdraws that one).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlmodel import Session, col

from app.db.timestamps import format_us, now_us
from app.db.written import note_written
from app.items.changes import StoredBatch, after_store, announce_stored, review_exempt
from app.items.ingest import lock_collection
from app.items.models import StixObject
from app.items.side_tables import relabel
from app.taxii.models import Collection

_BATCH_COLUMNS = [
    StixObject.__table__.c[name]
    for name in (
        "pk",
        "object_id",
        "type",
        "version_us",
        "date_added_us",
        "label_id",
        "originator",
        "submitter",
        "body",
    )
]


def release_versions(session: Session, releases: Iterable[tuple[int, str, int]]) -> None:
    """Serve each held version (pk, collection id, release label id) under its release label, as newly added.

    Runs in the caller's transaction; the versions are named in its audit record.
    """
    by_collection: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for pk, collection_id, label_id in releases:
        by_collection[collection_id].append((pk, label_id))
    connection = session.connection()
    objects = StixObject.__table__
    restamp = update(objects).where(objects.c.pk == bindparam("b_pk")).values(date_added_us=bindparam("b_added"))
    for collection_id, items in sorted(by_collection.items()):
        first = max(now_us(), lock_collection(session, collection_id) + 1)  # the lock first, as ingest takes it
        relabel(session, dict(items))
        # One statement run for every version (executemany), in pk order: date_added follows it.
        connection.execute(restamp, [{"b_pk": pk, "b_added": first + n} for n, (pk, _) in enumerate(sorted(items))])
        next_date_added = first + len(items)
        connection.execute(
            update(Collection).where(col(Collection.id) == collection_id).values(date_added_hwm=next_date_added - 1)
        )
        announce_stored(session, collection_id, next_date_added - 1)
        rows = _rows(session, [pk for pk, _ in items])
        note_written(session, ((row["object_id"], format_us(row["version_us"])) for row in rows))
        with review_exempt(session):
            after_store(session, StoredBatch(collection_id, rows, _with_other_versions(session, rows)))


def _rows(session: Session, pks: list[int]) -> list[dict[str, Any]]:
    rows = session.execute(
        select(*_BATCH_COLUMNS).where(col(StixObject.pk).in_(pks)).order_by(col(StixObject.date_added_us))
    )
    return [dict(row._mapping) for row in rows]


def _with_other_versions(session: Session, rows: list[dict[str, Any]]) -> frozenset[str]:
    """Ids among ``rows`` with more than one stored version (a release may withdraw an older one)."""
    ids = sorted({row["object_id"] for row in rows})
    counted = session.execute(
        select(col(StixObject.object_id))
        .where(col(StixObject.object_id).in_(ids))
        .group_by(col(StixObject.object_id))
        .having(func.count() > 1)
    )
    return frozenset(counted.scalars())

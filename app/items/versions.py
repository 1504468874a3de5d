"""Reading item versions: every version of an item the requester may see, and the newest of them.

Every read applies the requester's visible label ids in SQL (a home analyst whose token lowers the
clearance sees less) and removes granular-marked properties it may not see, like TAXII.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Row, and_, exists, or_, select
from sqlmodel import Session, col

from app.db.timestamps import format_us
from app.http.errors import not_found
from app.items.models import ObjectWithhold, StixObject
from app.markings.granular import redact
from app.markings.models import Label


@dataclass(frozen=True)
class ItemVersion:
    """One stored version as the requester may see it."""

    object_id: str
    type: str
    collection_id: str
    version_us: int
    date_added_us: int
    banner: str
    originator: str
    submitter: str
    content: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """The API representation."""
        return {
            "id": self.object_id,
            "type": self.type,
            "collection": self.collection_id,
            "version": format_us(self.version_us),
            "date_added": format_us(self.date_added_us),
            "banner": self.banner,
            "originator": self.originator,
            "submitter": self.submitter,
            "revoked": bool(self.content.get("revoked", False)),
            "object": self.content,
        }

    @property
    def audit_key(self) -> tuple[str, str]:
        """(id, version) as the audit log records served versions."""
        return self.object_id, format_us(self.version_us)


def visible_clause(visible: list[int], row: type[StixObject] = StixObject) -> ColumnElement[bool]:
    """SQL: the version's label is visible and no hidden granular marking withholds the whole version.

    The same rule as the TAXII reads in :mod:`app.items.store`; ``row`` may be an alias.
    """
    withheld = exists().where(col(ObjectWithhold.object_pk) == row.pk, col(ObjectWithhold.label_id).not_in(visible))
    return and_(col(row.label_id).in_(visible), or_(col(row.has_granular).is_(False), ~withheld))


def served_content(body: str, granular: str | None, visible: set[int]) -> dict[str, Any] | None:
    """The stored object without properties under granular markings the requester may not see."""
    content: dict[str, Any] = orjson.loads(body)
    if granular:
        hidden = {ref for ref, label_id in orjson.loads(granular).items() if label_id not in visible}
        if hidden:
            return redact(content, hidden)
    return content


ROW_COLUMNS = (
    col(StixObject.object_id),
    col(StixObject.type),
    col(StixObject.collection_id),
    col(StixObject.version_us),
    col(StixObject.date_added_us),
    col(Label.key),
    col(StixObject.originator),
    col(StixObject.submitter),
    col(StixObject.body),
    col(StixObject.granular),
)


def to_versions(rows: Iterable[Row[*tuple[Any, ...]]], visible: list[int]) -> list[ItemVersion]:
    """Rows selected with :data:`ROW_COLUMNS` as served versions (withheld ones dropped)."""
    visible_set = set(visible)
    versions = []
    for row in rows:
        content = served_content(row.body, row.granular, visible_set)
        if content is not None:
            versions.append(
                ItemVersion(
                    row.object_id,
                    row.type,
                    row.collection_id,
                    row.version_us,
                    row.date_added_us,
                    row.key,
                    row.originator,
                    row.submitter,
                    content,
                )
            )
    return versions


def item_versions(
    session: Session, visible: list[int], object_id: str, collection_id: str | None = None
) -> list[ItemVersion]:
    """Every visible version of an object, oldest first, in one collection or all of them."""
    if not visible:
        return []
    query = (
        select(*ROW_COLUMNS)
        .join(Label, col(Label.id) == StixObject.label_id)
        .where(col(StixObject.object_id) == object_id, visible_clause(visible))
    )
    if collection_id is not None:
        query = query.where(col(StixObject.collection_id) == collection_id)
    return to_versions(
        session.execute(query.order_by(col(StixObject.version_us), col(StixObject.date_added_us))), visible
    )


def latest_version(
    session: Session, visible: list[int], object_id: str, collection_id: str | None = None
) -> ItemVersion:
    """The newest visible version; 404 when there is none (hidden and absent look alike)."""
    versions = item_versions(session, visible, object_id, collection_id)
    if not versions:
        raise not_found("No such item.")
    return max(versions, key=lambda v: (v.version_us, v.date_added_us))

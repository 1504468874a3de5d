"""Reading item versions: every version of an item the requester may see, and the newest of them.

Every read applies the requester's visible label ids in SQL (a home analyst whose token lowers the
clearance sees less) and removes granular-marked properties it may not see, like TAXII.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Row, select
from sqlalchemy.orm.util import AliasedClass
from sqlmodel import Session, col

from app.db.timestamps import format_us
from app.http.errors import not_found
from app.items.models import StixObject
from app.items.predicates import reference_verdicts, served_condition
from app.items.references import remove_hidden
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
    pk: int = 0
    """The stored row (not part of the API form)."""

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


def visible_clause(
    visible: list[int],
    row: type[StixObject] | AliasedClass[StixObject] = StixObject,
    readable: tuple[str, ...] | None = None,
) -> ColumnElement[bool]:
    """SQL: the version's label is visible, and neither hidden granular markings nor reference
    closure withhold it: the rule of the TAXII reads (:func:`app.items.store.served_condition`)."""
    return served_condition(row, visible, readable)


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
    col(StixObject.pk),
    col(StixObject.has_refs),
)


def to_versions(
    session: Session, rows: Iterable[Row[*tuple[Any, ...]]], visible: list[int], readable: tuple[str, ...] | None = None
) -> list[ItemVersion]:
    """Rows selected with :data:`ROW_COLUMNS` as served versions: withheld ones dropped, references to
    objects the requester may not see removed."""
    rows = list(rows)
    verdicts = reference_verdicts(session, [row.pk for row in rows if row.has_refs], visible, readable)
    visible_set = set(visible)
    versions = []
    for row in rows:
        verdict = verdicts.get(row.pk)
        if verdict is not None and verdict.withheld:
            continue
        content = served_content(row.body, row.granular, visible_set)
        if content is not None and verdict is not None and verdict.hidden:
            content = remove_hidden(content, verdict.hidden)
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
                    row.pk,
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
        session, session.execute(query.order_by(col(StixObject.version_us), col(StixObject.date_added_us))), visible
    )


def latest_version(
    session: Session, visible: list[int], object_id: str, collection_id: str | None = None
) -> ItemVersion:
    """The newest visible version; 404 when there is none (hidden and absent look alike)."""
    versions = item_versions(session, visible, object_id, collection_id)
    if not versions:
        raise not_found("No such item.")
    return max(versions, key=lambda v: (v.version_us, v.date_added_us))

"""Labels in the database: each distinct label is interned once and referenced by object versions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from app.db.engine import dialect_insert
from app.markings.labels import LabelSpec, canonical_banner, label_marking_id
from app.markings.mappings import Mappings
from app.markings.models import Label
from app.markings.tokens import split_codes


def label_spec(row: Label) -> LabelSpec:
    """The label row as a LabelSpec (the legacy label keeps its missing originator)."""
    return LabelSpec(row.rank, split_codes(row.releasable_to), split_codes(row.caveats), row.originator)


def label_specs(session: Session, label_ids: Iterable[int]) -> dict[int, LabelSpec]:
    """The specs of these labels, by id, in one query (none for no ids)."""
    ids = sorted(set(label_ids))
    if not ids:
        return {}
    rows = session.execute(select(Label).where(col(Label.id).in_(ids))).scalars()
    return {row.id: label_spec(row) for row in rows if row.id is not None}


def label_values(spec: LabelSpec, mappings: Mappings) -> dict[str, Any]:
    """The label row for ``spec``: its canonical banner is the key."""
    banner = canonical_banner(spec, mappings)
    return {
        "key": banner,
        "marking_ref": label_marking_id(banner),
        "rank": spec.rank,
        "releasable_to": ",".join(sorted(spec.releasable_to)),
        "caveats": ",".join(sorted(spec.caveats)),
        "originator": spec.originator,
    }


def intern_label(session: Session, spec: LabelSpec, mappings: Mappings) -> int:
    """The id of the label row for ``spec``, inserting it if new (safe against concurrent writers)."""
    values = label_values(spec, mappings)
    existing: int | None = session.execute(
        select(col(Label.id)).where(col(Label.key) == values["key"])
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    session.execute(dialect_insert(session)(Label).values(**values).on_conflict_do_nothing(index_elements=["key"]))
    label_id: int = session.execute(select(col(Label.id)).where(col(Label.key) == values["key"])).scalar_one()
    return label_id


def intern_labels(session: Session, specs: Iterable[LabelSpec], mappings: Mappings) -> dict[LabelSpec, int]:
    """The label ids of ``specs``, inserting the new ones; a few queries whatever their number."""
    values = {spec: label_values(spec, mappings) for spec in dict.fromkeys(specs)}
    if not values:
        return {}

    def known() -> dict[str, int]:
        keys = [v["key"] for v in values.values()]
        return dict(session.execute(select(col(Label.key), col(Label.id)).where(col(Label.key).in_(keys))).all())

    found = known()
    new = [v for v in values.values() if v["key"] not in found]
    if new:
        insert = dialect_insert(session)
        # One multi-row insert; a concurrent writer's identical row wins silently (same key, same label).
        session.execute(insert(Label).values(new).on_conflict_do_nothing(index_elements=["key"]))
        found = known()
    return {spec: found[v["key"]] for spec, v in values.items()}

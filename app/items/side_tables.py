"""What is stored with each new version: its row, and the side tables read at serve time.

- ``object_marking_ref``: the marking definitions it references (served with it);
- ``object_withhold``: the sets of granular labels that, all hidden, withhold it;
- ``object_reference``: the objects it names, with the groups it cannot be served without
  (reference closure, :mod:`app.items.references`).

:func:`relabel` serves stored versions under other labels (held for review, released, withdrawn).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import bindparam, select, update
from sqlmodel import Session, col

from app.db.bulk import insert_rows
from app.items import stix_validation
from app.items.labeling import LabeledObject, marking_refs
from app.items.models import ObjectMarkingRef, ObjectReference, ObjectWithhold, StixObject
from app.items.references import Reference, references
from app.markings.labels import LabelSpec


def object_references(obj: dict[str, Any]) -> list[Reference]:
    """The reference entries of a version to record, with their required groups."""
    return references(obj, stix_validation.is_valid)


def new_row(
    labeled: LabeledObject,
    object_id: str,
    object_type: str,
    spec_version: str,
    created_us: int | None,
    *,
    collection_id: str,
    submitter: str,
    version_us: int,
    date_added_us: int,
    label_ids: dict[LabelSpec, int],
    has_refs: bool,
) -> dict[str, Any]:
    """The ``stix_object`` row of one labelled version."""
    granular = {ref: label_ids[spec] for ref, spec in labeled.granular.items()}
    return {
        "collection_id": collection_id,
        "object_id": object_id,
        "type": object_type,
        "spec_version": spec_version,
        "version_us": version_us,
        "created_us": created_us,
        "date_added_us": date_added_us,
        "label_id": label_ids[labeled.label],
        "originator": labeled.originator,
        "submitter": submitter,
        "has_granular": bool(granular),
        "granular": orjson.dumps(granular).decode() if granular else None,
        "has_refs": has_refs,
        "body": orjson.dumps(labeled.content).decode(),
    }


def store_side_tables(
    session: Session,
    collection_id: str,
    rows: list[dict[str, Any]],
    labeled: list[LabeledObject],
    label_ids: dict[LabelSpec, int],
    entries: list[list[Reference]],
) -> None:
    """Record the side tables of new versions: ``rows[i]`` was stored for ``labeled[i]``, naming ``entries[i]``."""
    pks = dict(
        session.execute(
            select(col(StixObject.date_added_us), col(StixObject.pk)).where(
                col(StixObject.collection_id) == collection_id,
                col(StixObject.date_added_us).between(rows[0]["date_added_us"], rows[-1]["date_added_us"]),
            )
        ).all()
    )
    marking_rows, withhold_rows, reference_rows = [], [], []
    for row, version, named in zip(rows, labeled, entries, strict=True):
        pk = row["pk"] = pks[row["date_added_us"]]  # the hooks after the store read it (app/items/changes.py)
        marking_rows += [
            {"object_pk": pk, "marking_id": ref, "collection_id": collection_id, "label_id": row["label_id"]}
            for ref in marking_refs(version.content)
        ]
        withhold_rows += [
            {"object_pk": pk, "set_no": set_no, "label_id": label_id}
            for set_no, labels in enumerate(version.withhold_sets)
            for label_id in sorted({label_ids[spec] for spec in labels})
        ]
        reference_rows += [
            {"object_pk": pk, "prop": e.prop, "position": e.position, "group_no": e.group, "ref_id": e.ref_id}
            for e in named
        ]
    connection = session.connection()
    for table, values in (
        (ObjectMarkingRef.__table__, marking_rows),
        (ObjectWithhold.__table__, withhold_rows),
        (ObjectReference.__table__, reference_rows),
    ):
        insert_rows(connection, table, values)


def relabel(session: Session, labels: Mapping[int, int]) -> None:
    """Serve stored versions (pk -> label id) under other labels: the version row, and the label copy
    of its marking references, which decides whether the definitions it names are served beside it.
    Two statements, each run for every version (a batch of 1,000 was 2,000 round trips one by one)."""
    if not labels:
        return
    versions, refs = StixObject.__table__, ObjectMarkingRef.__table__
    params = [{"b_pk": pk, "b_label": label_id} for pk, label_id in sorted(labels.items())]
    connection = session.connection()
    connection.execute(
        update(versions).where(versions.c.pk == bindparam("b_pk")).values(label_id=bindparam("b_label")), params
    )
    connection.execute(
        update(refs).where(refs.c.object_pk == bindparam("b_pk")).values(label_id=bindparam("b_label")), params
    )

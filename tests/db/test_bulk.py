"""Bulk inserts (app.db.bulk): COPY on PostgreSQL, the driver's executemany on SQLite.

Each test runs in a transaction that is rolled back, so the shared database is left as it was.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.db.bulk import insert_rows
from app.items.models import ItemDerivation, StixObject
from app.markings.label_spec import LabelSpec
from app.markings.service import intern_labels

# Text COPY's own escapes (tab, newline, backslash, \N) and what JSON bodies hold.
AWKWARD = ["tab\there", "line\nbreak\r\n", "back\\slash", "\\N", "", "quote ' \" ", "naïve ✓ 日本", "x" * 250]


def test_rows_read_back_exactly(connection):
    rows = [{"derived_id": f"report--{i}-{text}", "source_id": text} for i, text in enumerate(AWKWARD)]
    insert_rows(connection, ItemDerivation.__table__, rows)
    table = ItemDerivation.__table__
    stored = connection.execute(select(table.c.derived_id, table.c.source_id).order_by(table.c.derived_id)).all()
    assert sorted((r["derived_id"], r["source_id"]) for r in rows) == [tuple(r) for r in stored]


def test_nulls_booleans_and_integers(app, connection, collection):
    with Session(bind=connection) as session:
        label_id = intern_labels(session, [LabelSpec(0, frozenset({"ALL"}), frozenset(), "NLD")], app.state.mappings)
    row: dict[str, Any] = {
        "collection_id": collection.id,
        "object_id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "type": "indicator",
        "spec_version": "2.1",
        "version_us": 2**53,
        "created_us": None,
        "date_added_us": 1,
        "label_id": next(iter(label_id.values())),
        "originator": "NLD",
        "submitter": "NLD",
        "has_granular": True,
        "granular": None,
        "has_refs": False,
        "body": '{"a": "tab\\t"}',
    }
    insert_rows(connection, StixObject.__table__, [row])
    table = StixObject.__table__
    stored = connection.execute(select(*(table.c[name] for name in row)).where(table.c.object_id == row["object_id"]))
    assert dict(stored.one()._mapping) == row


def test_a_refused_row_raises_as_sqlalchemy_would(connection):
    rows = [{"derived_id": "report--dup", "source_id": "report--a"}] * 2  # the primary key twice
    with pytest.raises(IntegrityError):
        insert_rows(connection, ItemDerivation.__table__, rows)


def test_listeners_hear_of_the_rows(app, connection):
    heard: list[tuple[Any, int]] = []

    def executed(_conn, clauseelement, multiparams, *_args) -> None:
        heard.append((getattr(clauseelement, "table", None), len(multiparams)))

    event.listen(app.state.engine, "after_execute", executed)
    try:
        insert_rows(
            connection, ItemDerivation.__table__, [{"derived_id": f"r--{i}", "source_id": "s"} for i in range(3)]
        )
        insert_rows(connection, ItemDerivation.__table__, [])  # nothing to insert: nothing executed
    finally:
        event.remove(app.state.engine, "after_execute", executed)
    assert heard == [(ItemDerivation.__table__, 3)]

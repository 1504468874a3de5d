"""Ingest with batched label interning (issue 7) keeps each version's date_added, SCO versions and labels."""

from __future__ import annotations

import uuid

import orjson
from sqlalchemy import select

from app.auth.principal import Principal
from app.items.models import StixObject
from app.markings.classification import TOP_RANK
from app.markings.labels import LabelSpec, label_marking_definition
from app.taxii import service
from tests.conftest import HOME

ANALYST = Principal("analyst-1", HOME, frozenset({"analyst"}), TOP_RANK, frozenset(), is_home=True)


def test_scos_in_one_envelope_get_their_own_date_added_as_version(app, session, collection):
    address = {"type": "ipv4-addr", "spec_version": "2.1", "id": f"ipv4-addr--{uuid.uuid4()}", "value": "192.0.2.1"}
    changed = address | {"value": "192.0.2.2"}  # same id, other content: a second version
    other = address | {"id": f"ipv4-addr--{uuid.uuid4()}", "value": "192.0.2.3"}
    status = service.add_objects(
        session, collection.id, ANALYST, [address, changed, other], mappings=app.state.mappings, home_nation=HOME
    )
    assert (status.success_count, status.failure_count) == (3, 0), orjson.loads(status.details)
    rows = session.execute(
        select(StixObject.object_id, StixObject.version_us, StixObject.date_added_us)
        .where(StixObject.collection_id == collection.id)
        .order_by(StixObject.date_added_us)
    ).all()
    assert [row.object_id for row in rows] == [address["id"], address["id"], other["id"]]
    assert all(row.version_us == row.date_added_us for row in rows)
    assert len({row.date_added_us for row in rows}) == 3
    # Resubmitting the same envelope is three exact duplicates, nothing new.
    again = service.add_objects(
        session, collection.id, ANALYST, [address, changed, other], mappings=app.state.mappings, home_nation=HOME
    )
    assert (again.success_count, again.failure_count) == (3, 0)
    assert session.execute(select(StixObject.pk).where(StixObject.collection_id == collection.id)).all().__len__() == 3


def test_many_labels_in_one_envelope_are_interned_once_each(app, session, collection):
    mappings = app.state.mappings
    specs = [
        LabelSpec(rank % 4, frozenset({code}), frozenset(), HOME)
        for rank, code in enumerate(["USA", "GBR", "FRA", "DEU", "CAN", "AUS"])
    ]
    definitions = [label_marking_definition(spec, mappings) for spec in specs]
    notes = [
        {
            "type": "note",
            "spec_version": "2.1",
            "id": f"note--{uuid.uuid4()}",
            "created": "2025-01-01T00:00:00.000Z",
            "modified": "2025-01-01T00:00:00.000Z",
            "content": "n",
            "object_refs": [definition["id"]],
            "object_marking_refs": [definition["id"]],
        }
        for definition in definitions
        for _ in range(3)
    ]
    status = service.add_objects(
        session, collection.id, ANALYST, definitions + notes, mappings=mappings, home_nation=HOME
    )
    assert (status.success_count, status.failure_count) == (len(definitions) + len(notes), 0)
    by_ref = {d["id"]: d for d in definitions}
    rows = session.execute(
        select(StixObject.body, StixObject.label_id).where(
            StixObject.collection_id == collection.id, StixObject.type == "note"
        )
    ).all()
    label_of_definition = dict(
        session.execute(
            select(StixObject.object_id, StixObject.label_id).where(
                StixObject.collection_id == collection.id, StixObject.type == "marking-definition"
            )
        ).all()
    )
    # Each note carries the label of the definition it is marked with, the definition its own.
    assert len(set(label_of_definition.values())) == len(specs)
    for body, label_id in rows:
        ref = orjson.loads(body)["object_marking_refs"][0]
        assert ref in by_ref and label_id == label_of_definition[ref]

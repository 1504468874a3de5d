"""The shortcuts ingest and serving take (issue 7) give exactly the results of the long way."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import func, select

from app.markings.granular import redact
from app.markings.labels import LabelSpec, UnknownToken, label_marking_definition
from app.markings.mappings import load_mappings
from app.markings.models import Label
from app.markings.service import intern_label, intern_labels
from app.markings.stix_markings import definition_label
from tests.markings.conftest import HOME, MAPPINGS_DIR
from tests.markings.test_granular import SECRET, indicator


@pytest.fixture
def fresh_mappings():
    return load_mappings(MAPPINGS_DIR)


def test_definition_label_is_derived_once_per_definition_and_originator(fresh_mappings):
    definition = label_marking_definition(LabelSpec(2, frozenset({"USA"}), frozenset(), HOME), fresh_mappings)
    first = definition_label(definition, originator=HOME, mappings=fresh_mappings)
    assert len(fresh_mappings.definition_labels) == 1
    assert definition_label(dict(definition), originator=HOME, mappings=fresh_mappings) == first
    assert len(fresh_mappings.definition_labels) == 1
    # Tables built differently (as the visibility cache does with partner groups) start with no memo.
    assert dataclasses.replace(fresh_mappings, groups=dict(fresh_mappings.groups)).definition_labels == {}


def test_an_edited_definition_is_labelled_again_and_refusals_are_not_remembered(fresh_mappings):
    definition = label_marking_definition(LabelSpec(2, frozenset({"USA"}), frozenset(), HOME), fresh_mappings)
    definition_label(definition, originator=HOME, mappings=fresh_mappings)
    extension = definition["extensions"][fresh_mappings.label_extension_id]
    bad = definition | {"extensions": {fresh_mappings.label_extension_id: extension | {"releasable_to": ["XXX"]}}}
    for _ in range(2):
        with pytest.raises(UnknownToken, match="XXX"):
            definition_label(bad, originator=HOME, mappings=fresh_mappings)
    assert len(fresh_mappings.definition_labels) == 1


def test_redaction_known_valid_gives_the_same_copy():
    obj = indicator(granular_markings=[{"marking_ref": SECRET, "selectors": ["description", "labels.[0]"]}])
    assert redact(obj, {SECRET}, parsed_valid=True) == redact(obj, {SECRET})


def test_redaction_known_valid_still_withholds_an_emptied_required_property():
    obj = indicator(granular_markings=[{"marking_ref": SECRET, "selectors": ["pattern"]}])
    assert redact(obj, {SECRET}, parsed_valid=True) is None


def test_intern_labels_batch_matches_one_by_one(session, mappings):
    specs = [LabelSpec(rank, frozenset({"USA"}), frozenset(), HOME) for rank in range(4)]
    known = intern_label(session, specs[0], mappings)
    ids = intern_labels(session, [*specs, specs[1]], mappings)
    assert set(ids) == set(specs) and ids[specs[0]] == known
    assert len(set(ids.values())) == 4
    assert all(intern_label(session, spec, mappings) == ids[spec] for spec in specs)
    assert session.execute(select(func.count()).select_from(Label).where(Label.id.in_(ids.values()))).scalar() == 4
    session.rollback()

"""Granular redaction: hidden properties go, selectors of the rest are kept right, invalid copies are withheld."""

from __future__ import annotations

import copy

import pytest
from stix2validator import ValidationOptions, validate_instance

from app.markings.granular import redact, required_properties

SECRET = "marking-definition--22222222-2222-4222-8222-222222222222"
OTHER = "marking-definition--33333333-3333-4333-8333-333333333333"


def indicator(**extra) -> dict:
    base = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--11111111-1111-4111-8111-111111111111",
        "created": "2024-01-01T00:00:00.000Z",
        "modified": "2024-01-01T00:00:00.000Z",
        "pattern": "[ipv4-addr:value = '192.0.2.1']",
        "pattern_type": "stix",
        "valid_from": "2024-01-01T00:00:00Z",
        "description": "secret details",
        "labels": ["a", "b", "c"],
    }
    return base | extra


def test_nothing_hidden_returns_the_object_itself():
    obj = indicator(granular_markings=[{"marking_ref": SECRET, "selectors": ["description"]}])
    assert redact(obj, {OTHER}) is obj


def test_hidden_properties_and_their_marking_are_removed_and_the_original_is_untouched():
    obj = indicator(
        granular_markings=[
            {"marking_ref": SECRET, "selectors": ["description", "labels.[0]"]},
            {"marking_ref": OTHER, "selectors": ["labels.[2]", "name"]},
        ],
        name="kept",
    )
    original = copy.deepcopy(obj)
    served = redact(obj, {SECRET})
    assert obj == original
    assert "description" not in served and served["labels"] == ["b", "c"]
    # The kept marking still points at "c", now at index 1.
    assert served["granular_markings"] == [{"marking_ref": OTHER, "selectors": ["labels.[1]", "name"]}]
    assert validate_instance(served, ValidationOptions(version="2.1")).is_valid


def test_nested_selectors():
    obj = indicator(
        external_references=[
            {"source_name": "a", "url": "https://example.org/a", "description": "d"},
            {"source_name": "b", "external_id": "B-1"},
        ],
        granular_markings=[{"marking_ref": SECRET, "selectors": ["external_references.[0].url"]}],
    )
    served = redact(obj, {SECRET})
    assert served["external_references"] == [
        {"source_name": "a", "description": "d"},
        {"source_name": "b", "external_id": "B-1"},
    ]
    # Without the description the reference would be invalid STIX (no url, description or external_id).
    del obj["external_references"][0]["description"]
    assert redact(obj, {SECRET}) is None


@pytest.mark.parametrize("selector", ["pattern", "id", "created", "pattern_type"])
def test_a_required_property_withholds_the_version(selector):
    obj = indicator(granular_markings=[{"marking_ref": SECRET, "selectors": [selector]}])
    assert redact(obj, {SECRET}) is None


def test_emptying_a_required_list_withholds_the_version():
    report = {
        "type": "report",
        "spec_version": "2.1",
        "id": "report--44444444-4444-4444-8444-444444444444",
        "created": "2024-01-01T00:00:00.000Z",
        "modified": "2024-01-01T00:00:00.000Z",
        "name": "r",
        "published": "2024-01-01T00:00:00Z",
        "object_refs": [indicator()["id"]],
        "granular_markings": [{"marking_ref": SECRET, "selectors": ["object_refs.[0]"]}],
    }
    assert "object_refs" in required_properties("report")
    assert redact(report, {SECRET}) is None

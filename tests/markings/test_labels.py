"""Banners: parsing, canonical form, deterministic ids and marking definitions, combining labels."""

from __future__ import annotations

import uuid

import pytest
import stix2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stix2validator import ValidationOptions, validate_instance

from app.markings.labels import (
    ALL,
    LABEL_NAMESPACE,
    LabelSpec,
    UnknownToken,
    canonical_banner,
    label_marking_definition,
    label_marking_id,
    most_restrictive,
    parse_banner,
)
from app.markings.mappings import load_mappings
from tests.markings.conftest import HOME, MAPPINGS_DIR

U, R, C, S, TS = range(5)


def spec(rank, rel=(), caveats=(), originator=HOME):
    return LabelSpec(rank, frozenset(rel), frozenset(caveats), originator)


# --- parsing ------------------------------------------------------------------------------

PARSES = [
    # DESIGN.md examples
    ("SECRET//REL TO USA, GBR", spec(S, {"USA", "GBR"}), "SECRET//REL TO NLD, GBR, USA"),
    (
        "SECRET//REL TO USA, GBR, FVEY//NOFORN",
        spec(S, {"USA", "GBR", "FVEY"}, {"NOFORN"}),
        "SECRET//REL TO NLD, GBR, USA, FVEY//NOFORN",
    ),
    ("SECRET//NOFORN", spec(S, (), {"NOFORN"}), "SECRET//REL TO NLD//NOFORN"),
    ("SECRET", spec(S), "SECRET//REL TO NLD"),
    # national and alliance names
    ("GEHEIM//REL TO DEU, FRA", spec(S, {"DEU", "FRA"}), "SECRET//REL TO NLD, DEU, FRA"),
    ("NATO SECRET", spec(S), "SECRET//REL TO NLD"),
    ("SECRET UE/EU SECRET", spec(S), "SECRET//REL TO NLD"),
    ("SECRET UE/EU SECRET//REL TO EU", spec(S, {"EU"}), "SECRET//REL TO NLD, EU"),
    ("TRÈS SECRET UE/EU TOP SECRET//REL TO FRA", spec(TS, {"FRA"}), "TOP SECRET//REL TO NLD, FRA"),
    ("Stg. CONFIDENTIEEL//REL TO NATO", spec(C, {"NATO"}), "CONFIDENTIAL//REL TO NLD, NATO"),
    ("OFFICIAL-SENSITIVE//REL TO GBR", spec(R, {"GBR"}), "RESTRICTED//REL TO NLD, GBR"),
    # spacing, case, separators
    (
        "  secret //  rel to usa,gbr ,  fvey // noforn ",
        spec(S, {"USA", "GBR", "FVEY"}, {"NOFORN"}),
        "SECRET//REL TO NLD, GBR, USA, FVEY//NOFORN",
    ),
    ("top secret//rel to usa gbr", spec(TS, {"USA", "GBR"}), "TOP SECRET//REL TO NLD, GBR, USA"),
    ("U//REL TO ALL", spec(U, {ALL}), "UNCLASSIFIED//REL TO NLD, ALL"),
    (
        "S//REL TO NATO, FVEY, ALL, DEU, AUS",
        spec(S, {"NATO", "FVEY", ALL, "DEU", "AUS"}),
        "SECRET//REL TO NLD, AUS, DEU, FVEY, NATO, ALL",
    ),
    # the originator in REL TO is implied and dropped
    ("SECRET//REL TO NLD, USA", spec(S, {"USA"}), "SECRET//REL TO NLD, USA"),
    ("SECRET//REL TO NLD", spec(S), "SECRET//REL TO NLD"),
]


@pytest.mark.parametrize(("banner", "expected", "canonical"), PARSES)
def test_parse_and_format(mappings, banner, expected, canonical):
    parsed = parse_banner(banner, originator=HOME, mappings=mappings)
    assert parsed == expected
    assert canonical_banner(parsed, mappings) == canonical
    assert parse_banner(canonical, originator=HOME, mappings=mappings) == expected


def test_partner_originator_comes_first(mappings):
    parsed = parse_banner("SECRET//REL TO NLD, USA, FVEY", originator="GBR", mappings=mappings)
    assert parsed == spec(S, {"NLD", "USA", "FVEY"}, originator="GBR")
    assert canonical_banner(parsed, mappings) == "SECRET//REL TO GBR, NLD, USA, FVEY"


@pytest.mark.parametrize(
    ("banner", "kind", "token"),
    [
        ("SECRT//REL TO USA", "classification", "SECRT"),
        ("", "classification", ""),
        ("SECRET//REL TO USA, XYZ", "country or group code", "XYZ"),
        ("SECRET//REL TO USA, FVEYS", "country or group code", "FVEYS"),
        ("SECRET//ORCON", "caveat", "ORCON"),
        ("SECRET//NOFORN/ORCON", "caveat", "ORCON"),
        ("SECRET//REL TO USA//GBR", "caveat", "GBR"),
        ("SECRET//REL TO", "banner segment", "REL TO"),
        ("SECRET////NOFORN", "banner segment", ""),
        ("SECRET//REL TO USA//REL TO GBR", "banner segment", "REL TO GBR"),
        ("SECRETO//REL TO ESP", "classification", "SECRETO"),
    ],
)
def test_unknown_tokens_are_named(mappings, banner, kind, token):
    with pytest.raises(UnknownToken) as caught:
        parse_banner(banner, originator=HOME, mappings=mappings)
    assert caught.value.kind == kind
    assert caught.value.token == token
    assert repr(token) in str(caught.value)


def test_unknown_originator_is_named(mappings):
    with pytest.raises(UnknownToken, match="XXA"):
        parse_banner("SECRET", originator="XXA", mappings=mappings)


def test_caveats_sorted_and_joined_by_slash(mappings_copy, edit_json):
    edit_json(
        mappings_copy / "codes" / "caveats.json", lambda d: d["caveats"].__setitem__("EYESONLY", {"rule": "home_only"})
    )
    extended = load_mappings(mappings_copy)
    parsed = parse_banner("SECRET//REL TO USA//NOFORN/EYESONLY", originator=HOME, mappings=extended)
    assert parsed.caveats == {"NOFORN", "EYESONLY"}
    assert canonical_banner(parsed, extended) == "SECRET//REL TO NLD, USA//EYESONLY/NOFORN"
    # Caveats in separate segments are accepted too.
    assert parse_banner("SECRET//REL TO USA//NOFORN//EYESONLY", originator=HOME, mappings=extended) == parsed


# --- ids and marking definitions ------------------------------------------------------------


def test_label_id_is_uuid5_of_the_banner_under_the_fixed_namespace():
    banner = "SECRET//REL TO NLD, GBR, USA"
    assert label_marking_id(banner) == f"marking-definition--{uuid.uuid5(LABEL_NAMESPACE, banner)}"
    # Pinned: every Tearline instance, now and later, must derive this exact id.
    assert uuid.UUID("cb2d5dd4-3554-4528-9ad4-f1635f2e3da5") == LABEL_NAMESPACE
    assert label_marking_id(banner) == "marking-definition--51b7f5da-aa6e-51f5-af97-234828c6d9c6"


def test_two_instances_agree_on_the_id(mappings):
    other_instance = load_mappings(MAPPINGS_DIR)
    here = parse_banner("SECRET//REL TO GBR, USA", originator=HOME, mappings=mappings)
    there = parse_banner("secret // rel to usa,gbr", originator=HOME, mappings=other_instance)
    assert label_marking_definition(here, mappings) == label_marking_definition(there, other_instance)


@pytest.mark.parametrize("banner", [p[0] for p in PARSES])
def test_marking_definition_is_valid_stix(mappings, banner):
    label = parse_banner(banner, originator=HOME, mappings=mappings)
    definition = label_marking_definition(label, mappings)
    assert definition["id"] == label_marking_id(canonical_banner(label, mappings))
    assert definition["name"] == canonical_banner(label, mappings)
    assert definition["created"] == "2020-01-01T00:00:00.000Z"
    extension = definition["extensions"][mappings.label_extension_id]
    assert extension["classification"] == mappings.rank_names[label.rank]
    assert set(extension.get("releasable_to", [])) == label.releasable_to
    assert extension["originator"] == HOME
    assert list(mappings.label_extension_validator.iter_errors(extension)) == []

    results = validate_instance(definition, ValidationOptions(version="2.1"))
    assert results.is_valid, [str(e) for e in results.errors]
    parsed = stix2.parse(definition, allow_custom=True)
    assert parsed.id == definition["id"]
    assert label_marking_definition(label, mappings) == definition  # deterministic


def test_extension_definition_and_identity_are_valid_stix(mappings):
    for obj in (mappings.label_extension_identity, mappings.label_extension_definition):
        results = validate_instance(obj, ValidationOptions(version="2.1"))
        assert results.is_valid, [str(e) for e in results.errors]
        stix2.parse(obj, allow_custom=True)
    assert mappings.label_extension_definition["extension_types"] == ["property-extension"]
    assert mappings.label_extension_definition["version"] == "1.0.0"


# --- properties -----------------------------------------------------------------------------

TRIGRAPHS = ["NLD", "USA", "GBR", "FRA", "DEU", "CAN", "AUS", "NZL", "BEL", "ESP", "POL", "JPN", "KOR", "UKR"]
GROUP_CODES = ["FVEY", "ACGU", "NATO", "EU"]


@st.composite
def labels(draw):
    originator = draw(st.sampled_from(TRIGRAPHS))
    codes = draw(st.frozensets(st.sampled_from(TRIGRAPHS + GROUP_CODES + [ALL]), max_size=8))
    return LabelSpec(
        rank=draw(st.integers(0, 4)),
        releasable_to=codes - {originator},
        caveats=draw(st.frozensets(st.just("NOFORN"))),
        originator=originator,
    )


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(label=labels(), lower=st.booleans())
def test_round_trip_is_stable(mappings, label, lower):
    banner = canonical_banner(label, mappings)
    written = banner.lower().replace(", ", " ,  ") if lower else banner
    again = parse_banner(written, originator=label.originator, mappings=mappings)
    assert again == label
    assert canonical_banner(again, mappings) == banner
    assert label_marking_id(canonical_banner(again, mappings)) == label_marking_id(banner)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(labels(), min_size=1, max_size=4), st.sampled_from(TRIGRAPHS))
def test_most_restrictive_properties(mappings, drawn, originator):
    specs = [LabelSpec(s.rank, s.releasable_to - {originator}, s.caveats, originator) for s in drawn]
    combined = most_restrictive(specs, mappings)
    assert combined.rank == max(s.rank for s in specs)
    assert combined.caveats == frozenset().union(*(s.caveats for s in specs))
    assert originator not in combined.releasable_to
    expanded = [mappings.expand(s.releasable_to) for s in specs]
    finite = [e | {originator} for e in expanded if e is not None]
    result = mappings.expand(combined.releasable_to)
    if finite:
        assert result is not None
        assert result | {originator} == frozenset.intersection(*finite)
    else:
        assert result is None
    if len(specs) > 1:  # (a single label is returned as written, not normalised)
        assert most_restrictive([combined, *specs], mappings) == combined  # absorbing: combining again changes nothing


# --- most restrictive -----------------------------------------------------------------------


def test_most_restrictive_examples(mappings):
    fvey = spec(S, {"FVEY"})
    nato = spec(C, {"NATO"}, {"NOFORN"})
    assert most_restrictive([fvey, nato], mappings) == spec(S, {"USA", "GBR", "CAN"}, {"NOFORN"})
    assert most_restrictive([fvey, spec(U, {"ACGU"})], mappings) == spec(S, {"ACGU"})
    assert most_restrictive([fvey, spec(U, {ALL})], mappings) == spec(S, {"FVEY"})
    assert most_restrictive([spec(U, {ALL}), spec(R, {ALL})], mappings) == spec(R, {ALL})
    assert most_restrictive([spec(S, {"USA"}), spec(S, {"DEU"})], mappings) == spec(S)
    assert most_restrictive([spec(S, {"NATO"}), spec(S, {"NATO"})], mappings) == spec(S, {"NATO"})
    # the originator is implied in every label, so it never narrows anything away
    assert most_restrictive([spec(S, {"EU"}), spec(S, {"DEU", "FRA"})], mappings) == spec(S, {"DEU", "FRA"})
    single = spec(S, {"FVEY", "USA"})
    assert most_restrictive([single], mappings) is single


def test_most_restrictive_needs_one_originator(mappings):
    with pytest.raises(ValueError, match="GBR, NLD"):
        most_restrictive([spec(S), spec(S, originator="GBR")], mappings)
    with pytest.raises(ValueError):
        most_restrictive([], mappings)

"""STIX markings to labels: own extension, banner statements, TLP 1.0/2.0, ACS 3.0 (DESIGN.md 2-3)."""

from __future__ import annotations

import copy

import pytest
import stix2

from app.markings.labels import (
    ALL,
    LabelSpec,
    UnknownToken,
    label_marking_definition,
    parse_banner,
)
from app.markings.stix_markings import definition_label, object_label
from tests.markings.conftest import HOME, load_fixture

U, R, C, S, TS = range(5)
ACS = "extension-definition--3a65884d-005a-4290-8335-cb2d778a83ce"
TLP2 = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
TLP1 = {
    "white": stix2.v21.TLP_WHITE.id,
    "green": stix2.v21.TLP_GREEN.id,
    "amber": stix2.v21.TLP_AMBER.id,
    "red": stix2.v21.TLP_RED.id,
}


def spec(rank, rel=(), caveats=(), originator=HOME):
    return LabelSpec(rank, frozenset(rel), frozenset(caveats), originator)


def label(mappings, refs, definitions=(), originator=HOME, **extra):
    obj = {"type": "indicator", "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", **extra}
    if refs is not None:
        obj["object_marking_refs"] = list(refs)
    defs = {d["id"]: d for d in definitions}
    return object_label(obj, originator=originator, definitions=defs, mappings=mappings, home_nation=HOME)


def statement(text, marking_id="marking-definition--2f3c4a5b-6d7e-4f80-9a1b-2c3d4e5f6a7b"):
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": marking_id,
        "created": "2024-01-01T00:00:00.000Z",
        "definition_type": "statement",
        "definition": {"statement": text},
    }


def acs(control_set, access_privilege=None, marking_id="marking-definition--0c5a1f7e-5b2e-4a39-9d1a-3f9e8c7b6a50"):
    ext = {"extension_type": "property-extension", "control_set": control_set}
    if access_privilege is not None:
        ext["access_privilege"] = access_privilege
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": marking_id,
        "created": "2024-01-01T00:00:00.000Z",
        "extensions": {ACS: ext},
    }


# --- defaults and TLP (DESIGN.md section 2) ---------------------------------------------------


def test_unmarked_object_is_originator_only(mappings):
    assert label(mappings, None) == spec(U)
    assert label(mappings, []) == spec(U)
    assert label(mappings, None, originator="USA") == spec(U, originator="USA")


@pytest.mark.parametrize(("level", "marking_id"), [*TLP1.items(), *TLP2.items()])
def test_tlp_alone_decides(mappings, level, marking_id):
    expected = spec(U, {ALL}) if level in ("white", "clear", "green") else spec(U)
    assert label(mappings, [marking_id]) == expected  # no definition needed: known by its fixed id
    assert definition_label(mappings.tlp[marking_id][1], originator=HOME, mappings=mappings) is None


def test_mixed_tlp_takes_the_strictest(mappings):
    assert label(mappings, [TLP2["green"], TLP1["white"]]) == spec(U, {ALL})
    assert label(mappings, [TLP2["green"], TLP2["amber"]]) == spec(U)


def test_tlp_beside_a_classification_narrows_and_widens_nothing(mappings):
    secret = statement("SECRET//REL TO USA, GBR")
    assert label(mappings, [TLP2["red"], secret["id"]], [secret]) == spec(S, {"USA", "GBR"})
    confidential = statement("CONFIDENTIAL")
    assert label(mappings, [TLP2["clear"], confidential["id"]], [confidential]) == spec(C)


def test_tlp_lookalike_with_another_id_is_unknown(mappings):
    fake = {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": "marking-definition--11111111-2222-4333-8444-555555555555",
        "created": "2024-01-01T00:00:00.000Z",
        "definition_type": "tlp",
        "definition": {"tlp": "white"},
    }
    with pytest.raises(UnknownToken, match=fake["id"]):
        label(mappings, [fake["id"]], [fake])


# --- statement banners ------------------------------------------------------------------------


def test_statement_banner(mappings):
    marking = statement("SECRET//REL TO USA, GBR")  # the DESIGN.md section 3 example
    assert label(mappings, [marking["id"]], [marking]) == spec(S, {"USA", "GBR"})
    assert definition_label(marking, originator="USA", mappings=mappings) == spec(S, {"GBR"}, originator="USA")


def test_statement_that_is_not_a_banner_is_an_unknown_marking(mappings):
    marking = statement("Copyright 2024 Example Corp.")
    with pytest.raises(UnknownToken) as caught:
        label(mappings, [marking["id"]], [marking])
    assert caught.value.kind == "marking definition"
    assert caught.value.token == marking["id"]
    assert "Copyright 2024" in str(caught.value)


def test_banner_statement_with_an_unknown_code_names_the_code(mappings):
    marking = statement("SECRET//REL TO USA, QQQ")
    with pytest.raises(UnknownToken, match="QQQ"):
        label(mappings, [marking["id"]], [marking])


def test_unknown_reference_names_the_id(mappings):
    missing = "marking-definition--deadbeef-0000-4000-8000-000000000000"
    with pytest.raises(UnknownToken, match=missing) as caught:
        label(mappings, [TLP2["green"], missing])
    assert caught.value.token == missing


def test_unknown_kind_of_definition_is_refused(mappings):
    odd = {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": "marking-definition--6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d",
        "created": "2024-01-01T00:00:00.000Z",
        "extensions": {
            "extension-definition--00000000-1111-4222-8333-444444444444": {"extension_type": "property-extension"}
        },
    }
    with pytest.raises(UnknownToken, match=odd["id"]):
        definition_label(odd, originator=HOME, mappings=mappings)


def test_granular_markings_do_not_decide_the_object_label(mappings):
    granular = [{"marking_ref": "marking-definition--deadbeef-0000-4000-8000-000000000000", "selectors": ["pattern"]}]
    assert label(mappings, [TLP2["green"]], granular_markings=granular) == spec(U, {ALL})


# --- Tearline's own extension -----------------------------------------------------------------


def test_own_label_definition_round_trips(mappings):
    original = parse_banner("SECRET//REL TO USA, GBR, FVEY//NOFORN", originator=HOME, mappings=mappings)
    definition = label_marking_definition(original, mappings)
    assert definition_label(definition, originator=HOME, mappings=mappings) == original
    assert label(mappings, [definition["id"]], [definition]) == original


def test_own_label_keeps_its_own_originator(mappings):
    # A partner (GBR) forwards an item whose label says it was produced by USA.
    us_label = parse_banner("SECRET//REL TO GBR, NLD", originator="USA", mappings=mappings)
    definition = label_marking_definition(us_label, mappings)
    assert definition_label(definition, originator="GBR", mappings=mappings) == us_label


def test_own_label_without_originator_takes_the_given_one(mappings):
    definition = label_marking_definition(spec(C, {"DEU"}), mappings)
    del definition["extensions"][mappings.label_extension_id]["originator"]
    assert definition_label(definition, originator="FRA", mappings=mappings) == spec(C, {"DEU"}, originator="FRA")


def test_own_label_with_originator_only_omits_empty_lists(mappings):
    definition = label_marking_definition(spec(TS), mappings)
    extension = definition["extensions"][mappings.label_extension_id]
    assert "releasable_to" not in extension and "caveats" not in extension
    assert definition_label(definition, originator=HOME, mappings=mappings) == spec(TS)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e.__setitem__("classification", "SEKRIT"), "classification"),
        (lambda e: e.pop("classification"), "classification"),
        (lambda e: e.__setitem__("releasable_to", "USA"), "releasable_to"),
        (lambda e: e.__setitem__("releasable_to", []), "releasable_to"),
        (lambda e: e.__setitem__("colour", "red"), "colour"),
    ],
)
def test_invalid_own_extension_is_refused_by_the_schema(mappings, change, message):
    definition = label_marking_definition(spec(S, {"USA"}), mappings)
    change(definition["extensions"][mappings.label_extension_id])
    with pytest.raises(UnknownToken, match=message) as caught:
        definition_label(definition, originator=HOME, mappings=mappings)
    assert caught.value.token == definition["id"]


@pytest.mark.parametrize(
    ("field", "value", "token"),
    [("releasable_to", ["USA", "QQQ"], "QQQ"), ("caveats", ["ORCON"], "ORCON"), ("originator", "QQQ", "QQQ")],
)
def test_unknown_codes_in_own_extension_are_named(mappings, field, value, token):
    definition = label_marking_definition(spec(S, {"USA"}), mappings)
    definition["extensions"][mappings.label_extension_id][field] = value
    with pytest.raises(UnknownToken) as caught:
        definition_label(definition, originator=HOME, mappings=mappings)
    assert caught.value.token == token


# --- ACS 3.0 (shared/stix-fixtures README) ---------------------------------------------------


def _acs_definitions(name):
    bundle = load_fixture(name)
    return bundle, {o["id"]: o for o in bundle["objects"] if o["type"] == "marking-definition"}


def test_acs_use_case_1_top_secret_no_partner(mappings):
    _, definitions = _acs_definitions("acs-spec-use-case-1.json")
    (definition,) = definitions.values()
    assert definition_label(definition, originator="USA", mappings=mappings) == spec(TS, originator="USA")


def test_acs_use_case_2_unclassified_every_partner(mappings):
    _, definitions = _acs_definitions("acs-spec-use-case-2.json")
    (definition,) = definitions.values()
    assert definition_label(definition, originator="USA", mappings=mappings) == spec(U, {ALL}, originator="USA")


def test_acs_use_case_3_per_object(mappings):
    bundle, definitions = _acs_definitions("acs-spec-use-case-3.json")
    labels = {
        obj["id"]: object_label(obj, originator="USA", definitions=definitions, mappings=mappings, home_nation=HOME)
        for obj in bundle["objects"]
        if obj["type"] != "marking-definition"
    }
    assert labels["threat-actor--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"] == spec(S, originator="USA")  # S: home only
    assert labels["ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd"] == spec(U, {ALL}, originator="USA")  # U//PUBREL
    assert labels["report--eff11c91-12da-4bec-ac82-285d1efc0cf6"] == spec(U, originator="USA")  # unmarked


def test_acs_nationalities_in_control_set_and_scopes(mappings):
    in_control = acs({"classification": "C", "permitted_nationalities": ["USA", "GBR", "NLD"]})
    assert definition_label(in_control, originator=HOME, mappings=mappings) == spec(C, {"USA", "GBR"})
    scoped = acs(
        {"classification": "S"},
        [
            {
                "privilege_action": "DSPLY",
                "rule_effect": "permit",
                "privilege_scope": {"permitted_nationalities": ["CAN"], "entity": ["GOV"]},
            },
            {
                "privilege_action": "INTEL",
                "rule_effect": "permit",
                "privilege_scope": {"permitted_nationalities": ["AUS"]},
            },
            {
                "privilege_action": "DSPLY",
                "rule_effect": "deny",
                "privilege_scope": {"permitted_nationalities": ["ALL"]},
            },
        ],
    )
    assert definition_label(scoped, originator=HOME, mappings=mappings) == spec(S, {"CAN", "AUS"})


def test_acs_entity_and_organisation_scopes_release_to_no_partner(mappings):
    definition = acs(
        {"classification": "U", "entity": ["GOV", "MIL"]},
        [
            {
                "privilege_action": "DSPLY",
                "rule_effect": "permit",
                "privilege_scope": {"entity": ["ALL"], "permitted_organizations": ["ALL"], "shareability": ["ALL"]},
            },
        ],
    )
    assert definition_label(definition, originator=HOME, mappings=mappings) == spec(U)


def test_acs_formal_determinations(mappings):
    noforn = acs({"classification": "S", "formal_determination": ["NF", "AIS"], "permitted_nationalities": ["USA"]})
    assert definition_label(noforn, originator=HOME, mappings=mappings) == spec(S, {"USA"}, {"NOFORN"})
    pubrel = acs({"classification": "U", "formal_determination": ["PUBREL"]})
    assert definition_label(pubrel, originator=HOME, mappings=mappings) == spec(U, {ALL})
    fouo = acs({"classification": "U", "formal_determination": ["FOUO"]})
    assert definition_label(fouo, originator=HOME, mappings=mappings) == spec(U)
    # A lone string where ACS expects a list must not be read letter by letter.
    lone = acs({"classification": "S", "formal_determination": "NF", "permitted_nationalities": "USA"})
    assert definition_label(lone, originator=HOME, mappings=mappings) == spec(S, {"USA"}, {"NOFORN"})


@pytest.mark.parametrize(
    ("control_set", "token"),
    [
        ({"classification": "R"}, "R"),
        ({}, "None"),
        ({"classification": "S", "permitted_nationalities": ["QQQ"]}, "QQQ"),
    ],
)
def test_acs_unknown_values_are_named(mappings, control_set, token):
    with pytest.raises(UnknownToken) as caught:
        definition_label(acs(control_set), originator=HOME, mappings=mappings)
    assert caught.value.token == token


# --- several markings: most restrictive wins -------------------------------------------------


def test_most_restrictive_across_kinds(mappings):
    banner = statement("CONFIDENTIAL//REL TO USA, GBR, DEU")
    us_acs = acs(
        {"classification": "S", "formal_determination": ["NF"], "permitted_nationalities": ["USA", "GBR", "FRA"]}
    )
    own = label_marking_definition(spec(R, {"FVEY", "DEU"}), mappings)
    refs = [banner["id"], us_acs["id"], own["id"], TLP2["clear"]]
    assert label(mappings, refs, [banner, us_acs, own]) == spec(S, {"USA", "GBR"}, {"NOFORN"})


def test_markings_of_different_originators_cannot_be_combined(mappings):
    us_spec = parse_banner("SECRET//REL TO NLD", originator="USA", mappings=mappings)
    us_label = label_marking_definition(us_spec, mappings)
    banner = statement("SECRET//REL TO USA")
    with pytest.raises(ValueError, match="NLD, USA"):
        label(mappings, [us_label["id"], banner["id"]], [us_label, banner])


def test_inputs_are_not_modified(mappings):
    marking = acs({"classification": "S", "permitted_nationalities": ["USA"]})
    obj = {
        "type": "indicator",
        "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "object_marking_refs": [marking["id"]],
    }
    before = copy.deepcopy((obj, marking))
    object_label(obj, originator=HOME, definitions={marking["id"]: marking}, mappings=mappings, home_nation=HOME)
    assert (obj, marking) == before


def test_unknown_home_nation_is_refused(mappings):
    with pytest.raises(UnknownToken, match="XXA"):
        object_label({"type": "indicator"}, originator=HOME, definitions={}, mappings=mappings, home_nation="XXA")

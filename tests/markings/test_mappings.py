"""The tables in stix_mappings/ load, validate, and refuse corrupted copies with the file named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import stix2

from app.markings.labels import ALL, UnknownToken
from app.markings.mappings import MappingError, load_mappings
from tests.markings.conftest import MAPPINGS_DIR


def _national(root: Path) -> Path:
    return root / "classifications" / "national"


def test_tables_load(mappings):
    assert mappings.rank_names == ("UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL", "SECRET", "TOP SECRET")
    assert len(mappings.countries) == 249
    assert {"NLD", "USA", "GBR", "FRA", "DEU", "CAN", "AUS", "NZL"} <= mappings.countries
    assert mappings.caveats == {"NOFORN": "home_only"}
    assert len(mappings.tlp) == 9
    assert mappings.label_extension_id.startswith("extension-definition--")
    assert mappings.acs["extension_definition_id"] == "extension-definition--3a65884d-005a-4290-8335-cb2d778a83ce"


def test_every_data_file_describes_itself():
    for path in MAPPINGS_DIR.rglob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data.get("description"), path
        assert data.get("source") or path.name.endswith(".schema.json") or "$id" in data, path


def test_groups(mappings):
    assert mappings.groups["FVEY"] == {"USA", "GBR", "CAN", "AUS", "NZL"}
    assert mappings.groups["ACGU"] == {"AUS", "CAN", "GBR", "USA"}
    assert len(mappings.groups["NATO"]) == 32
    assert {"FIN", "SWE", "TUR", "USA", "NLD"} <= mappings.groups["NATO"]
    assert len(mappings.groups["EU"]) == 27
    assert "GBR" not in mappings.groups["EU"]
    for members in mappings.groups.values():
        assert members <= mappings.countries


def test_expand(mappings):
    assert mappings.expand(["FVEY", "DEU"]) == {"USA", "GBR", "CAN", "AUS", "NZL", "DEU"}
    assert mappings.expand(["usa", " gbr "]) == {"USA", "GBR"}
    assert mappings.expand([]) == frozenset()
    assert mappings.expand(["USA", ALL]) is None
    with pytest.raises(UnknownToken, match="XYZ") as caught:
        mappings.expand(["USA", "XYZ"])
    assert caught.value.token == "XYZ"


def test_rank_of_names_unknown_token(mappings):
    with pytest.raises(UnknownToken, match="SUPER SECRET") as caught:
        mappings.rank_of("SUPER SECRET")
    assert caught.value.kind == "classification"


def test_tlp_ids_are_the_fixed_ones(mappings):
    for constant, level in (
        (stix2.v21.TLP_WHITE, "white"),
        (stix2.v21.TLP_GREEN, "green"),
        (stix2.v21.TLP_AMBER, "amber"),
        (stix2.v21.TLP_RED, "red"),
    ):
        assert mappings.tlp[constant.id][0] == level
        assert mappings.tlp[constant.id][1] == json.loads(constant.serialize())
    tlp2 = {
        "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487": "clear",
        "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb": "green",
        "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421": "amber",
        "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003": "amber+strict",
        "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1": "red",
    }
    for marking_id, level in tlp2.items():
        assert mappings.tlp[marking_id][0] == level


def test_groups_override(mappings_copy):
    loaded = load_mappings(mappings_copy, groups_override={"BENL": ["BEL", "NLD", "LUX"], "FVEY": ["USA", "GBR"]})
    assert loaded.groups["BENL"] == {"BEL", "NLD", "LUX"}
    assert loaded.groups["FVEY"] == {"USA", "GBR"}
    with pytest.raises(MappingError, match=r"groups override.*XXX"):
        load_mappings(mappings_copy, groups_override={"BAD": ["NLD", "XXX"]})
    with pytest.raises(MappingError, match="also a country code"):
        load_mappings(mappings_copy, groups_override={"NLD": ["NLD"]})


# --- corrupted copies -------------------------------------------------------------------


def test_invalid_json_names_the_file(mappings_copy):
    path = mappings_copy / "classifications" / "national" / "DEU.json"
    path.write_text(path.read_text(encoding="utf-8")[:-20], encoding="utf-8")
    with pytest.raises(MappingError, match=r"DEU\.json.*invalid JSON"):
        load_mappings(mappings_copy)


def test_missing_file_names_it(mappings_copy):
    (mappings_copy / "codes" / "caveats.json").unlink()
    with pytest.raises(MappingError, match=r"caveats\.json"):
        load_mappings(mappings_copy)


def test_unknown_group_member_refused(mappings_copy, edit_json):
    edit_json(mappings_copy / "codes" / "groups.json", lambda d: d["groups"]["FVEY"]["members"].append("XXX"))
    with pytest.raises(MappingError, match=r"groups\.json.*FVEY.*XXX"):
        load_mappings(mappings_copy)


def test_conflicting_name_refused_naming_both_files(mappings_copy, edit_json):
    # GEHEIM is rank 3 (DEU, AUT, BEL); claiming it as rank 2 elsewhere must fail.
    edit_json(_national(mappings_copy) / "GBR.json", lambda d: d["ranks"].__setitem__("2", ["Geheim"]))
    with pytest.raises(MappingError) as caught:
        load_mappings(mappings_copy)
    message = str(caught.value)
    assert "Geheim" in message and "GBR.json" in message
    assert "DEU.json" in message or "EU.json" in message


def test_conflict_detected_across_accents(mappings_copy, edit_json):
    # "TRES SECRET" without accent is the same name as FRA's "TRÈS SECRET" (rank 4).
    edit_json(_national(mappings_copy) / "USA.json", lambda d: d["ranks"]["3"].append("tres secret"))
    with pytest.raises(MappingError, match="tres secret"):
        load_mappings(mappings_copy)


def test_unknown_caveat_rule_refused(mappings_copy, edit_json):
    orcon = {"rule": "originator_controlled"}
    edit_json(mappings_copy / "codes" / "caveats.json", lambda d: d["caveats"].__setitem__("ORCON", orcon))
    with pytest.raises(MappingError, match=r"caveats\.json.*ORCON.*originator_controlled"):
        load_mappings(mappings_copy)


def test_rank_out_of_range_refused(mappings_copy, edit_json):
    edit_json(_national(mappings_copy) / "NZL.json", lambda d: d["ranks"].__setitem__("5", ["ULTRA"]))
    with pytest.raises(MappingError, match=r"NZL\.json.*rank 5"):
        load_mappings(mappings_copy)


def test_unknown_member_state_refused(mappings_copy, edit_json):
    edit_json(
        mappings_copy / "classifications" / "national" / "EU.json",
        lambda d: d["member_states"].__setitem__("GBR", {"ranks": {"3": ["UK SECRET"]}}),
    )
    with pytest.raises(MappingError, match=r"EU\.json.*GBR is not a member of group EU"):
        load_mappings(mappings_copy)


def test_missing_description_refused(mappings_copy, edit_json):
    edit_json(mappings_copy / "codes" / "countries.json", lambda d: d.pop("description"))
    with pytest.raises(MappingError, match=r"countries\.json.*description"):
        load_mappings(mappings_copy)


def test_incomplete_tlp_file_refused(mappings_copy, edit_json):
    edit_json(mappings_copy / "markings" / "tlp-2.0.json", lambda d: d["definitions"].pop())
    with pytest.raises(MappingError, match=r"tlp-2\.0\.json"):
        load_mappings(mappings_copy)


def test_invalid_json_schema_refused(mappings_copy, edit_json):
    edit_json(mappings_copy / "markings" / "tearline-label-extension.schema.json", lambda d: d.__setitem__("type", 12))
    with pytest.raises(MappingError, match=r"tearline-label-extension\.schema\.json.*JSON Schema"):
        load_mappings(mappings_copy)


def test_acs_rule_with_unknown_caveat_refused(mappings_copy, edit_json):
    edit_json(
        mappings_copy / "markings" / "acs-3.0.json",
        lambda d: d["formal_determination"]["NF"].__setitem__("caveats", ["NOFOREIGN"]),
    )
    with pytest.raises(MappingError, match=r"acs-3\.0\.json.*NOFOREIGN"):
        load_mappings(mappings_copy)


def test_loading_is_repeatable(mappings):
    again = load_mappings(Path(MAPPINGS_DIR))
    assert again.classification_names == mappings.classification_names
    assert again.groups == mappings.groups

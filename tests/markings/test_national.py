"""Every national scheme maps its names to the right canonical ranks (accents, case and spacing aside)."""

from __future__ import annotations

import json

import pytest

from app.markings.labels import UnknownToken
from app.markings.tokens import normalise_name
from tests.markings.conftest import MAPPINGS_DIR

U, R, C, S, TS = range(5)

SPOT_CHECKS = {
    "canonical": [("UNCLASSIFIED", U), ("nato restricted", R), ("C", C), ("NS", S), ("cosmic top secret", TS)],
    "USA": [("top secret", TS), ("S", S), ("Confidential", C), ("CUI", U), ("USA SECRET", S)],
    "GBR": [
        ("OFFICIAL-SENSITIVE", R),
        ("official sensitive", R),
        ("Official - Sensitive", R),
        ("OFFICIAL", U),
        ("UK SECRET", S),
        ("GBR OFFICIAL", U),
        ("uk top secret", TS),
    ],
    "FRA": [
        ("TRÈS SECRET", TS),
        ("tres secret", TS),
        ("Secret Défense", S),
        ("SECRET DEFENSE", S),
        ("confidentiel défense", C),
        ("Très Secret Défense", TS),
        ("TRES SECRET DEFENSE", TS),
        ("Diffusion Restreinte", R),
        ("FRA SECRET", S),
    ],
    "DEU": [
        ("STRENG GEHEIM", TS),
        ("geheim", S),
        ("VS-VERTRAULICH", C),
        ("VS – Vertraulich", C),
        ("VS-NUR FÜR DEN DIENSTGEBRAUCH", R),
        ("vs-nur fur den dienstgebrauch", R),
        ("VS-NfD", R),
        ("VS - NUR FUER DEN DIENSTGEBRAUCH", R),
        ("DEU GEHEIM", S),
    ],
    "CAN": [
        ("PROTECTED A", R),
        ("Protected B", R),
        ("Protégé A", R),
        ("PROTEGE B", R),
        ("PROTECTED C", C),
        ("TRÈS SECRET", TS),
        ("CAN SECRET", S),
    ],
    "AUS": [
        ("PROTECTED", C),
        ("OFFICIAL: Sensitive", R),
        ("official:sensitive", R),
        ("OFFICIAL : SENSITIVE", R),
        ("UNOFFICIAL", U),
        ("AUS SECRET", S),
        ("AUS PROTECTED", C),
    ],
    "NZL": [("IN-CONFIDENCE", U), ("in confidence", U), ("SENSITIVE", R), ("RESTRICTED", R), ("NZL TOP SECRET", TS)],
    "NLD": [
        ("Stg. ZEER GEHEIM", TS),
        ("stg. geheim", S),
        ("STG GEHEIM", S),
        ("Stg. Confidentieel", C),
        ("Dep. Vertrouwelijk", R),
        ("departementaal vertrouwelijk", R),
        ("ONGERUBRICEERD", U),
        ("NLD STG. GEHEIM", S),
    ],
    "EU": [
        ("TRÈS SECRET UE/EU TOP SECRET", TS),
        ("tres secret ue / eu top secret", TS),
        ("SECRET UE/EU SECRET", S),
        ("Secret UE", S),
        ("CONFIDENTIEL UE/EU CONFIDENTIAL", C),
        ("EU CONFIDENTIAL", C),
        ("RESTREINT UE/EU RESTRICTED", R),
        ("EU RESTRICTED", R),
    ],
    "EU member states": [
        ("Très Secret", TS),
        ("Zeer Geheim", TS),
        ("Vertrouwelijk", C),  # BEL
        ("Строго секретно", TS),
        ("ЗА СЛУЖЕБНО ПОЛЗВАНЕ", R),  # BGR
        ("Přísně tajné", TS),
        ("PRISNE TAJNE", TS),
        ("Vyhrazené", R),  # CZE (and SVK's Prísne tajné)
        ("YDERST HEMMELIGT", TS),
        ("til tjenestebrug", R),  # DNK
        ("Täiesti salajane", TS),
        ("piiratud", R),  # EST
        ("Άκρως Απόρρητο", TS),
        ("ΑΚΡΩΣ ΑΠΟΡΡΗΤΟ", TS),
        ("ΑΑΠ", TS),
        ("Περιορισμένης Χρήσης", R),  # GRC/CYP
        ("DIFUSIÓN LIMITADA", R),
        ("difusion limitada", R),
        ("ESP SECRETO", TS),
        ("ESP RESERVADO", S),  # ESP
        ("VRLO TAJNO", TS),
        ("OGRANIČENO", R),
        ("ograniceno", R),  # HRV
        ("Segretissimo", TS),
        ("Segreto", S),
        ("Riservatissimo", C),
        ("Riservato", R),  # ITA
        ("Sevišķi slepeni", TS),
        ("SEVISKI SLEPENI", TS),
        ("Dienesta vajadzībām", R),  # LVA
        ("Visiškai slaptai", TS),
        ("Riboto naudojimo", R),  # LTU
        ("Très Secret Lux", TS),
        ("Restreint Lux", R),  # LUX
        ("Szigorúan titkos!", TS),
        ("szigoruan titkos", TS),
        ("Korlátozott terjesztésű!", R),  # HUN
        ("L-Ogħla Segretezza", TS),
        ("Ristrett", R),  # MLT
        ("Streng Geheim", TS),
        ("Eingeschränkt", R),
        ("EINGESCHRANKT", R),  # AUT
        ("Ściśle Tajne", TS),
        ("SCISLE TAJNE", TS),
        ("Zastrzeżone", R),  # POL
        ("Muito Secreto", TS),
        ("PRT SECRETO", S),
        ("PRT RESERVADO", R),  # PRT
        ("Strict secret de importanță deosebită", TS),
        ("STRICT SECRET DE IMPORTANTA DEOSEBITA", TS),
        ("Strict secret", S),
        ("ROU SECRET", C),
        ("Secret de serviciu", R),  # ROU
        ("Strogo tajno", TS),
        ("Zaupno", C),
        ("Interno", R),  # SVN
        ("Dôverné", C),
        ("Vyhradené", R),  # SVK
        ("ERITTÄIN SALAINEN", TS),
        ("YTTERST HEMLIG", TS),
        ("KÄYTTÖ RAJOITETTU", R),  # FIN
        ("KVALIFICERAT HEMLIG", TS),
        ("HEMLIG", S),
        ("BEGRÄNSAT HEMLIG", R),
        ("HEMLIG/RESTRICTED", R),  # SWE
    ],
}


@pytest.mark.parametrize(
    ("scheme", "name", "rank"),
    [(scheme, name, rank) for scheme, checks in SPOT_CHECKS.items() for name, rank in checks],
)
def test_spot_checks(mappings, scheme, name, rank):
    assert mappings.rank_of(name) == rank, f"{scheme}: {name}"


@pytest.mark.parametrize("name", ["SECRETO", "Reservado", "secreto"])
def test_names_ambiguous_across_member_states_need_a_nation(mappings, name):
    # Spain's SECRETO is rank 4 and Portugal's Secreto rank 3: only "ESP SECRETO"/"PRT SECRETO" are accepted.
    with pytest.raises(UnknownToken, match=name):
        mappings.rank_of(name)


def test_plain_secret_is_canonical_not_romanian(mappings):
    assert mappings.rank_of("SECRET") == S
    assert mappings.rank_of("ROU Secret") == C


def test_france_after_council_decision_2021_1075():
    eu = json.loads((MAPPINGS_DIR / "classifications" / "national" / "EU.json").read_text(encoding="utf-8"))
    france = {int(rank): names for rank, names in eu["member_states"]["FRA"]["ranks"].items()}
    assert "TRÈS SECRET" in france[TS] and "TRÈS SECRET DÉFENSE" in france[TS]
    assert "SECRET" in france[S] and "SECRET DÉFENSE" in france[S]
    assert france[C] == ["CONFIDENTIEL DÉFENSE"]
    assert R not in france


def test_eu_table_covers_the_27_member_states(mappings):
    eu = json.loads((MAPPINGS_DIR / "classifications" / "national" / "EU.json").read_text(encoding="utf-8"))
    assert set(eu["member_states"]) == mappings.groups["EU"]


def _scheme_entries():
    for path in sorted((MAPPINGS_DIR / "classifications" / "national").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        blocks = [(data["scheme"], data), *list(data.get("member_states", {}).items())]
        for nation, block in blocks:
            ambiguous = {normalise_name(n) for n in block.get("qualified_only", [])}
            for rank, names in block["ranks"].items():
                for name in names:
                    yield path.name, nation, name, int(rank), normalise_name(name) in ambiguous


def test_every_listed_name_maps_to_its_rank(mappings):
    checked = 0
    for file, nation, name, rank, qualified_only in _scheme_entries():
        if nation != "EU":
            assert mappings.rank_of(f"{nation} {name}") == rank, (file, nation, name)
        if qualified_only:
            assert normalise_name(name) not in mappings.classification_names or mappings.rank_of(name) != rank
        else:
            assert mappings.rank_of(name) == rank, (file, nation, name)
        checked += 1
    assert checked > 200

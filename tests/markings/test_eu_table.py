"""The EU table of equivalence (Appendix B to Council Decision 2013/488/EU, as from 1 July 2021) stays as printed.

Each pin names a member state, a canonical rank and a name exactly as ``EU.json`` spells it. The test checks the
spelling letter by letter in the file (accents and capitals included, which the loader's normalisation would
forgive) and the rank through the loaded mappings, qualified by the nation and, unless the file lists the name as
``qualified_only``, unqualified too.

``VERIFIED`` pins were compared with the 2021 texts named in the file's ``verification`` field (Dutch text of
Appendix B; Czech and Polish texts of the Member States' Agreement Annex, 2021/C 247 I/01). ``TRANSCRIBED`` pins
hold the rows that field lists as not yet verified: they freeze today's transcription so an accidental edit fails,
and should move to ``VERIFIED`` (or be corrected) once checked against CELEX 02013D0488-20210701.
"""

from __future__ import annotations

import json

import pytest

from app.markings.labels import UnknownToken
from app.markings.tokens import normalise_name
from tests.markings.conftest import MAPPINGS_DIR

R, C, S, TS = 1, 2, 3, 4

EU_TABLE = MAPPINGS_DIR / "classifications" / "national" / "EU.json"

VERIFIED = [
    ("BEL", TS, "Très Secret"),
    ("BEL", TS, "Zeer Geheim"),
    ("BEL", C, "Confidentiel"),
    ("BEL", C, "Vertrouwelijk"),
    ("BGR", TS, "Строго секретно"),
    ("BGR", R, "За служебно ползване"),
    ("CZE", TS, "Přísně tajné"),
    ("CZE", R, "Vyhrazené"),
    ("DNK", S, "HEMMELIGT"),
    ("DNK", R, "TIL TJENESTEBRUG"),
    ("DEU", TS, "STRENG GEHEIM"),
    ("DEU", C, "VS — VERTRAULICH"),
    ("DEU", R, "VS — NUR FÜR DEN DIENSTGEBRAUCH"),
    ("EST", TS, "Täiesti salajane"),
    ("EST", C, "Konfidentsiaalne"),
    ("IRL", TS, "Top Secret"),
    ("IRL", R, "Restricted"),
    ("GRC", TS, "Άκρως Απόρρητο"),
    ("GRC", TS, "ΑΑΠ"),
    ("GRC", C, "Εμπιστευτικό"),
    ("GRC", R, "Περιορισμένης Χρήσης"),
    ("ESP", TS, "SECRETO"),
    ("ESP", S, "RESERVADO"),
    ("ESP", R, "DIFUSIÓN LIMITADA"),
    ("FRA", TS, "TRÈS SECRET"),
    ("FRA", S, "SECRET DÉFENSE"),
    ("FRA", C, "CONFIDENTIEL DÉFENSE"),
    ("HRV", TS, "VRLO TAJNO"),
    ("HRV", R, "OGRANIČENO"),
    ("ITA", S, "Segreto"),
    ("ITA", C, "Riservatissimo"),
    ("CYP", TS, "Άκρως Απόρρητο"),
    ("CYP", S, "Απόρρητο"),
    ("CYP", S, "ΑΠ"),
]

TRANSCRIBED = [
    ("CYP", C, "Εμπιστευτικό"),
    ("CYP", R, "ΠΧ"),
    ("LVA", TS, "Sevišķi slepeni"),
    ("LVA", R, "Dienesta vajadzībām"),
    ("LTU", TS, "Visiškai slaptai"),
    ("LTU", C, "Konfidencialiai"),
    ("LUX", S, "Secret Lux"),
    ("LUX", R, "Restreint Lux"),
    ("HUN", TS, "Szigorúan titkos!"),
    ("HUN", R, "Korlátozott terjesztésű!"),
    ("MLT", TS, "L-Ogħla Segretezza"),
    ("MLT", C, "Kunfidenzjali"),
    ("NLD", S, "Stg. GEHEIM"),
    ("NLD", R, "Dep. VERTROUWELIJK"),
    ("AUT", TS, "Streng Geheim"),
    ("AUT", R, "Eingeschränkt"),
    ("POL", TS, "Ściśle Tajne"),
    ("POL", R, "Zastrzeżone"),
    ("PRT", TS, "Muito Secreto"),
    ("PRT", S, "Secreto"),
    ("PRT", R, "Reservado"),
    ("ROU", TS, "Strict secret de importanță deosebită"),
    ("ROU", C, "Secret"),
    ("SVN", TS, "Strogo tajno"),
    ("SVN", C, "Zaupno"),
    ("SVK", TS, "Prísne tajné"),
    ("SVK", C, "Dôverné"),
    ("FIN", TS, "ERITTÄIN SALAINEN"),
    ("FIN", R, "BEGRÄNSAD TILLGÅNG"),
    ("SWE", TS, "KVALIFICERAT HEMLIG"),
    ("SWE", R, "BEGRÄNSAT HEMLIG"),
]


@pytest.fixture(scope="module")
def eu_table() -> dict:
    return json.loads(EU_TABLE.read_text(encoding="utf-8"))


def _pin_id(pin: tuple[str, int, str]) -> str:
    state, rank, name = pin
    return f"{state}-{rank}-{name}"


@pytest.mark.parametrize("pin", VERIFIED + TRANSCRIBED, ids=_pin_id)
def test_name_is_listed_exactly_at_its_rank(eu_table, pin):
    state, rank, name = pin
    listed = eu_table["member_states"][state]["ranks"]
    assert name in listed.get(str(rank), []), f"{state}: {name!r} is no longer listed, as spelled, at rank {rank}"
    elsewhere = [other for other, names in listed.items() if other != str(rank) and name in names]
    assert not elsewhere, f"{state}: {name!r} is also listed at rank(s) {elsewhere}"


@pytest.mark.parametrize("pin", VERIFIED + TRANSCRIBED, ids=_pin_id)
def test_name_resolves_to_its_rank(mappings, eu_table, pin):
    state, rank, name = pin
    assert mappings.rank_of(f"{state} {name}") == rank
    qualified_only = {normalise_name(n) for n in eu_table["member_states"][state].get("qualified_only", [])}
    if normalise_name(name) not in qualified_only:
        assert mappings.rank_of(name) == rank


def test_every_member_state_is_pinned_at_two_ranks_at_least(eu_table):
    ranks_by_state: dict[str, set[int]] = {}
    for state, rank, _ in VERIFIED + TRANSCRIBED:
        ranks_by_state.setdefault(state, set()).add(rank)
    assert set(ranks_by_state) == set(eu_table["member_states"])
    assert all(len(ranks) >= 2 for ranks in ranks_by_state.values()), ranks_by_state


def test_the_verification_field_lists_the_rows_still_to_check(eu_table):
    # Moving a state to VERIFIED without recording it in the file (or the reverse) must be a conscious edit.
    verification = eu_table["verification"]
    for state in sorted({state for state, _, _ in TRANSCRIBED} - {"CYP"}):
        assert state in verification.split("NOT VERIFIED:", 1)[1], state


@pytest.mark.parametrize(
    ("name", "rank"),
    [("ROU SECRET", C), ("ESP SECRETO", TS), ("PRT SECRETO", S), ("ESP RESERVADO", S), ("PRT RESERVADO", R)],
)
def test_names_shared_across_member_states_keep_their_national_rank(mappings, name, rank):
    assert mappings.rank_of(name) == rank


@pytest.mark.parametrize("name", ["SECRETO", "RESERVADO"])
def test_names_with_different_ranks_in_different_states_need_the_nation(mappings, name):
    with pytest.raises(UnknownToken):
        mappings.rank_of(name)


def test_the_eu_levels_themselves(mappings):
    assert mappings.rank_of("TRÈS SECRET UE/EU TOP SECRET") == TS
    assert mappings.rank_of("SECRET UE/EU SECRET") == S
    assert mappings.rank_of("CONFIDENTIEL UE/EU CONFIDENTIAL") == C
    assert mappings.rank_of("RESTREINT UE/EU RESTRICTED") == R


def test_belgium_and_france_have_no_rank_1_name(eu_table):
    # Footnotes to the table: neither uses a RESTREINT-level national classification.
    for state in ("BEL", "FRA"):
        assert str(R) not in eu_table["member_states"][state]["ranks"], state

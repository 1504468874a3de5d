"""An independent oracle of DESIGN.md section 2 ("Who may see an object version").

Written from the contract only: it imports nothing of the app's decision code
(``app.policy``, ``app.markings``). It reads the group membership lists of
``stix_mappings/codes/groups.json`` itself and has its own small table of
classification names, which :func:`classification_name_problems` cross-checks
against the national tables in ``stix_mappings/classifications/``.

The model
---------
A scenario describes object versions by what the poster *wrote* (markings as
data); :func:`label_of` turns that into a label the way the contract says, and
:func:`may_see` decides. The same data is turned into STIX by the ``*_md``
helpers, so the test posts exactly what the oracle reasons about.

Contract choices the oracle makes (and where they come from):

- Classification/releasability markings present: highest rank, intersection of
  the expanded releasable-to sets (each including the version's originator),
  union of caveats (section 3). TLP beside them changes nothing.
- Otherwise one TLP marking alone: CLEAR/WHITE/GREEN -> UNCLASSIFIED releasable
  to every partner; AMBER/AMBER+STRICT/RED -> nobody but the originator (and the
  home nation) (section 2; ``originator-only`` as section 7 says of unmarked
  partner items).
- Unmarked -> originator only: for an analyst's post that is the home nation
  only (section 2); for a partner's post the partner and the home nation
  (section 7: "objects a partner sends without markings get the originator-only
  label"; section 2b with 1.4: the originator is always inside its own label).
- a. rank <= clearance applies to everyone, home principals included (a home
  token may lower its clearance too).
- b./c./d. bind partners only: the home nation sees whatever its clearance
  allows; NOFORN hides from every partner, the originator included.
- d. (third-party rule): a partner-originated version is shown to N only if the
  originator's own releasability on it includes N. The originator's
  releasability *is* the version's label (the label comes from the partner's
  markings), so d. is checked against the same set as b.
- Granular markings: a property under a granular marking is served only if the
  principal may see the label of that marking on its own (same originator).
"""

from __future__ import annotations

import json
import unicodedata
import uuid
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

HOME = "NLD"
REPO_ROOT = Path(__file__).resolve().parents[2]
MAPPINGS_DIR = REPO_ROOT / "stix_mappings"

NOFORN = "NOFORN"
EVERYONE = None  # releasable-to value meaning "every partner" (TLP:CLEAR/GREEN)

# Classification names written into banners, by canonical rank. Every one of them must mean this rank and
# no other in every scheme that lists it (checked by classification_name_problems).
CLASSIFICATION_NAMES: dict[int, tuple[str, ...]] = {
    0: ("UNCLASSIFIED", "U", "NATO UNCLASSIFIED", "OFFICIAL", "OFFEN", "NON CLASSIFIÉ"),
    1: (
        "RESTRICTED",
        "NATO RESTRICTED",
        "OFFICIAL-SENSITIVE",
        "PROTECTED B",
        "VS-NfD",
        "DIFFUSION RESTREINTE",
        "RESTREINT UE",
    ),
    2: (
        "CONFIDENTIAL",
        "C",
        "NATO CONFIDENTIAL",
        "VS-VERTRAULICH",
        "CONFIDENTIEL DÉFENSE",
        "PROTECTED C",
        "Stg. CONFIDENTIEEL",
    ),
    3: ("SECRET", "S", "NATO SECRET", "GEHEIM", "SECRET DÉFENSE", "Stg. GEHEIM"),
    4: ("TOP SECRET", "TS", "COSMIC TOP SECRET", "STRENG GEHEIM", "TRÈS SECRET"),
}
CANONICAL_NAMES = ("UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL", "SECRET", "TOP SECRET")

# Codes drawn into REL TO lists: partner trigraphs, two non-partner FVEY members, groups, the home nation.
TRIGRAPHS = ("USA", "GBR", "FRA", "DEU", "CAN", "AUS", "NZL")
GROUPS = ("FVEY", "NATO", "EU")

# TLP marking definitions by their fixed ids. TLP 1.0: STIX 2.1 section 7.2.1.4 (= stix2.TLP_*).
# TLP 2.0: oasis-open/cti-stix-common-objects, extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d.
TLP2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP1_IDS = {
    "white": "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
    "green": "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
    "amber": "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
    "red": "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
}
TLP2_IDS = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
TLP_IDS = frozenset(TLP1_IDS.values()) | frozenset(TLP2_IDS.values())
TLP_LEVELS = tuple(f"1.0:{level}" for level in TLP1_IDS) + tuple(f"2.0:{level}" for level in TLP2_IDS)
TLP_OPEN = frozenset({"white", "clear", "green"})  # releasable to every partner when alone


# ---------------------------------------------------------------- reference data


@cache
def group_members() -> dict[str, frozenset[str]]:
    """Group code -> member trigraphs, read from stix_mappings/codes/groups.json."""
    data = json.loads((MAPPINGS_DIR / "codes" / "groups.json").read_text(encoding="utf-8"))
    return {code: frozenset(entry["members"]) for code, entry in data["groups"].items()}


def expand(codes) -> frozenset[str]:
    """Trigraphs that a releasable-to list stands for (groups replaced by their members)."""
    members: set[str] = set()
    groups = group_members()
    for code in codes:
        members |= groups.get(code, {code})
    return frozenset(members)


def _fold(name: str) -> str:
    """Compare names case-insensitively and without accents or punctuation differences."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).upper()
    return " ".join(text.replace("-", " ").replace(".", " ").replace("—", " ").split())


def classification_name_problems() -> list[str]:
    """Names of CLASSIFICATION_NAMES that some mapping table gives another rank (or none gives at all)."""
    found: dict[str, set[int]] = {}

    def note(name: str, rank: int) -> None:
        found.setdefault(_fold(name), set()).add(rank)

    canonical = json.loads((MAPPINGS_DIR / "classifications" / "canonical.json").read_text(encoding="utf-8"))
    for entry in canonical["ranks"]:
        for name in (entry["name"], entry["nato"], *entry["aliases"]):
            note(name, entry["rank"])
    for path in sorted((MAPPINGS_DIR / "classifications" / "national").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        tables = [(data.get("ranks", {}), ())]
        tables += [
            (state["ranks"], state.get("qualified_only", ())) for state in data.get("member_states", {}).values()
        ]
        for ranks, qualified_only in tables:
            qualified = {_fold(name) for name in qualified_only}
            for rank, names in ranks.items():
                for name in names:
                    if _fold(name) not in qualified:
                        note(name, int(rank))
    problems = []
    for rank, names in CLASSIFICATION_NAMES.items():
        for name in names:
            ranks = found.get(_fold(name))
            if ranks != {rank}:
                problems.append(f"{name!r}: expected rank {rank}, the tables say {sorted(ranks or [])}")
    return problems


# ---------------------------------------------------------------- what posters write


@dataclass(frozen=True)
class Marking:
    """One classification/releasability marking as written by the poster.

    ``form`` is ``statement`` (a statement marking whose statement is a banner)
    or ``label`` (Tearline's own label extension). ``name`` is the classification
    as written (statements only; label definitions carry the canonical name).
    """

    form: str
    rank: int
    name: str
    codes: tuple[str, ...]
    noforn: bool

    def banner(self) -> str:
        text = self.name
        if self.codes:
            text += "//REL TO " + ", ".join(self.codes)
        if self.noforn:
            text += "//" + NOFORN
        return text


@dataclass(frozen=True)
class VersionSpec:
    """The markings of one object version."""

    markings: tuple[Marking, ...] = ()
    tlp: str | None = None  # "1.0:green", "2.0:amber+strict", ...
    granular: Marking | None = None  # a granular marking on ``description``


@dataclass(frozen=True)
class Label:
    rank: int
    releasable_to: frozenset[str] | None  # None: every partner
    caveats: frozenset[str]
    originator: str


@dataclass(frozen=True)
class Principal:
    nation: str
    clearance: int  # effective rank, after any lowering by the token
    is_home: bool
    token_clearance: str | None = None  # the clearance claim sent in the token, if any

    @property
    def name(self) -> str:
        claim = f" token={self.token_clearance}" if self.token_clearance else ""
        return f"{self.nation}@{self.clearance}{' home' if self.is_home else ''}{claim}"


def marking_label(marking: Marking, originator: str) -> Label:
    """The label of one classification marking: its releasable-to always includes the originator."""
    return Label(
        marking.rank,
        expand(marking.codes) | {originator},
        frozenset({NOFORN}) if marking.noforn else frozenset(),
        originator,
    )


def label_of(version: VersionSpec, originator: str) -> Label:
    """The label of a version (object-level markings only), per DESIGN.md sections 2 and 3."""
    if version.markings:
        labels = [marking_label(m, originator) for m in version.markings]
        return Label(
            max(label.rank for label in labels),
            frozenset.intersection(*(label.releasable_to for label in labels)),
            frozenset().union(*(label.caveats for label in labels)),
            originator,
        )
    if version.tlp is not None and version.tlp.split(":", 1)[1] in TLP_OPEN:
        return Label(0, EVERYONE, frozenset(), originator)
    # TLP:AMBER, AMBER+STRICT, RED alone, or no marking at all: the originator only.
    return Label(0, frozenset({originator}), frozenset(), originator)


def may_see(principal: Principal, label: Label) -> bool:
    """DESIGN.md section 2, clauses a-d."""
    if label.rank > principal.clearance:  # a.
        return False
    if principal.is_home:  # b. the home nation; c. NOFORN still lets the home nation see
        return True
    released = label.releasable_to is EVERYONE or principal.nation in label.releasable_to
    if not released:  # b.
        return False
    if NOFORN in label.caveats:  # c.
        return False
    if label.originator != HOME:  # d. the originator's own releasability must include the principal
        originator_release = label.releasable_to
        if not (originator_release is EVERYONE or principal.nation in originator_release):
            return False
    return True


def may_see_version(principal: Principal, version: VersionSpec, originator: str) -> bool:
    return may_see(principal, label_of(version, originator))


def withdrawn(agreement: Principal, version: VersionSpec, newer: list[VersionSpec], originator: str) -> bool:
    """DESIGN.md section 7b (recall): a version is withdrawn from a partner nation that, at its agreement's
    clearance, may see it but not some newer version of the same object, unless it is the originator."""
    if agreement.nation == originator:
        return False
    return may_see_version(agreement, version, originator) and any(
        not may_see_version(agreement, later, originator) for later in newer
    )


def may_see_description(principal: Principal, version: VersionSpec, originator: str) -> bool:
    """Whether the served copy of a visible version keeps its granular-marked ``description``."""
    if version.granular is None:
        return True
    return may_see(principal, marking_label(version.granular, originator))


# ---------------------------------------------------------------- STIX input


def statement_md(banner: str) -> dict:
    """A fresh statement marking definition whose statement is ``banner``."""
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": f"marking-definition--{uuid.uuid4()}",
        "created": "2024-01-01T00:00:00.000Z",
        "definition_type": "statement",
        "definition": {"statement": banner},
    }


def tlp_md(tlp: str) -> dict:
    """The fixed TLP 1.0 or 2.0 marking definition ``"1.0:green"``, ``"2.0:amber+strict"``..."""
    version, level = tlp.split(":", 1)
    if version == "1.0":
        return {
            "type": "marking-definition",
            "spec_version": "2.1",
            "id": TLP1_IDS[level],
            "created": "2017-01-20T00:00:00.000Z",
            "definition_type": "tlp",
            "name": f"TLP:{level.upper()}",
            "definition": {"tlp": level},
        }
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": TLP2_IDS[level],
        "created": "2022-10-01T00:00:00.000Z",
        "name": f"TLP:{level.upper()}",
        "extensions": {TLP2_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": level}},
    }


def tlp_id(tlp: str) -> str:
    version, level = tlp.split(":", 1)
    return (TLP1_IDS if version == "1.0" else TLP2_IDS)[level]


@dataclass
class Built:
    """Marking definitions to post with a version, and the refs to put on it."""

    definitions: list[dict] = field(default_factory=list)
    object_marking_refs: list[str] = field(default_factory=list)
    granular_ref: str | None = None
    markings: dict[str, Marking] = field(default_factory=dict)  # non-TLP definition id -> its marking


def build_markings(version: VersionSpec, originator: str, label_definition) -> Built:
    """STIX marking definitions for ``version``.

    ``label_definition(rank, codes, caveats, originator)`` returns a Tearline label
    marking definition (the test passes the app's builder: it only shapes input).
    """

    def definition(marking: Marking) -> dict:
        if marking.form == "statement":
            return statement_md(marking.banner())
        caveats = {NOFORN} if marking.noforn else set()
        return label_definition(marking.rank, marking.codes, caveats, originator)

    built = Built()
    for marking in version.markings:
        md = definition(marking)
        built.definitions.append(md)
        built.object_marking_refs.append(md["id"])
        built.markings[md["id"]] = marking
    if version.tlp is not None:
        built.definitions.append(tlp_md(version.tlp))
        built.object_marking_refs.append(tlp_id(version.tlp))
    if version.granular is not None:
        md = definition(version.granular)
        built.definitions.append(md)
        built.granular_ref = md["id"]
        built.markings[md["id"]] = version.granular
    return built


def may_see_reviewed(principal: Principal, version: VersionSpec, originator: str, state: str) -> bool:
    """DESIGN.md section 7c (disclosure review): a held version (pending, declined, or replaced by a
    narrowed version or a tearline) is seen by no partner; released as marked, section 2 decides."""
    if not principal.is_home and state != "released":
        return False
    return may_see_version(principal, version, originator)

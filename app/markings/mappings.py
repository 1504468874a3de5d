"""The marking and code tables in ``stix_mappings/``, loaded and validated once into a ``Mappings``.

Everything the label engine knows about names and codes is data: classification
schemes (canonical, national, EU), country codes, groups, caveats, TLP marking
definitions, Tearline's own label extension and the ACS 3.0 rules. This module
holds the loaded tables; :mod:`app.markings.tables` reads the files and refuses any that is malformed or contradicts another, with a
``MappingError`` naming the file, so a bad table stops the service at start-up
instead of mislabelling items later.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.markings.label_spec import LabelSpec
from app.markings.tables import (
    RULE_TYPES,
    MappingError,
    load_acs,
    load_caveats,
    load_classifications,
    load_countries,
    load_groups,
    load_label_extension,
    load_tlp,
    validate_groups,
)
from app.markings.tokens import ALL, UnknownToken, normalise_code, normalise_name

__all__ = ["RULE_TYPES", "MappingError", "Mappings", "load_mappings"]


@dataclass(frozen=True, eq=False)
class Mappings:
    """All marking and code tables, validated. Build it with ``load_mappings``.

    Compared and hashed by identity (``eq=False``): the tables are dicts, and
    callers may want to cache per loaded ``Mappings``.
    """

    classification_names: dict[str, int]
    """Normalised classification name or abbreviation -> canonical rank."""
    rank_names: tuple[str, ...]
    """Canonical classification name by rank."""
    countries: frozenset[str]
    groups: dict[str, frozenset[str]]
    """Group code (tetragraph) -> member trigraphs."""
    caveats: dict[str, str]
    """Caveat -> rule type (``home_only``)."""
    tlp: dict[str, tuple[str, dict[str, Any]]]
    """Marking-definition id -> (TLP level, definition object), TLP 1.0 and 2.0."""
    label_extension_id: str
    label_extension_definition: dict[str, Any]
    acs: dict[str, Any]
    """The parsed ``markings/acs-3.0.json`` rules."""
    tlp_release: dict[str, frozenset[str]] = field(default_factory=dict)
    """Marking-definition id -> releasable-to a TLP level means on its own (``{ALL}`` or empty)."""
    label_extension_identity: dict[str, Any] = field(default_factory=dict)
    label_extension_schema: dict[str, Any] = field(default_factory=dict)
    label_extension_validator: Any = field(default=None, compare=False, repr=False)
    definition_labels: dict[tuple[bytes, str], LabelSpec] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )
    """Memo of ``stix_markings.definition_label``: (canonical definition JSON, originator) -> label.
    Deriving a label validates the definition against a JSON Schema; the same definitions come back
    with every envelope. Per instance, so tables built differently (``dataclasses.replace``) start empty."""

    def rank_of(self, name: str) -> int:
        """The canonical rank of a classification name, abbreviation or scheme-qualified name."""
        try:
            return self.classification_names[normalise_name(name)]
        except KeyError:
            raise UnknownToken("classification", name.strip()) from None

    def is_code(self, code: str) -> bool:
        """Whether ``code`` is a known trigraph or group code (not ``ALL``)."""
        return code in self.countries or code in self.groups

    def expand(self, codes: Iterable[str]) -> frozenset[str] | None:
        """The trigraphs that releasable-to ``codes`` stand for; ``None`` means every partner (``ALL``)."""
        members: set[str] = set()
        everyone = False
        for raw in codes:
            code = normalise_code(raw)
            if code == ALL:
                everyone = True
            elif code in self.countries:
                members.add(code)
            elif code in self.groups:
                members |= self.groups[code]
            else:
                raise UnknownToken("country or group code", raw.strip())
        return None if everyone else frozenset(members)


def load_mappings(directory: Path, groups_override: Mapping[str, list[str]] | None = None) -> Mappings:
    """Read and validate every table under ``directory`` (``stix_mappings/``).

    ``groups_override`` adds groups or replaces the members of listed ones (e.g.
    from configuration); its members are validated like the file's.
    """
    directory = Path(directory)
    countries = load_countries(directory / "codes" / "countries.json")
    groups = load_groups(directory / "codes" / "groups.json", countries)
    if groups_override:
        groups.update(validate_groups(groups_override, countries, "groups override"))
    caveats = load_caveats(directory / "codes" / "caveats.json")
    names, rank_names = load_classifications(directory / "classifications", countries, groups)
    tlp, tlp_release = load_tlp(directory / "markings")
    identity, definition, schema, validator = load_label_extension(directory / "markings")
    acs = load_acs(directory / "markings" / "acs-3.0.json", len(rank_names), countries, groups, caveats)
    return Mappings(
        classification_names=names,
        rank_names=rank_names,
        countries=countries,
        groups=groups,
        caveats=caveats,
        tlp=tlp,
        label_extension_id=definition["id"],
        label_extension_definition=definition,
        acs=acs,
        tlp_release=tlp_release,
        label_extension_identity=identity,
        label_extension_schema=schema,
        label_extension_validator=validator,
    )

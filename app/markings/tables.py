"""Readers of the domain tables in ``stix_mappings/``: each file parsed, validated and checked against the others.

A malformed table, or one that contradicts another, raises ``MappingError`` naming the file,
so a bad table stops the service at start-up instead of mislabelling items later.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema_rs

from app.markings.tokens import ALL, normalise_name

RULE_TYPES = frozenset({"home_only"})
"""Caveat rules the releasability decision implements; a caveat file naming another is refused."""

_TRIGRAPH = re.compile(r"^[A-Z]{3}$")
_GROUP_CODE = re.compile(r"^[A-Z][A-Z0-9]{1,9}$")
_CAVEAT_CODE = re.compile(r"^[A-Z][A-Z0-9-]*$")
_MARKING_ID = re.compile(r"^marking-definition--[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_EXTENSION_ID = re.compile(r"^extension-definition--[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class MappingError(RuntimeError):
    """A mapping file is missing, malformed or contradicts another; the message names the file."""


def _read(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``, or a MappingError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(f"{path}: cannot read mapping file ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MappingError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise MappingError(f"{path}: expected a JSON object at the top level")
    if not isinstance(data.get("description"), str) or not data["description"].strip():
        # Data files explain themselves; a file without a description is probably not ours.
        raise MappingError(f"{path}: missing the 'description' field")
    return data


def _fail(path: Path | str, problem: str) -> MappingError:
    return MappingError(f"{path}: {problem}")


def _string_list(value: Any, path: Path | str, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _fail(path, f"{what} must be a list of non-empty strings")
    return value


# --- codes ---------------------------------------------------------------------------------


def load_countries(path: Path) -> frozenset[str]:
    """The country trigraphs of ``codes/countries.json``."""
    data = _read(path)
    entries = data.get("countries")
    if not isinstance(entries, list) or not entries:
        raise _fail(path, "'countries' must be a non-empty list")
    codes: set[str] = set()
    for entry in entries:
        code = entry.get("code") if isinstance(entry, dict) else None
        if not isinstance(code, str) or not _TRIGRAPH.match(code):
            raise _fail(path, f"country entry {entry!r} needs a 3-letter upper-case 'code'")
        if not isinstance(entry.get("name"), str) or not entry["name"]:
            raise _fail(path, f"country {code} has no 'name'")
        if code in codes:
            raise _fail(path, f"country code {code} is listed twice")
        codes.add(code)
    return frozenset(codes)


def load_groups(path: Path, countries: frozenset[str]) -> dict[str, frozenset[str]]:
    """The groups of ``codes/groups.json``: group code -> member trigraphs."""
    data = _read(path)
    raw = data.get("groups")
    if not isinstance(raw, dict) or not raw:
        raise _fail(path, "'groups' must be a non-empty object")
    members: dict[str, Any] = {}
    for code, entry in raw.items():
        if not isinstance(entry, dict):
            raise _fail(path, f"group {code!r} must be an object with 'members'")
        members[code] = entry.get("members")
    return validate_groups(members, countries, path)


def validate_groups(raw: Mapping[str, Any], countries: frozenset[str], origin: Path | str) -> dict[str, frozenset[str]]:
    """Check group codes and members against ``countries``; ``origin`` names the source in errors."""
    groups: dict[str, frozenset[str]] = {}
    for code, members in raw.items():
        if not isinstance(code, str) or not _GROUP_CODE.match(code) or code == ALL:
            raise _fail(origin, f"group code {code!r} must be 2-10 upper-case letters or digits, not ALL")
        if code in countries:
            # A group named like a country would make REL TO lists ambiguous.
            raise _fail(origin, f"group code {code} is also a country code")
        members = _string_list(members, origin, f"members of group {code}")
        if not members:
            raise _fail(origin, f"group {code} has no members")
        unknown = sorted(set(members) - countries)
        if unknown:
            raise _fail(origin, f"group {code} has unknown member codes: {', '.join(unknown)}")
        groups[code] = frozenset(members)
    return groups


def load_caveats(path: Path) -> dict[str, str]:
    """The caveats of ``codes/caveats.json``: caveat -> rule type."""
    data = _read(path)
    raw = data.get("caveats")
    if not isinstance(raw, dict) or not raw:
        raise _fail(path, "'caveats' must be a non-empty object")
    caveats: dict[str, str] = {}
    for code, entry in raw.items():
        if not isinstance(code, str) or not _CAVEAT_CODE.match(code):
            raise _fail(path, f"caveat {code!r} must be upper-case letters, digits or '-'")
        rule = entry.get("rule") if isinstance(entry, dict) else None
        if rule not in RULE_TYPES:
            raise _fail(path, f"caveat {code} has rule {rule!r}; known rules: {', '.join(sorted(RULE_TYPES))}")
        caveats[code] = rule
    return caveats


# --- classifications ----------------------------------------------------------------------


class _NameTable:
    """Normalised name -> rank, remembering where each name came from to report conflicts."""

    def __init__(self, top_rank: int) -> None:
        self.top_rank = top_rank
        self.ranks: dict[str, int] = {}
        self.origins: dict[str, str] = {}

    def add(self, name: str, rank: int, origin: str) -> None:
        key = normalise_name(name)
        if not key:
            raise MappingError(f"{origin}: empty classification name")
        if key in self.ranks and self.ranks[key] != rank:
            raise MappingError(
                f"classification name {name!r} maps to rank {rank} in {origin} "
                f"but to rank {self.ranks[key]} in {self.origins[key]}"
            )
        self.ranks.setdefault(key, rank)
        self.origins.setdefault(key, origin)


def load_classifications(
    directory: Path, countries: frozenset[str], groups: dict[str, frozenset[str]]
) -> tuple[dict[str, int], tuple[str, ...]]:
    """Classification names -> rank, and the canonical name by rank, from ``classifications/``."""
    canonical_path = directory / "canonical.json"
    data = _read(canonical_path)
    entries = data.get("ranks")
    if not isinstance(entries, list) or not entries:
        raise _fail(canonical_path, "'ranks' must be a non-empty list")
    try:
        entries = sorted(entries, key=lambda e: int(e["rank"]))
    except (KeyError, TypeError, ValueError):
        raise _fail(canonical_path, "every rank entry needs an integer 'rank'") from None
    rank_names: list[str] = []
    table = _NameTable(top_rank=len(entries) - 1)
    for entry in entries:
        rank = int(entry["rank"])
        if rank != len(rank_names):
            raise _fail(canonical_path, f"ranks must be 0..{len(entries) - 1} without gaps, found {rank}")
        if not isinstance(entry.get("name"), str) or not isinstance(entry.get("nato"), str):
            raise _fail(canonical_path, f"rank {rank} needs 'name' and 'nato'")
        rank_names.append(entry["name"])
        for name in [entry["name"], entry["nato"], *_string_list(entry.get("aliases", []), canonical_path, "aliases")]:
            table.add(name, rank, str(canonical_path))

    national = directory / "national"
    files = sorted(national.glob("*.json")) if national.is_dir() else []
    if not files:
        raise _fail(national, "no national classification files")
    for path in files:
        data = _read(path)
        scheme = data.get("scheme")
        if not isinstance(scheme, str) or not (scheme in countries or scheme in groups):
            raise _fail(path, f"'scheme' {scheme!r} must be a known country or group code")
        _add_scheme(table, data, path, scheme if scheme in countries else None, str(path))
        states = data.get("member_states", {})
        if not isinstance(states, dict):
            raise _fail(path, "'member_states' must be an object")
        for state, block in states.items():
            if state not in countries:
                raise _fail(path, f"member state {state!r} is not a known country code")
            if scheme in groups and state not in groups[scheme]:
                raise _fail(path, f"{state} is not a member of group {scheme}")
            if not isinstance(block, dict):
                raise _fail(path, f"member state {state} must be an object with 'ranks'")
            _add_scheme(table, block, path, state, f"{path} ({state})")
    return table.ranks, tuple(rank_names)


def _add_scheme(table: _NameTable, block: dict[str, Any], path: Path, nation: str | None, origin: str) -> None:
    """Register one scheme's names; with a nation, also as "<NATION> <name>" (always unambiguous)."""
    ranks = block.get("ranks")
    if not isinstance(ranks, dict) or not ranks:
        raise _fail(origin, "'ranks' must be a non-empty object of rank -> names")
    ambiguous = _string_list(block.get("qualified_only", []), origin, "qualified_only")
    qualified_only = {normalise_name(name) for name in ambiguous}
    seen: set[str] = set()
    for rank_text, names in ranks.items():
        try:
            rank = int(rank_text)
        except (TypeError, ValueError):
            raise _fail(origin, f"rank {rank_text!r} is not an integer") from None
        if not 0 <= rank <= table.top_rank:
            raise _fail(origin, f"rank {rank} is outside the canonical ranks 0..{table.top_rank}")
        for name in _string_list(names, origin, f"names of rank {rank}"):
            key = normalise_name(name)
            seen.add(key)
            if key not in qualified_only:
                table.add(name, rank, origin)
            if nation:
                table.add(f"{nation} {name}", rank, origin)
    missing = qualified_only - seen
    if missing:
        raise _fail(origin, f"qualified_only names not listed under any rank: {', '.join(sorted(missing))}")


# --- markings ------------------------------------------------------------------------------


def load_tlp(directory: Path) -> tuple[dict[str, tuple[str, dict[str, Any]]], dict[str, frozenset[str]]]:
    """The TLP 1.0 and 2.0 marking definitions by id, and what each releases to on its own."""
    tlp: dict[str, tuple[str, dict[str, Any]]] = {}
    release: dict[str, frozenset[str]] = {}
    for name, expected in (("tlp-1.0.json", 4), ("tlp-2.0.json", 5)):
        path = directory / name
        data = _read(path)
        entries = data.get("definitions")
        if not isinstance(entries, list) or len(entries) != expected:
            raise _fail(path, f"'definitions' must list the {expected} TLP marking definitions")
        for entry in entries:
            level = entry.get("level") if isinstance(entry, dict) else None
            definition = entry.get("definition") if isinstance(entry, dict) else None
            if not isinstance(level, str) or not isinstance(definition, dict):
                raise _fail(path, "each entry needs 'level' and 'definition'")
            marking_id = definition.get("id")
            if (
                definition.get("type") != "marking-definition"
                or not isinstance(marking_id, str)
                or not _MARKING_ID.match(marking_id)
            ):
                raise _fail(path, f"TLP {level}: definition is not a marking-definition with a valid id")
            if marking_id in tlp:
                raise _fail(path, f"marking definition {marking_id} is listed twice")
            rel = _string_list(entry.get("releasable_to"), path, f"releasable_to of TLP {level}")
            if set(rel) - {ALL}:
                raise _fail(path, f'TLP {level}: releasable_to may only be [] or ["ALL"]')
            tlp[marking_id] = (level, definition)
            release[marking_id] = frozenset(rel)
    return tlp, release


def load_label_extension(
    directory: Path,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], jsonschema_rs.Draft202012Validator]:
    """Tearline's label extension: its identity, extension definition, JSON Schema and a validator for it."""
    path = directory / "tearline-label-extension-definition.json"
    data = _read(path)
    identity, definition = data.get("identity"), data.get("extension_definition")
    if not isinstance(identity, dict) or identity.get("type") != "identity":
        raise _fail(path, "'identity' must be a STIX identity object")
    if not isinstance(definition, dict) or definition.get("type") != "extension-definition":
        raise _fail(path, "'extension_definition' must be a STIX extension-definition object")
    if not _EXTENSION_ID.match(str(definition.get("id"))):
        raise _fail(path, f"extension definition id {definition.get('id')!r} is not a valid extension-definition id")
    if "property-extension" not in definition.get("extension_types", []):
        raise _fail(path, "extension_types must include 'property-extension'")
    if definition.get("created_by_ref") != identity.get("id"):
        raise _fail(path, "created_by_ref must be the identity defined in the same file")

    schema_path = directory / "tearline-label-extension.schema.json"
    schema = _read(schema_path)
    # jsonschema-rs, not the jsonschema package: importing the latter costs seconds (its format
    # checkers build grammars at import), which every CLI command and server start would pay.
    try:
        jsonschema_rs.meta.validate(schema)
    except jsonschema_rs.ValidationError as exc:
        raise _fail(schema_path, f"not a valid JSON Schema: {exc.message}") from None
    return identity, definition, schema, jsonschema_rs.Draft202012Validator(schema)


def load_acs(
    path: Path, rank_count: int, countries: frozenset[str], groups: dict[str, frozenset[str]], caveats: dict[str, str]
) -> dict[str, Any]:
    """The ACS 3.0 mapping rules of ``markings/acs-3.0.json``, checked against the other tables."""
    data = _read(path)
    if not _EXTENSION_ID.match(str(data.get("extension_definition_id"))):
        raise _fail(path, "'extension_definition_id' is not a valid extension-definition id")
    levels = data.get("classification")
    if not isinstance(levels, dict) or not levels:
        raise _fail(path, "'classification' must map ACS codes to ranks")
    for code, rank in levels.items():
        if not isinstance(rank, int) or not 0 <= rank < rank_count:
            raise _fail(path, f"ACS classification {code!r} maps to {rank!r}, not a canonical rank")
    determinations = data.get("formal_determination")
    if not isinstance(determinations, dict):
        raise _fail(path, "'formal_determination' must be an object")
    for code, effect in determinations.items():
        if not isinstance(effect, dict):
            raise _fail(path, f"formal_determination {code!r} must be an object")
        for caveat in _string_list(effect.get("caveats", []), path, f"caveats of {code}"):
            if caveat not in caveats:
                raise _fail(path, f"formal_determination {code} names unknown caveat {caveat!r}")
        for rel in _string_list(effect.get("releasable_to", []), path, f"releasable_to of {code}"):
            if rel != ALL and rel not in countries and rel not in groups:
                raise _fail(path, f"formal_determination {code} names unknown code {rel!r}")
    nationalities = data.get("nationalities")
    if not isinstance(nationalities, dict):
        raise _fail(path, "'nationalities' must be an object")
    _string_list(nationalities.get("properties"), path, "nationalities.properties")
    if not isinstance(nationalities.get("all"), str):
        raise _fail(path, "'nationalities.all' must be the string meaning every nation")
    return data

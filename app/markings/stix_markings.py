"""Map the markings of a STIX object to a label (docs/design.md sections 2 and 3).

Classification/releasability markings are Tearline's own label extension,
statement markings whose statement is a banner, and the ACS 3.0 extension. When
an object carries several, the most restrictive wins. TLP (1.0 or 2.0, known by
its fixed ids) decides only when none is present; beside one it narrows nothing.
Only ``object_marking_refs`` decide an object's label: granular markings are
labelled one by one with ``definition_label`` by the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from app.markings.labels import (
    ALL,
    LabelSpec,
    UnknownToken,
    most_restrictive,
    parse_banner,
)
from app.markings.mappings import Mappings
from app.markings.tokens import normalise_code


def object_label(
    obj: dict[str, Any],
    *,
    originator: str,
    definitions: Mapping[str, dict[str, Any]],
    mappings: Mappings,
    home_nation: str,
) -> LabelSpec:
    """The label of one STIX object from its ``object_marking_refs``.

    ``definitions`` maps marking-definition ids to definition objects (from the
    same envelope or the store); TLP ids need no entry. A reference to an unknown
    definition raises ``UnknownToken`` naming the id. Unmarked objects, and
    objects marked only TLP:AMBER, AMBER+STRICT or RED, get UNCLASSIFIED for the
    originator only (with the home nation, who always sees); TLP:CLEAR/WHITE
    or GREEN alone give UNCLASSIFIED releasable to ALL.
    """
    # The home nation is not part of a label (it always sees, docs/design.md 2b), but a
    # misconfigured one must not pass silently into labelling.
    _country(home_nation, "home nation", mappings)
    origin = _country(originator, "originator", mappings)

    specs: list[LabelSpec] = []
    tlp_releases: list[frozenset[str]] = []
    for ref in _refs(obj.get("object_marking_refs")):
        if ref in mappings.tlp:
            tlp_releases.append(mappings.tlp_release[ref])
            continue
        definition = definitions.get(ref)
        if definition is None:
            raise UnknownToken("marking definition", ref, "not in this envelope or the store, and not TLP")
        spec = definition_label(definition, originator=origin, mappings=mappings)
        if spec is not None:
            specs.append(spec)

    if specs:
        return most_restrictive(specs, mappings)
    if tlp_releases and all(ALL in release for release in tlp_releases):
        return LabelSpec(0, frozenset({ALL}), frozenset(), origin)
    # AMBER, AMBER+STRICT, RED, or no marking at all: default deny, originator only.
    return LabelSpec(0, frozenset(), frozenset(), origin)


def definition_label(definition: dict[str, Any], *, originator: str, mappings: Mappings) -> LabelSpec | None:
    """The label one marking definition stands for, or ``None`` for a TLP-only definition.

    Raises ``UnknownToken`` for a definition Tearline cannot read as a label
    (an unknown kind, a statement that is not a banner, a TLP look-alike with a
    non-standard id, or bad codes inside a known kind).
    """
    originator = _country(originator, "originator", mappings)
    marking_id = str(definition.get("id", ""))
    if marking_id in mappings.tlp:
        return None
    # A label is a pure function of the definition, the originator and the tables: derive each once.
    # Only successes are remembered; a refused definition is examined (and refused) again.
    try:
        key = (orjson.dumps(definition, option=orjson.OPT_SORT_KEYS), originator)
    except TypeError:  # not JSON (only from in-process callers): no memo
        key = None
    if key is not None and key in mappings.definition_labels:
        return mappings.definition_labels[key]
    spec = _derive_definition_label(definition, marking_id, originator, mappings)
    if key is not None:
        if len(mappings.definition_labels) >= _MEMO_LIMIT:
            mappings.definition_labels.clear()
        mappings.definition_labels[key] = spec
    return spec


_MEMO_LIMIT = 65536


def _derive_definition_label(
    definition: dict[str, Any], marking_id: str, originator: str, mappings: Mappings
) -> LabelSpec:
    extensions = definition.get("extensions") or {}
    if not isinstance(extensions, dict):
        raise UnknownToken("marking definition", marking_id, "'extensions' is not an object")

    specs: list[LabelSpec] = []
    if mappings.label_extension_id in extensions:
        specs.append(_from_label_extension(extensions[mappings.label_extension_id], marking_id, originator, mappings))
    acs_id = mappings.acs["extension_definition_id"]
    if acs_id in extensions:
        specs.append(_from_acs(extensions[acs_id], marking_id, originator, mappings))
    if definition.get("definition_type") == "statement":
        specs.append(_from_statement(definition, marking_id, originator, mappings))

    if not specs:
        # Includes TLP definitions under other ids: TLP is recognised by its fixed ids only.
        raise UnknownToken(
            "marking definition", marking_id, "not a Tearline label, banner statement, TLP or ACS marking"
        )
    return most_restrictive(specs, mappings)


def _country(code: str, role: str, mappings: Mappings) -> str:
    """``code`` as a known trigraph, or UnknownToken naming it."""
    trigraph = normalise_code(code)
    if trigraph not in mappings.countries:
        raise UnknownToken("country code", code, f"the {role} must be an ISO 3166-1 alpha-3 code")
    return trigraph


def _refs(value: object) -> Iterable[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(ref, str) for ref in value):
        raise UnknownToken("marking definition", repr(value), "object_marking_refs must be a list of ids")
    return value


def _from_label_extension(ext: object, marking_id: str, originator: str, mappings: Mappings) -> LabelSpec:
    """Tearline's own extension, validated with its JSON Schema, then its codes against the tables."""
    errors = sorted(
        mappings.label_extension_validator.iter_errors(ext), key=lambda e: [str(part) for part in e.instance_path]
    )
    if errors:
        where = "/".join(str(part) for part in errors[0].instance_path) or "(extension)"
        problem = f"invalid Tearline label extension at {where}: {errors[0].message}"
        raise UnknownToken("marking definition", marking_id, problem)
    assert isinstance(ext, dict)  # the schema requires an object
    # The extension names its own originator (it may describe a third party's item).
    origin = ext.get("originator") or originator
    if origin not in mappings.countries:
        raise UnknownToken("country code", origin, "the label's originator must be an ISO 3166-1 alpha-3 code")
    releasable = ext.get("releasable_to", [])
    caveats = ext.get("caveats", [])
    mappings.expand(releasable)  # refuses unknown codes
    for caveat in caveats:
        if caveat not in mappings.caveats:
            raise UnknownToken("caveat", caveat)
    return LabelSpec(
        rank=mappings.rank_of(ext["classification"]),
        releasable_to=frozenset(releasable) - {origin},
        caveats=frozenset(caveats),
        originator=origin,
    )


def _from_statement(definition: dict[str, Any], marking_id: str, originator: str, mappings: Mappings) -> LabelSpec:
    """A statement marking whose statement is a banner (``SECRET//REL TO USA, GBR``)."""
    body = definition.get("definition")
    statement = body.get("statement") if isinstance(body, dict) else None
    if not isinstance(statement, str):
        raise UnknownToken("marking definition", marking_id, "statement marking without a statement")
    try:
        return parse_banner(statement, originator=originator, mappings=mappings)
    except UnknownToken as exc:
        if exc.kind == "classification":
            # Not a banner at all (a copyright or handling statement): an unknown marking.
            raise UnknownToken("marking definition", marking_id, f"statement {statement!r} is not a banner") from exc
        raise  # a banner with a bad code or caveat: name that token


def _from_acs(ext: object, marking_id: str, originator: str, mappings: Mappings) -> LabelSpec:
    """The ACS 3.0 / ISA marking extension, mapped by the rules in ``markings/acs-3.0.json``."""
    rules = mappings.acs
    if not isinstance(ext, dict):
        raise UnknownToken("marking definition", marking_id, "the ACS extension is not an object")
    control = ext.get("control_set") or {}
    if not isinstance(control, dict):
        raise UnknownToken("marking definition", marking_id, "ACS control_set is not an object")
    code = control.get("classification")
    if code not in rules["classification"]:
        raise UnknownToken("classification", str(code), f"not an ACS 3.0 classification in {marking_id}")

    nationality = rules["nationalities"]
    releasable: set[str] = set()
    caveats: set[str] = set()

    def take(scope: object) -> None:
        # Only nationality properties release to partners; entity/organisation scopes name no nation.
        if not isinstance(scope, dict):
            return
        for prop in nationality["properties"]:
            values = scope.get(prop)
            if values is None:
                continue
            for value in _as_list(values):
                token = normalise_code(str(value))
                if token == nationality["all"]:
                    releasable.add(ALL)
                elif mappings.is_code(token):
                    releasable.add(token)
                else:
                    raise UnknownToken("country or group code", str(value))

    take(control)
    for privilege in _as_list(ext.get("access_privilege")):
        if isinstance(privilege, dict) and privilege.get("rule_effect") == nationality["access_privilege_effect"]:
            take(privilege.get("privilege_scope"))
    for determination in _as_list(control.get("formal_determination")):
        effect = rules["formal_determination"].get(determination) if isinstance(determination, str) else None
        if effect:
            caveats.update(effect.get("caveats", []))
            releasable.update(effect.get("releasable_to", []))
    return LabelSpec(
        rank=rules["classification"][code],
        releasable_to=frozenset(releasable - {originator}),
        caveats=frozenset(caveats),
        originator=originator,
    )


def _as_list(value: object) -> list[object]:
    """A list from an ACS list property; a lone string counts as one item (so "NF" is not read as "N", "F")."""
    if value is None:
        return []
    if isinstance(value, (str, dict)):
        return [value]
    return list(value) if isinstance(value, list) else [value]

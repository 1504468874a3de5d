"""STIX 2.1 validation for everything stored: the official validator's checks at bulk-ingest speed.

What a submitted object must pass is what stix2-validator checks, in two parts:

1. **The official STIX 2.1 JSON schemas** (OASIS cti-stix2-json-schemas, as shipped inside
   stix2-validator), evaluated by jsonschema-rs, a compiled JSON Schema engine: about 5 us per
   object, where stix2-validator's own engine (the ``jsonschema`` package) takes milliseconds.
   As stix2-validator does, a type without a schema (a custom object) is checked against the
   core schema of its kind.
2. **stix2-validator's MUST checks** (``stix2validator.v21.musts``), run as the library defines
   them, except two that are given the same rules more cheaply:

   - ``timestamp`` (is each timestamp property a real date?) and ``timestamp_compare``
     (``modified >= created``, ``valid_until > valid_from`` ...) parse with ``dateutil`` and
     ``strptime``, which cost more than everything else together; here the validator's own
     tables of properties and comparisons (``stix2validator.v21.enums``) are read and the
     timestamps parsed by :func:`app.db.timestamps.parse_us`, exact to the microsecond;
   - ``patterns`` (STIX patterns parse) runs stix2-patterns through :mod:`app.items.patterns`,
     which caches the verdict per pattern shape.

3. **What stix2 checks and the schemas do not,** with stix2's own code:

   - every reference property (``created_by_ref``, ``object_marking_refs``, ``sighting_of_ref``,
     an observable's ``parent_directory_ref`` ...) through the type's stix2 property, which knows
     the types it may name (the schemas only ask for an identifier of any type);
   - markings, which releasability is computed from: a marking definition through ``stix2.parse``
     (they are few), and each granular marking as stix2's constructor checks it (a stix2
     ``GranularMarking``, and its selectors against the object).

This replaced ``stix2.parse`` of every object on the ingest path, which cost about 0.2-0.4 ms per
object (most of ingest's time) and is the laxer check in other respects: it lets through, for
instance, timestamps coarser than the millisecond (see :func:`app.items.ingest.validate`, which pads
those first), a confidence of 101 or ``modified`` earlier than ``created``.
``tests/items/test_stix_validation.py`` compares the two verdicts on mutants of valid objects.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, NoReturn

import jsonschema_rs
import stix2
from stix2.markings.utils import validate as validate_selectors
from stix2.properties import ListProperty, ReferenceProperty
from stix2.registry import class_for_type
from stix2.v21.common import GranularMarking

from app.db.timestamps import parse_us
from app.items import patterns

_VALIDATOR_SPEC = importlib.util.find_spec("stix2validator")  # found without importing it (see _library)
if _VALIDATOR_SPEC is None or _VALIDATOR_SPEC.origin is None:
    raise ImportError("stix2-validator is not installed: it ships the STIX 2.1 schemas every object is checked with")
SCHEMA_ROOT = Path(_VALIDATOR_SPEC.origin).parent / "schemas-2.1" / "schemas"
# Top-level objects whose schema lives beside the shared definitions.
_COMMON_OBJECT_TYPES = ("marking-definition", "language-content", "extension-definition")
_REPLACED_MUSTS = {"timestamp", "timestamp_compare", "patterns"}
_COMPARISONS = {"ge": lambda first, second: first >= second, "gt": lambda first, second: first > second}
_MAX_REPORTED = 3
# Per-type tables are cached by the type a submitter names, custom ones included: bounded, so that
# envelopes of ever new custom types cannot grow the cache without end.
_TYPES_CACHED = 1024


@cache
def _library() -> tuple[Any, tuple[Callable[..., Any], ...]]:
    """stix2-validator's tables (``enums``) and MUST checks, imported on first validation.

    Importing stix2-validator imports the jsonschema package, whose format checkers build grammars
    at import: seconds that every command and server start would pay, validating or not.
    """
    from stix2validator import ValidationOptions
    from stix2validator.v21 import enums, musts

    checks = tuple(
        check for check in musts.list_musts(ValidationOptions(version="2.1")) if check.__name__ not in _REPLACED_MUSTS
    )
    return enums, checks


def warm_up() -> None:
    """Import stix2-validator and load the schemas now: a server calls this before it serves, so
    that its first POST does not pay seconds of imports."""
    _library()
    _schema_uris()


class StixInvalid(ValueError):
    """The object is not valid STIX 2.1; the message says why."""


def _no_network(uri: str) -> NoReturn:
    raise ValueError(f"schema {uri} is not shipped with stix2-validator")


@cache
def _schema_uris() -> tuple[jsonschema_rs.Registry, dict[str, str]]:
    """Every shipped schema in one registry, and the schema of each object type with one (plus the
    two core schemas, under keys no type can have)."""
    resources, by_name = [], {}
    for path in sorted(SCHEMA_ROOT.rglob("*.json")):
        document = json.loads(path.read_text())
        resources.append((document["$id"], document))
        by_name[(path.parent.name, path.stem)] = document["$id"]
    uris = {
        stem: uri
        for (folder, stem), uri in by_name.items()
        if folder in ("sdos", "sros", "observables") or stem in _COMMON_OBJECT_TYPES
    }
    uris[" core"] = by_name[("common", "core")]
    uris[" cyber-observable-core"] = by_name[("common", "cyber-observable-core")]
    return jsonschema_rs.Registry(resources, retriever=_no_network), uris


_COMPILED: dict[str, jsonschema_rs.Validator] = {}


def _validator(key: str) -> jsonschema_rs.Validator | None:
    """The compiled validator of one object type (or core schema), None for a type without a schema.

    Compiled on first use (a few ms each): a server that is sent five types does not compile 44
    before its first envelope is answered.
    """
    validator = _COMPILED.get(key)
    if validator is None:
        registry, uris = _schema_uris()
        if key not in uris:
            return None
        compiled = jsonschema_rs.validator_for({"$ref": uris[key]}, registry=registry, retriever=_no_network)
        validator = _COMPILED.setdefault(key, compiled)  # two threads may compile one; both are the same
    return validator


def _schema_for(obj: dict[str, Any]) -> jsonschema_rs.Validator:
    validator = _validator(obj["type"])
    if validator is not None:
        return validator
    # stix2-validator's rule for a type without a schema: an object without created/modified is an SCO.
    is_observable = "created" not in obj and "modified" not in obj and obj["type"] != "marking-definition"
    core = _validator(" cyber-observable-core" if is_observable else " core")
    assert core is not None  # the core schemas are always listed
    return core


def _schema_errors(obj: dict[str, Any]) -> list[str]:
    validator = _schema_for(obj)
    if validator.is_valid(obj):
        return []
    errors = []
    for error in validator.iter_errors(obj):
        where = "/".join(str(part) for part in error.instance_path)
        errors.append(f"{where}: {error.message}" if where else error.message)
        if len(errors) == _MAX_REPORTED:
            break
    return errors


@lru_cache(maxsize=_TYPES_CACHED)
def _timestamp_rules(object_type: str) -> tuple[tuple[str, ...], tuple[tuple[str, str, str], ...]]:
    """The timestamp properties of a type and the comparisons between them, from the validator's tables."""
    enums = _library()[0]
    names = ("created", "modified", *enums.TIMESTAMP_PROPERTIES.get(object_type, ()))
    return names, (("modified", "ge", "created"), *enums.TIMESTAMP_COMPARE.get(object_type, ()))


def _timestamp_errors(obj: dict[str, Any]) -> list[str]:
    """The validator's ``timestamp`` and ``timestamp_compare`` rules, read from its own tables."""
    names, comparisons = _timestamp_rules(obj["type"])
    instants = {}
    for name in names:
        if isinstance(obj.get(name), str):
            try:
                instants[name] = parse_us(obj[name])
            except ValueError as exc:
                return [f"{name}: {exc}"]
    for first, op, second in comparisons:
        if first in instants and second in instants and not _COMPARISONS[op](instants[first], instants[second]):
            relation = "later than" if op == "gt" else "later than or equal to"
            return [f"{first}: must be {relation} {second}"]
    return []


def _pattern_errors(obj: dict[str, Any]) -> list[str]:
    if obj["type"] != "indicator" or obj.get("pattern_type") != "stix":
        return []
    problems = patterns.run_validator(obj.get("pattern"), str(obj.get("pattern_version") or "2.1"))
    return [f"pattern: {problem}" for problem in problems[:_MAX_REPORTED]]


@lru_cache(maxsize=_TYPES_CACHED)
def _reference_properties(object_type: str) -> dict[str, object]:
    """stix2's reference properties of a type (single and list), which check the types an id may name."""
    cls = class_for_type(object_type, "2.1")
    properties = getattr(cls, "_properties", {}) if cls is not None else {}
    return {
        name: prop
        for name, prop in properties.items()
        if isinstance(prop, ReferenceProperty)
        or (isinstance(prop, ListProperty) and isinstance(prop.contained, ReferenceProperty))
    }


def _reference_refusal(prop: Any, value: object) -> str | None:
    try:
        prop.clean(value, True)
    except Exception as exc:  # noqa: BLE001 - stix2 raises several types; each is a refusal
        return str(exc)
    return None


@lru_cache(maxsize=65_536)
def _cached_reference_refusal(object_type: str, name: str, value: str | tuple[str, ...]) -> str | None:
    # The verdict is a function of these three alone; marking refs and creators repeat on most objects.
    prop = _reference_properties(object_type)[name]
    return _reference_refusal(prop, list(value) if isinstance(value, tuple) else value)


def _reference_errors(obj: dict[str, Any]) -> list[str]:
    for name, prop in _reference_properties(obj["type"]).items():
        if name not in obj:
            continue
        value = obj[name]
        if isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            refusal = _cached_reference_refusal(obj["type"], name, value if isinstance(value, str) else tuple(value))
        else:
            refusal = _reference_refusal(prop, value)
        if refusal:
            return [f"{name}: {refusal}"]
    return []


def _marking_errors(obj: dict[str, Any]) -> list[str]:
    """stix2's own checks of markings: a definition is parsed whole; granular markings are built as
    stix2 GranularMarking objects (lang or marking_ref, never both) and their selectors checked against
    the object, as stix2's constructor does (``stix2.base._STIXBase.__init__``)."""
    try:
        if obj["type"] == "marking-definition":
            stix2.parse(obj, allow_custom=True, version="2.1")
        for marking in obj.get("granular_markings") or ():
            GranularMarking(**marking)
            validate_selectors(obj, marking.get("selectors"))
    except Exception as exc:  # noqa: BLE001 - stix2 raises many exception types; each is a refusal
        return [str(exc)]
    return []


def _must_errors(obj: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    for check in _library()[1]:
        try:
            for error in check(obj) or ():  # stix2-validator's JSONErrors (a loop: no generator per check)
                errors.append(error.message)
        except Exception as exc:  # noqa: BLE001 - a check that cannot read the object refuses it
            errors.append(f"{check.__name__}: {exc.__class__.__name__}")
        if errors:
            break
    return errors[:_MAX_REPORTED]


# After the schema, in this order (the first part with errors names them).
_LATER_PARTS = (_timestamp_errors, _pattern_errors, _must_errors, _reference_errors, _marking_errors)


def check(obj: dict[str, Any]) -> None:
    """Raise StixInvalid unless ``obj`` (a dict with a string ``type``) is valid STIX 2.1."""
    if obj.get("spec_version", "2.1") != "2.1":  # optional on observables, but never another version
        raise StixInvalid("spec_version: must be 2.1")
    for part in (_schema_errors, *_LATER_PARTS):
        errors = part(obj)
        if errors:
            raise StixInvalid("; ".join(errors))


def is_valid(obj: dict[str, Any]) -> bool:
    """Whether :func:`check` accepts ``obj``: the same checks, without the messages.

    For callers that only ask (which references an object cannot lose, whether a redaction stays
    valid): most of what they ask about fails the schema, and jsonschema-rs's errors, built only to
    be dropped, cost several times its yes-or-no answer.
    """
    if obj.get("spec_version", "2.1") != "2.1" or not _schema_for(obj).is_valid(obj):
        return False
    return not any(part(obj) for part in _LATER_PARTS)

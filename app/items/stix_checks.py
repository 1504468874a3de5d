"""Check analyst-submitted STIX 2.1 and say, per field, what is wrong.

Three checks, cheapest first, each reported with the path of the offending property:

1. the stix2 library's parser (required, extra and invalid properties);
2. :func:`app.items.ingest.validate`, the checks every stored object passes (id form, spec_version,
   timestamps, sizes);
3. stix2-validator, which knows the STIX 2.1 MUSTs the parser does not check (timestamp
   precision, pattern grammar, vocabulary-bound formats). It costs about 11 ms per object, so it
   runs on this API only: analysts post a few objects at a time, and their mistakes should be
   caught where they are made. Bulk TAXII ingest relies on the first two checks.
"""

from __future__ import annotations

import re
from typing import Any, cast

import stix2
from stix2 import exceptions as stix_exc

from app.items import ingest
from app.items.problems import FieldError, join_path

_LEADING_NAME = re.compile(r"^([a-z0-9_]+(?:\.[a-z0-9_\[\]]+)*): (.*)$", re.DOTALL)


def stix_errors(exc: Exception, base: str) -> list[FieldError]:
    """The stix2 library's exception as field errors."""
    if isinstance(exc, (stix_exc.InvalidValueError, stix_exc.InvalidObjRefError)):
        return [FieldError(join_path(base, exc.prop_name), exc.reason)]
    if isinstance(exc, stix_exc.MissingPropertiesError):
        return [FieldError(join_path(base, name), "required property is missing") for name in exc.properties]
    if isinstance(exc, stix_exc.ExtraPropertiesError):
        return [FieldError(join_path(base, name), "not a property of this type") for name in exc.properties]
    if isinstance(exc, stix_exc.DependentPropertiesError):
        return [FieldError(join_path(base, dependent), f"requires {prop}") for prop, dependent in exc.dependencies]
    if isinstance(exc, (stix_exc.MutuallyExclusivePropertiesError, stix_exc.AtLeastOnePropertyError)):
        return [FieldError(join_path(base, name), str(exc)) for name in exc.properties]
    if isinstance(exc, stix_exc.InvalidSelectorError):
        return [FieldError(join_path(base, "granular_markings"), str(exc))]
    if isinstance(exc, stix_exc.ParseError):
        return [FieldError(join_path(base, "type"), str(exc))]
    return [FieldError(base, str(exc))]


def _located(message: str, obj: dict[str, Any], base: str) -> FieldError:
    """A "prop: reason" message (from ingest or the validator) as a field error at that property."""
    match = _LEADING_NAME.match(message)
    if match and match.group(1).split(".")[0].split("[")[0] in obj:
        return FieldError(join_path(base, match.group(1)), match.group(2))
    return FieldError(base, message)


def parse_errors(obj: object, base: str, *, allow_custom: bool) -> list[FieldError]:
    """What the stix2 parser and the store's own checks find wrong with one object (empty: fine)."""
    if not isinstance(obj, dict):
        return [FieldError(base, "an object must be a JSON object")]
    try:
        stix2.parse(obj, allow_custom=allow_custom, version="2.1")
    except Exception as exc:  # noqa: BLE001 - stix2 raises many types; each is a refusal
        return stix_errors(exc, base)
    try:
        ingest.validate(obj)
    except ingest.InvalidObject as exc:
        return [_located(str(exc), obj, base)]
    return []


def validator_errors(obj: dict[str, Any], base: str) -> list[FieldError]:
    """stix2-validator's errors (not its warnings) for one object that already parses."""
    # Imported here: importing stix2-validator builds jsonschema's format grammars (about 1.5 s),
    # which every server and command start would pay, whether it validates or not.
    from stix2validator import ValidationOptions, validate_instance

    results = validate_instance(obj, ValidationOptions(version="2.1"))
    errors = []
    for error in results.errors:
        message = str(getattr(error, "message", error))
        prefix = f"{obj.get('id')}: "
        errors.append(_located(message.removeprefix(prefix), obj, base))
    return errors


def check_objects(located: list[tuple[str, object]], *, allow_custom: bool = True) -> list[FieldError]:
    """Every field error of every (path, object) pair; the validator runs only on objects that parse."""
    errors: list[FieldError] = []
    for path, obj in located:
        found = parse_errors(obj, path, allow_custom=allow_custom)
        # No errors means the object parsed, and parse_errors finds an error in anything but a dict.
        errors += found or validator_errors(cast("dict[str, Any]", obj), path)
    return errors

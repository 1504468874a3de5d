"""STIX pattern validation with a cache of pattern *shapes*, giving stix2's verdict at a fraction of the cost.

``stix2.parse`` validates every indicator's pattern with stix2-patterns, an
ANTLR parser in pure Python that costs about 0.7 ms per pattern: more than
everything else ingest does for that object. Almost every real indicator has
the shape ``[<type>:<path> = '<value>']``, and only the value differs.

For a pattern of exactly that shape, stix2-patterns' verdict decomposes into
three parts, and this module computes each one exactly:

1. **Grammar.** A well-formed string literal (``'`` ... ``'`` with only ``\\'``
   and ``\\\\`` as escapes, the STIX grammar's ``StringLiteral`` rule) is one
   token whatever its contents, so whether the token stream parses depends
   only on the shape: the pattern with the value replaced. That is validated
   once by stix2-patterns itself and remembered.
2. **Hash values.** The one semantic check stix2-patterns makes on a value
   (``object_validator.verify_object``: a ``hashes.<algorithm>`` value must
   match the algorithm's regex) is run on the real value, with the library's
   own function and table.
3. **Brackets.** ``brackets_check``, which reads the raw string, is run on the
   real string.

Anything that does not match the strict shape is validated by stix2-patterns
as before, and so is every pattern whose shape is invalid (to get its error
message). :func:`install` makes stix2's Indicator use :func:`run_validator`.
"""

from __future__ import annotations

import re
import threading
from types import SimpleNamespace
from typing import cast

import stix2.v21.sdo
from stix2patterns.helpers import brackets_check
from stix2patterns.v21.object_validator import verify_object
from stix2patterns.validator import run_validator as _library_run_validator

# [type:path op 'value'] with nothing else: no qualifiers, no other operators, no other literals.
_SIMPLE = re.compile(
    r"\[(?P<type>[a-z][a-z0-9-]*):(?P<path>[a-z_][a-z0-9_]*(?:\.(?:[a-z_][a-z0-9_]*|'[A-Za-z0-9-]+'))*)"
    r" (?P<op>=|!=) '(?P<value>(?:[^'\\]|\\['\\])*)'\]"
)
# Placeholders for the value in a shape: the first one the hash check accepts stands for "any value";
# they cover the lengths of every algorithm in stix2patterns' HASHES_REGEX.
_PLACEHOLDERS = ("x", *tuple("0" * n for n in (32, 40, 56, 64, 96, 128)))
_MAX_SHAPES = 4096

_shapes: dict[str, bool] = {}
_lock = threading.Lock()


def _path_components(path: str) -> list[str]:
    # The strict shape has no dots inside quoted keys, so splitting on "." is the inspector's own split.
    return [part[1:-1] if part.startswith("'") else part for part in path.split(".")]


def _shape_valid(object_type: str, path: str, op: str) -> bool:
    """Whether ``[type:path op '<some value>']`` is valid: its grammar, checked once by stix2-patterns."""
    key = f"{object_type}:{path} {op}"
    verdict = _shapes.get(key)
    if verdict is None:
        verdict = any(
            not _library_run_validator(f"[{object_type}:{path} {op} '{placeholder}']", "2.1")
            for placeholder in _PLACEHOLDERS
        )
        with _lock:
            if len(_shapes) >= _MAX_SHAPES:
                _shapes.clear()
            _shapes[key] = verdict
    return verdict


def is_valid_fast(pattern: str) -> bool:
    """True only when the pattern has the strict shape and is valid; False means "ask stix2-patterns"."""
    match = _SIMPLE.fullmatch(pattern)
    if match is None:
        return False
    object_type, path, op = match.group("type"), match.group("path"), match.group("op")
    if not _shape_valid(object_type, path, op):
        return False
    comparison = (_path_components(path), op, f"'{match.group('value')}'")
    if verify_object(SimpleNamespace(comparisons={object_type: [comparison]})):
        return False
    return cast(bool, brackets_check(pattern))


def run_validator(pattern: object, stix_version: str = "2.1") -> list[str]:
    """stix2-patterns' ``run_validator``: the same errors (none) for a valid pattern, faster for common shapes."""
    if stix_version == "2.1" and isinstance(pattern, str) and is_valid_fast(pattern):
        return []
    return cast(list[str], _library_run_validator(pattern, stix_version))


def install() -> None:
    """Make stix2's STIX 2.1 Indicator validate patterns through :func:`run_validator` (idempotent)."""
    stix2.v21.sdo.run_validator = run_validator

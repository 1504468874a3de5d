"""Structural limits on posted envelopes, checked before any object reaches ingest.

The body size is bounded while it is read (``max_content_length``); this module bounds what
a body of legal size may still hold: how many objects one envelope carries, how long any
string (property name or value) is, and how deeply objects and arrays nest inside one STIX
object. Refusing the whole envelope up front keeps ingest and the stix2 library away from
input built to exhaust them, and stores nothing.
"""

from __future__ import annotations

from typing import Any

from app.config.settings import Settings
from app.http.errors import ApiError


def check_envelope(objects: list[Any], settings: Settings) -> None:
    """Raise ApiError (413 or 400) when the envelope's objects break a configured limit."""
    if len(objects) > settings.max_objects_per_envelope:
        raise ApiError(
            413,
            f"The envelope carries {len(objects)} objects; at most "
            f"{settings.max_objects_per_envelope} are accepted per request.",
        )
    for index, obj in enumerate(objects):
        problem = structure_problem(obj, max_depth=settings.max_nesting_depth, max_string=settings.max_string_length)
        if problem is not None:
            status, reason = problem
            raise ApiError(status, f"objects[{index}]: {reason}; the envelope was not stored.")


def structure_problem(value: object, *, max_depth: int, max_string: int) -> tuple[int, str] | None:
    """(status, reason) for the first limit ``value`` breaks, or None.

    Iterative, so a value nested deeper than Python's recursion limit is measured safely.
    The value itself is at depth 1 when it is an object or array.
    """
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if len(item) > max_string:
                return 413, f"a string of {len(item)} characters exceeds the limit of {max_string}"
        elif isinstance(item, dict):
            if depth > max_depth:
                return 400, f"nesting deeper than {max_depth} levels"
            for key, child in item.items():
                if len(key) > max_string:
                    return 413, f"a property name of {len(key)} characters exceeds the limit of {max_string}"
                if isinstance(child, (dict, list, str)):
                    stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth > max_depth:
                return 400, f"nesting deeper than {max_depth} levels"
            stack.extend((child, depth + 1) for child in item if isinstance(child, (dict, list, str)))
    return None

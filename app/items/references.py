"""The references of a stored version, and which of them it cannot be served without.

Reference closure (docs/design.md, section 2): a served object never names a stored object the
requester may not see. At ingest each version's references are recorded (``object_reference``),
each in the *groups* it belongs to: a group is a set of reference properties whose entries may
not all be removed, because the object would no longer be valid STIX 2.1 without them (a
relationship's ``source_ref``; a report's ``object_refs``; network traffic's ``src_ref`` and
``dst_ref`` together). At serve time a version is withheld when every reference of one of its
groups names a stored object hidden from the requester (decided in SQL, so counts and pages
agree); any other hidden reference is removed from the served copy.

Not recorded: ``created_by_ref`` (an identity registered for the originator, public by design)
and marking references (a marking definition is served with every version that references it).
Only top-level properties are followed.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from itertools import combinations
from typing import Any

NO_GROUP = -1
EXCLUDED = frozenset({"created_by_ref", "object_marking_refs"})
MAX_GROUP_SEARCH = 6
"""Reference properties beyond this count are each made a group of their own (over-withholding, never a leak)."""


@dataclass(frozen=True, slots=True)
class Reference:
    """One reference entry of a version: its property, position in a list, the id named, and its groups."""

    prop: str
    position: int
    ref_id: str
    group: int
    """A group the entry belongs to (one row per group), or ``NO_GROUP`` for an entry no group needs."""


def reference_properties(obj: dict[str, Any]) -> dict[str, list[str]]:
    """Top-level reference properties (``*_ref``, ``*_refs``) and the STIX ids they name, in order."""
    found: dict[str, list[str]] = {}
    for name, value in obj.items():
        if name in EXCLUDED or not (name.endswith(("_ref", "_refs"))):
            continue
        ids = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        ids = [ref for ref in ids if isinstance(ref, str) and "--" in ref]
        if ids:
            found[name] = ids
    return found


def without(obj: dict[str, Any], props: tuple[str, ...]) -> dict[str, Any]:
    """``obj`` without the given properties."""
    return {key: value for key, value in obj.items() if key not in props}


def required_groups(
    obj: dict[str, Any], props: list[str], valid: Callable[[dict[str, Any]], bool]
) -> list[tuple[str, ...]]:
    """The minimal sets of reference properties whose removal together leaves ``obj`` invalid."""
    if len(props) > MAX_GROUP_SEARCH:
        return [(prop,) for prop in props]
    groups: list[tuple[str, ...]] = []
    for size in range(1, len(props) + 1):
        for subset in combinations(props, size):
            if any(set(group) <= set(subset) for group in groups):
                continue  # not minimal
            if not valid(without(obj, subset)):
                groups.append(subset)
    return groups


def references(obj: dict[str, Any], valid: Callable[[dict[str, Any]], bool]) -> list[Reference]:
    """Every reference entry of ``obj``, once per group it belongs to (once with ``NO_GROUP`` if in none)."""
    properties = reference_properties(obj)
    if not properties:
        return []
    groups = required_groups(obj, list(properties), valid)
    entries: list[Reference] = []
    for prop, ids in properties.items():
        memberships = [number for number, group in enumerate(groups) if prop in group] or [NO_GROUP]
        for position, ref_id in enumerate(ids):
            entries.extend(Reference(prop, position, ref_id, number) for number in memberships)
    return entries


def remove_hidden(obj: dict[str, Any], hidden: AbstractSet[tuple[str, str]]) -> dict[str, Any]:
    """A copy of ``obj`` without the reference entries ``(property, id)`` in ``hidden``.

    Matched by value, not position, so granular redaction before it (which may shorten a list)
    does not shift them. An emptied list property is removed, as STIX forbids empty lists; what
    is left is valid, since a version whose every entry of a required group is hidden was
    withheld already.
    """
    served = dict(obj)
    for prop in {prop for prop, _ in hidden}:
        value = served.get(prop)
        if isinstance(value, list):
            kept = [ref for ref in value if (prop, ref) not in hidden]
            if kept:
                served[prop] = kept
            else:
                del served[prop]
        elif (prop, value) in hidden:
            del served[prop]
    return served

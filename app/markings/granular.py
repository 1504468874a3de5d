"""Granular-marking redaction: remove the properties a principal may not see, or withhold the version.

Selectors follow STIX 2.1 section 7.2.3.1 (``description``,
``external_references.[0].url``, ``kill_chain_phases.[1]``). Removal is done by
marking every target first and sweeping afterwards, so list indices of one
selector are not shifted by another. A copy that would lose a required
property, or that is no longer valid STIX 2.1, is withheld (``None``).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Set
from typing import Any

import orjson
from stix2.registry import class_for_type

from app.items import stix_validation

_INDEX = re.compile(r"^\[(\d+)\]$")
_COMMON_REQUIRED = frozenset({"type", "id", "spec_version", "created", "modified"})
_REMOVED = object()


def _copy(obj: dict[str, Any]) -> dict[str, Any]:
    """A deep copy; through orjson for JSON data (several times faster than ``copy.deepcopy``)."""
    try:
        copied: dict[str, Any] = orjson.loads(orjson.dumps(obj))
        return copied
    except TypeError:  # not plain JSON (an in-process caller's datetime, say)
        return copy.deepcopy(obj)


def required_properties(stix_type: str) -> frozenset[str]:
    """Properties a version of ``stix_type`` cannot lose and stay valid STIX 2.1."""
    cls = class_for_type(stix_type, "2.1")
    declared = frozenset(name for name, prop in getattr(cls, "_properties", {}).items() if prop.required)
    return declared | _COMMON_REQUIRED


def _resolve(obj: object, selector: str) -> tuple[object, object] | None:
    """(container, key) that ``selector`` points at, or None when it points at nothing."""
    steps = selector.split(".")
    node = obj
    for position, step in enumerate(steps):
        match = _INDEX.match(step)
        if match:
            if not isinstance(node, list) or int(match.group(1)) >= len(node):
                return None
            key: object = int(match.group(1))
        else:
            if not isinstance(node, dict) or step not in node:
                return None
            key = step
        if position == len(steps) - 1:
            return node, key
        node = node[key]  # type: ignore[call-overload]  # key is an int when node is a list, a str when a dict
    return None


def _remap(marked: dict[str, Any], selector: str) -> str | None:
    """The selector's path once removed elements are swept, or None if its target is removed."""
    node: object
    remapped: list[str]
    steps, node, remapped = selector.split("."), marked, []
    for step in steps:
        match = _INDEX.match(step)
        if match:
            index = int(match.group(1))
            if not isinstance(node, list) or index >= len(node) or node[index] is _REMOVED:
                return None
            remapped.append(f"[{sum(1 for item in node[:index] if item is not _REMOVED)}]")
            node = node[index]
        else:
            if not isinstance(node, dict) or node.get(step, _REMOVED) is _REMOVED:
                return None
            remapped.append(step)
            node = node[step]
    return ".".join(remapped)


def _sweep(node: object) -> object:
    if isinstance(node, dict):
        return {k: _sweep(v) for k, v in node.items() if v is not _REMOVED}
    if isinstance(node, list):
        return [_sweep(v) for v in node if v is not _REMOVED]
    return node


def redact(obj: dict[str, Any], hidden_refs: Set[str], *, parsed_valid: bool = False) -> dict[str, Any] | None:
    """A copy of ``obj`` without the properties under granular markings in ``hidden_refs``.

    Returns ``obj`` itself when nothing is hidden, and ``None`` when the copy would be invalid.
    ``parsed_valid`` skips only the final validation of the copy (:mod:`app.items.stix_validation`,
    the check every stored version passed), for a caller that already
    knows its verdict: the store computed ``redact(obj, {ref}) is None`` for every granular marking
    at ingest and withholds those versions in SQL, so a served version with exactly one hidden
    marking is known to redact validly. The required-property check still runs.
    """
    markings = obj.get("granular_markings") or []
    hidden = [m for m in markings if m.get("marking_ref") in hidden_refs]
    if not hidden:
        return obj
    copied = _copy(obj)
    for marking in hidden:
        for selector in marking.get("selectors", []):
            target = _resolve(copied, selector)
            if target is not None:
                container, key = target
                container[key] = _REMOVED  # type: ignore[index]  # _resolve gives a list or a dict with a key it holds
    kept = []
    for marking in copied.get("granular_markings", []):
        if marking is _REMOVED or marking.get("marking_ref") in hidden_refs:
            continue
        selectors = [new for new in (_remap(copied, s) for s in marking.get("selectors", [])) if new]
        if selectors:
            kept.append(marking | {"selectors": selectors})
    redacted = _sweep(copied)
    assert isinstance(redacted, dict)
    if kept:
        redacted["granular_markings"] = kept
    else:
        redacted.pop("granular_markings", None)

    required = required_properties(obj["type"])
    if any(name in obj and redacted.get(name) in (None, [], {}, "") for name in required):
        return None
    if parsed_valid:
        return redacted
    return redacted if stix_validation.is_valid(redacted) else None

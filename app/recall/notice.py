"""The recall notice: a STIX 2.1 ``note`` naming the recalled object, with Tearline's recall extension.

The notice tells a recipient only what it already held: the recalled object's id and the versions
it received, plus the recall's reason, expected action and time. Never the version that caused
the recall, its label or its banner. Its label is its recipient's alone (the lowest classification
among the versions recalled from it, releasable to that nation only), so it reaches exactly the
principals of that nation who could have held them. Everything here is pure but the one table
read from ``stix_mappings/recall/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson

from app.db.timestamps import format_us
from app.items.identity import home_identity_id
from app.items.service import stix_timestamp
from app.markings.label_spec import LabelSpec

ACTIONS = ("destroy", "do-not-disseminate", "quarantine")
"""What a recipient may be asked to do with the versions it holds."""
DEFAULT_ACTION = "destroy"
WITHDRAWN_REASON = "The originator has withdrawn these versions from your release."
"""The reason of a recall caused by a newer version (tightened or revoked): the same words for both,
so that a notice never tells what the newer version is."""
DERIVED_REASON = "A source these versions were derived from was withdrawn."
"""The reason of a recall that follows another (a tearline of a recalled item, an item a partner
recalled): never the first recall's own words, which were written for other recipients."""


@dataclass(frozen=True)
class RecallExtension:
    """Tearline's recall extension as shipped in ``stix_mappings/recall/``."""

    id: str
    definition: dict[str, Any]
    validator: Any


@lru_cache(maxsize=4)
def recall_extension(mappings_dir: Path) -> RecallExtension:
    """The recall extension definition and a validator of its properties (read once per directory)."""
    folder = mappings_dir / "recall"
    definition = orjson.loads((folder / "tearline-recall-extension-definition.json").read_bytes())[
        "extension_definition"
    ]
    schema = orjson.loads((folder / "tearline-recall-extension.schema.json").read_bytes())
    return RecallExtension(definition["id"], definition, jsonschema_rs.Draft202012Validator(schema))


@dataclass(frozen=True)
class NoticeFacts:
    """What one notice says: which recall, to whom, about which versions."""

    notice_id: str
    """Random (``note--`` and a version 4 UUID): derived from the recall, a recipient could compute
    the id of another nation's notice and test for it."""
    recall_id: str
    nation: str
    collection_id: str
    object_id: str
    versions_us: tuple[int, ...]
    reason: str
    action: str
    issued_us: int


def notice_label(rank: int, nation: str, home_nation: str) -> LabelSpec:
    """The notice's label: ``rank``, releasable to ``nation`` only, from the home nation."""
    return LabelSpec(rank, frozenset({nation}), frozenset(), home_nation)


def build_notice(facts: NoticeFacts, extension_id: str, marking_id: str, home_nation: str) -> dict[str, Any]:
    """The notice as a STIX 2.1 note marked with ``marking_id`` (its label's definition)."""
    issued = stix_timestamp(facts.issued_us)
    versions = [format_us(v) for v in sorted(facts.versions_us)]
    count = f"{len(versions)} version{'s' if len(versions) != 1 else ''}"
    return {
        "type": "note",
        "spec_version": "2.1",
        "id": facts.notice_id,
        "created": issued,
        "modified": issued,
        "created_by_ref": home_identity_id(home_nation),
        "abstract": f"Recall notice: {facts.object_id}",
        "content": (
            f"{count} of {facts.object_id} that you received are recalled. Reason: {facts.reason} "
            f"Expected action: {facts.action}."
        ),
        "object_refs": [facts.object_id],
        "object_marking_refs": [marking_id],
        "extensions": {
            extension_id: {
                "extension_type": "property-extension",
                "recall_id": facts.recall_id,
                "recalled_object": facts.object_id,
                "recalled_versions": versions,
                "reason": facts.reason,
                "action": facts.action,
                "issued": issued,
            }
        },
    }


def read_notice(content: dict[str, Any], extension: RecallExtension) -> dict[str, Any] | None:
    """The recall properties of a note, when it carries a well-formed recall extension naming its
    only referenced object; None otherwise (an ordinary note)."""
    if content.get("type") != "note":
        return None
    properties = (content.get("extensions") or {}).get(extension.id)
    if not isinstance(properties, dict) or not extension.validator.is_valid(properties):
        return None
    if content.get("object_refs") != [properties["recalled_object"]]:
        return None
    return properties

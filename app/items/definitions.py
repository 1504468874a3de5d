"""Which stored marking definitions a submission may use, and which definitions it may submit.

A marking definition is owned by the nation that first stored it, and STIX forbids versioning
one, so a definition is never replaced: ingest refuses a different definition under a stored id,
from anyone. What a label means is resolved only from definitions its originator or the home
nation stored, never from whatever someone else stored first under that id; a partner may use
only stored definitions it may see. Any other reference reads "unknown", whether the definition
is hidden or absent.

Tearline label definitions have ids anyone can compute (UUIDv5 of the canonical banner), so a
partner may submit a definition with a version-5 id only when it is exactly the canonical
definition of the label it expresses: nothing can be planted under a label's id, and the answer
never depends on what is stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select
from sqlmodel import Session, col

from app.items.models import StixObject
from app.items.store import MARKING_DEFINITION
from app.markings.labels import UnknownToken, label_marking_definition
from app.markings.mappings import Mappings
from app.markings.stix_markings import definition_label

_ID_PREFIX = f"{MARKING_DEFINITION}--"


@dataclass(frozen=True)
class StoredDefinition:
    """One stored version of a marking definition: its content, who stored it, and its label."""

    body: dict[str, Any]
    submitter: str
    label_id: int


class DefinitionStore:
    """The stored definitions one submission references, each usable only by the nations allowed to."""

    def __init__(
        self, session: Session, *, home_nation: str, submitter: str, visible_label_ids: list[int] | None
    ) -> None:
        self.session, self.home_nation, self.submitter = session, home_nation, submitter
        self.visible = None if visible_label_ids is None else frozenset(visible_label_ids)
        self._stored: dict[str, list[StoredDefinition]] = {}

    def load(self, ids: Iterable[str]) -> None:
        """Read every stored version of the definitions ``ids``, in storage order (one query)."""
        wanted = set(ids) - self._stored.keys()
        if not wanted:
            return
        rows = self.session.execute(
            select(col(StixObject.object_id), col(StixObject.submitter), col(StixObject.label_id), col(StixObject.body))
            .where(col(StixObject.object_id).in_(wanted), col(StixObject.type) == MARKING_DEFINITION)
            .order_by(col(StixObject.pk))
        )
        for object_id, submitter, label_id, body in rows:
            self._stored.setdefault(object_id, []).append(StoredDefinition(orjson.loads(body), submitter, label_id))

    def loaded_ids(self) -> list[str]:
        """Ids of the definitions :meth:`load` found stored."""
        return list(self._stored)

    def usable(self, marking_id: str, originator: str) -> dict[str, Any] | None:
        """The stored definition ``marking_id`` as a label of ``originator``'s object may use, or None.

        Only a definition the originator or the home nation stored counts, and a partner submitter
        must be able to see it; the oldest such version wins (there is one, unless older data holds more).
        """
        for stored in self._stored.get(marking_id, ()):
            if stored.submitter not in (originator, self.home_nation):
                continue
            if self.visible is not None and stored.label_id not in self.visible:
                continue
            return stored.body
        return None


def reserved_id_refusal(definition: dict[str, Any], *, submitter: str, mappings: Mappings) -> str | None:
    """Why a partner may not submit ``definition`` under its id, or None.

    Version-5 ids belong to Tearline labels (deterministic, so computable by anyone): such a
    definition must be exactly the canonical definition of the label it expresses.
    """
    marking_id = str(definition.get("id", ""))
    try:
        version = uuid.UUID(marking_id.removeprefix(_ID_PREFIX)).version
    except ValueError:
        return None  # not a UUID: validation refuses it with its own message
    if version != 5:
        return None
    try:
        spec = definition_label(definition, originator=submitter, mappings=mappings)
        canonical = None if spec is None else label_marking_definition(spec, mappings)
    except (UnknownToken, ValueError):
        canonical = None
    if canonical is not None and canonical == definition:
        return None
    return (
        "markings: marking-definition ids of UUID version 5 are reserved for Tearline labels, and this "
        "definition is not the label its id stands for; give it a random (version 4) id"
    )

"""Whether a submitted version may be stored: the rules about what is already held.

Before a candidate version is labelled (:meth:`Admission.screen`):

1. a new version of an existing object comes only from that object's originator, or from the
   home nation (whose re-release the labeller keeps inside the originator's, the third-party
   rule), whatever the submitter may see of the stored versions; an exact copy of a version
   held here is still a harmless duplicate;
2. its author (``created_by_ref``) is set if missing on a partner's object, and must be one of
   its originator's registered identities (:mod:`app.items.attribution`);
3. a partner's marking definition with a version-5 id must be the canonical definition of the
   label it expresses (:func:`app.items.definitions.reserved_id_refusal`), and a marking
   definition is immutable: a different definition under a stored id is refused, whichever
   collection holds it and whoever stored it.

Labelling comes next, so that its refusals never depend on what is stored. Then
(:meth:`Admission.place`): an exact duplicate of a version in this collection is a success that
stores nothing, and a different version with a stored version's timestamp conflicts.

The refusals of rules 1 and 3 read the same whether the stored versions are visible to the
submitter or not, and name nothing stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.items.attribution import attribute
from app.items.definitions import reserved_id_refusal
from app.markings.mappings import Mappings

IMMUTABLE = "marking definitions cannot be versioned: a different definition with this id is already stored"
NOT_OWNER = "only the originator of an object may add versions to it"
CONFLICT = "conflicts with a stored version of this object"
DUPLICATE = "duplicate of a stored version"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What rules 1-5 decided: the content to store (its author set), or why not, or that it is a duplicate."""

    content: dict[str, Any]
    refusal: str | None = None
    duplicate: bool = False


@dataclass
class Admission:
    """The stored facts one submission is checked against (from one probe of the object-id index)."""

    submitter: str
    home_nation: str
    mappings: Mappings
    owners: dict[str, str]
    """Object id -> the nation whose object it is (the originator of its first stored version)."""
    identities: dict[str, tuple[str, ...]]
    """Nation -> the identities its objects may name in created_by_ref."""
    here: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    """(object id, version) -> content of the versions in this collection."""
    definitions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Marking-definition id -> every stored body, in any collection."""

    def originator(self, object_id: str) -> str:
        """The nation a new version of ``object_id`` is stored for."""
        return self.owners.get(object_id, self.submitter)

    def screen(self, object_id: str, object_type: str, content: dict[str, Any], version_us: int) -> Verdict:
        """Rules 1-3, before labelling."""
        originator = self.originator(object_id)
        content, refusal = attribute(content, self.identities[originator], set_missing=originator != self.home_nation)
        owner = self.owners.get(object_id)
        if (
            object_type != "marking-definition"
            and owner is not None
            and self.submitter not in (owner, self.home_nation)
        ):
            if self.here.get((object_id, version_us)) == content:
                return Verdict(content, duplicate=True)
            return Verdict(content, NOT_OWNER)
        if refusal is not None:
            return Verdict(content, refusal)
        if object_type == "marking-definition" and self.submitter != self.home_nation:
            # Checked before anything stored is looked at: the answer must not depend on the store.
            reserved = reserved_id_refusal(content, submitter=self.submitter, mappings=self.mappings)
            if reserved is not None:
                return Verdict(content, reserved)
        if object_type == "marking-definition" and any(body != content for body in self.definitions.get(object_id, ())):
            return Verdict(content, IMMUTABLE)
        return Verdict(content)

    def place(self, object_id: str, content: dict[str, Any], version_us: int) -> Verdict:
        """After labelling: an exact duplicate of a version held here, a conflict with one, or new."""
        existing = self.here.get((object_id, version_us))
        if existing is None:
            return Verdict(content)
        if existing == content:
            return Verdict(content, duplicate=True)
        return Verdict(content, CONFLICT)

    def stored(self, object_id: str, version_us: int, content: dict[str, Any]) -> None:
        """Remember a version this submission stores, so a later copy in it is a duplicate."""
        self.here[(object_id, version_us)] = content

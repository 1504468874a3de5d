"""Give each submitted object version its label, granular labels and originator (docs/design.md 1-3).

Everything that needs the store happens in a few batch queries: the marking
definitions the envelope references but does not carry (here), the originator
of objects already held (read by ingest with the stored versions, one query
for both) and the originator's own label for the third-party rule (here). The
rules themselves live in :mod:`app.markings`.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, TypeVar, cast

from sqlalchemy import select
from sqlmodel import Session, col

from app.items.definitions import DefinitionStore
from app.items.models import StixObject
from app.markings.granular import redact
from app.markings.labels import ALL, LabelSpec, UnknownToken
from app.markings.mappings import Mappings
from app.markings.models import Label
from app.markings.service import label_spec
from app.markings.stix_markings import definition_label, object_label

MARKING_DEFINITION = "marking-definition"


@dataclass(frozen=True, slots=True)
class LabeledObject:
    """A valid object with everything access control needs to store it."""

    content: dict[str, Any]
    originator: str
    label: LabelSpec
    granular: dict[str, LabelSpec] = field(default_factory=dict)
    """marking_ref -> label of each granular marking."""
    withhold_sets: tuple[frozenset[LabelSpec], ...] = ()
    """Minimal sets of granular labels that, all hidden, withhold the whole version: removing what
    they mark would leave invalid STIX (a required property, or one of a required pair)."""


class LabelRefused(ValueError):
    """The object's markings cannot be turned into a label; the message names the bad token."""


def marking_refs(obj: dict[str, Any]) -> list[str]:
    """The marking definitions ``obj`` references, object-level and granular, each once."""
    refs = [r for r in obj.get("object_marking_refs") or [] if isinstance(r, str)]
    refs += [
        g["marking_ref"]
        for g in obj.get("granular_markings") or []
        if isinstance(g, dict) and isinstance(g.get("marking_ref"), str)
    ]
    return list(dict.fromkeys(refs))


def label_within(new: LabelSpec, bound: LabelSpec, mappings: Mappings) -> bool:
    """Whether ``new`` is no wider than ``bound``: rank no lower, releasable-to inside, caveats kept."""
    new_set, bound_set = mappings.expand(new.releasable_to), mappings.expand(bound.releasable_to)
    if bound_set is not None and (new_set is None or not new_set | {new.originator} <= bound_set | {bound.originator}):
        return False
    return new.rank >= bound.rank and new.caveats >= bound.caveats


class Labeler:
    """Labels the objects of one submission by one nation (the submitter)."""

    def __init__(
        self,
        session: Session,
        mappings: Mappings,
        *,
        home_nation: str,
        submitter: str,
        visible_label_ids: list[int] | None = None,
    ) -> None:
        self.session, self.mappings = session, mappings
        self.home_nation, self.submitter = home_nation, submitter
        self.visible_label_ids = visible_label_ids
        self.carried: dict[str, dict[str, Any]] = {}
        """The marking definitions the submission itself carries."""
        self.stored = DefinitionStore(
            session, home_nation=home_nation, submitter=submitter, visible_label_ids=visible_label_ids
        )
        self.originators: dict[str, str] = {}
        # Labels already derived in this submission. A label depends only on the marking refs, the
        # originator and the definitions (fixed once prepared), and deriving one validates the
        # definition against a JSON Schema, so each (refs, originator) is derived once, not per object.
        self._labels: dict[tuple[tuple[str, ...], str], LabelSpec] = {}
        self._definitions: dict[str, dict[str, dict[str, Any]]] = {}
        self.stored_definitions: set[str] = set()
        """Ids of the definitions taken from the store (validated when they were stored)."""

    def prepare(self, objects: list[dict[str, Any]]) -> None:
        """Load, in one batch, the stored marking definitions the objects reference but do not carry."""
        self.carried = {o["id"]: o for o in objects if o["type"] == MARKING_DEFINITION}
        wanted = {ref for o in objects for ref in marking_refs(o)} - self.carried.keys() - self.mappings.tlp.keys()
        self.stored.load(wanted)

    def learn_originators(self, stored: Iterable[tuple[str, str]]) -> None:
        """Note whose objects the submission's ids name, from their stored versions (object id,
        originator) in storage order: the first version's originator owns the object.

        Every stored version counts, whether or not the submitter may see it: an object hidden from
        a partner is still not the partner's to take over.
        """
        for object_id, originator in stored:
            self.originators.setdefault(object_id, originator)

    def owner(self, object_id: str) -> str | None:
        """The nation whose object ``object_id`` is, if it is stored here at all."""
        return self.originators.get(object_id)

    def definitions_for(self, originator: str) -> dict[str, dict[str, Any]]:
        """The definitions a label of ``originator``'s object may be read from: carried, then stored."""
        found = self._definitions.get(originator)
        if found is None:
            found = dict(self.carried)
            for ref in self.stored.loaded_ids():
                if ref not in found and (body := self.stored.usable(ref, originator)) is not None:
                    found[ref] = body
            self._definitions[originator] = found
        return found

    def referenced_definitions(self, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Definitions the objects reference but the submission does not carry (TLP or stored)."""
        found: dict[str, dict[str, Any]] = {}
        for obj in objects:
            usable = self.definitions_for(self.originators.get(obj["id"], self.submitter))
            for ref in marking_refs(obj):
                if ref in self.carried or ref in found:
                    continue
                if ref in self.mappings.tlp:
                    found[ref] = self.mappings.tlp[ref][1]
                elif ref in usable:
                    found[ref] = usable[ref]
                    self.stored_definitions.add(ref)
        return list(found.values())

    def _refs_label(self, refs: object, originator: str) -> LabelSpec:
        """``object_label`` of an object whose ``object_marking_refs`` are ``refs``, derived once per submission."""
        cacheable = isinstance(refs, list) and all(isinstance(ref, str) for ref in refs)
        key = (tuple(cast("list[str]", refs)), originator) if cacheable else None  # cacheable: refs is a list[str]
        if key is not None and key in self._labels:
            return self._labels[key]
        # Failures are not cached: they raise again, with the same message, for each object.
        spec = object_label(
            {"object_marking_refs": refs},
            originator=originator,
            definitions=self.definitions_for(originator),
            mappings=self.mappings,
            home_nation=self.home_nation,
        )
        if key is not None:
            self._labels[key] = spec
        return spec

    def _single_marking_label(self, ref: str, originator: str) -> LabelSpec:
        return self._refs_label([ref], originator)

    def _own_label(self, obj: dict[str, Any], originator: str) -> LabelSpec:
        if obj["type"] != MARKING_DEFINITION:
            return self._refs_label(obj.get("object_marking_refs"), originator)
        # A marking definition carries the label it defines; TLP definitions are public.
        spec = definition_label(obj, originator=originator, mappings=self.mappings)
        return spec if spec is not None else LabelSpec(0, frozenset({ALL}), frozenset(), originator)

    def _originator_bound(self, object_id: str, originator: str) -> LabelSpec | None:
        """The label of the newest version the originator itself submitted."""
        row = self.session.execute(
            select(Label)
            .join(StixObject, col(StixObject.label_id) == Label.id)
            .where(col(StixObject.object_id) == object_id, col(StixObject.submitter) == originator)
            .order_by(col(StixObject.version_us).desc())
            .limit(1)
        ).scalar_one_or_none()
        return label_spec(row) if row is not None else None

    def label(self, obj: dict[str, Any]) -> LabeledObject:
        """Label one object; raise LabelRefused naming what is wrong."""
        originator = self.originators.get(obj["id"], self.submitter)
        if obj["type"] == MARKING_DEFINITION and self.submitter != self.home_nation:
            # A partner's definition is its own, whoever stored one with that id first: its label,
            # and so any refusal, must not depend on what is stored (label ids are computable).
            originator = self.submitter
        try:
            spec = self._own_label(obj, originator)
            granular = {
                ref: self._single_marking_label(ref, originator)
                for ref in dict.fromkeys(
                    cast(str, g.get("marking_ref"))  # a str: the condition below
                    for g in obj.get("granular_markings") or []
                    if isinstance(g, dict) and isinstance(g.get("marking_ref"), str)
                )
            }
        except (UnknownToken, ValueError) as exc:
            raise LabelRefused(f"markings: {exc}") from None
        for each in [spec, *granular.values()]:
            if each.originator != originator:
                raise LabelRefused(
                    f"markings: a label names originator {each.originator}, but this object comes from {originator}"
                )
        if originator != self.submitter:
            bound = self._originator_bound(obj["id"], originator)
            if bound is not None and not label_within(spec, bound, self.mappings):
                raise LabelRefused(
                    f"third-party rule: a new version of an object from {originator} may not widen its "
                    "releasability, drop its caveats or lower its classification"
                )
        return LabeledObject(obj, originator, spec, granular, withholding_sets(obj, granular))


AnyLabel = TypeVar("AnyLabel", bound=Hashable)  # a LabelSpec at ingest, a label id in migration 0009
MAX_WITHHOLD_SEARCH = 6
"""Distinct granular labels beyond this count each withhold on their own (over-withholding, never a leak)."""


def withholding_sets(obj: dict[str, Any], granular: Mapping[str, AnyLabel]) -> tuple[frozenset[AnyLabel], ...]:
    """The minimal sets of granular labels whose hiding together leaves ``obj`` invalid.

    Hidden is decided per label, and one label may mark several properties, so the sets are of
    labels. Each set is stored (``object_withhold``) and the version is withheld in SQL when all
    the labels of one set are hidden from the requester: pages, counts and cursors never meet it.
    """
    labels = list(dict.fromkeys(granular.values()))
    if not labels:
        return ()
    if len(labels) > MAX_WITHHOLD_SEARCH:
        return tuple(frozenset({label}) for label in labels)
    found: list[frozenset[AnyLabel]] = []
    for size in range(1, len(labels) + 1):
        for subset in combinations(labels, size):
            chosen = frozenset(subset)
            if any(known <= chosen for known in found):
                continue
            refs = {ref for ref, label in granular.items() if label in chosen}
            if redact(obj, refs) is None:
                found.append(chosen)
    return tuple(found)

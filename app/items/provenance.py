"""Provenance bounds: what a derived object may be released to, given the partners' items it comes from.

A tearline of a partner's item is a new object of the home nation (its own id and
originator), but its content is the partner's. The third-party rule must follow the content:
every tearline made from it and every relabelling of it stays inside what the partner
released, however many derivations away. The labeler checks the rule on the partner's own
object; this module checks it on what was derived from it, following the ``item_derivation``
links that :mod:`app.items.tearline` writes with each tearline. Ingest applies it to every new
version of a derived object, whichever route (TAXII, the analyst API, a feed) brings it.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlmodel import Session, col

from app.db.lists import in_list
from app.items.labeling import label_within
from app.items.models import ItemDerivation, StixObject
from app.items.problems import refuse
from app.markings.labels import LabelSpec, canonical_banner
from app.markings.mappings import Mappings
from app.markings.models import Label
from app.markings.service import label_spec


def as_originator(spec: LabelSpec, originator: str | None, home_nation: str) -> LabelSpec:
    """``spec`` restated with another originator: the old one becomes an ordinary recipient.

    The legacy label (migration 0002, no originator) counts as the home nation's, as it does for
    the releasability decision.
    """
    previous = spec.originator or home_nation
    releasable = (spec.releasable_to | ({previous} - {home_nation})) - {originator or home_nation}
    return LabelSpec(spec.rank, releasable, spec.caveats, originator)


def partner_bounds(session: Session, object_id: str, home_nation: str, max_depth: int = 16) -> list[LabelSpec]:
    """Labels of partners' own versions of the objects ``object_id`` was derived from, at any depth."""
    bounds: list[LabelSpec] = []
    frontier, seen = {object_id}, {object_id}
    for _ in range(max_depth):
        sources = (
            set(
                session.execute(
                    select(col(ItemDerivation.source_id)).where(col(ItemDerivation.derived_id).in_(frontier))
                ).scalars()
            )
            - seen
        )
        if not sources:
            break
        rows = session.execute(
            select(Label)
            .join(StixObject, col(StixObject.label_id) == Label.id)
            .where(
                col(StixObject.object_id).in_(sources),
                col(StixObject.originator) != home_nation,
                col(StixObject.submitter) == StixObject.originator,
            )
        ).scalars()
        bounds += [label_spec(row) for row in rows]
        seen |= sources
        frontier = sources
    return bounds


def derived_bounds(session: Session, object_ids: Iterable[str], home_nation: str) -> dict[str, list[LabelSpec]]:
    """Partner bounds of those ``object_ids`` that were derived from partners' items (one query when none were)."""
    dialect = session.get_bind().dialect.name
    derived = set(
        session.execute(
            select(col(ItemDerivation.derived_id)).where(
                in_list(col(ItemDerivation.derived_id), dialect, set(object_ids))
            )
        ).scalars()
    )
    bounds = {object_id: partner_bounds(session, object_id, home_nation) for object_id in derived}
    return {object_id: found for object_id, found in bounds.items() if found}


def widened_bound(
    target: LabelSpec, bounds: Iterable[LabelSpec], *, home_nation: str, mappings: Mappings
) -> LabelSpec | None:
    """The first partner bound that ``target`` (a home-originated label) releases more than, if any."""
    for bound in bounds:
        if not label_within(as_originator(target, bound.originator, home_nation), bound, mappings):
            return bound
    return None


def beyond_message(bound: LabelSpec, mappings: Mappings) -> str:
    """Why a label wider than ``bound`` is refused."""
    return (
        f"the target releases more than {bound.originator}, the originator of the content, allows "
        f"({canonical_banner(bound, mappings)})"
    )


def check_within_partners(
    target: LabelSpec, bounds: list[LabelSpec], *, home_nation: str, mappings: Mappings, path: str = "banner"
) -> None:
    """Refuse ``target`` (a home-originated label) if it releases more than any partner bound allows."""
    bound = widened_bound(target, bounds, home_nation=home_nation, mappings=mappings)
    if bound is not None:
        raise refuse(path, beyond_message(bound, mappings))

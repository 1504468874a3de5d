"""The access label type, apart from everything that builds or reads labels, so the tables can name it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class LabelSpec:
    """One access label, as parsed from markings and as the releasability decision sees it.

    ``releasable_to`` holds trigraphs and group codes as written (not expanded)
    and/or ``ALL``; it never contains the originator, which is always implied.
    ``originator`` is None only for the legacy label of migration 0002 (stored
    before labels had originators): home nation only, no third-party consent.
    """

    rank: int
    releasable_to: frozenset[str]
    caveats: frozenset[str]
    originator: str | None

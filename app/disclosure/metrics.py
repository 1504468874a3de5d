"""Disclosure speed in Prometheus: seconds from post to release, and what waits for a decision.

``tearline_disclosure_release_seconds`` (histogram, by collection and classification) is observed
when a decision commits; ``tearline_disclosure_waiting`` is counted from the database at scrape
time, so every instance reports the same queue.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from app.disclosure.models import PENDING, RELEASED, REPLACED, DisclosureReview
from app.markings.mappings import Mappings

_BUCKETS = (1, 5, 15, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 72 * 3600)


class DisclosureMetrics:
    """The disclosure metrics of one app instance, in its registry."""

    def __init__(self, registry: CollectorRegistry, engine: Engine, mappings: Mappings) -> None:
        self.mappings = mappings
        self.release_seconds = Histogram(
            "tearline_disclosure_release_seconds",
            "Seconds from an item's post to its release by a disclosure officer (as marked, narrowed or tearline).",
            ["collection", "classification"],
            buckets=_BUCKETS,
            registry=registry,
        )
        registry.register(_Waiting(engine, mappings))

    def observe_released(self, session: Session, review_ids: list[str]) -> None:
        """Observe the releases among these (committed) reviews."""
        rows = session.execute(
            select(
                col(DisclosureReview.collection_id),
                col(DisclosureReview.rank),
                col(DisclosureReview.posted_us),
                col(DisclosureReview.decided_us),
            ).where(
                col(DisclosureReview.id).in_(review_ids),
                col(DisclosureReview.state).in_([RELEASED, REPLACED]),
                col(DisclosureReview.decided_us).is_not(None),
            )
        ).all()
        for collection_id, rank, posted_us, decided_us in rows:
            self.release_seconds.labels(collection_id, self.mappings.rank_names[rank]).observe(
                max(0, decided_us - posted_us) / 1e6
            )


class _Waiting(Collector):
    """Held items waiting for a decision, by collection and classification (read at scrape time)."""

    def __init__(self, engine: Engine, mappings: Mappings) -> None:
        self.engine, self.mappings = engine, mappings

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "tearline_disclosure_waiting",
            "Items held for a disclosure decision.",
            labels=["collection", "classification"],
        )
        with Session(self.engine) as session:
            rows = session.execute(
                select(col(DisclosureReview.collection_id), col(DisclosureReview.rank), func.count())
                .where(col(DisclosureReview.state) == PENDING)
                .group_by(col(DisclosureReview.collection_id), col(DisclosureReview.rank))
            ).all()
        for collection_id, rank, count in rows:
            family.add_metric([collection_id, self.mappings.rank_names[rank]], count)
        yield family

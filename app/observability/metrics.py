"""The Prometheus metrics of one app instance, in a registry of its own.

Each app gets its own :class:`prometheus_client.CollectorRegistry` (never the global default
one), so several apps in one process (the tests build many) count separately.

Other domains record through ``request.app.state.metrics`` (a :class:`Metrics`):

- audit: ``metrics.audit_write_seconds.observe(seconds)`` once per audit record written,
  with the time spent writing it (chain read, insert, dissemination rows);
- feeds: ``metrics.feed_lag_seconds.labels(feed=FEED_ID).set(seconds)`` after each pull
  or push, with how far the feed is behind (now minus the newest ``date_added`` it has
  reached, or 0 when nothing is pending), and
  ``metrics.feed_runs.labels(feed=FEED_ID, outcome="ok"|"error").inc()``.

Everything else is counted here without help: requests (the middleware), object versions
served (the request's audit context), object versions stored (an engine hook on inserts into
``stix_object``, counted when their transaction commits) and the policy cache (read from
:class:`app.policy.visibility.VisibilityCache` at scrape time).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine, event
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.dml import Insert

STORED_TABLE = "stix_object"
_PENDING = "tearline_metrics_pending_inserts"
_SAVEPOINTS = "tearline_metrics_savepoints"

# Request and audit-write latencies: a page of 1,000 objects takes tens of milliseconds,
# an export minutes.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_AUDIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)


class _PolicyCacheCollector(Collector):
    """Reads the visibility cache's own counters when Prometheus scrapes."""

    def __init__(self, cache: Callable[[], Any]) -> None:
        self._cache = cache

    def collect(self) -> Iterator[CounterMetricFamily]:
        cache = self._cache()
        hits = CounterMetricFamily(
            "tearline_policy_cache_hits", "Visibility lookups answered entirely from the cache (no Casbin evaluation)."
        )
        evaluations = CounterMetricFamily(
            "tearline_policy_evaluations", "Casbin evaluations of one (principal, label) pair: the cache's misses."
        )
        hits.add_metric([], getattr(cache, "hits", 0) if cache is not None else 0)
        evaluations.add_metric([], getattr(cache, "evaluations", 0) if cache is not None else 0)
        yield hits
        yield evaluations


class Metrics:
    """The metric objects of one app instance; ``registry`` is what ``/metrics`` exposes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        # The process and runtime metrics the default registry would carry.
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        registry.register(GC_COLLECTOR)
        self.requests = Counter(
            "tearline_http_requests",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "tearline_http_request_duration_seconds",
            "Time from request start to the end of the response body, by method and route template.",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.objects_served = Counter(
            "tearline_objects_served",
            "Object versions sent to clients in 2xx responses (as listed in the request's audit context), by the "
            "requester's nation.",
            ["nation"],
            registry=registry,
        )
        self.objects_ingested = Counter(
            "tearline_objects_ingested",
            "Object versions stored (committed inserts into stix_object): analyst and partner posts, "
            "feed pulls, the marking definitions stored beside them.",
            registry=registry,
        )
        self.audit_write_seconds = Histogram(
            "tearline_audit_write_duration_seconds",
            "Time to write one audit record.",
            buckets=_AUDIT_BUCKETS,
            registry=registry,
        )
        self.feed_lag_seconds = Gauge(
            "tearline_feed_lag_seconds",
            "How far a feed is behind: now minus the newest date_added it has reached; 0 when caught up.",
            ["feed"],
            registry=registry,
        )
        self.feed_runs = Counter(
            "tearline_feed_runs",
            "Feed pulls and pushes by feed and outcome (ok or error).",
            ["feed", "outcome"],
            registry=registry,
        )

    def watch_policy_cache(self, cache: Callable[[], Any]) -> None:
        """Export the hit and evaluation counters of the visibility cache ``cache()`` returns."""
        self.registry.register(_PolicyCacheCollector(cache))

    def count_ingested(self, engine: Engine) -> None:
        """Count committed inserts into ``stix_object`` made on ``engine``.

        Counting at commit (not at insert) keeps refused requests, which roll back, out of
        the count; savepoints rolled back are subtracted too.
        """
        counter = self.objects_ingested

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.info[_PENDING] = 0
            conn.info[_SAVEPOINTS] = []

        @event.listens_for(engine, "after_execute")
        def _after_execute(
            conn: Connection,
            clauseelement: Executable,
            multiparams: Sequence[Mapping[str, Any]],
            params: Mapping[str, Any],
            execution_options: Mapping[str, Any],
            result: object,
        ) -> None:
            if isinstance(clauseelement, Insert) and getattr(clauseelement.table, "name", None) == STORED_TABLE:
                rows = len(multiparams) if multiparams else 1
                conn.info[_PENDING] = conn.info.get(_PENDING, 0) + rows

        # Savepoints nest, so a stack of the pending count at each (the "savepoint" event
        # fires before the savepoint has its name).
        @event.listens_for(engine, "savepoint")
        def _savepoint(conn: Connection, name: str | None) -> None:
            conn.info.setdefault(_SAVEPOINTS, []).append(conn.info.get(_PENDING, 0))

        @event.listens_for(engine, "rollback_savepoint")
        def _rollback_savepoint(conn: Connection, name: str, context: object) -> None:
            stack = conn.info.get(_SAVEPOINTS)
            if stack:
                conn.info[_PENDING] = stack.pop()

        @event.listens_for(engine, "release_savepoint")
        def _release_savepoint(conn: Connection, name: str, context: object) -> None:
            stack = conn.info.get(_SAVEPOINTS)
            if stack:
                stack.pop()

        @event.listens_for(engine, "commit")
        def _commit(conn: Connection) -> None:
            pending = conn.info.pop(_PENDING, 0)
            conn.info.pop(_SAVEPOINTS, None)
            if pending:
                counter.inc(pending)

        @event.listens_for(engine, "rollback")
        def _rollback(conn: Connection) -> None:
            if conn.invalidated:
                return  # the connection died under the transaction: its info goes with it, and reading it raises
            conn.info.pop(_PENDING, None)
            conn.info.pop(_SAVEPOINTS, None)

"""Fresh planner statistics on PostgreSQL for the tables every read plans against.

The page query's plans depend on table statistics: without them (a young database growing fast,
before autovacuum's first pass; or autovacuum switched off) PostgreSQL planned the latest-version
``NOT EXISTS`` of ``match[version]`` as a nested loop over the collection per row, quadratic in the
collection (a page took 3.5 s at 2,000 objects under load, 0.5 ms once analyzed). This worker runs
``ANALYZE`` on those tables when enough rows changed since their last analysis, as autovacuum
would, so plans never wait for the server's configuration. SQLite needs none of it.
"""

from __future__ import annotations

import logging
import threading

from fastapi import FastAPI
from sqlalchemy import Engine, text

from app.http.background import BackgroundWorker, run_with_app

log = logging.getLogger(__name__)
TABLES = ("stix_object", "object_marking_ref", "object_reference", "object_withhold")
PERIOD_S = 10.0
MIN_CHANGED = 200
"""Rows changed since the last analysis that make a table worth analyzing ..."""
CHANGED_SHARE = 0.2
"""... or this share of its rows, whichever is more (autovacuum's default is 0.1 plus 50 rows)."""


def stale_tables(engine: Engine, min_changed: int = MIN_CHANGED, share: float = CHANGED_SHARE) -> list[str]:
    """The tables of :data:`TABLES` whose statistics lag the rows changed since their last analysis."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT relname, n_mod_since_analyze, n_live_tup FROM pg_stat_user_tables "
                "WHERE schemaname = current_schema() AND relname = ANY(:tables)"
            ),
            {"tables": list(TABLES)},
        ).all()
    return sorted(name for name, changed, live in rows if changed >= max(min_changed, share * (live or 0)))


def analyze_stale(engine: Engine, min_changed: int = MIN_CHANGED, share: float = CHANGED_SHARE) -> list[str]:
    """ANALYZE the stale tables (one statement); the tables analyzed."""
    stale = stale_tables(engine, min_changed, share)
    if stale:
        with engine.connect() as connection:
            # Table names from TABLES only, never from input: safe to place in the statement.
            connection.execute(text(f"ANALYZE {', '.join(stale)}"))
            connection.commit()
    return stale


class StatisticsKeeper(BackgroundWorker):
    """A daemon thread analyzing stale tables every :data:`PERIOD_S`."""

    def __init__(self, engine: Engine) -> None:
        super().__init__("tearline-statistics", self._step, PERIOD_S)
        self.engine = engine

    def _step(self, stop: threading.Event) -> None:
        if not stop.is_set():
            analyzed = analyze_stale(self.engine)
            if analyzed:
                log.debug("analyzed %s", ", ".join(analyzed))


def install_statistics_keeper(app: FastAPI) -> None:
    """On PostgreSQL, keep the read path's table statistics fresh for the app's lifetime."""
    if app.state.engine.dialect.name == "postgresql":
        run_with_app(app, "statistics_keeper", lambda application: StatisticsKeeper(application.state.engine))

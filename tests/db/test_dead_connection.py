"""A connection that dies inside a transaction rolls back cleanly with the commit watchers installed.

The watchers of stored versions (app.items.changes), of audit records (app.audit.live) and the
ingest counter of the metrics (app.observability.metrics) listen to rollbacks; reading an invalidated connection's info there raised PendingRollbackError, which turned
a database restart under a TAXII POST into a 500 instead of the 503 every other request got."""

from __future__ import annotations

from sqlalchemy import text

from app.audit.live import watch_appends
from app.db.engine import make_engine
from app.items.changes import watch_commits
from app.observability.metrics import Metrics


def test_rollback_of_a_dead_connection_raises_nothing(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'dead.sqlite'}")
    watch_commits(engine)
    watch_appends(engine, lambda: None)
    Metrics().count_ingested(engine)
    try:
        connection = engine.connect()
        transaction = connection.begin()
        connection.execute(text("SELECT 1"))
        connection.invalidate()  # what SQLAlchemy does when the server terminates the connection
        transaction.rollback()
        connection.close()
    finally:
        engine.dispose()

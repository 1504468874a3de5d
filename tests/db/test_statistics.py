"""PostgreSQL: the read path's tables are analyzed once enough rows changed (app/db/statistics.py)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text
from sqlmodel import Session

from app.db.statistics import TABLES, analyze_stale, stale_tables
from app.taxii import service as taxii_service
from tests.conftest import HOME
from tests.feeds.test_push import ANALYST
from tests.taxii.helpers import indicator


def test_stale_tables_are_analyzed(app):
    engine = app.state.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite plans without table statistics")
    with engine.connect() as connection:
        session = Session(bind=connection)
        collection = taxii_service.create_collection(
            session, title="statistics", read_roles={"analyst"}, write_roles={"analyst"}
        )
        status = taxii_service.add_objects(
            session, collection.id, ANALYST, [indicator(), indicator()], mappings=app.state.mappings, home_nation=HOME
        )
        assert status.failure_count == 0
        # A backend reports its row counts when idle, up to 10 s later; this one now, at its next commit.
        connection.execute(text("SELECT pg_stat_force_next_flush()"))
        connection.commit()
    # The app's own keeper may analyze meanwhile: any change makes a table stale at these thresholds.
    deadline = time.monotonic() + 10
    while "stix_object" not in stale_tables(engine, min_changed=1, share=0):
        assert time.monotonic() < deadline, "the inserts never counted as changes"
        time.sleep(0.2)
    analyzed = analyze_stale(engine, min_changed=1, share=0)
    assert "stix_object" in analyzed and set(analyzed) <= set(TABLES)
    assert "stix_object" not in stale_tables(engine, min_changed=1, share=0)
    with engine.connect() as connection:
        last = connection.execute(
            text(
                "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables "
                "WHERE schemaname = current_schema() AND relname = 'stix_object'"
            )
        ).scalar_one()
    assert last

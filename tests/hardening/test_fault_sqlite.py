"""SQLite storage faults (issue 8, item 3): a full disk and a read-only database give a clear TAXII 503,
store nothing, corrupt nothing, and reads go on working.

The disk is "filled" with ``PRAGMA max_page_count`` set to the file's current size; read-only is
``PRAGMA query_only`` (the test runs as root, which a read-only file mode does not stop). Both make
SQLite fail exactly as the real fault does (SQLITE_FULL, SQLITE_READONLY) on a second app built on
the same file, so the session app is untouched.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text

from app.main import create_app
from tests.conftest import TAXII
from tests.hardening import tally
from tests.hardening.conftest import row_counts
from tests.taxii.helpers import assert_taxii_error, indicator, objects_url, post_ok


@pytest.fixture
def faulty_app(settings):
    """``faulty_app(pragma)``: an app on the session's SQLite file whose connections run ``pragma``."""
    if not settings.is_sqlite:
        pytest.skip("SQLite-specific fault (PostgreSQL faults: test_fault_postgres.py)")
    built = []

    def _build(pragma: str):
        application = create_app(settings)
        event.listen(
            application.state.engine, "connect", lambda dbapi_connection, _record: dbapi_connection.execute(pragma)
        )
        built.append(application)
        return application

    yield _build
    for application in built:
        application.state.engine.dispose()


def _integrity(engine) -> str:
    with engine.connect() as connection:
        return connection.execute(text("PRAGMA integrity_check")).scalar_one()


def _page_count(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("PRAGMA page_count")).scalar_one()


@pytest.mark.parametrize("fault, expected", [("full", "no space"), ("readonly", "read-only")])
def test_storage_faults_are_clear_503s(app, faulty_app, analyst, api, collection, fault, expected):
    kept = indicator()
    with TestClient(app) as healthy:
        post_ok(healthy, api, collection.id, analyst, [kept])
    # Big enough to need new pages however much free space the file has.
    envelope = json.dumps({"objects": [indicator(description="x" * 4000) for _ in range(50)]}).encode()
    pragma = f"PRAGMA max_page_count = {_page_count(app.state.engine)}" if fault == "full" else "PRAGMA query_only = ON"
    broken = faulty_app(pragma)
    before = row_counts(app.state.engine)
    with TestClient(broken, raise_server_exceptions=False) as client:
        response = client.post(
            objects_url(api, collection.id), content=envelope, headers=analyst | {"Content-Type": TAXII}
        )
        body = assert_taxii_error(response, 503)
        # Either the store refused, or the audit log (same database) did first and failed closed.
        assert expected in body["description"] or "audit log" in body["description"], body
        assert response.headers["retry-after"].isdigit()
        # Reads go on working, unless the audit record of the read cannot be written: then they fail
        # closed, serving nothing.
        read = client.get(objects_url(api, collection.id), headers=analyst)
        if read.status_code == 200:
            assert kept["id"] in [o["id"] for o in read.json()["objects"]]
        else:
            assert "audit log" in assert_taxii_error(read, 503)["description"]
            assert kept["id"] not in read.text
            tally.add("faults survived: audit store unwritable, read refused (fail closed)")
    assert row_counts(app.state.engine) == before, "the refused envelope stored something"
    assert _integrity(app.state.engine) == "ok"
    with TestClient(app) as healthy:  # once the fault is gone, the same envelope goes in
        response = healthy.post(
            objects_url(api, collection.id), content=envelope, headers=analyst | {"Content-Type": TAXII}
        )
        assert response.status_code == 202 and response.json()["success_count"] == 50
    tally.add(f"faults survived: sqlite {fault}")

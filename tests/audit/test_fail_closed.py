"""When the audit record cannot be written the request fails with 503 and serves nothing.

The audit store is made to fail for real: a trigger in a dedicated database refuses
every insert into ``audit_record``.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session

from app.audit.service import signer_for
from app.audit.verify import verify_chain
from app.db.engine import make_engine
from app.taxii import service as taxii_service
from tests.audit.conftest import labelled_indicator, post_objects, records_for
from tests.conftest import TAXII

FAIL_SQLITE = (
    "CREATE TRIGGER audit_fail BEFORE INSERT ON audit_record BEGIN SELECT RAISE(ABORT, 'audit store failing'); END"
)
FAIL_PG = (
    "CREATE OR REPLACE FUNCTION audit_fail() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'audit store failing'; END $$; "
    "CREATE TRIGGER audit_fail BEFORE INSERT ON audit_record FOR EACH ROW EXECUTE FUNCTION audit_fail()"
)


def _break_audit(engine) -> None:
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(text(FAIL_SQLITE))
        else:
            connection.exec_driver_sql(FAIL_PG)


def _repair_audit(engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            text("DROP TRIGGER IF EXISTS audit_fail" + (" ON audit_record" if engine.dialect.name != "sqlite" else ""))
        )


@pytest.fixture(autouse=True)
def _repaired(fresh_url):
    """The module's database is shared by its tests: leave the audit store working."""
    yield
    engine = make_engine(fresh_url)
    try:
        _repair_audit(engine)
    finally:
        engine.dispose()


@pytest.fixture
def stocked_app(fresh_app, auth, api):
    with Session(fresh_app.state.engine) as session:
        collection_id = taxii_service.create_collection(
            session, title="fail closed", read_roles={"partner", "analyst"}, write_roles={"analyst"}
        ).id
    objects = labelled_indicator("UNCLASSIFIED//REL TO FVEY, NATO")
    with TestClient(fresh_app) as client:
        post_objects(client, auth(), api, collection_id, objects)
    return fresh_app, collection_id, objects[1]["id"]


def test_a_pull_fails_with_503_and_serves_nothing(stocked_app, partner_usa, api, rid):
    app, collection_id, object_id = stocked_app
    path = f"{api}/collections/{collection_id}/objects/"
    with TestClient(app) as client:
        assert object_id in client.get(path, headers=partner_usa).text  # served while the audit works
        _break_audit(app.state.engine)
        request_id = rid()
        response = client.get(path, headers={**partner_usa, "X-Request-ID": request_id})
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/taxii+json")
    assert response.json()["http_status"] == "503"
    assert object_id not in response.text and "indicator" not in response.text
    assert response.headers["x-request-id"] == request_id
    assert records_for(app.state.engine, request_id) == []


@pytest.mark.parametrize("path", ["/api/v1/audit/records", "/api/v1/audit/verify"])
def test_api_answers_problem_details_when_the_audit_fails(fresh_app, auth, path):
    auditor = auth(subject="auditor-1", roles=("auditor",))
    _break_audit(fresh_app.state.engine)
    with TestClient(fresh_app) as client:
        response = client.get(path, headers=auditor)
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 503 and "records" not in response.json()


def test_refused_requests_also_fail_closed_and_the_chain_stays_valid(fresh_app, rid):
    _break_audit(fresh_app.state.engine)
    with TestClient(fresh_app) as client:
        assert client.get("/taxii2/", headers={"Accept": TAXII}).status_code == 503
        _repair_audit(fresh_app.state.engine)
        request_id = rid()
        assert client.get("/taxii2/", headers={"Accept": TAXII, "X-Request-ID": request_id}).status_code == 401
    # The failed writes left no trace in the chain: it verifies and the next record follows on.
    engine = fresh_app.state.engine
    [record] = records_for(engine, request_id)
    report = verify_chain(engine, signer_for(engine))
    assert report.ok and report.head_seq == record["seq"], report

"""Audit test helpers: objects with labels, records by request id, dedicated (clonable) databases."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import orjson
import psycopg
import pytest
from sqlalchemy import text
from sqlmodel import Session

from app.audit.service import AuditSigner, bind_signer
from app.db.engine import make_engine
from app.main import create_app
from app.partners.service import save_partner
from tests.conftest import HOME, PARTNERS, PG_ADMIN_URL, TAXII, migrated_database
from tests.e2e.conftest import live_server  # noqa: F401  (re-exported fixture)
from tests.policy.oracle import statement_md

TEST_KEY = "audit-test-key-0123456789abcdef"


def labelled_indicator(
    banner: str, *, modified: str = "2025-03-01T10:00:00.000Z", object_id: str | None = None
) -> list[dict]:
    """A statement marking definition with ``banner`` and an indicator carrying it."""
    md = statement_md(banner)
    return [
        md,
        {
            "type": "indicator",
            "spec_version": "2.1",
            "id": object_id or f"indicator--{uuid.uuid4()}",
            "created": "2025-03-01T10:00:00.000Z",
            "modified": modified,
            "name": "audited indicator",
            "pattern": "[ipv4-addr:value = '198.51.100.7']",
            "pattern_type": "stix",
            "valid_from": "2025-03-01T10:00:00.000Z",
            "object_marking_refs": [md["id"]],
        },
    ]


def post_objects(client, headers: dict, api: str, collection_id: str, objects: list[dict]) -> None:
    """Push an envelope as ``headers``' principal; every object must be stored."""
    response = client.post(
        f"{api}/collections/{collection_id}/objects/",
        json={"objects": objects},
        headers={**headers, "Content-Type": TAXII},
    )
    assert response.status_code == 202, response.text
    assert response.json()["failure_count"] == 0, response.text


def records_for(engine, request_id: str) -> list[dict]:
    """The audit records of one request, with their served (id, version) pairs."""
    with engine.connect() as connection:
        rows = [
            dict(r._mapping)
            for r in connection.execute(
                text("SELECT * FROM audit_record WHERE request_id = :r ORDER BY seq"), {"r": request_id}
            )
        ]
        for row in rows:
            served = connection.execute(
                text("SELECT pairs FROM audit_served WHERE record_seq = :s"), {"s": row["seq"]}
            ).scalar()
            row["served"] = {(o, v) for o, v in orjson.loads(served or "[]")}
    return rows


@pytest.fixture
def rid() -> Callable[[], str]:
    """A fresh, sane X-Request-ID."""
    return lambda: f"audit-{uuid.uuid4().hex}"


@pytest.fixture(scope="session")
def template_url(database_url: str, tmp_path_factory) -> Iterator[str]:
    """An empty migrated database of the session's kind, to clone per test (cheaper than migrating)."""
    kind = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    with migrated_database(kind, tmp_path_factory, "audit-template") as url:
        yield url


@contextmanager
def _clone(template: str, tmp_path) -> Iterator[str]:
    if template.startswith("sqlite"):
        path = tmp_path / f"audit-{uuid.uuid4().hex[:8]}.sqlite"
        shutil.copyfile(template.removeprefix("sqlite:///"), path)
        yield f"sqlite:///{path}"
        return
    name = f"tearline_audit_{uuid.uuid4().hex[:12]}"
    template_name = template.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{template_name}'")
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')
        try:
            yield f"{template.rsplit('/', 1)[0]}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def module_url(template_url: str, tmp_path_factory) -> Iterator[str]:
    """A dedicated database for one test module, apart from the session's shared one."""
    with _clone(template_url, tmp_path_factory.mktemp("audit-db")) as url:
        yield url


AUDIT_RESET = (
    "DELETE FROM audit_dissemination",
    "DELETE FROM audit_object",
    "DELETE FROM audit_served",
    "DELETE FROM audit_written",
    "UPDATE audit_index_head SET seq = 0",
    "DELETE FROM audit_checkpoint",
    "DELETE FROM audit_record",
    f"UPDATE audit_head SET seq = 0, hash = '{'0' * 64}', mac = ''",
)


@pytest.fixture
def fresh_url(module_url: str) -> Iterator[str]:
    """The module's dedicated database with an empty audit log (cheaper than a new database per test)."""
    engine = make_engine(module_url)
    try:
        with engine.begin() as connection:
            for statement in AUDIT_RESET:
                connection.execute(text(statement))
    finally:
        engine.dispose()
    yield module_url


@pytest.fixture
def signer() -> AuditSigner:
    return AuditSigner(key=TEST_KEY.encode(), checkpoint_interval=5)


@pytest.fixture
def fresh_engine(fresh_url: str, signer: AuditSigner):
    """An engine on the dedicated database, writing with the test signer (checkpoint every 5)."""
    engine = make_engine(fresh_url)
    bind_signer(engine, signer)
    yield engine
    engine.dispose()


@pytest.fixture
def fresh_app(fresh_url: str, settings):
    """An app of its own on the dedicated database, partners registered."""
    application = create_app(settings.model_copy(update={"database_url": fresh_url, "audit_key": TEST_KEY}))
    with Session(application.state.engine) as session:
        for nation, clearance, groups in PARTNERS:
            save_partner(session, nation=nation, clearance=clearance, groups=groups, home_nation=HOME)
    yield application
    application.state.engine.dispose()

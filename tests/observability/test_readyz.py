"""``/readyz``: ready on a current schema with the policy loaded; 503 problem details naming the
failing check, and nothing internal, otherwise. ``/healthz`` answers regardless."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config.settings import Settings
from app.db import migrations
from app.http.health import schema_head
from app.main import create_app

LEAKS = ("Traceback", "sqlalchemy", "psycopg", "sqlite3", "SELECT", "alembic_version", "127.0.0.1", "/tmp")


def _not_ready(client: TestClient) -> dict:
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["Retry-After"].isdigit()
    body = response.json()
    assert body["status"] == 503 and body["title"] == "Service Unavailable" and body["instance"] == "/readyz"
    assert not any(leak in response.text for leak in LEAKS), response.text
    # Liveness is not readiness: the process is alive and says so.
    assert client.get("/healthz").status_code == 200
    return body


def _app_on(settings: Settings, **changes):
    return create_app(settings.model_copy(update=changes))


def test_ready_on_the_migrated_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "schema": "ok", "policy": "ok"}}


def test_not_ready_without_a_schema(settings, tmp_path):
    application = _app_on(settings, database_url=f"sqlite:///{tmp_path / 'empty.sqlite'}")
    try:
        with TestClient(application) as client:
            body = _not_ready(client)
        assert body["checks"]["database"] != "ok"
        assert "database" in body["detail"]
    finally:
        application.state.engine.dispose()


def test_not_ready_while_the_schema_is_behind(settings, tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    migrations.upgrade(url, "0001")
    application = _app_on(settings, database_url=url)
    try:
        with TestClient(application) as client:
            body = _not_ready(client)
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["schema"] == f"at revision 0001, this version needs {schema_head()}"
    finally:
        application.state.engine.dispose()


def test_not_ready_when_the_database_is_unreachable(settings):
    # Port 1 on the loopback: the connection is refused at once.
    application = _app_on(settings, database_url="postgresql+psycopg://tearline:pw@127.0.0.1:1/tearline")
    try:
        with TestClient(application) as client:
            body = _not_ready(client)
        assert body["checks"]["database"] == "unreachable or without a schema"
        assert "pw" not in body["detail"]
    finally:
        application.state.engine.dispose()


def test_not_ready_when_a_policy_file_disappears(settings, tmp_path):
    policies: Path = tmp_path / "policies"
    shutil.copytree(settings.policies_dir, policies)
    application = _app_on(settings, policies_dir=policies)
    try:
        with TestClient(application) as client:
            assert client.get("/readyz").status_code == 200
            (policies / "policy.csv").unlink()
            body = _not_ready(client)
        assert body["checks"]["policy"] == "missing policy.csv"
    finally:
        application.state.engine.dispose()


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_need_no_token(client, path):
    assert client.get(path).status_code == 200

"""/readyz answers 503 when PostgreSQL cannot be reached, naming no host (the engine also bounds connects)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.main import create_app


def test_readyz_is_503_when_postgresql_is_unreachable(settings):
    # 192.0.2.1 (TEST-NET-1) is never routed.
    unreachable = settings.model_copy(update={"database_url": "postgresql+psycopg://postgres@192.0.2.1:5432/none"})
    with TestClient(create_app(unreachable)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "192.0.2.1" not in response.text

"""Request ids: kept when sane, replaced when not, always returned."""

from __future__ import annotations

import uuid


def test_new_id_when_none_offered(client):
    response = client.get("/healthz")
    assert uuid.UUID(response.headers["x-request-id"])


def test_sane_client_id_is_kept(client):
    response = client.get("/healthz", headers={"X-Request-ID": "partner-req-0001"})
    assert response.headers["x-request-id"] == "partner-req-0001"


def test_unsafe_client_id_is_replaced(client):
    response = client.get("/healthz", headers={"X-Request-ID": 'a"b,c;d=' * 3})
    assert uuid.UUID(response.headers["x-request-id"])

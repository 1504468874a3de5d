"""``/metrics``: Prometheus exposition, request counts by route template, served and stored
object versions, policy cache counters, the audit and feed API, per-app registries, the token."""

from __future__ import annotations

from fastapi import Request
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, insert, select
from sqlmodel import Session

from app.audit.context import audit_context, note_served
from app.auth.principal import Principal
from app.http.errors import ApiError
from app.items.models import StixObject
from app.main import create_app
from tests.observability.conftest import indicator, post_objects

OBJECTS_ROUTE = "/taxii2/{api_root}/collections/{collection_id}/objects/"
FAMILIES = {
    "tearline_http_requests",
    "tearline_http_request_duration_seconds",
    "tearline_objects_served",
    "tearline_objects_ingested",
    "tearline_policy_cache_hits",
    "tearline_policy_evaluations",
    "tearline_audit_write_duration_seconds",
    "tearline_feed_lag_seconds",
    "tearline_feed_runs",
}


def _families(text: str) -> dict:
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_exposition_is_prometheus_text_with_every_family(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    families = set(_families(response.text))
    assert families >= FAMILIES
    assert {"process_resident_memory_bytes", "python_info"} <= families


def test_requests_are_counted_by_route_template_and_status(client, api, collection, partner_usa, sample):
    labels = {"method": "GET", "route": OBJECTS_ROUTE}
    before_ok = sample("tearline_http_requests_total", **labels, status="200")
    before_404 = sample("tearline_http_requests_total", **labels, status="404")
    before_unmatched = sample("tearline_http_requests_total", method="GET", route="<unmatched>", status="404")
    assert client.get(f"{api}/collections/{collection.id}/objects/", headers=partner_usa).status_code == 200
    assert client.get(f"{api}/collections/{collection.id}/objects/", headers=partner_usa).status_code == 200
    missing = "00000000-0000-4000-8000-000000000000"
    assert client.get(f"{api}/collections/{missing}/objects/", headers=partner_usa).status_code == 404
    assert client.get("/no/such/path").status_code == 404

    assert sample("tearline_http_requests_total", **labels, status="200") == before_ok + 2
    assert sample("tearline_http_requests_total", **labels, status="404") == before_404 + 1
    assert (
        sample("tearline_http_requests_total", method="GET", route="<unmatched>", status="404") == before_unmatched + 1
    )
    # No raw paths: a series per collection id would grow without bound.
    text = client.get("/metrics").text
    assert collection.id not in text and missing not in text
    assert sample("tearline_http_request_duration_seconds_count", **labels) >= 3


def test_served_versions_follow_the_audit_context(client, api, collection, analyst, partner_usa, sample):
    objects = [indicator() for _ in range(3)] + [indicator(shared=False)]
    assert post_objects(client, api, collection.id, analyst, objects).status_code == 202
    before = sample("tearline_objects_served_total", nation="USA")
    response = client.get(f"{api}/collections/{collection.id}/objects/", headers=partner_usa)
    served = response.json()["objects"]
    # The three shared indicators (and the TLP definition served beside them), never the home-only one.
    assert {o["id"] for o in objects[:3]} <= {o["id"] for o in served}
    assert objects[3]["id"] not in {o["id"] for o in served}
    assert sample("tearline_objects_served_total", nation="USA") == before + len(served)


def test_stored_versions_are_counted_at_commit_only(client, api, collection, analyst, app, sample):
    before = sample("tearline_objects_ingested_total")
    objects = [indicator(shared=False), indicator(shared=False)]
    assert post_objects(client, api, collection.id, analyst, objects).status_code == 202
    assert sample("tearline_objects_ingested_total") == before + 2
    # An exact duplicate stores nothing and counts nothing.
    assert post_objects(client, api, collection.id, analyst, objects).status_code == 202
    assert sample("tearline_objects_ingested_total") == before + 2

    with Session(app.state.engine) as session:
        label_id = session.execute(select(StixObject.label_id).where(StixObject.object_id == objects[0]["id"])).scalar()
        row = {
            "collection_id": collection.id,
            "object_id": f"indicator--{'0' * 8}-0000-4000-8000-000000000001",
            "type": "indicator",
            "spec_version": "2.1",
            "version_us": 1,
            "date_added_us": 1,
            "label_id": label_id,
            "originator": "NLD",
            "submitter": "NLD",
            "has_granular": False,
            "body": "{}",
        }
        session.execute(insert(StixObject), [row])
        session.rollback()  # a refused request: nothing stored, nothing counted
        with session.begin_nested() as savepoint:
            session.execute(insert(StixObject), [row])
            savepoint.rollback()
        session.commit()
        assert (
            session.execute(
                select(func.count()).select_from(StixObject).where(StixObject.object_id == row["object_id"])
            ).scalar()
            == 0
        )
    assert sample("tearline_objects_ingested_total") == before + 2


def test_policy_cache_counters_are_the_cache_s_own(client, api, collection, partner_usa, app, sample):
    url = f"{api}/collections/{collection.id}/objects/"
    assert client.get(url, headers=partner_usa).status_code == 200
    hits = sample("tearline_policy_cache_hits_total")
    assert client.get(url, headers=partner_usa).status_code == 200
    # Nothing new to decide for USA on the second read: a hit, no evaluation.
    assert sample("tearline_policy_cache_hits_total") > hits
    assert sample("tearline_policy_cache_hits_total") == app.state.visibility.hits
    assert sample("tearline_policy_evaluations_total") == app.state.visibility.evaluations


def test_audit_and_feed_metrics_have_an_api_for_their_domains(app, client):
    metrics = app.state.metrics
    before = metrics.registry.get_sample_value("tearline_audit_write_duration_seconds_count") or 0
    metrics.audit_write_seconds.observe(0.003)
    metrics.feed_lag_seconds.labels(feed="usa-pull").set(42)
    metrics.feed_runs.labels(feed="usa-pull", outcome="error").inc()
    families = _families(client.get("/metrics").text)
    lag = {s.labels["feed"]: s.value for s in families["tearline_feed_lag_seconds"].samples}
    assert lag["usa-pull"] == 42
    assert metrics.registry.get_sample_value("tearline_audit_write_duration_seconds_count") == before + 1
    assert metrics.registry.get_sample_value("tearline_feed_runs_total", {"feed": "usa-pull", "outcome": "error"}) >= 1


def test_each_app_has_its_own_registry(settings, app):
    other = create_app(settings)
    try:
        route = {"method": "GET", "route": "/healthz", "status": "200"}
        mine = app.state.metrics.registry.get_sample_value("tearline_http_requests_total", route) or 0
        with TestClient(other) as other_client:
            for _ in range(3):
                other_client.get("/healthz")
        assert other.state.metrics.registry.get_sample_value("tearline_http_requests_total", route) == 3
        assert (app.state.metrics.registry.get_sample_value("tearline_http_requests_total", route) or 0) == mine
    finally:
        other.state.engine.dispose()


def test_metrics_token_when_configured(settings):
    guarded = create_app(settings.model_copy(update={"metrics_token": "scrape-secret-123"}))
    try:
        with TestClient(guarded) as guarded_client:
            refused = guarded_client.get("/metrics")
            assert refused.status_code == 401
            assert refused.headers["content-type"] == "application/problem+json"
            assert "tearline_" not in refused.text
            assert guarded_client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
            ok = guarded_client.get("/metrics", headers={"Authorization": "Bearer scrape-secret-123"})
            assert ok.status_code == 200 and "tearline_http_requests_total" in ok.text
    finally:
        guarded.state.engine.dispose()


def test_metrics_are_closed_unless_a_token_is_set_or_the_operator_opens_them(settings):
    closed = create_app(settings.model_copy(update={"metrics_public": False, "metrics_token": None}))
    try:
        with TestClient(closed) as closed_client:
            refused = closed_client.get("/metrics")
            assert refused.status_code == 401 and "TEARLINE_METRICS_TOKEN" in refused.text
            assert "tearline_" not in refused.text
            assert closed_client.get("/metrics", headers={"Authorization": "Bearer anything"}).status_code == 401
    finally:
        closed.state.engine.dispose()
    # A token set wins over the opt-out: the open setting does not bypass it.
    both = create_app(settings.model_copy(update={"metrics_public": True, "metrics_token": "scrape-secret-456"}))
    try:
        with TestClient(both) as both_client:
            assert both_client.get("/metrics").status_code == 401
    finally:
        both.state.engine.dispose()


def test_a_route_noting_served_versions_is_counted_under_the_principal_s_nation(settings):
    """The middleware reads the audit context at response start; any route that notes versions counts."""
    probe = create_app(settings)

    @probe.get("/probe/served")
    def _served(request: Request) -> dict:
        audit_context(request).principal = Principal("probe", "GBR", frozenset({"partner"}), 3, frozenset(), False)
        note_served(request, [("indicator--1", "v1"), ("indicator--2", "v1")])
        return {}

    @probe.get("/probe/refused")
    def _refused(request: Request) -> dict:
        audit_context(request).principal = Principal("probe", "GBR", frozenset({"partner"}), 3, frozenset(), False)
        note_served(request, [("indicator--3", "v1")])
        raise ApiError(403, "refused after noting")  # an error carries no versions, whatever was noted

    try:
        with TestClient(probe) as probe_client:
            assert probe_client.get("/probe/served").status_code == 200
            assert probe_client.get("/probe/refused").status_code == 403
        assert probe.state.metrics.registry.get_sample_value("tearline_objects_served_total", {"nation": "GBR"}) == 2
    finally:
        probe.state.engine.dispose()


def test_each_audited_request_records_its_audit_write_time(app, client, partner_usa, api):
    registry = app.state.metrics.registry
    before = registry.get_sample_value("tearline_audit_write_duration_seconds_count") or 0
    client.get(f"{api}/collections/", headers={**partner_usa, "Accept": "application/taxii+json;version=2.1"})
    client.get("/healthz")  # not audited: no record, no observation
    assert registry.get_sample_value("tearline_audit_write_duration_seconds_count") == before + 1

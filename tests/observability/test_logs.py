"""Structured logs: one JSON line per request, carrying the request id the client and the audit
record see, the route template, status and principal, and never the token."""

from __future__ import annotations

import json
import logging

from sqlalchemy import select
from sqlmodel import Session

from app.audit.models import AuditRecord
from app.observability.logs import (
    ACCESS_LOGGER,
    JsonFormatter,
    TextFormatter,
    logging_config,
)
from tests.observability.conftest import indicator, post_objects

OBJECTS_ROUTE = "/taxii2/{api_root}/collections/{collection_id}/objects/"


def _access_records(caplog, request_id: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == ACCESS_LOGGER and getattr(r, "request_id", None) == request_id]


def test_one_json_line_per_request_with_the_request_id(client, api, collection, partner_usa, caplog, app):
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    response = client.get(f"{api}/collections/{collection.id}/objects/", headers=partner_usa)
    assert response.status_code == 200
    request_id = response.headers["X-Request-ID"]
    (record,) = _access_records(caplog, request_id)

    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["request_id"] == request_id
    assert entry["method"] == "GET" and entry["route"] == OBJECTS_ROUTE and entry["status"] == 200
    assert entry["subject"] == "usa-feed" and entry["nation"] == "USA"
    assert entry["logger"] == ACCESS_LOGGER and entry["level"] == "INFO"
    assert isinstance(entry["duration_ms"], float) and entry["duration_ms"] >= 0
    assert entry["time"].endswith("Z")
    token = partner_usa["Authorization"].split()[1]
    assert token not in line and "Authorization" not in line

    # The same id is the audit record's: log line, audit log and client can be matched.
    with Session(app.state.engine) as session:
        recorded = session.execute(
            select(AuditRecord.subject, AuditRecord.status).where(AuditRecord.request_id == request_id)
        ).all()
    assert recorded == [("usa-feed", 200)]


def test_a_client_request_id_is_kept_and_bodies_are_not_logged(client, api, collection, analyst, caplog):
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    obj = indicator(shared=False)
    response = post_objects(client, api, collection.id, {**analyst, "X-Request-ID": "client-req-0001"}, [obj])
    assert response.status_code == 202
    assert response.headers["X-Request-ID"] == "client-req-0001"
    (record,) = _access_records(caplog, "client-req-0001")
    line = JsonFormatter().format(record)
    assert json.loads(line)["nation"] == "NLD"
    assert obj["id"] not in line and obj["pattern"] not in line


def test_refused_requests_are_logged_with_their_status(client, api, collection, caplog):
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    response = client.get(
        f"{api}/collections/{collection.id}/objects/",
        headers={"Authorization": "Bearer not-a-jwt", "Accept": "application/taxii+json;version=2.1"},
    )
    assert response.status_code == 401
    (record,) = _access_records(caplog, response.headers["X-Request-ID"])
    entry = json.loads(JsonFormatter().format(record))
    assert entry["status"] == 401 and entry["route"] == OBJECTS_ROUTE
    assert "not-a-jwt" not in json.dumps(entry)


def test_formatters_and_the_server_logging_config():
    record = logging.LogRecord("tearline.test", logging.WARNING, __file__, 1, "disk %s", ("full",), None)
    record.request_id = "abc12345"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "disk full" and entry["request_id"] == "abc12345" and entry["level"] == "WARNING"
    assert TextFormatter().format(record).endswith("request_id=abc12345")

    config = logging_config("WARNING", "json")
    assert config["handlers"]["stderr"]["formatter"] == "json"
    assert config["root"]["level"] == "WARNING"
    # uvicorn's own access lines would duplicate ours without the request id.
    assert config["loggers"]["uvicorn.access"]["propagate"] is False
    assert logging_config("INFO", "text")["handlers"]["stderr"]["formatter"] == "text"
    assert config["loggers"]["casbin"]["level"] == "WARNING"  # one line per role check otherwise
    record.color_message = "\x1b[36mdisk full\x1b[0m"
    assert "color_message" not in json.loads(JsonFormatter().format(record))
    # That uvicorn accepts it and the lines come out as JSON: tests/ops/test_container.py.


def test_client_controlled_values_cannot_forge_lines_or_series(client, caplog, app):
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    response = client.request("BREW", "/no/such%0Afake-line%20status=200")
    (record,) = _access_records(caplog, response.headers["X-Request-ID"])
    assert "\n" in record.path  # the decoded path really holds a newline
    for formatter in (JsonFormatter(), TextFormatter()):
        assert "\n" not in formatter.format(record)
    assert (
        app.state.metrics.registry.get_sample_value(
            "tearline_http_requests_total",
            {"method": "other", "route": "<unmatched>", "status": str(response.status_code)},
        )
        >= 1
    )
    assert "BREW" not in client.get("/metrics").text

"""Auditor API inputs (issue 19, item 4): every query parameter is range-checked.

Out-of-range input is a 400 problem document, never a 500, and an export that cannot run is
never a 200 with an empty body. Valid input at the edges of the ranges gets a correct answer.
"""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy.exc import OperationalError

from app.audit import query
from app.audit.service import record_event

RECORDS = "/api/v1/audit/records"
EXPORT = "/api/v1/audit/export"
MAX_SEQ = 2**63 - 1


@pytest.fixture
def auditor(auth) -> dict:
    return auth(subject="auditor-1", roles=("auditor",))


@pytest.fixture(scope="module", autouse=True)
def some_records(app) -> None:
    """The shared log holds at least a few records, whatever ran before."""
    for index in range(3):
        record_event(
            app.state.engine,
            request_id=f"inputs-{index}",
            subject="inputs",
            nation="GBR",
            roles=["partner"],
            method="GET",
            route="/taxii2/",
            status=200,
            decision="allow",
        )


def _assert_problem(response, status: int = 400) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["detail"]
    return body


@pytest.mark.parametrize("seq", [MAX_SEQ + 1, 99999999999999999999, 10**400])
def test_a_seq_beyond_63_bits_is_refused(client, auditor, seq):
    _assert_problem(client.get(f"{RECORDS}/{seq}", headers=auditor))


def test_the_largest_seq_is_a_plain_404(client, auditor):
    _assert_problem(client.get(f"{RECORDS}/{MAX_SEQ}", headers=auditor), 404)


@pytest.mark.parametrize(
    "path, params",
    [
        (RECORDS, {"after": MAX_SEQ + 1}),
        (RECORDS, {"after": "99999999999999999999"}),
        (RECORDS, {"after": -1}),
        ("/api/v1/audit/verify", {"start": MAX_SEQ + 1}),
        ("/api/v1/audit/verify", {"end": "99999999999999999999"}),
    ],
)
def test_a_cursor_or_range_beyond_63_bits_is_refused(client, auditor, path, params):
    _assert_problem(client.get(path, params=params, headers=auditor))


def test_the_largest_cursor_is_an_empty_last_page(client, auditor):
    response = client.get(RECORDS, params={"after": MAX_SEQ}, headers=auditor)
    assert response.status_code == 200 and response.json() == {"records": [], "next": None}


OUT_OF_RANGE = [
    {"since": "0001-01-01T00:00:00+14:00"},
    {"until": "0001-01-01T00:00:00+00:01"},
    {"since": "9999-12-31T23:59:59-14:00"},
    {"until": "9999-12-31T23:59:59.999999-00:01"},
]


@pytest.mark.parametrize("params", OUT_OF_RANGE, ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()))
@pytest.mark.parametrize("path", [RECORDS, EXPORT])
def test_a_time_that_leaves_the_calendar_in_utc_is_refused(client, auditor, path, params):
    body = _assert_problem(client.get(path, params=params, headers=auditor))
    assert next(iter(params)) in body["detail"]


@pytest.mark.parametrize("fmt", ["ndjson", "csv"])
def test_a_refused_export_is_never_an_empty_200(client, auditor, fmt):
    response = client.get(EXPORT, params={"since": "0001-01-01T00:00:00+14:00", "format": fmt}, headers=auditor)
    _assert_problem(response)


def test_an_export_whose_first_batch_fails_is_an_error_not_an_empty_200(client, auditor, monkeypatch):
    def unavailable(*_args, **_kwargs):
        raise OperationalError("SELECT", {}, Exception("database is locked"))

    monkeypatch.setattr(query, "_records_page", unavailable)
    _assert_problem(client.get(EXPORT, headers=auditor), 503)


def test_years_before_1000_are_compared_as_times(client, auditor):
    """The stored time text is fixed-width: a filter before year 1000 must be too, or text
    comparison puts year 999 after year 2025 and every record falls outside `since`."""
    everything = client.get(RECORDS, params={"limit": 5}, headers=auditor).json()["records"]
    assert everything
    for since in ("0999-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00-14:00"):
        page = client.get(RECORDS, params={"since": since, "limit": 5}, headers=auditor)
        assert page.status_code == 200 and page.json()["records"] == everything, since
    before = client.get(RECORDS, params={"until": "0999-01-01T00:00:00Z"}, headers=auditor)
    assert before.status_code == 200 and before.json()["records"] == []
    lines = client.get(EXPORT, params={"since": "0999-01-01T00:00:00Z"}, headers=auditor).text.splitlines()
    assert [orjson.loads(line)["seq"] for line in lines[:5]] == [r["seq"] for r in everything]


def test_the_last_instant_of_year_9999_is_a_valid_bound(client, auditor):
    page = client.get(RECORDS, params={"until": "9999-12-31T23:59:59.999999Z", "limit": 1}, headers=auditor)
    assert page.status_code == 200 and len(page.json()["records"]) == 1


def test_naive_and_zoned_bounds_compare_in_utc(client, auditor):
    """A naive time means UTC: it may be combined with a zoned one, and the order is checked in UTC."""
    ok = client.get(
        RECORDS, params={"since": "2000-01-01T00:00:00", "until": "2999-01-01T00:00:00+02:00"}, headers=auditor
    )
    assert ok.status_code == 200 and ok.json()["records"]
    # 10:00 naive (UTC) is after 11:00+02:00 (09:00 UTC).
    _assert_problem(
        client.get(
            RECORDS, params={"since": "2020-01-01T10:00:00", "until": "2020-01-01T11:00:00+02:00"}, headers=auditor
        )
    )


@pytest.mark.parametrize(
    "params",
    [
        {"subject": "x" * 256},
        {"route": "/" * 1025},
        {"collection_id": "c" * 256},
        {"object_id": "indicator--" + "0" * 280},  # longer than any STIX id (288)
        {"subject": "a\x00b"},
        {"route": "/taxii2/\x00"},
        {"object_id": "indicator--\x00"},
    ],
    ids=["subject-long", "route-long", "collection-long", "object-long", "subject-nul", "route-nul", "object-nul"],
)
@pytest.mark.parametrize("path", [RECORDS, EXPORT])
def test_text_filters_no_record_could_hold_are_refused(client, auditor, path, params):
    _assert_problem(client.get(path, params=params, headers=auditor))


def test_a_recipients_id_with_nul_is_refused(client, auditor):
    _assert_problem(client.get("/api/v1/audit/recipients/indicator--%00", headers=auditor))

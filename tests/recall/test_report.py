"""The auditors' recall report (``/api/v1/audit/recalls``): each recipient goes from notified to
received (its notice served to it, per the audit) to acknowledged; filters and paging; only
auditors may ask, and every bad input is a 400 problem, never a 500.
"""

from __future__ import annotations

import time

import pytest

from tests.recall.helpers import Nations, notices_for, pull
from tests.taxii.helpers import indicator, new_version, post_ok
from tests.taxii.test_releasability import banner, marked

RECALLS = "/api/v1/audit/recalls"
MAX_TIME = "9999-12-31T23:59:59.999999"


@pytest.fixture
def nations(auth) -> Nations:
    return Nations(auth)


@pytest.fixture
def auditor(auth) -> dict:
    return auth(subject="auditor-recall", roles=("auditor",))


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["detail"]
    return body


def _recalls(client, auditor: dict, **params) -> dict:
    response = client.get(RECALLS, headers=auditor, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _report(client, auditor: dict, recall_id: str) -> dict:
    response = client.get(f"{RECALLS}/{recall_id}", headers=auditor)
    assert response.status_code == 200, response.text
    return response.json()


def tightened_for_fra(client, api: str, collection_id: str, nations: Nations) -> dict:
    """An item released to FRA, pulled by FRA, then made home-only: one recall with one recipient."""
    rel_fra = banner("UNCLASSIFIED//REL TO FRA")
    first = marked(indicator(), rel_fra)
    post_ok(client, api, collection_id, nations.home, [rel_fra, first])
    assert first["id"] in {o["id"] for o in pull(client, api, collection_id, nations["FRA"])}
    home_only = banner("UNCLASSIFIED")
    post_ok(client, api, collection_id, nations.home, [home_only, marked(new_version(first, 1), home_only)])
    return first


def test_a_recipient_goes_from_notified_to_received_to_acknowledged(client, api, collection, nations, auditor):
    item = tightened_for_fra(client, api, collection.id, nations)

    listed = _recalls(client, auditor, object_id=item["id"])
    assert listed["more"] is False and "next" not in listed
    (summary,) = listed["recalls"]
    assert summary["object_id"] == item["id"] and summary["cause"] == "tightened"
    assert summary["issued_by"] == "originator" and summary["trigger_version"] is not None
    assert (summary["nations"], summary["received"], summary["acknowledged"]) == (1, 0, 0)
    assert summary["outstanding"] == ["FRA"]

    report = _report(client, auditor, summary["recall_id"])
    assert {k: report[k] for k in summary if k in report} == {
        k: v for k, v in summary.items() if k not in {"nations", "received", "acknowledged", "outstanding"}
    }
    assert report["derived"] == []
    (fra,) = report["recipients"]
    assert fra["nation"] == "FRA" and fra["collection_id"] == collection.id and fra["state"] == "notified"
    assert fra["versions"] == [item["modified"].replace("Z", "000Z")]
    assert fra["notified"] == report["issued"]
    assert fra["received"] is None and fra["received_by"] is None and fra["received_seq"] is None
    assert fra["acknowledged"] is None and fra["acknowledged_by"] is None

    # FRA pulls its notice: received, by the principal whose request carried it.
    (notice,) = notices_for(client, api, collection.id, nations["FRA"])
    assert notice["id"] == fra["notice_id"]
    received = _report(client, auditor, summary["recall_id"])["recipients"][0]
    assert received["state"] == "received" and received["received_by"] == "fra-recall"
    assert isinstance(received["received_seq"], int) and received["received"] >= fra["notified"]
    assert _recalls(client, auditor, object_id=item["id"])["recalls"][0]["received"] == 1

    # FRA acknowledges it: acknowledged, and the first receipt still stands after another pull.
    response = client.post(f"/api/v1/recalls/{notice['id']}/acknowledgement", headers=nations["FRA"])
    assert response.status_code == 200, response.text
    notices_for(client, api, collection.id, nations["FRA"])
    done = _report(client, auditor, summary["recall_id"])["recipients"][0]
    assert done["state"] == "acknowledged" and done["acknowledged_by"] == "fra-recall"
    assert done["acknowledged"] == response.json()["acknowledged"]
    assert done["received_seq"] == received["received_seq"] and done["received"] == received["received"]
    summary = _recalls(client, auditor, object_id=item["id"])["recalls"][0]
    assert (summary["received"], summary["acknowledged"], summary["outstanding"]) == (1, 1, [])


def test_acknowledged_without_a_recorded_receipt_is_acknowledged(client, api, collection, nations, auditor):
    item = tightened_for_fra(client, api, collection.id, nations)
    listing = client.get("/api/v1/recalls", headers=nations["FRA"])
    (notice,) = [n for n in listing.json()["notices"] if n["recalled_object"] == item["id"]]
    response = client.post(f"/api/v1/recalls/{notice['notice_id']}/acknowledgement", headers=nations["FRA"])
    assert response.status_code == 200, response.text
    (fra,) = _report(client, auditor, notice["recall_id"])["recipients"]
    assert fra["state"] == "acknowledged" and fra["acknowledged_by"] == "fra-recall"


def test_outstanding_filter(client, api, collection, nations, auditor):
    item = tightened_for_fra(client, api, collection.id, nations)
    (recall,) = _recalls(client, auditor, object_id=item["id"], outstanding="true")["recalls"]
    assert _recalls(client, auditor, object_id=item["id"], outstanding="false")["recalls"] == []
    assert recall["recall_id"] in {r["recall_id"] for r in _recalls(client, auditor, outstanding="true")["recalls"]}

    (notice,) = notices_for(client, api, collection.id, nations["FRA"])
    client.post(f"/api/v1/recalls/{notice['id']}/acknowledgement", headers=nations["FRA"]).raise_for_status()
    assert _recalls(client, auditor, object_id=item["id"], outstanding="true")["recalls"] == []
    (settled,) = _recalls(client, auditor, object_id=item["id"], outstanding="false")["recalls"]
    assert settled["recall_id"] == recall["recall_id"] and settled["outstanding"] == []


def test_pages_newest_first_and_time_window(client, api, collection, nations, auditor):
    wide, fra_gone = banner("UNCLASSIFIED//REL TO USA, FRA"), banner("UNCLASSIFIED//REL TO USA")
    first = marked(indicator(), wide)
    post_ok(client, api, collection.id, nations.home, [wide, first])
    for nation in ("USA", "FRA"):
        pull(client, api, collection.id, nations[nation])
    post_ok(client, api, collection.id, nations.home, [fra_gone, marked(new_version(first, 1), fra_gone)])
    time.sleep(0.002)  # the second recall is issued at a later millisecond
    home_only = banner("UNCLASSIFIED")
    post_ok(client, api, collection.id, nations.home, [home_only, marked(new_version(first, 2), home_only)])

    page = _recalls(client, auditor, object_id=first["id"], limit=1)
    assert page["more"] is True
    (newest,) = page["recalls"]
    rest = _recalls(client, auditor, object_id=first["id"], limit=1, after=page["next"])
    assert rest["more"] is False and "next" not in rest
    (oldest,) = rest["recalls"]
    assert newest["outstanding"] == ["USA"] and oldest["outstanding"] == ["FRA"]
    assert newest["issued"] > oldest["issued"]

    both = _recalls(client, auditor, object_id=first["id"], since=oldest["issued"], until=MAX_TIME)["recalls"]
    assert [r["recall_id"] for r in both] == [newest["recall_id"], oldest["recall_id"]]
    assert _recalls(client, auditor, object_id=first["id"], since=newest["issued"])["recalls"] == [newest]
    assert _recalls(client, auditor, object_id=first["id"], until=oldest["issued"])["recalls"] == []


def test_only_auditors_may_read_recall_reports(client, api, collection, nations, auditor):
    item = tightened_for_fra(client, api, collection.id, nations)
    (recall,) = _recalls(client, auditor, object_id=item["id"])["recalls"]
    for headers in (nations["FRA"], nations.home):
        _problem(client.get(RECALLS, headers=headers), 403)
        _problem(client.get(f"{RECALLS}/{recall['recall_id']}", headers=headers), 403)
    assert client.get(RECALLS).status_code == 401


@pytest.mark.parametrize(
    "params",
    [
        {"since": "yesterday"},
        {"until": "2026-13-01"},
        {"since": "0001-01-01T00:00:00+14:00"},
        {"until": "9999-12-31T23:59:59-14:00"},
        {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        {"outstanding": "maybe"},
        {"limit": "0"},
        {"limit": "1001"},
        {"after": "not a cursor"},
        {"after": "WzEsMl0"},  # [1,2]: well-formed base64 JSON, but not a cursor
        {"after": "x" * 201},
        {"object_id": "indicator--\x00"},
        {"object_id": "x" * 300},
    ],
)
def test_bad_input_is_a_400_problem(client, auditor, params):
    _problem(client.get(RECALLS, headers=auditor, params=params), 400)


def test_an_unknown_recall_is_a_404_problem(client, auditor):
    _problem(client.get(f"{RECALLS}/00000000-0000-4000-8000-000000000000", headers=auditor), 404)
    _problem(client.get(f"{RECALLS}/bad%00id", headers=auditor), 404)
    assert client.get(f"{RECALLS}/{'x' * 65}", headers=auditor).status_code == 400

"""The console's recalls panel in headless Chromium: a recall and how far its recipient has got.

An item released to FRA is pulled by FRA and then made home-only over the HTTP API, which issues
a recall with one recipient. The panel lists it with FRA outstanding and shows FRA notified; once
FRA has pulled its notice and acknowledged it, showing the recalls again gives FRA received and
acknowledged, by FRA's principal, and nothing outstanding. SQLite only (see conftest); the API
itself is tested on both databases in tests/recall/test_report.py.
"""

from __future__ import annotations

import uuid

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as visible
from selenium.webdriver.support.ui import WebDriverWait

from tests.audit.conftest import labelled_indicator
from tests.conftest import TAXII
from tests.console.conftest import WAIT_S, Seeded

pytestmark = pytest.mark.e2e

RECALL_EXTENSION = "extension-definition--f26d88c0-42b3-4104-b413-3eb488ceba1e"


def _rows(browser, selector: str) -> list[list[str]]:
    return browser.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(row => [...row.cells].map(cell => "
        "cell.innerText.trim()));",
        selector,
    )


def _recipients(browser) -> dict[str, dict[str, str]]:
    """The open recall's per-nation table: nation -> column -> cell text."""
    heads = ["nation", "state", "notified", "received", "acknowledged"]
    return {row[0]: dict(zip(heads, row, strict=True)) for row in _rows(browser, "#recall-recipients tbody tr")}


def _recalled_from_fra(server: Seeded, fra: dict) -> str:
    """Post an item released to FRA, have FRA pull it, then make it home-only: one recall, to FRA."""
    object_id = f"indicator--{uuid.uuid4()}"
    base = f"{server.base_url}/taxii2/api1/collections/{server.collection_id}/objects/"
    analyst = {"Authorization": f"Bearer {server.token()}", "Content-Type": TAXII, "Accept": TAXII}
    with requests.Session() as http:
        released = labelled_indicator("UNCLASSIFIED//REL TO FRA", object_id=object_id)
        posted = http.post(base, json={"objects": released}, headers=analyst, timeout=30)
        assert posted.status_code == 202 and posted.json()["failure_count"] == 0, posted.text
        pulled = http.get(f"{base}{object_id}/", headers=fra | {"Accept": TAXII}, timeout=30)
        assert pulled.status_code == 200, pulled.text
        home_only = labelled_indicator("UNCLASSIFIED", object_id=object_id, modified="2025-03-02T10:00:00.000Z")
        posted = http.post(base, json={"objects": home_only}, headers=analyst, timeout=30)
        assert posted.status_code == 202 and posted.json()["failure_count"] == 0, posted.text
    return object_id


def _show_recalls(browser, wait, object_id: str) -> list[str]:
    """Press "Show recalls" and wait for the list to answer; the one row of ``object_id``."""
    status = browser.find_element(By.ID, "recalls-status")
    browser.execute_script("arguments[0].textContent = '';", status)
    browser.find_element(By.ID, "recalls-button").click()
    wait.until(lambda _: status.text.endswith("shown.") or status.text == "No recall matches.")
    rows = [row for row in _rows(browser, "#recall-list tbody tr") if row[2] == object_id]
    assert len(rows) == 1, (status.text, rows)
    return rows[0]


def test_recalls_panel_follows_a_recipient_to_its_acknowledgement(browser, console_server: Seeded):
    fra_subject = f"fra-recall-{console_server.tag}"
    fra = {"Authorization": f"Bearer {console_server.token(subject=fra_subject, nation='FRA', roles=('partner',))}"}
    object_id = _recalled_from_fra(console_server, fra)

    wait = WebDriverWait(browser, WAIT_S)
    browser.get(f"{console_server.base_url}/console/")
    browser.execute_script("window.sessionStorage.clear();")
    browser.get(f"{console_server.base_url}/console/")
    field = wait.until(visible.visibility_of_element_located((By.ID, "token")))
    token = console_server.token(subject="auditor-recall-view", roles=("auditor",))
    browser.execute_script("arguments[0].value = arguments[1];", field, token)
    browser.find_element(By.ID, "login-button").click()
    wait.until(visible.visibility_of_element_located((By.ID, "workspace")))

    # The list, filtered by object id and outstanding only: the recall, FRA outstanding.
    browser.find_element(By.ID, "r-object").send_keys(object_id)
    browser.find_element(By.ID, "r-outstanding").click()
    row = _show_recalls(browser, wait, object_id)
    recall_id, issued, _, cause, reason, action, notified, received, acknowledged, outstanding = row
    assert cause == "tightened" and reason and action in {"destroy", "do-not-disseminate", "quarantine"}
    assert issued.endswith("Z") and (notified, received, acknowledged) == ("1", "0", "0")
    assert outstanding == "FRA"

    # Selecting it: FRA notified, nothing received or acknowledged yet, no derived recall.
    browser.find_element(By.CSS_SELECTOR, "#recall-list tbody tr td.recall-id button").click()
    detail = wait.until(visible.visibility_of_element_located((By.ID, "recall-detail")))
    wait.until(lambda b: "FRA" in _recipients(b))
    assert detail.find_element(By.TAG_NAME, "h3").text == f"Recall {recall_id}"
    fra_row = _recipients(browser)["FRA"]
    assert fra_row["state"] == "notified" and fra_row["notified"].endswith("Z")
    assert (fra_row["received"], fra_row["acknowledged"]) == ("—", "—")
    assert "Derived recalls: 0" in detail.text

    # FRA pulls its notice over TAXII and acknowledges it.
    with requests.Session() as http:
        notes = http.get(
            f"{console_server.base_url}/taxii2/api1/collections/{console_server.collection_id}/objects/",
            params={"match[type]": "note"},
            headers=fra | {"Accept": TAXII},
            timeout=30,
        )
        assert notes.status_code == 200, notes.text
        (notice,) = [
            o
            for o in notes.json().get("objects", [])
            if (o.get("extensions") or {}).get(RECALL_EXTENSION, {}).get("recalled_object") == object_id
        ]
        acknowledged_now = http.post(
            f"{console_server.base_url}/api/v1/recalls/{notice['id']}/acknowledgement", headers=fra, timeout=30
        )
        assert acknowledged_now.status_code == 200, acknowledged_now.text

    # Showing the recalls again: nothing outstanding any more, so "outstanding only" finds nothing ...
    status = browser.find_element(By.ID, "recalls-status")
    browser.find_element(By.ID, "recalls-button").click()
    wait.until(lambda _: status.text == "No recall matches.")
    # ... and without that filter the recall is settled, and the open detail shows FRA acknowledged.
    browser.find_element(By.ID, "r-outstanding").click()
    wait.until(lambda b: any(r[2] == object_id for r in _rows(b, "#recall-list tbody tr")))
    row = _show_recalls(browser, wait, object_id)
    assert row[0] == recall_id and row[6:] == ["1", "1", "1", "—"]
    wait.until(lambda b: _recipients(b).get("FRA", {}).get("state") == "acknowledged")
    fra_row = _recipients(browser)["FRA"]
    assert fra_row["acknowledged"] == f"{acknowledged_now.json()['acknowledged']}\nby {fra_subject}"
    assert fra_row["received"].endswith(f"\nby {fra_subject}")

    violations = [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert violations == []

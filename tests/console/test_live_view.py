"""The console's live view in headless Chromium: a pull appears in the table as it happens.

The page reads ``/api/v1/audit/live`` with fetch (an EventSource could not send the token), so
this checks the page's own stream parsing and rendering against a live Tearline. SQLite only
(see conftest); the API itself is tested on both databases in tests/audit/test_live.py.
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


def _cells(browser) -> list[list[str]]:
    # A long route is shortened in its cell; its button's title holds the whole route.
    return browser.execute_script(
        "return [...document.querySelectorAll('#live-records tbody tr')].map(row => [...row.cells].map(cell => "
        "(cell.querySelector('button.route-toggle') || {}).title || cell.innerText.trim()));"
    )


def test_live_view_shows_what_went_to_whom_as_it_happens(browser, console_server: Seeded):
    wait = WebDriverWait(browser, WAIT_S)
    browser.get(f"{console_server.base_url}/console/")
    browser.execute_script("window.sessionStorage.clear();")
    browser.get(f"{console_server.base_url}/console/")
    field = wait.until(visible.visibility_of_element_located((By.ID, "token")))
    token = console_server.token(subject="auditor-live-view", roles=("auditor",))
    browser.execute_script("arguments[0].value = arguments[1];", field, token)
    browser.find_element(By.ID, "login-button").click()
    wait.until(visible.visibility_of_element_located((By.ID, "workspace")))

    browser.find_element(By.ID, "live-served").click()  # only records that served objects
    browser.find_element(By.ID, "live-start").click()
    status = browser.find_element(By.ID, "live-status")
    wait.until(lambda b: status.text.startswith("Live:"))
    assert browser.find_element(By.ID, "live-stop").is_displayed()

    object_id = f"indicator--{uuid.uuid4()}"
    base = f"{console_server.base_url}/taxii2/api1/collections/{console_server.collection_id}/objects/"
    posted = requests.post(
        base,
        json={"objects": labelled_indicator("UNCLASSIFIED//REL TO FVEY", object_id=object_id)},
        headers={"Authorization": f"Bearer {console_server.token()}", "Content-Type": TAXII, "Accept": TAXII},
        timeout=30,
    )
    assert posted.status_code == 202, posted.text
    subject = f"usa-live-{console_server.tag}"
    usa = {"Authorization": f"Bearer {console_server.token(subject=subject, nation='USA', roles=('partner',))}"}
    pulled = requests.get(f"{base}{object_id}/", headers=usa | {"Accept": TAXII}, timeout=30)
    assert pulled.status_code == 200

    wait.until(lambda b: any(object_id in row[-1] for row in _cells(b)))
    (row,) = [row for row in _cells(browser) if object_id in row[-1]]
    seq, _, who, method, what, code, decision, served = row
    assert who == f"USA / {subject}" and (method, code, decision) == ("GET", "200", "allow")
    assert what == f"/taxii2/api1/collections/{console_server.collection_id}/objects/{object_id}/"
    assert int(seq) > 0
    assert served == f"1 object version(s)\n{object_id}"
    # "served" only: the analyst's post (a write, which served nothing) is not shown.
    assert all(r[2] != "NLD / analyst-1" for r in _cells(browser))

    browser.find_element(By.ID, "live-stop").click()
    assert status.text == "Stopped." and browser.find_element(By.ID, "live-start").is_displayed()
    violations = [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert violations == []

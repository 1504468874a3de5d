"""The console's disclosure panel in headless Chromium: an officer's queue, preview and decisions.

An analyst posts two items the release rules hold: one CONFIDENTIAL for USA, one SECRET for USA and
GBR (two officers needed), whose name is markup. An officer logs in (only the disclosure panel
opens), sees both oldest first with the two-person marker, opens the first (its content and who
would receive it), sees the server's refusal of a wider narrowing, previews both together, and
releases the first (USA's TAXII pull then has it). Releasing the SECRET one makes a proposal
awaiting a second officer, which the same officer may not confirm; declining needs a reason and
then takes it off the queue. The speed table counts what happened. On SQLite and PostgreSQL
(``review_server`` runs on the session's database).
"""

from __future__ import annotations

import json

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as visible
from selenium.webdriver.support.ui import WebDriverWait

from tests.console.conftest import WAIT_S, ReviewServer

pytestmark = pytest.mark.e2e
XSS_NAME = '<img src=x onerror="window.__pwned = 1">secret source'


def _rows(browser, selector: str) -> list[list[str]]:
    return browser.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(row => [...row.cells].map(cell => "
        "cell.innerText.trim()));",
        selector,
    )


def _queue(browser) -> list[dict[str, str]]:
    """The queue table: one dict per row (its object id, and each column's text)."""
    heads = ["pick", "banner", "item", "collection", "submitted_by", "age", "two_person", "proposal"]
    cells = _rows(browser, "#dq-list tbody tr")
    ids = browser.execute_script(
        "return [...document.querySelectorAll('#dq-list tbody tr')].map(row => row.dataset.objectId);"
    )
    return [dict(zip(heads, row, strict=True)) | {"object_id": oid} for row, oid in zip(cells, ids, strict=True)]


def _partners(browser, table_id: str) -> dict[str, dict[str, str]]:
    """A preview table: nation -> column -> cell text."""
    heads = ["nation", "clearance", "count", "items"]
    return {
        row[0].split("\n")[0]: dict(zip(heads, row, strict=True)) for row in _rows(browser, f"#{table_id} tbody tr")
    }


def _status(browser, element_id: str):
    return browser.find_element(By.ID, element_id)


def _log_in(browser, wait, server: ReviewServer, subject: str) -> None:
    browser.get(f"{server.base_url}/console/")
    browser.execute_script("window.sessionStorage.clear();")
    browser.get(f"{server.base_url}/console/")
    field = wait.until(visible.visibility_of_element_located((By.ID, "token")))
    browser.execute_script(
        "arguments[0].value = arguments[1];", field, server.token(subject=subject, roles=("officer",))
    )
    browser.find_element(By.ID, "login-button").click()
    wait.until(visible.visibility_of_element_located((By.ID, "disclosure")))


def _show_queue(browser, wait, server: ReviewServer, count: int) -> list[dict[str, str]]:
    """Show the queue of the test's collection and wait for ``count`` rows."""
    field = browser.find_element(By.ID, "dq-collection")
    field.clear()
    field.send_keys(server.collection_id)
    status = _status(browser, "dq-status")
    browser.execute_script("arguments[0].textContent = '';", status)
    browser.find_element(By.ID, "dq-refresh").click()
    wait.until(lambda _: status.text.endswith(".") and len(_queue(browser)) == count)
    return _queue(browser)


def _open(browser, wait, object_id: str) -> None:
    """Open an item of the queue and wait for its detail and preview."""
    browser.find_element(By.CSS_SELECTOR, f"#dq-list tr[data-object-id='{object_id}'] td.item button").click()
    wait.until(
        lambda b: (
            b.find_element(By.ID, "dq-detail").get_attribute("data-review-id")
            and object_id in b.find_element(By.ID, "dd-content").text
            and _partners(b, "dd-partners")
        )
    )


def _decide(browser, wait, action: str, reason: str = "", banner: str = "") -> str:
    """Fill the decision form, press the action's button; the message that answers (status or outcome)."""
    for field_id, value in (("dd-reason", reason), ("dd-banner", banner)):
        field = browser.find_element(By.ID, field_id)
        field.clear()
        if value:
            field.send_keys(value)
    for element_id in ("dd-status", "dq-outcome"):
        browser.execute_script("arguments[0].textContent = '';", _status(browser, element_id))
    browser.find_element(By.ID, f"dd-{action}").click()
    status, outcome = _status(browser, "dd-status"), _status(browser, "dq-outcome")

    def answered(_):
        for element in (outcome, status):
            if element.text and element.text not in ("Deciding…", "Loading…"):
                return element.text
        return False

    return wait.until(answered)


def test_an_officer_reviews_previews_and_decides_in_the_console(browser, review_server: ReviewServer):
    server = review_server
    analyst = f"analyst-{server.tag}"
    officer = f"officer-{server.tag}"
    first = server.post(analyst, "CONFIDENTIAL//REL TO USA", name=f"release me {server.tag}")
    second = server.post(analyst, "SECRET//REL TO USA, GBR", name=XSS_NAME)
    assert not {first["id"], second["id"]} & server.pulled_ids("USA")  # both held

    wait = WebDriverWait(browser, WAIT_S)
    _log_in(browser, wait, server, officer)
    # An officer's token opens the disclosure panel only: the audit panels stay closed.
    assert not browser.find_element(By.ID, "search").is_displayed()
    assert not browser.find_element(By.ID, "live").is_displayed()

    # The queue, oldest first: banner, item, collection, who posted it, age, two-person marker.
    queue = _show_queue(browser, wait, server, 2)
    assert [row["object_id"] for row in queue] == [first["id"], second["id"]]
    one, two = queue
    assert one["banner"] == "CONFIDENTIAL//REL TO NLD, USA"
    assert two["banner"].startswith("SECRET//REL TO NLD, ") and "GBR" in two["banner"]
    assert one["item"] == f"indicator: release me {server.tag}\n{first['id']}"
    assert (one["collection"], one["submitted_by"]) == (server.collection_id, analyst)
    assert one["age"].endswith((" s", " min")) and one["two_person"] == "—" and one["proposal"] == "—"
    assert two["two_person"] == "two officers" and two["proposal"] == "—"
    # The markup in the second item's name is shown as text, never parsed.
    assert two["item"].startswith(f"indicator: {XSS_NAME}")
    assert browser.execute_script("return document.querySelectorAll('#disclosure img').length;") == 0

    # The first item: its content as posted, and per partner whether it would receive it.
    _open(browser, wait, first["id"])
    content = json.loads(browser.find_element(By.ID, "dd-content").text)
    assert (content["id"], content["pattern"]) == (first["id"], first["pattern"])
    # The marking definitions released beside it are shown too (their text is released with it).
    markings = json.loads(browser.find_element(By.ID, "dd-markings").text)
    assert {m["id"] for m in markings} == set(first["object_marking_refs"])
    partners = _partners(browser, "dd-partners")
    assert partners["USA"]["count"] == "1 of 1" and "receives" in partners["USA"]["items"]
    assert partners["GBR"]["count"] == "0 of 1" and "not releasable to it" in partners["GBR"]["items"]
    assert "it would reach: USA." in browser.find_element(By.ID, "dd-preview").text

    # The server's refusal (its problem detail) is shown: no narrowing wider than the marking.
    refused = _decide(browser, wait, "narrow", "wider", "CONFIDENTIAL//REL TO USA, GBR")
    assert refused.startswith("Refused (422): The release must not be wider than the item's marking")
    assert "error" in _status(browser, "dd-status").get_attribute("class").split()

    # Both ticked: the union preview, partner by partner.
    for row in browser.find_elements(By.CSS_SELECTOR, "#dq-list tbody input.pick"):
        row.click()
    assert _status(browser, "dq-selected").text == "2 items selected."
    browser.find_element(By.ID, "dq-preview-selection").click()
    wait.until(lambda b: _partners(b, "dq-union"))
    union = _partners(browser, "dq-union")
    assert (union["USA"]["count"], union["GBR"]["count"], union["FRA"]["count"]) == ("2 of 2", "1 of 2", "0 of 2")
    assert first["id"] in union["GBR"]["items"] and second["id"] in union["GBR"]["items"]
    (reach,) = [line for line in browser.find_element(By.ID, "dq-batch-preview").text.splitlines() if "reach" in line]
    assert {"USA", "GBR"} <= set(reach.split(": ")[1].rstrip(".").split(", ")) and "FRA" not in reach

    # Released as marked: off the queue, and USA's TAXII pull has it (GBR's does not).
    assert _decide(browser, wait, "release", "checked against the source") == "release as marked: released to USA."
    wait.until(lambda b: [row["object_id"] for row in _queue(b)] == [second["id"]])
    assert not browser.find_element(By.ID, "dq-detail").is_displayed()
    assert first["id"] in server.pulled_ids("USA") and first["id"] not in server.pulled_ids("GBR")

    # SECRET: the officer's release is a proposal, awaiting a second officer, who must be someone else.
    _open(browser, wait, second["id"])
    assert _decide(browser, wait, "release", "fine by me") == "release as marked: proposed, awaiting a second officer."
    wait.until(lambda b: _status(b, "dd-status").text.startswith("Awaiting a second officer: confirm"))
    wait.until(lambda b: _queue(b)[0]["proposal"].startswith("awaiting second officer"))
    assert _queue(browser)[0]["proposal"] == f"awaiting second officer\nrelease as marked, proposed by {officer}"
    refused = _decide(browser, wait, "release", "still fine")
    assert refused == "Refused (409): A second, different officer must confirm this release."
    assert second["id"] not in server.pulled_ids("USA")

    # Declining needs a reason; with one, the item leaves the queue and stays held.
    assert _decide(browser, wait, "decline") == "A reason is required: it goes on record and to the analyst."
    assert _decide(browser, wait, "decline", "source protection") == "decline: declined."
    wait.until(lambda b: _status(b, "dq-status").text == "Nothing waits for a decision." and not _queue(b))
    assert second["id"] not in server.pulled_ids("USA") | server.pulled_ids("GBR")
    mine = requests.get(
        f"{server.base_url}/api/v1/disclosure/mine", headers=server.headers(analyst, ("analyst",)), timeout=30
    ).json()["reviews"]
    assert {(r["object_id"], r["state"], r["reason"]) for r in mine} == {
        (first["id"], "released", "checked against the source"),
        (second["id"], "declined", "source protection"),
    }

    # The speed table: one released and one declined in this collection, nothing waiting.
    wait.until(lambda b: len(_rows(b, f"#ds-speed tbody tr[data-collection='{server.collection_id}']")) == 2)
    speed = {row[1]: row for row in _rows(browser, f"#ds-speed tbody tr[data-collection='{server.collection_id}']")}
    assert speed["CONFIDENTIAL"][2:5] == ["1", "0", "0"] and speed["CONFIDENTIAL"][5].endswith((" s", " min"))
    assert speed["SECRET"][2:] == ["0", "1", "0", "—", "—"]

    assert browser.execute_script("return window.__pwned;") is None
    violations = [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    assert violations == []


def test_an_officer_releases_a_selection_at_once(browser, review_server: ReviewServer):
    server = review_server
    analyst = f"analyst-batch-{server.tag}"
    items = [server.post(analyst, "RESTRICTED//REL TO USA, FRA", name=f"batch {n}") for n in range(2)]
    wait = WebDriverWait(browser, WAIT_S)
    _log_in(browser, wait, server, f"officer-batch-{server.tag}")
    assert [row["object_id"] for row in _show_queue(browser, wait, server, 2)] == [item["id"] for item in items]

    browser.find_element(By.ID, "dq-all").click()
    assert _status(browser, "dq-selected").text == "2 items selected."
    # No reason, no release: the page says so and nothing is decided.
    browser.find_element(By.ID, "dq-release-selection").click()
    batch = _status(browser, "dq-batch-status")
    wait.until(lambda _: batch.text == "A reason is required: it goes on record and to the analysts.")
    assert len(_queue(browser)) == 2

    browser.find_element(By.ID, "dq-batch-reason").send_keys("routine exchange")
    browser.find_element(By.ID, "dq-release-selection").click()
    outcome = _status(browser, "dq-outcome")
    wait.until(lambda _: outcome.text)
    assert outcome.text == "release as marked of 2 items: released to FRA, USA; released to FRA, USA."
    wait.until(lambda b: _status(b, "dq-status").text == "Nothing waits for a decision.")
    assert _status(browser, "dq-selected").text == "No item selected."
    assert {item["id"] for item in items} <= server.pulled_ids("USA") & server.pulled_ids("FRA")

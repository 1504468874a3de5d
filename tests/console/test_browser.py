"""The auditor console in a real browser: headless Chromium against a live Tearline.

Log in with a pasted token, search the audit log (filters and "More" paging), open an
object's dissemination timeline, verify the chain (valid, then broken after an edit); a
non-auditor and a bad token are refused in the page; a screenshot shows the key elements.
SQLite only (see conftest).
"""

from __future__ import annotations

import pytest
import requests
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as visible
from selenium.webdriver.support.ui import Select, WebDriverWait
from sqlalchemy import text

from app.db.engine import make_engine
from tests.conftest import TAXII
from tests.console.conftest import POLLS, WAIT_S, Seeded

pytestmark = pytest.mark.e2e
TOKEN_KEY = "tearline.console.token"


def _wait(browser):
    return WebDriverWait(browser, WAIT_S)


def _open(browser, server: Seeded) -> None:
    """A fresh console page in a fresh tab state (no token left from an earlier test)."""
    browser.get(f"{server.base_url}/console/")
    browser.execute_script("window.sessionStorage.clear();")
    browser.get(f"{server.base_url}/console/")
    _wait(browser).until(visible.visibility_of_element_located((By.ID, "login-form")))


def _log_in(browser, token: str, *, typed: bool = False) -> None:
    """Put the token in the form, typed key by key or pasted (a token is ~600 keystrokes), and submit."""
    field = browser.find_element(By.ID, "token")
    field.clear()
    if typed:
        field.send_keys(token)
    else:
        browser.execute_script(
            "arguments[0].value = arguments[1];arguments[0].dispatchEvent(new Event('input', {bubbles: true}));",
            field,
            token,
        )
    browser.find_element(By.ID, "login-button").click()


def _log_in_as_auditor(browser, server: Seeded, subject: str = "auditor-console", *, typed: bool = False) -> str:
    _open(browser, server)
    token = server.token(subject=subject, roles=("auditor",))
    _log_in(browser, token, typed=typed)
    _wait(browser).until(visible.visibility_of_element_located((By.ID, "workspace")))
    return token


def _search(browser, **fields) -> None:
    """Fill the filter form with ``fields`` (every other filter empty) and wait for the answer."""
    ids = {
        "subject": "f-subject",
        "nation": "f-nation",
        "route": "f-route",
        "collection_id": "f-collection",
        "object_id": "f-object",
    }
    Select(browser.find_element(By.ID, "f-decision")).select_by_value(fields.pop("decision", ""))
    for name, field_id in ids.items():
        field = browser.find_element(By.ID, field_id)
        field.clear()
        if fields.get(name):
            field.send_keys(fields[name])
    status = browser.find_element(By.ID, "search-status")
    browser.execute_script("arguments[0].textContent = '';", status)  # so the wait sees this search end
    browser.find_element(By.ID, "search-button").click()
    _wait(browser).until(lambda b: "shown" in status.text or "No record" in status.text or "failed" in status.text)


def _set_times(browser, since: str = "", until: str = "") -> None:
    """Set the datetime-local filters as a date picker would (their typed form depends on the locale)."""
    browser.execute_script(
        "document.getElementById('f-since').value = arguments[0];"
        "document.getElementById('f-until').value = arguments[1];",
        since,
        until,
    )


def _rows(browser) -> list[dict]:
    # One round trip for the whole table (a WebDriver call per cell is slow on a busy machine).
    cells = browser.execute_script(
        "return [...document.querySelectorAll('#records tbody tr')]"
        ".map(row => [...row.cells].map(cell => cell.innerText.trim()));"
    )
    names = ("seq", "at", "subject", "nation", "method", "route", "status", "decision", "reason", "served")
    return [dict(zip(names, row, strict=True)) for row in cells]


def _csp_violations(browser) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser") if "Content Security Policy" in entry["message"]]


def test_auditor_logs_in_searches_and_pages(browser, console_server: Seeded):
    token = _log_in_as_auditor(browser, console_server, typed=True)
    # The token is in this tab's sessionStorage only: not in a cookie, the URL or the form.
    assert browser.execute_script(f"return window.sessionStorage.getItem('{TOKEN_KEY}');") == token
    assert browser.execute_script("return document.cookie;") == ""
    assert token not in browser.current_url and browser.find_element(By.ID, "token").get_attribute("value") == ""
    assert "auditor-console (NLD)" in browser.find_element(By.ID, "whoami").text

    _search(browser, object_id=console_server.object_id)
    rows = _rows(browser)
    assert sorted(r["nation"] for r in rows) == ["GBR", "USA", "USA"]
    assert {r["decision"] for r in rows} == {"allow"} and all(r["served"] != "0" for r in rows)

    _search(browser, subject=console_server.subject("FRA"), decision="deny")
    refused = _rows(browser)
    assert [(r["status"], r["decision"]) for r in refused] == [("404", "deny")]
    assert refused[0]["reason"].startswith("hidden object requested")

    # Time range (datetime-local fields, read as UTC): nothing before 2000; a reversed range is refused.
    _set_times(browser, until="2000-01-01T00:00")
    _search(browser, subject=console_server.poller)
    assert _rows(browser) == [] and browser.find_element(By.ID, "search-status").text == "No record matches."
    _set_times(browser, since="2030-01-01T00:00:00", until="2020-01-01T00:00")
    _search(browser)
    status = browser.find_element(By.ID, "search-status")
    assert status.text == "Request failed (400): since must be before until."
    assert "error" in status.get_attribute("class").split()
    _set_times(browser, since="2000-01-01T00:00", until="2100-01-01T00:00")

    # Keyset paging, newest first by default: the poller's requests fill one page of 50, "More"
    # brings the rest, then hides.
    assert Select(browser.find_element(By.ID, "f-order")).first_selected_option.get_attribute("value") == "desc"
    _search(browser, subject=console_server.poller)
    more = browser.find_element(By.ID, "more")
    assert len(_rows(browser)) == 50 and more.is_displayed()
    more.click()
    _wait(browser).until(lambda b: len(_rows(b)) == POLLS)
    seqs = [int(r["seq"]) for r in _rows(browser)]
    assert seqs == sorted(set(seqs), reverse=True) and not more.is_displayed()
    assert {r["subject"] for r in _rows(browser)} == {console_server.poller}

    # Switching the order lists the same filter again at once, oldest first, paged the same way.
    status = browser.find_element(By.ID, "search-status")
    browser.execute_script("arguments[0].textContent = '';", status)
    Select(browser.find_element(By.ID, "f-order")).select_by_value("asc")
    _wait(browser).until(lambda b: "shown" in status.text)
    oldest = [int(r["seq"]) for r in _rows(browser)]
    assert oldest == sorted(seqs)[:50] and more.is_displayed()
    more.click()
    _wait(browser).until(lambda b: len(_rows(b)) == POLLS)
    assert [int(r["seq"]) for r in _rows(browser)] == sorted(seqs)

    # The page's own API calls are audited under the auditor's name; the page and its assets are not.
    calls = console_server.audit_rows("subject = :s AND route LIKE '/api/v1/audit/records%'", s="auditor-console")
    assert len(calls) >= 6 and sorted({c["status"] for c in calls}) == [200, 400]
    assert [c["route"] for c in calls if c["status"] == 400] == [
        "/api/v1/audit/records?since=2030-01-01T00%3A00%3A00Z&until=2020-01-01T00%3A00%3A00Z&order=desc&limit=50"
    ]
    assert console_server.audit_rows("route LIKE '/console%'") == []
    assert _csp_violations(browser) == []


def test_record_detail_leads_to_the_dissemination_timeline(browser, console_server: Seeded):
    _log_in_as_auditor(browser, console_server)
    _search(browser, object_id=console_server.object_id, nation="GBR")
    (row,) = browser.find_elements(By.CSS_SELECTOR, "#records tbody tr")
    row.find_element(By.CSS_SELECTOR, "button.link").click()
    detail = _wait(browser).until(visible.visibility_of_element_located((By.ID, "record-detail")))
    assert console_server.object_id in detail.text and "2025-03-01T10:00:00.000000Z" in detail.text
    detail.find_element(By.XPATH, f".//button[text()='{console_server.object_id}']").click()

    result = _wait(browser).until(visible.visibility_of_element_located((By.ID, "dissemination-result")))
    assert result.find_element(By.ID, "nations").text == "Received by 2 nation(s): GBR, USA"
    lanes = browser.find_elements(By.CSS_SELECTOR, "#timeline svg g.lane")
    assert sorted((g.get_attribute("data-nation"), g.get_attribute("data-version")) for g in lanes) == [
        ("GBR", "2025-03-01T10:00:00.000000Z"),
        ("USA", "2025-03-01T10:00:00.000000Z"),
        ("USA", "2025-03-02T10:00:00.000000Z"),
    ]
    table = browser.execute_script(
        "return [...document.querySelectorAll('#recipients tbody tr')]"
        ".map(row => [...row.cells].map(cell => cell.innerText));"
    )
    times = {(nation, version): count for version, nation, _, _, count in table}
    assert times == {
        ("GBR", "2025-03-01T10:00:00.000000Z"): "1",
        ("USA", "2025-03-01T10:00:00.000000Z"): "2",
        ("USA", "2025-03-02T10:00:00.000000Z"): "2",
    }
    assert "FRA" not in result.text  # refused, so never a recipient

    field = browser.find_element(By.ID, "d-object")
    field.clear()
    field.send_keys("indicator--00000000-0000-4000-8000-000000000000")
    browser.find_element(By.ID, "dissemination-button").click()
    status = browser.find_element(By.ID, "dissemination-status")
    _wait(browser).until(lambda b: "No nation has received" in status.text)
    assert not result.is_displayed()


def test_long_routes_are_shortened_and_shown_whole_on_demand(browser, console_server: Seeded):
    # A paging cursor makes a route hundreds of characters long; this one is refused (bad cursor).
    cursor = "eyJ" + "x" * 400
    subject = f"cursor-{console_server.tag}"
    headers = {
        "Authorization": f"Bearer {console_server.token(subject=subject, nation='USA', roles=('partner',))}",
        "Accept": TAXII,
    }
    url = f"{console_server.base_url}/taxii2/api1/collections/{console_server.collection_id}/objects/"
    assert requests.get(url, params={"next": cursor}, headers=headers, timeout=30).status_code == 400
    (recorded,) = console_server.audit_rows("subject = :s", s=subject)
    full = recorded["route"]
    assert cursor in full

    _log_in_as_auditor(browser, console_server)
    _search(browser, subject=subject)
    (cell,) = browser.find_elements(By.CSS_SELECTOR, "#records tbody td.route")
    toggle = cell.find_element(By.CSS_SELECTOR, "button.route-toggle")
    short = toggle.text
    assert len(short) <= 72 and "next=eyJ" + "x" * 9 + "…" in short and short.startswith("/taxii2/api1/collections/")
    assert toggle.get_attribute("title") == full and toggle.get_attribute("aria-expanded") == "false"
    toggle.click()
    assert toggle.text == full and toggle.get_attribute("aria-expanded") == "true"
    toggle.click()
    assert toggle.text == short
    # Short routes stay as they are, with nothing to click.
    _search(browser, subject=console_server.poller)
    assert browser.find_elements(By.CSS_SELECTOR, "#records tbody td.route button") == []
    assert {r["route"] for r in _rows(browser)} == {"/taxii2/"}


def test_verify_shows_a_valid_chain(browser, console_server: Seeded):
    _log_in_as_auditor(browser, console_server)
    browser.find_element(By.ID, "verify-button").click()
    result = _wait(browser).until(visible.visibility_of_element_located((By.ID, "verify-result")))
    assert result.get_attribute("data-ok") == "true" and "valid" in result.get_attribute("class").split()
    assert result.text.startswith("Chain valid:")
    head = console_server.audit_rows("1 = 1")[-1]["seq"]
    checked = int(result.text.split(": ")[1].split(" ")[0])
    assert head - 1 <= checked <= head  # the verify call itself may be recorded after its check ran


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("partner", "Access refused (403): this token does not carry the auditor role"),
        ("analyst", "Access refused (403): this token does not carry the auditor role"),
        ("garbage", "Token refused (401)"),
    ],
)
def test_a_token_without_the_auditor_right_is_refused_in_the_page(browser, console_server: Seeded, who, expected):
    _open(browser, console_server)
    token = {
        "partner": console_server.token(subject="usa-console", nation="USA", roles=("partner",)),
        "analyst": console_server.token(),
        "garbage": "not-a-token",
    }[who]
    _log_in(browser, token)
    message = browser.find_element(By.ID, "login-message")
    _wait(browser).until(lambda b: message.text)
    assert message.text.startswith(expected)
    assert "error" in message.get_attribute("class").split()
    assert not browser.find_element(By.ID, "workspace").is_displayed()
    assert browser.execute_script(f"return window.sessionStorage.getItem('{TOKEN_KEY}');") is None


def test_token_survives_a_reload_and_logout_forgets_it(browser, console_server: Seeded):
    _log_in_as_auditor(browser, console_server)
    browser.refresh()
    _wait(browser).until(visible.visibility_of_element_located((By.ID, "workspace")))
    browser.find_element(By.ID, "logout").click()
    _wait(browser).until(visible.visibility_of_element_located((By.ID, "login-form")))
    assert browser.execute_script(f"return window.sessionStorage.getItem('{TOKEN_KEY}');") is None
    assert not browser.find_element(By.ID, "workspace").is_displayed()


def _pixel(image: Image.Image, x: float, y: float) -> tuple[int, int, int]:
    return image.getpixel((int(x), int(y)))[:3]


def test_screenshot_shows_the_key_elements(browser, console_server: Seeded, tmp_path):
    _log_in_as_auditor(browser, console_server)
    browser.set_window_size(1280, 1400)
    _search(browser, object_id=console_server.object_id)
    field = browser.find_element(By.ID, "d-object")
    field.send_keys(console_server.object_id)
    browser.find_element(By.ID, "dissemination-button").click()
    _wait(browser).until(visible.visibility_of_element_located((By.ID, "dissemination-result")))
    browser.find_element(By.ID, "verify-button").click()
    verdict = _wait(browser).until(visible.visibility_of_element_located((By.ID, "verify-result")))
    browser.execute_script("window.scrollTo(0, 0);")

    path = tmp_path / "console.png"
    assert browser.save_screenshot(str(path))
    image = Image.open(path).convert("RGB")
    width, height = browser.execute_script("return [window.innerWidth, window.innerHeight];")
    assert image.size == (width, height) and width >= 1200

    # Each key element is displayed and lies wholly inside the screenshot.
    key = {
        "header": "header.bar",
        "records": "#records",
        "timeline": "#timeline svg",
        "recipients": "#recipients",
        "verdict": "#verify-result",
    }
    boxes = {}
    for name, selector in key.items():
        element = browser.find_element(By.CSS_SELECTOR, selector)
        box = element.rect
        assert element.is_displayed(), name
        assert box["width"] > 0 and box["height"] > 0 and box["y"] + box["height"] <= height, (name, box)
        boxes[name] = box
    assert len(browser.find_elements(By.CSS_SELECTOR, "#records tbody tr")) == 3
    assert len(browser.find_elements(By.CSS_SELECTOR, "#timeline svg g.lane")) == 3
    assert verdict.text.startswith("Chain valid")

    # And the pixels agree: the dark header bar, the green "valid" box, a coloured timeline bar.
    assert _pixel(image, boxes["header"]["x"] + 4, boxes["header"]["y"] + 4) == (0x1D, 0x24, 0x30)
    assert _pixel(image, boxes["verdict"]["x"] + 4, boxes["verdict"]["y"] + 4) == (0xE3, 0xF4, 0xE8)
    bar = browser.find_element(By.CSS_SELECTOR, "#timeline svg g.lane circle")
    centre = bar.rect
    assert _pixel(image, centre["x"] + centre["width"] / 2, centre["y"] + centre["height"] / 2) in {
        (0x1F, 0x5F, 0xA8),
        (0xC0, 0x5A, 0x00),
    }
    assert _csp_violations(browser) == []


def test_verify_shows_where_a_tampered_chain_breaks(browser, console_server: Seeded):
    """Last in the module: it edits a record behind Tearline's back (the server's database file)."""
    (victim,) = console_server.audit_rows("subject = :s AND decision = 'deny'", s=console_server.subject("FRA"))
    engine = make_engine(console_server.database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE audit_record SET reason = 'nothing to see' WHERE seq = :s"), {"s": victim["seq"]}
            )
    finally:
        engine.dispose()
    _log_in_as_auditor(browser, console_server)
    browser.find_element(By.ID, "verify-button").click()
    result = _wait(browser).until(visible.visibility_of_element_located((By.ID, "verify-result")))
    assert result.get_attribute("data-ok") == "false" and "broken" in result.get_attribute("class").split()
    assert result.text == f"Chain BROKEN at seq {victim['seq']}: content does not match its hash (edited)"

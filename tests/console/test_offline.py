"""Every page Tearline serves works on a network without internet: `/docs` and `/console/` in
headless Chromium with every host but 127.0.0.1 unreachable.

Chromium resolves no name but 127.0.0.1 and sends everything else to a proxy that does not exist,
so a page that needed a CDN would fail to load something. The DevTools network log of each page
must show only requests to the instance, each answered below 400, none failed; the browser log
must show no Content-Security-Policy violation; and Swagger UI must have drawn the API. A control
checks that the blocking and the detection work: a CDN URL fails and is reported.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as visible
from selenium.webdriver.support.ui import WebDriverWait
from sqlmodel import Session

from app.auth.tokens import issue_token
from app.config.settings import Settings
from app.db import migrations
from app.db.engine import make_engine
from app.partners.service import save_partner
from tests.conftest import HOME
from tests.console.conftest import CHROMEDRIVER, CHROMIUM, WAIT_S, _require_chromium
from tests.e2e.conftest import serving

pytestmark = pytest.mark.e2e
CDN = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css"
SETTLE_S = 5  # how long to wait for requests still in flight before judging them


@pytest.fixture(scope="module")
def offline_server(key_dir: Path, tmp_path_factory) -> Iterator[tuple[str, str]]:
    """A live server on a database of its own; yields its base URL and an auditor token."""
    directory = tmp_path_factory.mktemp("offline")
    database_url = f"sqlite:///{directory / 'tearline.sqlite'}"
    migrations.upgrade(database_url)
    settings = Settings(
        database_url=database_url,
        home_nation=HOME,
        data_dir=directory / "data",
        jwt_public_key_file=key_dir / "jwt-public.pem",
        secret_key="offline-cursor-secret",
        feed_scheduler=False,
        log_level="WARNING",
    )
    engine = make_engine(database_url)
    with Session(engine) as session:
        save_partner(session, nation="USA", clearance=3, groups=["FVEY"], home_nation=HOME)
    engine.dispose()
    token = issue_token(
        key=(key_dir / "jwt-private.pem").read_text(),
        algorithm="RS256",
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        subject="offline-auditor",
        nation=HOME,
        roles=["auditor"],
        lifetime_s=900,
    )
    with serving(settings, directory / "server.log") as base_url:
        yield base_url, token


@pytest.fixture(scope="module")
def offline_browser(tmp_path_factory) -> Iterator:
    """Headless Chromium that reaches 127.0.0.1 only, with the DevTools network log on."""
    _require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        # No name resolves but 127.0.0.1, and whatever is not 127.0.0.1 goes to a closed port.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--proxy-server=http://127.0.0.1:9",
        "--proxy-bypass-list=127.0.0.1",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-offline')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    log_path = tmp_path_factory.mktemp("chromedriver-offline") / "chromedriver.log"
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER), log_output=str(log_path)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


class Network:
    """The DevTools network events of one page visit: requests, answers, failures."""

    def __init__(self) -> None:
        self.urls: dict[str, str] = {}
        self.status: dict[str, int] = {}
        self.failed: dict[str, str] = {}
        self.finished: set[str] = set()

    def read(self, driver) -> None:
        """Take the events the browser logged since the last read."""
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            method, params = message["method"], message.get("params", {})
            if method == "Network.requestWillBeSent":
                self.urls[params["requestId"]] = params["request"]["url"]
            elif method == "Network.responseReceived":
                self.status[params["requestId"]] = params["response"]["status"]
            elif method == "Network.loadingFailed":
                self.failed[params["requestId"]] = params["errorText"]
            elif method == "Network.loadingFinished":
                self.finished.add(params["requestId"])

    def web(self) -> dict[str, str]:
        """Requests that go over the network (not data:, blob: or the browser's own chrome: pages)."""
        return {rid: url for rid, url in self.urls.items() if url.startswith(("http:", "https:", "ws:", "wss:"))}

    def settle(self, driver) -> None:
        """Read events until every web request has finished or failed, or SETTLE_S pass."""
        deadline = time.monotonic() + SETTLE_S
        while True:
            self.read(driver)
            pending = set(self.web()) - self.finished - set(self.failed)
            if not pending or time.monotonic() > deadline:
                return
            time.sleep(0.1)

    def problems(self, base_url: str) -> list[str]:
        """Every request that left the instance, failed, or was answered with an error status."""
        found = []
        for rid, url in self.web().items():
            if not url.startswith(base_url + "/"):
                found.append(f"request outside the instance: {url}")
            if rid in self.failed:
                found.append(f"failed: {url} ({self.failed[rid]})")
            elif self.status.get(rid, 0) >= 400:
                found.append(f"answered {self.status[rid]}: {url}")
        return found

    def paths(self, base_url: str) -> set[str]:
        """The paths requested from the instance, without query strings."""
        return {url[len(base_url) :].split("?")[0] for url in self.web().values() if url.startswith(base_url)}


def _visit(driver, url: str) -> Network:
    driver.get_log("performance")  # drop what earlier pages and the browser's start-up logged
    driver.get_log("browser")
    network = Network()
    driver.get(url)
    return network


def _csp_violations(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]


def test_api_docs_render_from_the_instance_alone(offline_browser, offline_server):
    base_url, _ = offline_server
    network = _visit(offline_browser, f"{base_url}/docs")
    wait = WebDriverWait(offline_browser, WAIT_S)
    title = wait.until(visible.visibility_of_element_located((By.CSS_SELECTOR, ".swagger-ui .info .title")))
    assert title.text.startswith("Tearline")
    # Swagger UI drew an operation block per route: the TAXII, items and audit routes among them.
    operations = offline_browser.find_elements(By.CSS_SELECTOR, ".swagger-ui .opblock .opblock-summary-path")
    paths = {element.get_attribute("data-path") for element in operations}
    assert {"/taxii2/", "/api/v1/items", "/api/v1/audit/records"} <= paths
    network.settle(offline_browser)
    assert network.problems(base_url) == []
    assert {"/docs", "/docs/init.js", "/docs/assets/swagger-ui-bundle.js", "/openapi.json"} <= network.paths(base_url)
    assert _csp_violations(offline_browser) == []


def test_console_logs_in_and_searches_from_the_instance_alone(offline_browser, offline_server):
    base_url, token = offline_server
    network = _visit(offline_browser, f"{base_url}/console/")
    wait = WebDriverWait(offline_browser, WAIT_S)
    field = wait.until(visible.visibility_of_element_located((By.ID, "token")))
    offline_browser.execute_script(
        "arguments[0].value = arguments[1];arguments[0].dispatchEvent(new Event('input', {bubbles: true}));",
        field,
        token,
    )
    offline_browser.find_element(By.ID, "login-button").click()
    wait.until(visible.visibility_of_element_located((By.ID, "workspace")))
    status = offline_browser.find_element(By.ID, "search-status")
    wait.until(lambda _: "shown" in status.text or "No record" in status.text)
    network.settle(offline_browser)
    assert network.problems(base_url) == []
    assert {"/console/", "/console/console.js", "/console/console.css", "/api/v1/audit/records"} <= network.paths(
        base_url
    )
    assert _csp_violations(offline_browser) == []


def test_a_request_to_the_internet_fails_and_is_reported(offline_browser, offline_server):
    """The control: without it, a browser that happened to be online would pass the tests above."""
    base_url, _ = offline_server
    network = _visit(offline_browser, f"{base_url}/docs")
    with pytest.raises(WebDriverException, match="ERR_"):
        offline_browser.get(CDN)
    network.settle(offline_browser)
    problems = network.problems(base_url)
    assert f"request outside the instance: {CDN}" in problems
    assert any(problem.startswith(f"failed: {CDN}") for problem in problems)

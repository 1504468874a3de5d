"""Browser fixtures for the auditor console: one live Tearline on SQLite and one headless Chromium.

The browser tests run once (SQLite only): what they test is the page and its use of the
auditor API, which the API tests already cover on both databases. The server has a
database of its own, seeded over HTTP: an analyst posts an object in two versions, partner
nations pull it (GBR once before the second version withdraws it from GBR, USA twice after, FRA is refused), and a poller makes enough requests
to need a second page of records.

The disclosure officers' panel runs against ``review_server`` instead: a live server on the
session's database (so on SQLite and on PostgreSQL) whose release rules hold items for an officer.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from sqlalchemy import text
from sqlmodel import Session

from app.auth.tokens import issue_token
from app.config.settings import Settings
from app.db import migrations
from app.db.engine import make_engine
from app.partners.service import save_partner
from app.taxii import service as taxii_service
from tests.audit.conftest import labelled_indicator
from tests.conftest import HOME, PARTNERS, TAXII
from tests.disclosure.conftest import RULES
from tests.e2e.conftest import serving
from tests.taxii.helpers import indicator
from tests.taxii.test_releasability import banner, marked

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
POLLS = 55  # more than one console page (50 records) of one poller's requests
WAIT_S = 15  # guard for each wait on the page; never an assertion about speed


@dataclass(frozen=True)
class Seeded:
    """What the live server's audit log holds, for the tests to look for."""

    base_url: str
    database_url: str
    object_id: str
    collection_id: str
    tag: str
    token: Callable[..., str]

    def subject(self, nation: str) -> str:
        return f"{nation.lower()}-{self.tag}"

    @property
    def poller(self) -> str:
        return f"poller-{self.tag}"

    def audit_rows(self, where: str, **params) -> list[dict]:
        """Audit records of the server's database matching an SQL condition."""
        engine = make_engine(self.database_url)
        try:
            with engine.connect() as connection:
                return [
                    dict(r._mapping)
                    for r in connection.execute(
                        text(f"SELECT seq, subject, route, status FROM audit_record WHERE {where} ORDER BY seq"), params
                    )
                ]
        finally:
            engine.dispose()


def _seed(base_url: str, api: str, collection_id: str, token: Callable[..., str], tag: str) -> str:
    object_id = f"indicator--{uuid.uuid4()}"
    first = labelled_indicator("UNCLASSIFIED//REL TO FVEY", object_id=object_id)
    second = labelled_indicator("UNCLASSIFIED//REL TO USA", object_id=object_id, modified="2025-03-02T10:00:00.000Z")
    with requests.Session() as http:

        def post(objects: list[dict]) -> None:
            posted = http.post(
                f"{base_url}{api}/collections/{collection_id}/objects/",
                json={"objects": objects},
                headers={"Authorization": f"Bearer {token()}", "Content-Type": TAXII, "Accept": TAXII},
                timeout=30,
            )
            assert posted.status_code == 202 and posted.json()["failure_count"] == 0, posted.text

        def pull(nation: str, status: int) -> None:
            headers = {
                "Authorization": f"Bearer {token(subject=f'{nation.lower()}-{tag}', nation=nation, roles=('partner',))}",
                "Accept": TAXII,
            }
            assert http.get(versions, headers=headers, timeout=30).status_code == status

        versions = f"{base_url}{api}/collections/{collection_id}/objects/{object_id}/versions/"
        # GBR pulls the first version before the second (USA only) withdraws it from GBR.
        post(first)
        pull("GBR", 200)
        post(second)
        for nation, status in (("USA", 200), ("USA", 200), ("FRA", 404)):
            pull(nation, status)
        poller = {
            "Authorization": f"Bearer {token(subject=f'poller-{tag}', nation='CAN', roles=('partner',))}",
            "Accept": TAXII,
        }
        for _ in range(POLLS):
            assert http.get(f"{base_url}/taxii2/", headers=poller, timeout=30).status_code == 200
    return object_id


@pytest.fixture(scope="module")
def console_server(key_dir: Path, tmp_path_factory) -> Iterator[Seeded]:
    """A seeded live server (uvicorn on a free port of 127.0.0.1) on a SQLite database of its own."""
    directory = tmp_path_factory.mktemp("console")
    database_url = f"sqlite:///{directory / 'tearline.sqlite'}"
    migrations.upgrade(database_url)
    settings = Settings(
        database_url=database_url,
        home_nation=HOME,
        data_dir=directory / "data",
        jwt_public_key_file=key_dir / "jwt-public.pem",
        jwt_private_key_file=key_dir / "jwt-private.pem",
        secret_key="console-cursor-secret",
        feed_scheduler=False,
        log_level="WARNING",
    )
    engine = make_engine(database_url)
    with Session(engine) as session:
        for nation, clearance, groups in PARTNERS:
            save_partner(session, nation=nation, clearance=clearance, groups=groups, home_nation=HOME)
        collection_id = taxii_service.create_collection(
            session, title="console", read_roles={"partner", "analyst"}, write_roles={"analyst"}
        ).id
    engine.dispose()
    private_key = (key_dir / "jwt-private.pem").read_text()

    def token(subject: str = "analyst-1", nation: str = HOME, roles: tuple[str, ...] = ("analyst",)) -> str:
        return issue_token(
            key=private_key,
            algorithm="RS256",
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            subject=subject,
            nation=nation,
            roles=list(roles),
            lifetime_s=900,
        )

    with serving(settings, directory / "server.log") as base_url:
        tag = uuid.uuid4().hex[:8]
        object_id = _seed(base_url, f"/taxii2/{settings.api_root}", collection_id, token, tag)
        yield Seeded(base_url, database_url, object_id, collection_id, tag, token)


# The disclosure tests' rules: TLP:CLEAR/GREEN released as marked, every other item of the home
# nation held for an officer, two officers from SECRET.
REVIEW_RULES = RULES


@dataclass(frozen=True)
class ReviewServer:
    """A live server whose release rules hold items for a disclosure officer, with a fresh collection."""

    base_url: str
    api_root: str
    collection_id: str
    tag: str
    token: Callable[..., str]

    @property
    def objects_url(self) -> str:
        return f"{self.base_url}/taxii2/{self.api_root}/collections/{self.collection_id}/objects/"

    def headers(self, subject: str, roles: tuple[str, ...], nation: str = HOME) -> dict:
        return {"Authorization": f"Bearer {self.token(subject=subject, nation=nation, roles=roles)}", "Accept": TAXII}

    def post(self, analyst: str, text: str, **properties) -> dict:
        """Post, as ``analyst``, one indicator marked with the banner ``text``; returns it."""
        definition = banner(text)
        item = marked(indicator(**properties), definition)
        answer = requests.post(
            self.objects_url,
            json={"objects": [definition, item]},
            headers=self.headers(analyst, ("analyst",)) | {"Content-Type": TAXII},
            timeout=30,
        )
        assert answer.status_code == 202 and answer.json()["failure_count"] == 0, answer.text
        return item

    def pulled_ids(self, nation: str) -> set[str]:
        """Ids a partner of ``nation`` pulls from the collection (every version)."""
        headers = self.headers(f"{nation.lower()}-{self.tag}", ("partner",), nation)
        answer = requests.get(self.objects_url, params={"match[version]": "all"}, headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text
        return {o["id"] for o in answer.json().get("objects", [])}


@pytest.fixture(scope="module")
def review_server(app, settings: Settings, make_token, tmp_path_factory) -> Iterator[ReviewServer]:
    """``tearline serve`` on the session's database (SQLite, then PostgreSQL: ``database_url``) with
    :data:`REVIEW_RULES` as its release rules; ``app`` first, it registers the partners."""
    directory = tmp_path_factory.mktemp("review-console")
    policies = directory / "policies"
    policies.mkdir()
    for name in ("model.conf", "policy.csv"):
        shutil.copy(settings.policies_dir / name, policies / name)
    (policies / "disclosure.toml").write_text(REVIEW_RULES)
    tag = uuid.uuid4().hex[:8]
    with Session(app.state.engine) as session:
        collection_id = taxii_service.create_collection(
            session, title=f"console review {tag}", read_roles={"partner", "analyst"}, write_roles={"analyst"}
        ).id
    served = settings.model_copy(update={"policies_dir": policies, "log_level": "WARNING"})
    with serving(served, directory / "server.log") as base_url:
        yield ReviewServer(base_url, settings.api_root, collection_id, tag, make_token)


def _require_chromium() -> None:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if not missing:
        return
    message = (
        f"headless Chromium is not installed ({', '.join(missing)} missing): "
        "apt-get install -y chromium chromium-driver"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: the console browser tests are required; .ci/run installs it)")
    pytest.skip(f"{message}; the console browser tests are skipped outside CI")


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator:
    """Headless Debian Chromium driven by Selenium, offline: no Selenium Manager, no Google services."""
    _require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        "--force-device-scale-factor=1",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    log_path = tmp_path_factory.mktemp("chromedriver") / "chromedriver.log"
    # An explicit driver path: Selenium Manager (which would try to download one) never runs.
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER), log_output=str(log_path)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(log_path.parent, ignore_errors=True)

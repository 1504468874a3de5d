"""Shared fixtures: every database-backed test runs once on SQLite and once on PostgreSQL.

Each run gets a fresh database created by the Alembic migrations (never by
``create_all``). PostgreSQL is 127.0.0.1:5432 (override with
``TEARLINE_TEST_PG_ADMIN_URL``); under ``CI=true`` an unreachable server fails
the run, elsewhere its half of the suite is skipped with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection
from sqlmodel import Session

from app.auth.keys import generate_key_pair
from app.auth.tokens import issue_token
from app.config.settings import Settings
from app.db import migrations
from app.main import create_app
from app.partners.service import save_partner
from app.taxii import service as taxii_service
from app.taxii.models import Collection

PG_ADMIN_URL = os.environ.get("TEARLINE_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
HOME = "NLD"
TAXII = "application/taxii+json;version=2.1"
# Partner nations present in every test database: (nation, clearance rank, groups).
PARTNERS = [
    ("USA", 3, ["FVEY", "NATO"]),
    ("GBR", 3, ["FVEY", "NATO"]),
    ("FRA", 2, ["NATO", "EU"]),
    ("DEU", 2, ["NATO", "EU"]),
    ("CAN", 1, ["FVEY", "NATO"]),
]


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database (its psycopg URL), dropped on exit.

    Skips the test when the server is unreachable, or fails it under ``CI=true``.
    """
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL unreachable at {PG_ADMIN_URL}: {exc}".strip()
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true: the PostgreSQL half of the suite is required)")
        pytest.skip(f"{message}; the PostgreSQL half of the suite is skipped outside CI")
    name = f"tearline_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
            yield f"{base}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def migrated_database(kind: str, tmp_path_factory, name: str = "sqlite") -> Iterator[str]:
    """A new database of ``kind`` ("sqlite" or "postgresql"), migrated to head; PostgreSQL's is dropped on exit."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp(name) / 'tearline.sqlite'}"
        migrations.upgrade(url)
        yield url
        return
    with postgres_database() as url:
        migrations.upgrade(url)
        yield url


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request, tmp_path_factory) -> Iterator[str]:
    """A freshly migrated database of each kind."""
    with migrated_database(request.param, tmp_path_factory) as url:
        yield url


@pytest.fixture(scope="session")
def key_dir(tmp_path_factory) -> Path:
    """An RSA key pair for signing test tokens."""
    directory = tmp_path_factory.mktemp("keys")
    generate_key_pair(directory / "jwt-private.pem", directory / "jwt-public.pem")
    return directory


@pytest.fixture(scope="session")
def settings(database_url: str, key_dir: Path, tmp_path_factory) -> Settings:
    return Settings(
        database_url=database_url,
        home_nation=HOME,
        data_dir=tmp_path_factory.mktemp("data"),
        jwt_public_key_file=key_dir / "jwt-public.pem",
        jwt_private_key_file=key_dir / "jwt-private.pem",
        secret_key="test-cursor-secret",
        max_content_length=256 * 1024,
        default_page_size=50,
        max_page_size=200,
        feed_scheduler=False,  # feed tests run feeds themselves
        metrics_public=True,  # the operator's opt-out; tests/observability checks the closed default
    )


@pytest.fixture(scope="session")
def app(settings: Settings):
    application = create_app(settings)
    with Session(application.state.engine) as session:
        for nation, clearance, groups in PARTNERS:
            save_partner(session, nation=nation, clearance=clearance, groups=groups, home_nation=HOME)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def session(app) -> Iterator[Session]:
    with Session(app.state.engine) as db_session:
        yield db_session


@pytest.fixture(scope="session")
def make_token(key_dir: Path, settings: Settings) -> Callable[..., str]:
    """Sign a token; keyword arguments override the defaults (an analyst of the home nation)."""
    private_key = (key_dir / "jwt-private.pem").read_text()

    def _make(
        subject: str = "analyst-1",
        nation: str = HOME,
        roles: tuple[str, ...] = ("analyst",),
        clearance: str | None = None,
        lifetime_s: int = 600,
    ) -> str:
        return issue_token(
            key=private_key,
            algorithm="RS256",
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            subject=subject,
            nation=nation,
            roles=list(roles),
            lifetime_s=lifetime_s,
            clearance=clearance,
        )

    return _make


@pytest.fixture(scope="session")
def auth(make_token) -> Callable[..., dict]:
    """Request headers for a principal: ``auth()`` is an analyst, ``auth(nation="USA", roles=("partner",))`` a partner."""

    def _headers(**claims) -> dict:
        return {"Authorization": f"Bearer {make_token(**claims)}", "Accept": TAXII}

    return _headers


def memoised(auth: Callable[..., dict]) -> Callable[..., dict]:
    """``auth`` with headers memoised per set of claims (an hour's lifetime unless asked otherwise):
    RS256 signing costs tens of milliseconds, and some suites ask for hundreds of headers."""
    cache: dict[tuple, dict] = {}

    def _headers(**claims) -> dict:
        claims.setdefault("lifetime_s", 3600)
        key = tuple(sorted(claims.items()))
        if key not in cache:
            cache[key] = auth(**claims)
        return dict(cache[key])

    return _headers


@pytest.fixture
def analyst(auth) -> dict:
    return auth()


@pytest.fixture
def partner_usa(auth) -> dict:
    return auth(subject="usa-feed", nation="USA", roles=("partner",))


@pytest.fixture
def collection(session: Session) -> Collection:
    """A fresh collection per test: partners and analysts read, analysts write."""
    return taxii_service.create_collection(
        session, title=f"test {uuid.uuid4().hex[:8]}", read_roles={"partner", "analyst"}, write_roles={"analyst"}
    )


@pytest.fixture
def cli_env(settings: Settings, tmp_path, monkeypatch) -> dict[str, str]:
    """The environment of a `tearline` command run on the session database, as an operator would, with
    no TEARLINE_* variable of the test run leaking in."""
    for name in list(os.environ):
        if name.startswith("TEARLINE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return {"TEARLINE_DATABASE_URL": settings.database_url, "TEARLINE_DATA_DIR": str(tmp_path / "data")}


@pytest.fixture
def connection(app) -> Iterator[Connection]:
    """A connection of the shared database in a transaction that is rolled back afterwards."""
    with app.state.engine.connect() as conn:
        transaction = conn.begin()
        try:
            yield conn
        finally:
            transaction.rollback()


@pytest.fixture
def api(settings: Settings) -> str:
    """URL path of the API root."""
    return f"/taxii2/{settings.api_root}"


# Modules that take a minute or more start first. Under `--dist loadscope` a module runs whole on
# one worker; one of these collected last kept that worker busy for minutes after the other had
# finished everything else (the suite took 12.6 minutes on 2 cores, about 3 of them on one worker).
SLOW_MODULES = (
    "tests/policy/test_leak_property.py",
    "tests/hardening/test_load.py",
    "tests/policy/test_reference_leak.py",
    "tests/bench/test_bench_smoke.py",
    "tests/demo/test_first_hour.py",
    "tests/hardening/test_api_schema.py",
    "tests/hardening/test_taxii_fuzz.py",
    "tests/feeds/test_opentaxii.py",  # builds OpenTAXII's venv on a fresh machine (about 12 s), then a gunicorn
    "tests/console/test_disclosure_view.py",
    "tests/e2e/test_misp_import.py",
    "tests/bench/test_load_smoke.py",  # tearline serve processes on a store, about 25 s
    "tests/bench/test_live_smoke.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the slowest modules first (a stable sort: the rest keep their order)."""
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in SLOW_MODULES)

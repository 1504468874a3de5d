"""Fixtures of the disclosure tests: an app whose release rules hold items in every collection.

The rules are a copy of ``policies/`` with its own ``disclosure.toml`` (TLP:CLEAR/GREEN released as
marked, everything else held, two officers from SECRET), served by a second app on the session's
database, so the rest of the suite keeps the shipped rules.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.config.settings import Settings
from app.main import create_app
from app.taxii import service as taxii_service
from app.taxii.models import Collection
from tests.conftest import memoised

RULES = """
two_person_from = "SECRET"

[[rule]]
collections = ["*"]
tlp = ["clear", "white", "green"]
review = false

[[rule]]
collections = ["*"]
review = true
"""


@pytest.fixture(scope="session")
def review_policies(settings: Settings, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("policies")
    for name in ("model.conf", "policy.csv"):
        shutil.copy(settings.policies_dir / name, directory / name)
    (directory / "disclosure.toml").write_text(RULES)
    return directory


@pytest.fixture(scope="session")
def review_app(settings: Settings, review_policies: Path, app):
    """The app with the review rules (``app`` first: it registers the partners)."""
    application = create_app(settings.model_copy(update={"policies_dir": review_policies}))
    yield application
    application.state.engine.dispose()


@pytest.fixture
def client(review_app) -> Iterator[TestClient]:
    with TestClient(review_app) as test_client:
        yield test_client


@pytest.fixture
def session(review_app) -> Iterator[Session]:
    with Session(review_app.state.engine) as db_session:
        yield db_session


@pytest.fixture
def collection(session: Session) -> Collection:
    return taxii_service.create_collection(
        session, title=f"review {uuid.uuid4().hex[:8]}", read_roles={"partner", "analyst"}, write_roles={"analyst"}
    )


@pytest.fixture(scope="session")
def who(auth) -> Callable[..., dict]:
    """Headers by role: ``who("analyst")``, ``who("officer", "o-2")``, ``who("partner", nation="USA")``."""
    headers = memoised(auth)

    def _who(role: str, subject: str | None = None, nation: str = "NLD", **claims) -> dict:
        roles = tuple(role.split("+"))
        return headers(subject=subject or f"{role}-1", nation=nation, roles=roles, **claims)

    return _who


@pytest.fixture
def analyst(who) -> dict:
    return who("analyst")


@pytest.fixture
def officer(who) -> dict:
    return who("officer", "officer-a")


@pytest.fixture
def usa(who) -> dict:
    return who("partner", "usa-1", nation="USA")


@pytest.fixture
def gbr(who) -> dict:
    return who("partner", "gbr-1", nation="GBR")


@pytest.fixture
def shared(session: Session) -> Collection:
    """A collection partners may also write to (partners' own posts)."""
    return taxii_service.create_collection(
        session,
        title=f"shared {uuid.uuid4().hex[:8]}",
        read_roles={"partner", "analyst"},
        write_roles={"partner", "analyst"},
    )

"""Helpers of the push-on-post and live-pull tests: a database of their own, apps with the feed
workers running, posting, and what a partner may see.

The workers sweep every feed and outbox row of their database, so these tests run on a database
of their own (per module and backend), not the session's, where other tests leave feeds behind.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session

from app.auth.principal import Principal
from app.config.settings import Settings
from app.db.engine import make_engine
from app.feeds import service
from app.feeds.service import FeedSpec, partner_principal
from app.items.models import StoredChange
from app.items.store import VersionFilter
from app.main import create_app
from app.partners.models import Partner
from app.partners.service import save_partner
from app.taxii import service as taxii_service
from app.taxii.service import readable_collections, versions_page
from tests.conftest import HOME, PARTNERS, migrated_database
from tests.feeds.conftest import TLP_GREEN, indicator, statement

ANALYST = Principal("analyst-1", HOME, frozenset({"analyst"}), 4, frozenset(), is_home=True)


@contextmanager
def own_database(settings: Settings, tmp_path_factory, name: str, **overrides: Any) -> Iterator[Settings]:
    """A new database of the same kind as the session's, with the usual partners; its settings."""
    kind = "sqlite" if settings.database_url.startswith("sqlite") else "postgresql"
    with migrated_database(kind, tmp_path_factory, name) as url:
        engine = make_engine(url)
        try:
            with Session(engine) as session:
                for nation, clearance, groups in PARTNERS:
                    save_partner(session, nation=nation, clearance=clearance, groups=groups, home_nation=HOME)
        finally:
            engine.dispose()
        yield settings.model_copy(update={"database_url": url, **overrides})


@contextmanager
def running(settings: Settings) -> Iterator[Any]:
    """An app on ``settings`` with its lifespan running (so its feed workers, if the settings want them)."""
    application = create_app(settings)
    try:
        with TestClient(application):
            yield application
    finally:
        application.state.engine.dispose()
        application.state.audit_engine.dispose()


def wait_for(check: Callable[[], Any], timeout: float, step: float = 0.02) -> float:
    """Seconds until ``check()`` is true; fails the test after ``timeout``."""
    started = time.monotonic()
    while not check():
        elapsed = time.monotonic() - started
        assert elapsed < timeout, f"not within {timeout}s"
        time.sleep(step)
    return time.monotonic() - started


def new_collection(app) -> str:
    """A fresh collection that partners and analysts read and analysts write."""
    with Session(app.state.engine) as session:
        return taxii_service.create_collection(
            session, title=f"out {uuid.uuid4().hex[:8]}", read_roles={"partner", "analyst"}, write_roles={"analyst"}
        ).id


def post(app, collection_id: str, objects: list[dict]) -> None:
    """An analyst posts ``objects`` (committed when this returns)."""
    with Session(app.state.engine) as session:
        status = taxii_service.add_objects(
            session, collection_id, ANALYST, objects, mappings=app.state.mappings, home_nation=HOME
        )
        assert status.failure_count == 0, status.details


def add_feed(app, **spec: Any) -> None:
    with Session(app.state.engine) as session:
        service.add_feed(session, app.state.settings, app.state.mappings, FeedSpec(**spec))


def outbox_rows(app, collection_id: str) -> int:
    with Session(app.state.engine) as session:
        return int(
            session.execute(
                select(func.count()).select_from(StoredChange).where(StoredChange.collection_id == collection_id)
            ).scalar_one()
        )


def version_keys(objects: list[dict]) -> set[str]:
    """``id|modified`` of every object that is not a marking definition."""
    return {f"{o['id']}|{o['modified']}" for o in objects if o["type"] != "marking-definition"}


def partner_may_see(app, collection_id: str, nation: str) -> set[str]:
    """The versions ``versions_page`` serves the partner's principal: what it may receive, no more."""
    with Session(app.state.engine) as session:
        partner = session.get(Partner, nation)
        assert partner is not None
        principal = partner_principal(partner, "expected")
        page = versions_page(
            session,
            collection_id,
            app.state.visibility.visible_label_ids(session, principal),
            VersionFilter(versions=("all",)),
            after_us=None,
            limit=1000,
            with_body=True,
            readable=readable_collections(session, app.state.role_rights, principal),
        )
    return version_keys([json.loads(row.body or "{}") for row in page.rows])


def mixed_batch() -> tuple[list[dict], dict[str, set[str]]]:
    """Objects with mixed labels, and the ``id|modified`` each of GBR and DEU may receive."""
    defs = {
        name: statement(text)
        for name, text in {
            "gbr": "SECRET//REL TO GBR",
            "deu": "CONFIDENTIAL//REL TO DEU",
            "nato": "RESTRICTED//REL TO NATO",
            "usa": "SECRET//REL TO USA",
        }.items()
    }
    objects = {
        "gbr": indicator("For GBR", defs["gbr"]["id"]),
        "deu": indicator("For DEU", defs["deu"]["id"]),
        "nato": indicator("For NATO", defs["nato"]["id"]),
        "green": indicator("Green", TLP_GREEN),
        "usa": indicator("For USA", defs["usa"]["id"]),
        "home": indicator("Home only"),
    }
    keys = {name: f"{o['id']}|{o['modified']}" for name, o in objects.items()}
    return [*defs.values(), *objects.values()], {
        "GBR": {keys["gbr"], keys["nato"], keys["green"]},
        "DEU": {keys["deu"], keys["nato"], keys["green"]},
    }

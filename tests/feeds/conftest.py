"""Live peers for feed tests, on 127.0.0.1, started once per test session.

- ``medallion``: the OASIS TAXII 2.1 reference server (memory backend, HTTP Basic), served by
  werkzeug in a thread behind :class:`FailFirst`, which answers the next N requests with an
  error status on demand. Its pull collection is loaded with fixture objects one POST at a time
  (distinct ``date_added``); a pool of empty collections receives pushes, one per test.
- ``peer``: a second Tearline with home nation GBR, its own SQLite database and keys, served by
  uvicorn in a thread. NLD is its partner; its analyst publishes a fixture set with labels
  released to NLD, to USA only, to NATO, and not at all.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests
import uvicorn
from sqlmodel import Session
from werkzeug.serving import make_server

from app.auth.keys import generate_key_pair
from app.auth.principal import Principal
from app.auth.tokens import issue_token
from app.config.settings import Settings
from app.db import migrations
from app.feeds.context import FeedContext
from app.main import create_app
from app.partners.service import save_partner
from app.taxii import service as taxii_service

PEER_HOME = "GBR"
MEDALLION_PARTNER = "DEU"
MEDALLION_USER, MEDALLION_PASSWORD = "tearline-feed", "medallion-s3cret-pw"
MEDALLION_ROOT = "feeds"
MEDALLION_PULL_COLLECTION = "8f1c1e9a-51a8-4c2e-9b56-1c7d0b9e3a01"
MEDALLION_PUSH_POOL = [f"5d0c3f1e-0000-4000-8000-{n:012d}" for n in range(40)]  # one per test and backend
MEDALLION_MAX_CONTENT = 2500  # small, so pushes need several envelopes
CREATED = "2026-11-01T10:00:00.000Z"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def statement(statement_text: str) -> dict:
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": f"marking-definition--{uuid.uuid4()}",
        "created": CREATED,
        "definition_type": "statement",
        "definition": {"statement": statement_text},
    }


def indicator(name: str, *refs: str, modified: str = CREATED, object_id: str | None = None, **extra) -> dict:
    obj = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": object_id or f"indicator--{uuid.uuid4()}",
        "created": CREATED,
        "modified": modified,
        "name": name,
        "indicator_types": ["malicious-activity"],
        "pattern": f"[domain-name:value = '{name.lower().replace(' ', '-')}.example']",
        "pattern_type": "stix",
        "valid_from": "2026-11-01T10:00:00Z",
        **extra,
    }
    if refs:
        obj["object_marking_refs"] = list(refs)
    return obj


TLP_GREEN = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"


# ---------------------------------------------------------------- medallion


class FailFirst:
    """WSGI wrapper: after ``arm(n, status)`` the next n requests get that status, then pass through."""

    def __init__(self, app) -> None:
        self.app, self.remaining, self.status, self.failed = app, 0, 503, 0
        self.lock = threading.Lock()
        self.release: threading.Event | None = None
        self.stalled = threading.Event()

    def stall_next_post(self) -> threading.Event:
        """Hold the next POST, unanswered, until the returned event is set (a push in flight)."""
        with self.lock:
            self.release, self.stalled = threading.Event(), threading.Event()
            return self.release

    def arm(self, count: int, status: int = 503) -> None:
        with self.lock:
            self.remaining, self.status, self.failed = count, status, 0

    def __call__(self, environ, start_response):
        with self.lock:
            release = self.release if environ.get("REQUEST_METHOD") == "POST" else None
            if release is not None:
                self.release = None
        if release is not None:
            self.stalled.set()
            release.wait(60)
        with self.lock:
            fail = self.remaining > 0
            if fail:
                self.remaining -= 1
                self.failed += 1
        if fail:
            body = json.dumps({"title": "injected", "http_status": str(self.status)}).encode()
            start_response(
                f"{self.status} Injected",
                [("Content-Type", "application/taxii+json;version=2.1"), ("Content-Length", str(len(body)))],
            )
            return [body]
        return self.app(environ, start_response)


@dataclass
class Medallion:
    base_url: str
    failer: FailFirst
    pull_objects: list[dict]
    definitions: dict[str, dict]
    push_pool: list[str] = field(default_factory=lambda: list(MEDALLION_PUSH_POOL))

    @property
    def root_url(self) -> str:
        return f"{self.base_url}/{MEDALLION_ROOT}/"

    def take_push_collection(self) -> str:
        return self.push_pool.pop(0)

    def objects(self, collection_id: str) -> list[dict]:
        """Every version in a collection, read with plain requests (medallion pages at 100)."""
        found, params = [], {"match[version]": "all", "limit": "100"}
        url = f"{self.root_url}collections/{collection_id}/objects/"
        auth = (MEDALLION_USER, MEDALLION_PASSWORD)
        headers = {"Accept": "application/taxii+json;version=2.1"}
        while True:
            envelope = requests.get(url, params=params, auth=auth, headers=headers, timeout=10).json()
            found += envelope.get("objects", [])
            if not envelope.get("more"):
                return found
            params = {"match[version]": "all", "limit": "100", "next": envelope["next"]}


def _medallion_data(port: int) -> dict:
    def collection(cid: str, title: str) -> dict:
        return {
            "id": cid,
            "title": title,
            "description": "",
            "can_read": True,
            "can_write": True,
            "media_types": ["application/stix+json;version=2.1"],
            "objects": [],
            "manifest": [],
        }

    return {
        "/discovery": {
            "title": "medallion test server",
            "description": "",
            "contact": "",
            "default": f"http://127.0.0.1:{port}/{MEDALLION_ROOT}/",
            "api_roots": [f"http://127.0.0.1:{port}/{MEDALLION_ROOT}/"],
        },
        MEDALLION_ROOT: {
            "information": {
                "title": "Feeds",
                "description": "",
                "versions": ["application/taxii+json;version=2.1"],
                "max_content_length": MEDALLION_MAX_CONTENT,
            },
            "status": [],
            "collections": [
                collection(MEDALLION_PULL_COLLECTION, "outgoing"),
                *(collection(cid, f"push {n}") for n, cid in enumerate(MEDALLION_PUSH_POOL)),
            ],
        },
    }


def medallion_fixture_objects() -> tuple[list[dict], dict[str, dict]]:
    """What DEU publishes on its medallion server, in publication order."""
    released = statement("VS-VERTRAULICH//REL TO NLD, FRA")  # CONFIDENTIAL, for NLD and FRA
    unknown = statement("ACME internal use only")  # not a banner: an unknown marking
    first_id = f"indicator--{uuid.uuid4()}"
    objects = [
        released,
        indicator("Released to FRA", released["id"], object_id=first_id),
        indicator("Green for all", TLP_GREEN),
        indicator("Unmarked"),
        unknown,
        indicator("Unknown marking", unknown["id"]),
        indicator(
            "Released to FRA",
            released["id"],
            object_id=first_id,
            modified="2026-11-02T10:00:00.000Z",
            description="second version",
        ),
        indicator("Unmarked two"),
        indicator("Unmarked three"),
    ]
    return objects, {"released": released, "unknown": unknown}


@pytest.fixture(scope="session")
def medallion(tmp_path_factory) -> Iterator[Medallion]:
    import medallion as medallion_module

    port = free_port()
    directory = tmp_path_factory.mktemp("medallion")
    data_path = directory / "data.json"
    data_path.write_text(json.dumps(_medallion_data(port)))
    config = {
        "backend": {
            "module": "medallion.backends.memory_backend",
            "module_class": "MemoryBackend",
            "filename": str(data_path),
        },
        "users": {MEDALLION_USER: MEDALLION_PASSWORD},
        "taxii": {"max_page_size": 100},
    }
    config_path = directory / "config.json"
    config_path.write_text(json.dumps(config))
    flask_app = medallion_module.load_app(str(config_path))
    failer = FailFirst(flask_app)
    server = make_server("127.0.0.1", port, failer, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    objects, definitions = medallion_fixture_objects()
    url = f"{base}/{MEDALLION_ROOT}/collections/{MEDALLION_PULL_COLLECTION}/objects/"
    headers = {"Accept": "application/taxii+json;version=2.1", "Content-Type": "application/taxii+json;version=2.1"}
    for obj in objects:
        answer = requests.post(
            url, json={"objects": [obj]}, auth=(MEDALLION_USER, MEDALLION_PASSWORD), headers=headers, timeout=10
        )
        assert answer.status_code == 202 and answer.json()["success_count"] == 1, answer.text
        time.sleep(0.002)  # distinct date_added per object
    try:
        yield Medallion(base, failer, objects, definitions)
    finally:
        server.shutdown()
        thread.join(timeout=10)


# ---------------------------------------------------------------- Tearline peer


@dataclass
class Peer:
    base_url: str
    app: object
    settings: Settings
    private_key: str
    outbox: str
    published: dict[str, dict]

    def token(self, nation: str = "NLD", roles: tuple[str, ...] = ("partner",), subject: str = "nld-exchange") -> str:
        return issue_token(
            key=self.private_key,
            algorithm="RS256",
            issuer=self.settings.jwt_issuer,
            audience=self.settings.jwt_audience,
            subject=subject,
            nation=nation,
            roles=list(roles),
            lifetime_s=3600,
        )

    def session(self) -> Session:
        return Session(self.app.state.engine)

    def new_inbox(self) -> str:
        with self.session() as session:
            return taxii_service.create_collection(
                session, title=f"inbox {uuid.uuid4().hex[:8]}", read_roles={"analyst"}, write_roles={"partner"}
            ).id

    def stored(self, collection_id: str) -> list[dict]:
        from sqlalchemy import select

        from app.items.models import StixObject

        with self.session() as session:
            rows = session.execute(select(StixObject.body).where(StixObject.collection_id == collection_id))
            return [json.loads(body) for (body,) in rows]


def peer_fixture_objects() -> dict[str, dict]:
    """What GBR's analysts publish, by role in the tests."""
    to_nld_usa = statement("SECRET//REL TO NLD, USA")
    to_nld = statement("CONFIDENTIAL//REL TO NLD")
    to_usa = statement("SECRET//REL TO USA")
    to_nato = statement("RESTRICTED//REL TO NATO")
    return {
        "def_nld_usa": to_nld_usa,
        "def_nld": to_nld,
        "def_usa": to_usa,
        "def_nato": to_nato,
        "nld_usa": indicator("For NLD and USA", to_nld_usa["id"]),
        "nld_only": indicator("For NLD only", to_nld["id"]),
        "usa_only": indicator("For USA only", to_usa["id"]),
        "nato": indicator("For NATO", to_nato["id"]),
        "unmarked": indicator("GBR eyes only"),
        "green": indicator("Green from GBR", TLP_GREEN),
    }


@pytest.fixture(scope="session")
def peer(tmp_path_factory) -> Iterator[Peer]:
    directory = tmp_path_factory.mktemp("peer")
    generate_key_pair(directory / "jwt-private.pem", directory / "jwt-public.pem")
    database_url = f"sqlite:///{directory / 'peer.sqlite'}"
    migrations.upgrade(database_url)
    settings = Settings(
        database_url=database_url,
        home_nation=PEER_HOME,
        data_dir=directory / "data",
        jwt_public_key_file=directory / "jwt-public.pem",
        jwt_private_key_file=directory / "jwt-private.pem",
        secret_key="peer-cursor-secret",
        feed_scheduler=False,
    )
    application = create_app(settings)
    with Session(application.state.engine) as session:
        for nation, clearance, groups in [
            ("NLD", 3, ["NATO", "EU"]),
            ("USA", 3, ["FVEY", "NATO"]),
            ("FRA", 2, ["NATO", "EU"]),
        ]:
            save_partner(session, nation=nation, clearance=clearance, groups=groups, home_nation=PEER_HOME)
        outbox = taxii_service.create_collection(
            session, title="GBR outbox", read_roles={"partner", "analyst"}, write_roles={"analyst"}
        ).id
        published = peer_fixture_objects()
        analyst = Principal("gbr-analyst", PEER_HOME, frozenset({"analyst"}), 4, frozenset(), is_home=True)
        status = taxii_service.add_objects(
            session,
            outbox,
            analyst,
            list(published.values()),
            mappings=application.state.mappings,
            home_nation=PEER_HOME,
        )
        assert status.failure_count == 0, status.details
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the peer did not start"
        time.sleep(0.02)
    try:
        yield Peer(
            f"http://127.0.0.1:{port}",
            application,
            settings,
            (directory / "jwt-private.pem").read_text(),
            outbox,
            published,
        )
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        application.state.engine.dispose()


# ---------------------------------------------------------------- local side


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    """The session settings with quick retries and small pages."""
    return settings.model_copy(
        update={
            "feed_retry_attempts": 4,
            "feed_retry_initial_s": 0.01,
            "feed_retry_max_s": 0.05,
            "feed_page_size": 2,
            "feed_timeout_s": 10,
        }
    )


@pytest.fixture
def ctx(app, fast_settings: Settings) -> FeedContext:
    return FeedContext(fast_settings, app.state.engine, app.state.mappings, app.state.visibility, app.state.role_rights)


@pytest.fixture
def feed_name() -> str:
    return f"feed-{uuid.uuid4().hex[:10]}"


# ---------------------------------------------------------------- OpenTAXII (its own venv, gunicorn)

from tests.feeds.opentaxii_peer import opentaxii  # noqa: E402, F401  (the fixture; the helper uses the above)

"""EclecticIQ OpenTAXII as a live feed peer: its own virtual environment, served by gunicorn on 127.0.0.1.

The venv (exact pins, built once under ``.venv/peers/opentaxii/``), its configuration, its setup with
OpenTAXII's own Python API and gunicorn are in ``bench/opentaxii_server.py``, shared with the peer
benchmark; without PyPI to build the venv the tests are skipped with the reason. Why 0.10.0b1 and not
0.9.x is there too; the quirks it keeps are in docs/partners.md, "OpenTAXII".

The server: SQLite backend, TAXII 2.1 only, one API root, a pull collection loaded by the partner's own
account over TAXII POST, and a pool of empty collections that receive pushes, one per test. The feed's
account may read the pull collection and read and write the pool (per-collection TAXII 2.1
permissions); the partner's publishing account is an OpenTAXII admin.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from bench.opentaxii_server import TAXII, PeerUnavailable, bootstrap, peer_venv, serve, write_config

PARTNER = "DEU"
FEED_USER, FEED_PASSWORD = "tearline-feed", "opentaxii-feed-pw"
PUBLISHER_USER, PUBLISHER_PASSWORD = "deu-publisher", "opentaxii-publisher-pw"
MAX_CONTENT_LENGTH = 3000  # small, so pushes take several envelopes
POOL_SIZE = 12
__all__ = ["FEED_PASSWORD", "FEED_USER", "PARTNER", "TAXII", "OpenTaxii", "opentaxii"]


@dataclass
class OpenTaxii:
    """A running OpenTAXII: its URLs, the loaded pull collection and the pool of empty ones."""

    base_url: str
    api_root_id: str
    pull_collection: str
    pull_objects: list[dict]
    definitions: dict[str, dict]
    data_db: Path
    pool: list[str] = field(default_factory=list)

    @property
    def discovery_url(self) -> str:
        return f"{self.base_url}/taxii2/"

    @property
    def root_url(self) -> str:
        return f"{self.base_url}/taxii2/{self.api_root_id}/"

    def take_collection(self) -> str:
        return self.pool.pop(0)

    def post(self, collection_id: str, objects: list[dict]) -> requests.Response:
        """Add objects as the partner's publisher, with OpenTAXII's own TAXII POST."""
        return requests.post(
            f"{self.root_url}collections/{collection_id}/objects/",
            data=json.dumps({"objects": objects}),
            auth=(PUBLISHER_USER, PUBLISHER_PASSWORD),
            headers={"Accept": TAXII, "Content-Type": TAXII},
            timeout=10,
        )

    def manifest(self, collection_id: str) -> list[dict]:
        """The collection's manifest (one page: the tests' collections are small)."""
        answer = requests.get(
            f"{self.root_url}collections/{collection_id}/manifest/",
            params={"match[version]": "all"},
            auth=(PUBLISHER_USER, PUBLISHER_PASSWORD),
            headers={"Accept": TAXII},
            timeout=10,
        )
        assert answer.status_code == 200 and not answer.json().get("more"), answer.text
        return answer.json().get("objects", [])

    def objects(self, collection_id: str) -> list[dict]:
        """Every version in a collection, read with OpenTAXII's own GET objects (its pages followed)."""
        found, params = [], {"match[version]": "all", "limit": "50"}
        url = f"{self.root_url}collections/{collection_id}/objects/"
        while True:
            answer = requests.get(
                url, params=params, auth=(PUBLISHER_USER, PUBLISHER_PASSWORD), headers={"Accept": TAXII}, timeout=10
            )
            assert answer.status_code == 200, answer.text
            envelope = answer.json()
            found += envelope.get("objects", [])
            if not envelope.get("more"):
                return found
            params = {"match[version]": "all", "limit": "50", "next": envelope["next"]}


@pytest.fixture(scope="session")
def opentaxii(tmp_path_factory) -> Iterator[OpenTaxii]:
    """OpenTAXII on 127.0.0.1 for the whole session (it does not depend on the database backend)."""
    # Imported here: tests/feeds/conftest.py imports this module for the fixture.
    from tests.feeds.conftest import free_port, medallion_fixture_objects

    try:
        venv = peer_venv()
    except PeerUnavailable as exc:
        pytest.skip(str(exc))
    directory = tmp_path_factory.mktemp("opentaxii")
    port = free_port()
    config = write_config(directory, port, title="DEU OpenTAXII", max_content_length=MAX_CONTENT_LENGTH)
    ids = bootstrap(
        venv,
        config,
        title="DEU feeds",
        description="DEU partner exchange",
        collections=["DEU outgoing"] + [f"inbox {n}" for n in range(POOL_SIZE)],
        accounts=[
            {"username": PUBLISHER_USER, "password": PUBLISHER_PASSWORD, "admin": True, "permissions": {}},
            {
                "username": FEED_USER,
                "password": FEED_PASSWORD,
                "admin": False,
                "permissions": {"0": ["read"], **{str(n + 1): ["read", "write"] for n in range(POOL_SIZE)}},
            },
        ],
    )
    pull, *pool = ids["collections"]
    with serve(venv, config, port, directory / "gunicorn.log") as base:
        objects, definitions = medallion_fixture_objects()
        peer = OpenTaxii(base, ids["api_root"], pull, objects, definitions, directory / "data.db", pool)
        for obj in objects:  # one POST each: publication order is date_added order
            answer = peer.post(peer.pull_collection, [obj])
            assert answer.status_code == 202 and answer.json()["success_count"] == 1, answer.text
        yield peer

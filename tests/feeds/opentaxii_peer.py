"""EclecticIQ OpenTAXII as a live feed peer: its own virtual environment, served by gunicorn on 127.0.0.1.

OpenTAXII pins dependencies that conflict with Tearline's (SQLAlchemy 1.4, its own Flask and
marshmallow), so it never goes into ``.venv``: :func:`peer_venv` builds ``.venv/peers/opentaxii/``
(ignored by git with the rest of ``.venv/``) on first use, in about 10 s with PyPI reachable, and
reuses it while :data:`REQUIREMENTS` stay the same. Without PyPI the tests are skipped with the
reason. An xdist run builds it once: the build holds a file lock, and its marker file is written last.

Version: 0.10.0b1, not 0.9.x. OpenTAXII 0.9.3, the last 0.9 release, answers 500 to the collection
resource and to every add-objects request on its SQL backend (UUIDs it cannot serialise), returns
``spec_version`` equal to the object's type, and fails on objects without ``modified`` (every marking
definition): it cannot be a TAXII 2.1 feed peer. 0.10.0b1 fixes these (its changelog, #289, #237,
#240); the quirks it keeps are in docs/partners.md, "OpenTAXII".

The server: SQLite backend, TAXII 2.1 only (``taxii1:`` empty), one API root, a pull collection
loaded by the partner's own account over TAXII POST, and a pool of empty collections that receive
pushes, one per test. The feed's account may read the pull collection and read and write the pool
(per-collection TAXII 2.1 permissions); the partner's publishing account is an OpenTAXII admin.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv" / "peers" / "opentaxii"
# Exact pins: the peer is a fixed thing to test against, and a new release of a dependency must
# not change it between runs. (opentaxii 0.10.0b1 asks only for SQLAlchemy <2; the rest is what
# pip resolved for it.)
REQUIREMENTS = (
    "opentaxii==0.10.0b1",
    "gunicorn==27.0.1",
    "SQLAlchemy==1.4.54",
    "Flask==3.1.3",
    "Werkzeug==3.1.9",
    "marshmallow==4.4.0",
    "stix2==3.0.2",
    "structlog==26.1.0",
    "libtaxii==1.1.119",
    "lxml==6.2.0",
)
PARTNER = "DEU"
FEED_USER, FEED_PASSWORD = "tearline-feed", "opentaxii-feed-pw"
PUBLISHER_USER, PUBLISHER_PASSWORD = "deu-publisher", "opentaxii-publisher-pw"
MAX_CONTENT_LENGTH = 3000  # small, so pushes take several envelopes
POOL_SIZE = 12
TAXII = "application/taxii+json;version=2.1"

# Run by the peer's own Python with OPENTAXII_CONFIG set: OpenTAXII's Python API (what its
# opentaxii-add-api-root / -add-collection / -create-account commands call), printing the ids.
BOOTSTRAP = """
import json, sys
from opentaxii.cli import app
from opentaxii.entities import Account

spec = json.loads(sys.argv[1])
with app.app_context():
    server = app.taxii_server
    api = server.servers.taxii2.persistence.api
    root = api.add_api_root(title="DEU feeds", description="DEU partner exchange", default=True)
    ids = {"api_root": str(root.id), "pull": None, "pool": []}
    ids["pull"] = str(api.add_collection(api_root_id=str(root.id), title="DEU outgoing").id)
    for n in range(spec["pool"]):
        ids["pool"].append(str(api.add_collection(api_root_id=str(root.id), title=f"inbox {n}").id))
    auth = server.auth.api
    auth.create_account(username=spec["publisher"][0], password=spec["publisher"][1], is_admin=True)
    feed = auth.create_account(username=spec["feed"][0], password=spec["feed"][1])
    permissions = {ids["pull"]: ["read"], **{cid: ["read", "write"] for cid in ids["pool"]}}
    auth.update_account(Account(id=feed.id, username=feed.username, permissions=permissions), None)
    print("IDS " + json.dumps(ids))
"""


def _requirements_key() -> str:
    return hashlib.sha256("\n".join(REQUIREMENTS).encode()).hexdigest()[:16]


def peer_venv() -> Path:
    """The peer's virtual environment, built if missing or stale; skips the test without PyPI."""
    marker = VENV / "tearline-requirements"
    key = _requirements_key()
    if marker.exists() and marker.read_text() == key:
        return VENV
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(VENV.parent / "opentaxii.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another xdist worker may be building it right now
        if marker.exists() and marker.read_text() == key:
            return VENV
        shutil.rmtree(VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True)
        install = subprocess.run(
            [str(VENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", *REQUIREMENTS],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if install.returncode != 0:
            shutil.rmtree(VENV, ignore_errors=True)
            pytest.skip(f"cannot build the OpenTAXII peer's venv (PyPI unreachable?): {install.stderr.strip()[-400:]}")
        marker.write_text(key)  # written last: a venv without it is incomplete and is built again
    return VENV


def _config(directory: Path, port: int) -> str:
    return f"""---
domain: "127.0.0.1:{port}"
support_basic_auth: yes
return_server_error_details: no
auth_api:
  class: opentaxii.auth.sqldb.SQLDatabaseAPI
  parameters:
    db_connection: sqlite:///{directory / "auth.db"}
    create_tables: yes
    secret: opentaxii-test-token-secret
    token_ttl_secs: 3600
taxii1:
taxii2:
  persistence_api:
    class: opentaxii.persistence.sqldb.Taxii2SQLDatabaseAPI
    parameters:
      db_connection: sqlite:///{directory / "data.db"}
      create_tables: yes
  title: "DEU OpenTAXII"
  public_discovery: no
  allow_custom_properties: yes
  max_content_length: {MAX_CONTENT_LENGTH}
logging:
  opentaxii: warning
  root: warning
"""


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


def _wait_until_serving(process: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if requests.get(url, timeout=1).status_code in (200, 401):
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"OpenTAXII did not start on {url}:\n{log.read_text()[-2000:]}")


@pytest.fixture(scope="session")
def opentaxii(tmp_path_factory) -> Iterator[OpenTaxii]:
    """OpenTAXII on 127.0.0.1 for the whole session (it does not depend on the database backend)."""
    # Imported here: tests/feeds/conftest.py imports this module for the fixture.
    from tests.feeds.conftest import free_port, medallion_fixture_objects

    venv = peer_venv()
    directory = tmp_path_factory.mktemp("opentaxii")
    port = free_port()
    config = directory / "opentaxii.yml"
    config.write_text(_config(directory, port))
    env = {**os.environ, "OPENTAXII_CONFIG": str(config)}
    spec = {"pool": POOL_SIZE, "feed": [FEED_USER, FEED_PASSWORD], "publisher": [PUBLISHER_USER, PUBLISHER_PASSWORD]}
    setup = subprocess.run(
        [str(venv / "bin" / "python"), "-c", BOOTSTRAP, json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert setup.returncode == 0, setup.stderr[-2000:]
    ids = json.loads(next(line[4:] for line in setup.stdout.splitlines() if line.startswith("IDS ")))
    log = directory / "gunicorn.log"
    with open(log, "w") as log_file:
        process = subprocess.Popen(
            [
                str(venv / "bin" / "gunicorn"),
                "opentaxii.http:app",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--no-control-socket",  # its default path is shared by every gunicorn of this user
                "--config",
                "python:opentaxii.http",
            ],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the worker is stopped with the arbiter
        )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_serving(process, f"{base}/taxii2/", log)
        objects, definitions = medallion_fixture_objects()
        peer = OpenTaxii(base, ids["api_root"], ids["pull"], objects, definitions, directory / "data.db", ids["pool"])
        for obj in objects:  # one POST each: publication order is date_added order
            answer = peer.post(peer.pull_collection, [obj])
            assert answer.status_code == 202 and answer.json()["success_count"] == 1, answer.text
        yield peer
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

"""EclecticIQ OpenTAXII 0.10.0b1 in its own virtual environment, configured and served by gunicorn on 127.0.0.1.

Shared by the feed tests' peer (``tests/feeds/opentaxii_peer.py``) and the peer benchmark
(``bench/opentaxii_bench.py``), so that both run the same pinned OpenTAXII the same way. Nothing here
imports pytest or Tearline: a missing venv is :class:`PeerUnavailable` (the tests turn it into a
skip, the bench into an error message), and setup failures are plain exceptions.

OpenTAXII pins dependencies that conflict with Tearline's (SQLAlchemy 1.4, its own Flask and
marshmallow), so it never goes into ``.venv``: :func:`peer_venv` builds ``.venv/peers/opentaxii/``
(ignored by git with the rest of ``.venv/``) on first use, in about 10 s with PyPI reachable, and
reuses it while :data:`REQUIREMENTS` stay the same. Concurrent builders (xdist workers, a bench run
beside the tests) build it once: the build holds a file lock, and its marker file is written last.

Version: 0.10.0b1, not 0.9.x. OpenTAXII 0.9.3, the last 0.9 release, answers 500 to the collection
resource and to every add-objects request on its SQL backend (UUIDs it cannot serialise), returns
``spec_version`` equal to the object's type, and fails on objects without ``modified`` (every marking
definition): it cannot serve TAXII 2.1. 0.10.0b1 fixes these (its changelog, #289, #237, #240).

The server: SQLite backend (``auth.db`` and ``data.db`` in the given directory), TAXII 2.1 only
(``taxii1:`` empty), set up with OpenTAXII's own Python API (what its ``opentaxii-add-api-root``,
``-add-collection`` and ``-create-account`` commands call) run by the peer's Python, then served by
gunicorn as OpenTAXII's documentation says (``opentaxii.http:app``, ``--config python:opentaxii.http``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv" / "peers" / "opentaxii"
# Exact pins: the peer is a fixed thing to test and measure against, and a new release of a dependency
# must not change it between runs. (opentaxii 0.10.0b1 asks only for SQLAlchemy <2; the rest is what
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
TAXII = "application/taxii+json;version=2.1"

# Run by the peer's own Python with OPENTAXII_CONFIG set (argument: the JSON spec of :func:`bootstrap`).
BOOTSTRAP = """
import json, sys
from opentaxii.cli import app
from opentaxii.entities import Account

spec = json.loads(sys.argv[1])
with app.app_context():
    server = app.taxii_server
    api = server.servers.taxii2.persistence.api
    root = api.add_api_root(title=spec["title"], description=spec["description"], default=True)
    ids = {"api_root": str(root.id), "collections": []}
    for title in spec["collections"]:
        ids["collections"].append(str(api.add_collection(api_root_id=str(root.id), title=title).id))
    auth = server.auth.api
    for account in spec["accounts"]:
        made = auth.create_account(username=account["username"], password=account["password"], is_admin=account["admin"])
        if account["permissions"]:
            permissions = {ids["collections"][int(i)]: p for i, p in account["permissions"].items()}
            auth.update_account(Account(id=made.id, username=made.username, permissions=permissions), None)
    print("IDS " + json.dumps(ids))
"""


class PeerUnavailable(RuntimeError):
    """The peer's venv cannot be built (PyPI unreachable, most likely)."""


def _requirements_key() -> str:
    return hashlib.sha256("\n".join(REQUIREMENTS).encode()).hexdigest()[:16]


def peer_venv() -> Path:
    """The peer's virtual environment, built if missing or stale; :class:`PeerUnavailable` without PyPI."""
    marker = VENV / "tearline-requirements"
    key = _requirements_key()
    if marker.exists() and marker.read_text() == key:
        return VENV
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(VENV.parent / "opentaxii.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it right now
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
            raise PeerUnavailable(
                f"cannot build the OpenTAXII peer's venv (PyPI unreachable?): {install.stderr.strip()[-400:]}"
            )
        marker.write_text(key)  # written last: a venv without it is incomplete and is built again
    return VENV


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(directory: Path, port: int, *, title: str, max_content_length: int) -> Path:
    """``opentaxii.yml`` for a server on ``port`` keeping its SQLite files in ``directory``."""
    config = directory / "opentaxii.yml"
    config.write_text(f"""---
domain: "127.0.0.1:{port}"
support_basic_auth: yes
return_server_error_details: no
auth_api:
  class: opentaxii.auth.sqldb.SQLDatabaseAPI
  parameters:
    db_connection: sqlite:///{directory / "auth.db"}
    create_tables: yes
    secret: opentaxii-peer-token-secret
    token_ttl_secs: 3600
taxii1:
taxii2:
  persistence_api:
    class: opentaxii.persistence.sqldb.Taxii2SQLDatabaseAPI
    parameters:
      db_connection: sqlite:///{directory / "data.db"}
      create_tables: yes
  title: "{title}"
  public_discovery: no
  allow_custom_properties: yes
  max_content_length: {max_content_length}
logging:
  opentaxii: warning
  root: warning
""")
    return config


def run_script(venv: Path, config: Path, script: str, *args: str, timeout: float) -> str:
    """Run ``script`` with the peer's Python and OPENTAXII_CONFIG set; its stdout (an error if it failed)."""
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script, *args],
        env={**os.environ, "OPENTAXII_CONFIG": str(config)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"OpenTAXII script failed:\n{done.stderr[-2000:]}")
    return done.stdout


def tagged(stdout: str, tag: str) -> dict:
    """The JSON a peer script printed on its line starting with ``tag``."""
    return json.loads(next(line[len(tag) + 1 :] for line in stdout.splitlines() if line.startswith(tag + " ")))


def bootstrap(
    venv: Path, config: Path, *, title: str, description: str, collections: list[str], accounts: list[dict]
) -> dict:
    """Create the API root, its collections and the accounts; returns ``{"api_root", "collections"}`` ids.

    Each account: ``username``, ``password``, ``admin`` and ``permissions``, a map from an index into
    ``collections`` to its TAXII 2.1 permissions (``["read"]``, ``["read", "write"]``).
    """
    spec = {"title": title, "description": description, "collections": collections, "accounts": accounts}
    return tagged(run_script(venv, config, BOOTSTRAP, json.dumps(spec), timeout=60), "IDS")


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
    raise RuntimeError(f"OpenTAXII did not start on {url}:\n{log.read_text()[-2000:]}")


@contextlib.contextmanager
def serve(venv: Path, config: Path, port: int, log: Path, *, worker_timeout: int = 30) -> Iterator[str]:
    """OpenTAXII under gunicorn (one sync worker) until the block ends; yields its base URL.

    ``worker_timeout`` is gunicorn's ``--timeout``: a request that takes longer gets its worker killed,
    so a benchmark of slow pages raises it.
    """
    with open(log, "w") as log_file:
        process = subprocess.Popen(
            [
                str(venv / "bin" / "gunicorn"),
                "opentaxii.http:app",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--timeout",
                str(worker_timeout),
                "--no-control-socket",  # its default path is shared by every gunicorn of this user
                "--config",
                "python:opentaxii.http",
            ],
            env={**os.environ, "OPENTAXII_CONFIG": str(config)},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the worker is stopped with the arbiter
        )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_serving(process, f"{base}/taxii2/", log)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

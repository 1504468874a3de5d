"""The stores and servers of ``bench/load.py``: a preloaded store, tokens, and ``tearline serve`` processes.

A store is built in this process without HTTP (as ``page_phases.py`` does): the migrations, the
partner nations of the test suite (``tests.conftest.PARTNERS``, the ones the oracle of
``tests/policy/oracle.py`` judges), one collection partners read and analysts write, and a preload
of indicators under the markings the load's analysts post (``tests.hardening.load.SPECS``). The
servers are then real ``tearline serve`` processes on free ports of 127.0.0.1, configured only by
``TEARLINE_*`` variables, as the suite's live-server tests start them.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import Session

from app.auth.principal import Principal as AppPrincipal
from app.config.settings import REPO_ROOT, Settings
from app.db import migrations
from app.main import create_app
from app.partners.service import save_partner
from app.taxii import service
from bench.fixtures import token_maker
from tests.conftest import PARTNERS
from tests.hardening.load import HOME, SPECS, TAXII
from tests.policy.oracle import Principal, VersionSpec, build_markings
from tests.taxii.helpers import indicator

CLIENTS_PER_NATION = 4  # 5 partner nations x 4 = the suite's 20 partner clients
ENVELOPE = 500
READY_LIMIT_S = 90  # only a guard against a server that never comes up (2 busy cores start slowly)
STOP_LIMIT_S = 60  # a graceful stop drains the audit writer; a kill would lose what it holds
CEILING_SUBJECT = "ceiling-"  # the ceiling's records are counted by this subject prefix
LOADER = AppPrincipal(
    subject="bench-loader", nation=HOME, roles=frozenset({"analyst"}), clearance=4, groups=frozenset(), is_home=True
)


def make_settings(url: str, work: Path) -> Settings:
    """The settings of the suite's load test (tests/conftest.py ``settings``), on ``url``.

    The cursor secret and the audit key are fixed, not per process: with two instances a cursor or
    a chain head written by one must verify on the other.
    """
    return Settings(
        database_url=url,
        home_nation=HOME,
        data_dir=work / "data",
        jwt_public_key_file=work / "keys" / "jwt-public.pem",
        jwt_private_key_file=work / "keys" / "jwt-private.pem",
        secret_key="bench-cursor-secret",
        audit_key="bench-audit-key",
        max_content_length=256 * 1024,
        default_page_size=50,
        max_page_size=200,
        feed_scheduler=False,
        metrics_public=True,  # the bench reads the audit write histogram from /metrics
    )


def server_environment(settings: Settings) -> dict[str, str]:
    """This process's environment without its TEARLINE_* variables, plus every setting of ``settings``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("TEARLINE_")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        env[f"TEARLINE_{name.upper()}"] = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return env


def build_store(settings: Settings, preload: int, seed: int) -> tuple[str, dict[str, VersionSpec]]:
    """Migrate, register the partners, create the collection and preload ``preload`` indicators.

    Returns the collection id and each preloaded object's markings (for the oracle).
    """
    migrations.upgrade(settings.database_url)
    app = create_app(settings)
    rng = random.Random(seed)
    known: dict[str, VersionSpec] = {}
    try:
        with Session(app.state.engine) as session:
            for nation, clearance, groups in PARTNERS:
                save_partner(session, nation=nation, clearance=clearance, groups=groups, home_nation=HOME)
            collection_id = service.create_collection(
                session, title="load", read_roles={"partner", "analyst"}, write_roles={"analyst"}
            ).id
            for start in range(0, preload, ENVELOPE):
                envelope: dict[str, dict[str, Any]] = {}  # by id: a definition shared by two indicators goes once
                for _ in range(min(ENVELOPE, preload - start)):
                    spec = rng.choice(SPECS)
                    built = build_markings(spec, HOME, None)
                    obj = indicator(object_marking_refs=built.object_marking_refs)
                    known[obj["id"]] = spec
                    envelope |= {definition["id"]: definition for definition in built.definitions}
                    envelope[obj["id"]] = obj
                status = service.add_objects(
                    session,
                    collection_id,
                    LOADER,
                    list(envelope.values()),
                    mappings=app.state.mappings,
                    home_nation=HOME,
                )
                if status.failure_count:
                    raise SystemExit(f"preload: {status.failure_count} objects refused: {status.details[:500]}")
        if not settings.is_sqlite:
            # A deployed store has planner statistics (autovacuum gathers them after a bulk load);
            # a fresh one has none until the app's own analyze runs.
            with app.state.engine.begin() as connection:
                connection.exec_driver_sql("ANALYZE")
    finally:
        app.state.engine.dispose()
        app.state.audit_engine.dispose()
    return collection_id, known


@dataclass
class Tokens:
    """Request headers of every client: the load's partners and analysts, and the ceiling's clients."""

    partners: list[tuple[Principal, dict[str, str]]]
    analysts: list[dict[str, str]]
    ceiling: list[str]  # bearer tokens, one per ceiling client

    @classmethod
    def issue(cls, settings: Settings, ceiling_clients: int) -> Tokens:
        """Sign every token once (RS256, about 50 ms each); they outlive any run of the bench."""
        assert settings.jwt_private_key_file is not None
        token = token_maker(settings, settings.jwt_private_key_file.parent, lifetime_s=6 * 3600)

        def headers(subject: str, nation: str, role: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {token(subject, nation, role)}", "Accept": TAXII}

        partners = [
            (Principal(nation, clearance, False), headers(f"{nation.lower()}-feed-{n}", nation, "partner"))
            for nation, clearance, _ in PARTNERS
            for n in range(CLIENTS_PER_NATION)
        ]
        analysts = [headers("analyst-a", HOME, "analyst"), headers("analyst-b", HOME, "analyst")]
        nations = [nation for nation, _, _ in PARTNERS]
        ceiling = [token(f"{CEILING_SUBJECT}{n}", nations[n % len(nations)], "partner") for n in range(ceiling_clients)]
        return cls(partners, analysts, ceiling)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Instance:
    """One ``tearline serve`` process on a free port of 127.0.0.1, its output in ``log_path``."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.env = server_environment(settings)
        self.log_path = log_path
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.killed = False

    def start(self) -> Instance:
        """Start the process; :meth:`wait_ready` waits for it."""
        command = [sys.executable, "-m", "app.cli.main", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                command, cwd=REPO_ROOT, env=self.env, stdout=log_file, stderr=subprocess.STDOUT
            )
        return self

    def wait_ready(self) -> None:
        """Until ``/readyz`` answers 200 (the database reachable, the schema current)."""
        assert self.process is not None
        deadline = time.monotonic() + READY_LIMIT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.base_url} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"{self.base_url} was not ready within {READY_LIMIT_S}s:\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the server process so far (Linux /proc), 0 if unknown."""
        if self.process is None:
            return 0.0
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> int | None:
        """SIGTERM and wait: the lifespan's shutdown runs (the audit writer drains). Kill after the limit."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.terminate()
        try:
            return self.process.wait(timeout=STOP_LIMIT_S)
        except subprocess.TimeoutExpired:
            self.killed = True
            self.process.kill()
            return self.process.wait()

    def log_tail(self, size: int = 4000) -> str:
        """The end of the server's output, for a failure message."""
        return self.log_path.read_text(errors="replace")[-size:] if self.log_path.exists() else ""


def start_instances(settings: Settings, count: int, work: Path, label: str) -> list[Instance]:
    """Start ``count`` servers on ``settings`` at once (they start in parallel) and wait for all."""
    instances = [Instance(settings, work / f"{label}-server-{n}.log").start() for n in range(count)]
    try:
        for instance in instances:
            instance.wait_ready()
    except BaseException:
        for instance in instances:
            instance.stop()
        raise
    return instances

"""Fixtures of the hardening suite: memoised tokens, a client that returns 500s as responses,
row counts of the whole database, and live server processes that can be killed and restarted."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, inspect, select, table
from sqlalchemy.engine import Engine

from app.config.settings import REPO_ROOT, Settings
from tests.conftest import memoised
from tests.e2e.conftest import (
    _free_port,
    _serve_command,
    _server_environment,
    _wait_until_healthy,
)
from tests.hardening import tally

# Tables that legitimately grow on a refused request (refusals are audited) or hold no data.
NOT_DATA = ("alembic_version", "audit")


def pytest_terminal_summary(terminalreporter) -> None:
    if not tally.COUNTS and not tally.FIGURES:
        return
    terminalreporter.section("hardening figures")
    for name, count in sorted(tally.COUNTS.items()):
        terminalreporter.write_line(f"{name}: {count}")
    for name, value in tally.FIGURES.items():
        terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture(scope="session")
def auth(auth) -> Callable[..., dict]:
    """Headers per set of claims, memoised: RS256 signing is slow and fuzzing asks for many."""
    return memoised(auth)


@pytest.fixture
def raw_client(app) -> Iterator[TestClient]:
    """A client that returns server errors as responses instead of raising them."""
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows in every data table (audit tables excluded: refusals add to them by design)."""
    with engine.connect() as connection:
        names = [name for name in inspect(connection).get_table_names() if not name.startswith(NOT_DATA)]
        return {name: connection.execute(select(func.count()).select_from(table(name))).scalar_one() for name in names}


@pytest.fixture
def counts(app) -> Callable[[], dict[str, int]]:
    """``counts()``: the row count of every data table, now."""
    return lambda: row_counts(app.state.engine)


class ServerProcess:
    """``tearline serve`` in its own process on a free port of 127.0.0.1, killable and restartable."""

    def __init__(
        self, settings: Settings, log_path: Path, env: dict[str, str] | None = None, args: list[str] | None = None
    ) -> None:
        self.settings = settings
        self.log_path = log_path
        self.extra_env = env or {}
        self.args = args or []
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, wait: bool = True) -> ServerProcess:
        environment = _server_environment(self.settings) | {"TEARLINE_FEED_SCHEDULER": "false"} | self.extra_env
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                _serve_command(self.port) + self.args,
                cwd=REPO_ROOT,
                env=environment,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        if wait:
            _wait_until_healthy(self.base_url, self.process, self.log_path)
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, open transactions are cut off mid-flight."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=15)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def server_factory(tmp_path) -> Iterator[Callable[..., ServerProcess]]:
    """``server_factory(settings)`` starts a server; every one started is stopped at teardown."""
    started: list[ServerProcess] = []

    def _start(settings: Settings, *, args: list[str] | None = None, wait: bool = True, **env: str) -> ServerProcess:
        server = ServerProcess(settings, tmp_path / f"server-{len(started)}.log", env, args)
        started.append(server)
        return server.start(wait)

    yield _start
    for server in started:
        server.stop()

"""A live Tearline server in its own process, on each test database.

The server is the real thing a partner would reach: ``tearline serve`` (or, without the CLI,
uvicorn on ``app.main:app``) listening on a free port of 127.0.0.1, configured only through
``TEARLINE_*`` environment variables copied from the session ``settings``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from app.config.settings import REPO_ROOT, Settings

STARTUP_LIMIT_S = 60  # only a guard against a server that never comes up
SERVER_LOG_TAIL = 4000


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_environment(settings: Settings) -> dict[str, str]:
    """The parent's environment without its TEARLINE_* variables, plus every setting of ``settings``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("TEARLINE_")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, (list, dict)):
            value = json.dumps(value)
        env[f"TEARLINE_{name.upper()}"] = str(value)
    return env


def _serve_command(port: int) -> list[str]:
    if (REPO_ROOT / "app" / "cli" / "main.py").exists():
        return [sys.executable, "-m", "app.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port)]
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "app.main:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]


def _log_tail(log_path: Path) -> str:
    return log_path.read_text(errors="replace")[-SERVER_LOG_TAIL:]


def _wait_until_healthy(base_url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_LIMIT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode} before answering:\n{_log_tail(log_path)}")
        try:
            if requests.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    pytest.fail(f"the server did not answer /healthz within {STARTUP_LIMIT_S}s:\n{_log_tail(log_path)}")


@contextmanager
def serving(settings: Settings, log_path: Path) -> Iterator[str]:
    """Run ``tearline serve`` with ``settings`` on a free port until exit; yields its base URL."""
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            _serve_command(port),
            cwd=REPO_ROOT,
            env=_server_environment(settings),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_healthy(base_url, process, log_path)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def live_server(app, settings: Settings, tmp_path_factory) -> Iterator[str]:
    """Base URL (``http://127.0.0.1:PORT``) of a server process on the session's database.

    Depends on ``app`` so that the partner nations are registered before anyone connects.
    """
    with serving(settings, tmp_path_factory.mktemp("live-server") / "server.log") as base_url:
        yield base_url

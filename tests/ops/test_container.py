"""The container files: lint-clean, shaped as documented, and the image's start sequence run for
real without Docker: the entrypoint script the Dockerfile installs, as a subprocess, against a
fresh PostgreSQL database, in production mode with its secrets read from files."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import requests
import yaml

from app.auth.keys import generate_key_pair
from app.auth.tokens import issue_token
from app.config.settings import REPO_ROOT
from tests.conftest import postgres_database

ENTRYPOINT = REPO_ROOT / "docker" / "entrypoint.sh"
DOCKERFILE = REPO_ROOT / "Dockerfile"
COMPOSE = REPO_ROOT / "compose.yaml"
BIN = Path(sys.executable).parent  # the venv's bin/: tearline, hadolint, shellcheck
STARTUP_LIMIT_S = 60  # a guard against a server that never comes up, not a timing assertion


def _tool(name: str) -> str:
    path = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    assert path, f"{name} is missing: it is a test dependency in pyproject.toml (pip install -e '.[test]')"
    return path


def _instructions(name: str) -> list[str]:
    """Dockerfile instructions (continuation lines joined) whose keyword is ``name``."""
    joined = DOCKERFILE.read_text().replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip().upper().startswith(name + " ")]


def test_dockerfile_passes_hadolint():
    result = subprocess.run([_tool("hadolint"), "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_entrypoint_passes_shellcheck():
    result = subprocess.run([_tool("shellcheck"), str(ENTRYPOINT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert os.access(ENTRYPOINT, os.X_OK)


def test_ci_script_passes_shellcheck():
    ci_run = REPO_ROOT / ".ci" / "run"
    result = subprocess.run([_tool("shellcheck"), str(ci_run)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert os.access(ci_run, os.X_OK)


def test_dockerfile_is_multi_stage_non_root_with_healthcheck_and_the_entrypoint():
    stages = _instructions("FROM")
    assert len(stages) >= 2 and stages[0].endswith("AS builder")
    assert any("--from=builder" in line for line in _instructions("COPY"))
    (user,) = _instructions("USER")
    uid = user.split()[1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    (healthcheck,) = _instructions("HEALTHCHECK")
    assert "/healthz" in healthcheck
    (entrypoint,) = _instructions("ENTRYPOINT")
    target = json.loads(entrypoint.split(None, 1)[1])[0]
    assert any(line.split()[-2:] == ["docker/entrypoint.sh", target] for line in _instructions("COPY"))
    # Secrets and tests never enter the build context.
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert {"secrets", ".env", "tests", ".venv"} <= set(ignored)


def test_compose_runs_production_on_postgresql_without_default_secrets():
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    app = services["tearline"]
    assert app["depends_on"]["postgres"]["condition"] == "service_healthy"
    environment = app["environment"]
    assert environment["TEARLINE_ENV"] == "production"
    assert ":?" in environment["TEARLINE_HOME_NATION"]  # compose refuses to start without it
    # Secrets come only from secret files, mounted where the entrypoint reads them.
    assert not {"TEARLINE_DATABASE_URL", "TEARLINE_SECRET_KEY", "TEARLINE_AUDIT_KEY"} & set(environment)
    targets = {s["target"] if isinstance(s, dict) else s for s in app["secrets"]}
    assert {"tearline_database_url", "tearline_secret_key", "tearline_audit_key"} <= targets
    assert all("file" in secret for secret in compose["secrets"].values())
    assert "command" not in app and "entrypoint" not in app  # the image's: migrate, then serve
    assert all(port.startswith("127.0.0.1:") for port in app["ports"])
    # Three compose-only variables (docker/smoke.sh sets them), defaulting to a deployment's values.
    assert app["ports"] == ["127.0.0.1:${TEARLINE_COMPOSE_PORT:-8000}:8000"]
    assert app["image"] == "${TEARLINE_COMPOSE_IMAGE:-tearline:latest}" and app["build"] == "."
    assert {secret["file"].rsplit("/", 1)[0] for secret in compose["secrets"].values()} == {
        "${TEARLINE_COMPOSE_SECRETS:-./secrets}"
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _environment(tmp_path: Path, database_url: str, port: int) -> dict[str, str]:
    keys = tmp_path / "keys"
    generate_key_pair(keys / "jwt-private.pem", keys / "jwt-public.pem")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "tearline_database_url").write_text(database_url + "\n")
    (secrets / "tearline_secret_key").write_text("cursor-secret-for-the-container-test\n")
    (secrets / "tearline_audit_key").write_text("audit-key-for-the-container-test\n")
    env = {name: value for name, value in os.environ.items() if not name.startswith("TEARLINE_")}
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "TEARLINE_SECRETS_DIR": str(secrets),
            "TEARLINE_ENV": "production",
            "TEARLINE_HOME_NATION": "NLD",
            "TEARLINE_JWT_PUBLIC_KEY_FILE": str(keys / "jwt-public.pem"),
            "TEARLINE_JWT_PRIVATE_KEY_FILE": str(keys / "jwt-private.pem"),
            "TEARLINE_DATA_DIR": str(tmp_path / "data"),
            "TEARLINE_HOST": "127.0.0.1",
            "TEARLINE_PORT": str(port),
            "TEARLINE_LOG_FORMAT": "json",
            "TEARLINE_METRICS_TOKEN": "ops-metrics-token",
        }
    )
    return env


def _entrypoint(*args: str, env: dict, log: Path) -> subprocess.Popen:
    with log.open("wb") as sink:
        return subprocess.Popen(
            ["sh", str(ENTRYPOINT), *args], cwd=REPO_ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT
        )


def _wait_ready(base_url: str, process: subprocess.Popen, log: Path) -> dict:
    deadline = time.monotonic() + STARTUP_LIMIT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the entrypoint exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            response = requests.get(f"{base_url}/readyz", timeout=2)
            if response.status_code == 200:
                return response.json()
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    pytest.fail(f"not ready within {STARTUP_LIMIT_S}s:\n{log.read_text()[-4000:]}")


def _stop(process: subprocess.Popen) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return -9


def _json_lines(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def test_entrypoint_migrates_then_serves_a_fresh_postgresql_database(tmp_path):
    with postgres_database() as database_url:
        port, second_port = _free_port(), _free_port()
        env = _environment(tmp_path, database_url, port)

        # `serve` alone never migrates: on an empty database it refuses, naming the fix.
        refused = subprocess.run(
            ["sh", str(ENTRYPOINT), "serve"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert refused.returncode == 1
        assert "tearline db upgrade" in refused.stderr
        assert database_url.rsplit("/", 1)[1] in refused.stderr  # the database from the secret file

        # No arguments: the image's default start, `db upgrade` then `serve`.
        first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
        first = _entrypoint(env=env, log=first_log)
        second = None
        try:
            base = f"http://127.0.0.1:{port}"
            ready = _wait_ready(base, first, first_log)
            assert ready == {"status": "ready", "checks": {"database": "ok", "schema": "ok", "policy": "ok"}}
            assert "migrated to head" in first_log.read_text()

            # A second instance on the same database, as behind a proxy: it serves without migrating.
            second = _entrypoint("serve", env={**env, "TEARLINE_PORT": str(second_port)}, log=second_log)
            second_base = f"http://127.0.0.1:{second_port}"
            _wait_ready(second_base, second, second_log)
            assert "migrated" not in second_log.read_text()

            token = issue_token(
                key=(tmp_path / "keys" / "jwt-private.pem").read_text(),
                algorithm="RS256",
                issuer="tearline",
                audience="tearline",
                subject="ops-check",
                nation="NLD",
                roles=["analyst"],
                lifetime_s=600,
            )
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/taxii+json;version=2.1"}
            answers = [requests.get(f"{url}/taxii2/", headers=headers, timeout=10) for url in (base, second_base)]
            assert [a.status_code for a in answers] == [200, 200]
            metrics = requests.get(
                f"{second_base}/metrics", headers={"Authorization": "Bearer ops-metrics-token"}, timeout=10
            )
            assert metrics.status_code == 200 and 'route="/taxii2/"' in metrics.text
        finally:
            codes = [_stop(first)] + ([_stop(second)] if second else [])
        # exec: the server itself got the signal and shut down cleanly (uvicorn then exits by
        # re-raising it); behind a shell that did not exec, the server would be orphaned.
        assert set(codes) <= {0, -signal.SIGTERM}, codes
        for log in (first_log, second_log):
            assert "Application shutdown complete" in log.read_text(), log.read_text()[-3000:]

        # JSON logs: the access line of each request carries the id the client got back.
        entries = _json_lines(first_log)
        request_id = answers[0].headers["X-Request-ID"]
        (access,) = [e for e in entries if e.get("request_id") == request_id]
        assert access["route"] == "/taxii2/" and access["status"] == 200
        assert access["subject"] == "ops-check" and access["nation"] == "NLD"
        assert any(e["logger"].startswith("uvicorn") for e in entries)  # uvicorn's lines are JSON too
        # ... and the audit record the server wrote for it carries the same id.
        with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://", 1)) as connection:
            recorded = connection.execute(
                "SELECT subject, status FROM audit_record WHERE request_id = %s", (request_id,)
            ).fetchall()
        assert recorded == [("ops-check", 200)]
        for log in (first_log, second_log):
            text = log.read_text()
            assert token not in text and "cursor-secret-for-the-container-test" not in text

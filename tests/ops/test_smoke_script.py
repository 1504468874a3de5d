"""docker/smoke.sh, the operator's one-command build-and-run check of the container files.

Docker is not available where the suite runs, so the script runs here for real against stand-ins:
`DOCKER` names a fake docker that records its arguments (and checks the secrets the script made),
and a local HTTP server plays the published app (/readyz, then /taxii2/ for the token the fake
`tearline token issue` printed). What this proves is the script's own logic: the order of the
steps, the compose project, image and secrets it uses, the exit status, and the teardown on
success and on every failure. The images themselves are built only where Docker runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from app.config.settings import REPO_ROOT

SMOKE = REPO_ROOT / "docker" / "smoke.sh"
BIN = Path(sys.executable).parent
COMPOSE_PREFIX = ["compose", "--project-name", "tearline-smoke", "--file", str(REPO_ROOT / "compose.yaml")]
SECRETS = {"postgres_password", "database_url", "secret_key", "audit_key", "jwt-public.pem"}

FAKE_DOCKER = """#!{python}
import json, os, shutil, sys
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if "up" in args:
    secrets = os.environ["TEARLINE_COMPOSE_SECRETS"]
    shutil.copytree(secrets, os.environ["FAKE_COPY"])
    with open(os.environ["FAKE_ENV"], "w") as out:
        json.dump({{k: v for k, v in os.environ.items() if k.startswith("TEARLINE_")}}, out)
if "token" in args:
    source = next(a for a in args if a.endswith(":/run/keys/jwt-private.pem:ro")).split(":")[0]
    assert open(source).read().startswith("-----BEGIN PRIVATE KEY-----"), source
    sys.stdout.write("stub-token\\r\\n")
"""


def _tool(name: str) -> str:
    path = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    assert path, f"{name} is missing: it is a test dependency in pyproject.toml (pip install -e '.[test]')"
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _App:
    """The published app as the script sees it: not ready for the first polls, then ready."""

    def __init__(self, *, not_ready_polls: int = 2, ready: bool = True, taxii_status: int | None = None) -> None:
        self.not_ready_polls, self.ready, self.taxii_status = not_ready_polls, ready, taxii_status
        self.requests: list[tuple[str, dict[str, str]]] = []


@contextmanager
def _serve(app: _App, port: int) -> Iterator[None]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            app.requests.append((self.path, dict(self.headers)))
            if self.path == "/readyz":
                polls = sum(1 for path, _ in app.requests if path == "/readyz")
                ok = app.ready and polls > app.not_ready_polls
                self._answer(200 if ok else 503, {"status": "ready" if ok else "not ready"})
            elif self.path == "/taxii2/":
                authorized = self.headers.get("Authorization") == "Bearer stub-token"
                status = app.taxii_status or (200 if authorized else 401)
                self._answer(status, {"title": "stand-in", "api_roots": []} if status == 200 else {"title": "no"})
            else:
                self._answer(404, {})

        def _answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fake(tmp_path: Path) -> dict[str, Path]:
    docker = tmp_path / "docker"
    docker.write_text(FAKE_DOCKER.format(python=sys.executable))
    docker.chmod(0o755)
    (tmp_path / "tmp").mkdir()
    return {
        "docker": docker,
        "log": tmp_path / "docker.log",
        "copy": tmp_path / "secrets-seen-by-compose",
        "env": tmp_path / "compose-env.json",
        "tmp": tmp_path / "tmp",
    }


def _run(fake: dict[str, Path], *args: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("TEARLINE_")}
    env.update(
        DOCKER=str(fake["docker"]),
        FAKE_LOG=str(fake["log"]),
        FAKE_COPY=str(fake["copy"]),
        FAKE_ENV=str(fake["env"]),
        TMPDIR=str(fake["tmp"]),
    )
    return subprocess.run(
        [str(SMOKE), *args], cwd=fake["tmp"], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _docker_calls(fake: dict[str, Path]) -> list[list[str]]:
    if not fake["log"].exists():
        return []
    return [json.loads(line) for line in fake["log"].read_text().splitlines()]


def _compose_verbs(calls: list[list[str]]) -> list[str]:
    verbs = []
    for call in calls:
        if call[: len(COMPOSE_PREFIX)] == COMPOSE_PREFIX:
            verbs.append(call[len(COMPOSE_PREFIX)])
        else:
            verbs.append(" ".join(call[:2]))
    return verbs


def test_smoke_script_passes_shellcheck_and_is_executable():
    result = subprocess.run([_tool("shellcheck"), str(SMOKE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert os.access(SMOKE, os.X_OK)


def test_builds_starts_waits_issues_a_token_gets_taxii2_and_tears_down(fake):
    port = _free_port()
    app = _App(not_ready_polls=2)
    with _serve(app, port):
        result = _run(fake, "--port", str(port), "--timeout", "30")
    assert result.returncode == 0, result.stderr
    assert "OK: built, started, migrated, ready, served /taxii2/" in result.stderr

    calls = _docker_calls(fake)
    assert _compose_verbs(calls) == ["up", "run", "down", "image rm"]
    up, token, down, image_rm = calls
    assert up[-3:] == ["up", "--detach", "--build"]
    issue = "tearline token issue --subject smoke-check --nation NLD --roles analyst --lifetime 600"
    assert token[-11:] == issue.split()
    assert {"--rm", "--no-deps", "-T"} <= set(token)
    assert "TEARLINE_JWT_PRIVATE_KEY_FILE=/run/keys/jwt-private.pem" in token
    assert "--volumes" in down
    assert image_rm == ["image", "rm", "tearline:smoke"]

    # Compose got the throwaway secrets, readable by the image's uid, and its own project settings.
    compose_env = json.loads(fake["env"].read_text())
    assert compose_env["TEARLINE_COMPOSE_PORT"] == str(port)
    assert compose_env["TEARLINE_COMPOSE_IMAGE"] == "tearline:smoke"
    assert compose_env["TEARLINE_HOME_NATION"] == "NLD"
    seen = fake["copy"]
    assert {p.name for p in seen.iterdir()} == SECRETS  # the private key stays out of compose's secrets
    password = (seen / "postgres_password").read_text()
    assert len(password) >= 32 and "\n" not in password
    assert (seen / "database_url").read_text() == f"postgresql+psycopg://tearline:{password}@postgres:5432/tearline"
    assert (seen / "jwt-public.pem").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert len({(seen / name).read_text() for name in ("secret_key", "audit_key", "postgres_password")}) == 3
    for path in seen.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) & 0o004, f"{path.name}: uid 10001 in the container cannot read it"

    # It polled until ready, then asked for discovery with the token the image printed.
    paths = [path for path, _ in app.requests]
    assert paths == ["/readyz"] * 3 + ["/taxii2/"]
    headers = app.requests[-1][1]
    assert headers["Authorization"] == "Bearer stub-token"
    assert headers["Accept"] == "application/taxii+json;version=2.1"
    assert list(fake["tmp"].iterdir()) == []  # the secrets are gone


@pytest.mark.parametrize(
    ("app", "timeout", "step"),
    [
        # A ready server gets a generous wait: on a loaded machine 3 s was not always enough to answer.
        (_App(taxii_status=401), "30", "GET /taxii2/ with the token"),
        (_App(ready=False), "3", "/readyz did not answer 200 within 3s"),
    ],
    ids=["token-refused", "never-ready"],
)
def test_a_failed_step_exits_non_zero_shows_the_logs_and_still_tears_down(fake, app, timeout, step):
    port = _free_port()
    with _serve(app, port):
        result = _run(fake, "--port", str(port), "--timeout", timeout)
    assert result.returncode == 1
    assert "FAILED: " in result.stderr and step in result.stderr
    verbs = _compose_verbs(_docker_calls(fake))
    assert verbs[0] == "up" and verbs[-3:] == ["logs", "down", "image rm"]
    assert list(fake["tmp"].iterdir()) == []


def test_a_failed_compose_up_tears_down_what_it_started(fake):
    fake["docker"].write_text(
        FAKE_DOCKER.format(python=sys.executable) + 'if "up" in args:\n    sys.exit("no registry")\n'
    )
    result = _run(fake, "--port", str(_free_port()))
    assert result.returncode == 1 and "FAILED: docker compose up" in result.stderr
    assert _compose_verbs(_docker_calls(fake)) == ["up", "logs", "down", "image rm"]


def test_dry_run_generates_secrets_and_prints_the_docker_commands_only(fake):
    result = _run(fake, "--dry-run", "--port", "18123")
    assert result.returncode == 0, result.stderr
    assert not fake["log"].exists()  # docker never ran
    printed = [line for line in result.stdout.splitlines() if line.startswith("+ ")]
    compose = f"+ {fake['docker']} compose --project-name tearline-smoke --file {REPO_ROOT / 'compose.yaml'}"
    assert printed[0] == f"{compose} up --detach --build"
    assert printed[1].startswith(f"{compose} run --rm --no-deps -T ") and "token issue" in printed[1]
    assert printed[2].endswith("http://127.0.0.1:18123/taxii2/")
    assert printed[3].startswith(f"{compose} down --volumes")
    assert set(result.stderr.split()) >= SECRETS
    assert "dry run: nothing was built or started" in result.stderr
    assert list(fake["tmp"].iterdir()) == []


def test_refuses_an_unknown_argument(fake):
    result = _run(fake, "--prot", "1")
    assert result.returncode == 2 and "unknown argument: --prot" in result.stderr
    assert not fake["log"].exists()

"""``tearline stream follow``: a collection's event stream in a terminal, against a live server.

The command runs in-process (typer's CliRunner) against an app instance served by uvicorn in a
thread on the session database, on SQLite and PostgreSQL. Reconnection is checked against a
scripted transport, where a dropped connection can be made to happen on cue.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from typer.testing import CliRunner

from app.cli import main as cli
from app.cli.stream import Follower, Output, follow_stream
from app.config.settings import REPO_ROOT, Settings
from tests.conftest import TAXII
from tests.live.conftest import Instance, serve
from tests.taxii.helpers import envelope, indicator
from tests.taxii.test_releasability import banner, marked

runner = CliRunner()


@pytest.fixture(scope="module")
def served(app, settings: Settings) -> Iterator[Instance]:
    """An instance of its own: its commits wake its streams."""
    with serve(settings.model_copy(update={"live_keepalive_seconds": 0.5})) as instance:
        yield instance


def _post(instance: Instance, auth, collection_id: str, objects: list[dict]) -> None:
    response = httpx.post(
        instance.objects_url(collection_id),
        headers=auth() | {"Content-Type": TAXII},
        content=envelope(objects),
        timeout=30,
    )
    assert response.status_code == 202 and response.json()["failure_count"] == 0, response.text


def _follow(instance: Instance, collection_id: str, *options: str, env: dict | None = None):
    args = ["stream", "follow", "--url", instance.base_url, "--collection", collection_id, *options]
    return runner.invoke(cli.app, args, env=env)


def _printed(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_follow_prints_an_object_posted_while_it_listens(served, auth, collection):
    token = auth(subject="usa-cli", nation="USA", roles=("partner",))["Authorization"].split()[1]
    rel_usa = banner("SECRET//REL TO USA")
    posted = marked(indicator(name="seen from the terminal"), rel_usa)
    results = []
    following = threading.Thread(
        target=lambda: results.append(
            _follow(served, collection.id, "--token", token, "--summary", "--max-events", "1")
        ),
        daemon=True,
    )
    following.start()
    deadline = time.monotonic() + 10
    while served.app.state.live_hub.open_streams == 0:
        assert time.monotonic() < deadline and following.is_alive(), "the command did not connect"
        time.sleep(0.02)
    _post(served, auth, collection.id, [rel_usa, posted])
    following.join(timeout=10)
    (result,) = results
    assert result.exit_code == 0, result.output
    assert f"indicator {posted['id']} 'seen from the terminal' [SECRET//REL TO USA]" in result.stdout.splitlines()
    assert "cursor " in result.stderr and "cursor " not in result.stdout


def test_follow_resumes_after_the_printed_cursor(served, auth, collection):
    env = {"FOLLOW_TOKEN": auth(subject="gbr-cli", nation="GBR", roles=("partner",))["Authorization"].split()[1]}
    rel_gbr = banner("SECRET//REL TO GBR")
    first = marked(indicator(), rel_gbr)
    _post(served, auth, collection.id, [rel_gbr, first])
    token = ("--token", "env:FOLLOW_TOKEN")
    caught_up = _follow(
        served, collection.id, *token, "--added-after", "2000-01-01T00:00:00Z", "--max-events", "1", env=env
    )
    assert caught_up.exit_code == 0, caught_up.output
    assert [o["id"] for o in _printed(caught_up.stdout)] == [rel_gbr["id"], first["id"]]
    (cursor,) = [line.split()[1] for line in caught_up.stderr.splitlines() if line.startswith("cursor ")]

    second = marked(indicator(), rel_gbr)
    _post(served, auth, collection.id, [second])
    resumed = _follow(
        served, collection.id, *token, "--last-event-id", cursor, "--max-events", "1", "--show-cursor", env=env
    )
    assert resumed.exit_code == 0, resumed.output
    assert [o["id"] for o in _printed(resumed.stdout)] == [second["id"]]  # nothing lost, nothing repeated
    assert resumed.stdout.splitlines()[-1].startswith("cursor ")


@pytest.mark.parametrize(("case", "status"), [("bad token", "401"), ("unknown collection", "404")])
def test_refusals_exit_non_zero_with_the_reason(served, auth, collection, case, status):
    token = "not-a-token" if case == "bad token" else auth()["Authorization"].split()[1]
    target = collection.id if case == "bad token" else "00000000-0000-4000-8000-000000000000"
    result = _follow(served, target, "--token", token)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: the server refused the stream ({status}: ")
    assert "Traceback" not in result.output


class _Script(httpx.SyncByteStream):
    """A response body that sends its chunks, then fails as a dropped connection does (or ends)."""

    def __init__(self, *chunks: bytes, drop: bool) -> None:
        self.chunks, self.drop = chunks, drop

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        if self.drop:
            raise httpx.ReadError("connection reset by peer")


def test_a_dropped_connection_is_resumed_with_the_last_event_id():
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        stream = {"content-type": "text/event-stream"}
        if len(seen) == 1:
            return httpx.Response(503, json={"title": "Service Unavailable"}, headers={"Retry-After": "0"})
        if len(seen) == 2:
            first = (
                b'event: objects\nid: cursor-1\ndata: {"objects": [{"type": "indicator", "id": "indicator--1"}]}\n\n'
            )
            return httpx.Response(200, headers=stream, stream=_Script(b": ping\n\n", first, drop=True))
        second = b'event: objects\nid: cursor-2\ndata: {"objects": [{"type": "indicator", "id": "indicator--2"}]}\n\n'
        close = b'event: close\ndata: {"reason": "the token is no longer valid"}\n\n'
        return httpx.Response(200, headers=stream, stream=_Script(second, close, drop=False))

    lines: list[tuple[str, bool]] = []
    output = Output(echo=lambda text, err: lines.append((text, err)))
    with httpx.Client(transport=httpx.MockTransport(answer)) as client:
        follower = Follower(client, "http://tearline.test/events/", "token", output, added_after="2026-01-01T00:00:00Z")
        reason = follow_stream(follower, sleep=lambda _: None)
    assert reason == "the token is no longer valid"
    assert [json.loads(text)["id"] for text, err in lines if not err and text.startswith("{")] == [
        "indicator--1",
        "indicator--2",
    ]
    # The start point until there is a cursor, then the cursor alone.
    assert [r.headers.get("last-event-id") for r in seen] == [None, None, "cursor-1"]
    assert [r.url.params.get("added_after") for r in seen] == ["2026-01-01T00:00:00Z"] * 2 + [None]
    notes = [text for text, err in lines if err]
    assert any(n.startswith("connection lost (Unavailable: 503") for n in notes)
    assert any(
        n.startswith("connection lost (ReadError: connection reset by peer); reconnecting after cursor cursor-1")
        for n in notes
    )
    assert follower.cursor == "cursor-2" and follower.received == 2


def test_the_command_module_keeps_its_imports_lazy():
    # `tearline --help` imports every command module: the stream client's libraries load only when it runs.
    probe = "import sys; import app.cli.main; print(sorted(m for m in ('httpx_sse', 'tenacity', 'httpx') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"

"""A Tearline instance served by uvicorn in a thread, and a stream reader that collects events.

Event streams need a real server: the test client collects a response whole, and a stream never
ends. Each module gets its own app instance on the session database (so this instance's commits
wake its streams), with short re-check and keep-alive periods.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from httpx_sse import ServerSentEvent, connect_sse

from app.config.settings import Settings
from app.main import create_app
from tests.feeds.conftest import free_port

EVENT_STREAM = "text/event-stream"


@dataclass
class Instance:
    """A served app: its base URL, the app, and its settings."""

    base_url: str
    app: Any
    settings: Settings

    def events_url(self, collection_id: str) -> str:
        return f"{self.base_url}/taxii2/{self.settings.api_root}/collections/{collection_id}/events/"

    def objects_url(self, collection_id: str) -> str:
        return f"{self.base_url}/taxii2/{self.settings.api_root}/collections/{collection_id}/objects/"


@contextmanager
def serve(settings: Settings) -> Iterator[Instance]:
    """A new app instance for ``settings``, served on a free port of 127.0.0.1 until the block ends."""
    application = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    try:
        yield Instance(f"http://127.0.0.1:{port}", application, settings)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        application.state.engine.dispose()
        application.state.audit_engine.dispose()


@pytest.fixture(scope="module")
def live_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"live_recheck_seconds": 0.5, "live_keepalive_seconds": 0.3})


@pytest.fixture(scope="module")
def instance(live_settings: Settings) -> Iterator[Instance]:
    with serve(live_settings) as served:
        yield served


@dataclass
class Stream:
    """Events of one open stream, read by a thread into a queue; ``status`` once the response started."""

    events: queue.Queue[ServerSentEvent] = field(default_factory=queue.Queue)
    status: int | None = None
    error_body: str = ""
    raw_lines: list[str] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)
    _client: httpx.Client | None = None

    def next(self, timeout: float = 3.0) -> ServerSentEvent:
        return self.events.get(timeout=timeout)

    def none_within(self, seconds: float) -> bool:
        """No event arrives within ``seconds``."""
        try:
            event = self.events.get(timeout=seconds)
        except queue.Empty:
            return True
        self.events.put(event)
        return False

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


@contextmanager
def open_stream(url: str, headers: dict[str, str], params: dict[str, str] | None = None) -> Iterator[Stream]:
    """Open an event stream in a thread; the block sees events as they arrive."""
    stream = Stream()
    client = httpx.Client(timeout=httpx.Timeout(30, read=None))
    stream._client = client

    def run() -> None:
        try:
            with connect_sse(client, "GET", url, headers=headers, params=params) as source:
                stream.status = source.response.status_code
                if stream.status != 200:
                    stream.error_body = source.response.read().decode()
                    return
                stream.started.set()
                for event in source.iter_sse():
                    if event.event == "message" and not event.data:
                        continue  # a keep-alive comment: httpx-sse yields the blank line after it
                    stream.events.put(event)
        except (httpx.HTTPError, RuntimeError):
            pass  # closed by the test
        finally:
            stream.started.set()
            stream.ended.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert stream.started.wait(10), "the stream did not start"
    try:
        yield stream
    finally:
        client.close()
        thread.join(timeout=5)

"""PostgreSQL ``LISTEN``: wakes this instance's streams when any instance stores versions.

The storing transaction sends ``NOTIFY tearline_stored, '<collection id>'``
(:func:`app.items.changes.announce_stored`); PostgreSQL delivers it at commit to every listening
connection, so a post on instance A reaches a stream on instance B. One thread per instance
holds the listening connection and reconnects after a failure.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import URL

from app.items.changes import CHANNEL

log = logging.getLogger(__name__)
RECONNECT_S = 2.0
POLL_S = 1.0  # how often the thread looks at its stop flag between notifications


class NotificationListener:
    """A daemon thread that calls ``on_stored({collection id})`` for each notification."""

    def __init__(self, url: URL, on_stored: Callable[[set[str]], None]) -> None:
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._on_stored = on_stored
        self._stop = threading.Event()
        self.listening = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tearline-live-listener", daemon=True)

    def start(self) -> None:
        """Start listening (once; later calls do nothing)."""
        if not self._thread.is_alive() and not self._stop.is_set() and self._thread.ident is None:
            self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop; it does within about a second, closing its connection. Not awaited:
        a daemon thread, and an app stopping (every test client does) should not wait for it."""
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    while not self._stop.is_set():
                        ids = {note.payload for note in connection.notifies(timeout=POLL_S)}
                        if ids:
                            self._on_stored(ids)
            except psycopg.Error:
                self.listening.clear()
                log.warning("live listener lost its PostgreSQL connection; reconnecting", exc_info=True)
                self._stop.wait(RECONNECT_S)

"""Threads that live as long as the app: each runs its step after a notice or a period, until stopped."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, cast

from fastapi import FastAPI
from starlette.types import Lifespan

log = logging.getLogger(__name__)
STOP_WAIT_S = 5


class BackgroundWorker:
    """A daemon thread that calls ``step(stop)`` after each :meth:`notify`, or every ``period_s`` without one.

    ``step`` gets the stop event, so that a long step can end early; an exception in it is logged
    and the next wake tries again (the database may be briefly unreachable).

    With ``settle_s``, a burst of notices runs one step once they pause for ``settle_s``, but no later
    than ``max_lag_s`` after the wake: for work that is cheaper in bulk and would otherwise compete
    with the requests that send the notices.
    """

    def __init__(
        self,
        name: str,
        step: Callable[[threading.Event], object],
        period_s: float,
        *,
        settle_s: float = 0.0,
        max_lag_s: float = 0.0,
    ) -> None:
        self.name, self.step, self.period_s = name, step, period_s
        self.settle_s, self.max_lag_s = settle_s, max_lag_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def notify(self) -> None:
        """Run the step soon, without waiting for the period."""
        self._wake.set()

    def stop(self) -> None:
        """Stop after the current step; do not wait long for it (a step cut short is safe to repeat)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=STOP_WAIT_S)

    def _loop(self) -> None:
        while True:
            self._wake.wait(self.period_s)
            self._wake.clear()
            self._settle()
            if self._stop.is_set():
                return
            try:
                self.step(self._stop)
            except Exception:
                log.exception("%s: step failed", self.name)

    def _settle(self) -> None:
        """Wait until notices pause for ``settle_s``, at most ``max_lag_s``; a stop ends the wait."""
        deadline = time.monotonic() + self.max_lag_s
        while self.settle_s > 0 and not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or not self._wake.wait(min(self.settle_s, left)):
                return
            self._wake.clear()


def run_with_app(app: FastAPI, attribute: str, build: Callable[[FastAPI], BackgroundWorker]) -> None:
    """Start ``build(app)``'s worker when the app starts, as ``app.state.<attribute>``; stop it when the app stops."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[Mapping[str, Any] | None]:
        worker = build(application)
        worker.start()
        setattr(application.state, attribute, worker)
        try:
            async with inner(application) as inner_state:
                yield inner_state
        finally:
            worker.stop()

    # Lifespan is either kind, stateless or stateful; the wrapper is of the kind the inner lifespan is.
    app.router.lifespan_context = cast("Lifespan[Any]", lifespan)

"""Install live dissemination on an app: the hub, its wake-ups after commit, and on PostgreSQL the listener."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, cast

from fastapi import FastAPI
from starlette.types import Lifespan

from app.live.hub import LiveHub
from app.live.listener import NotificationListener


def install_live(app: FastAPI) -> None:
    """Give ``app`` its :class:`LiveHub` (``app.state.live_hub``), woken by this instance's commits and,
    on PostgreSQL, by every instance's (for the app's lifetime)."""
    settings = app.state.settings
    hub = LiveHub(settings.live_max_streams, settings.live_max_streams_per_principal)
    app.state.live_hub = hub
    engine = app.state.engine
    app.state.stored_signal.subscribe(hub.wake)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[Mapping[str, Any] | None]:
        hub.attach(asyncio.get_running_loop())
        listener = NotificationListener(engine.url, hub.wake) if engine.dialect.name == "postgresql" else None
        # Started by the first stream, not here: an instance nobody follows holds no listening connection.
        hub.on_first_stream = listener.start if listener is not None else None
        try:
            async with inner(application) as inner_state:
                yield inner_state
        finally:
            hub.closing.set()  # open streams end, so the server can stop
            hub.on_first_stream = None
            if listener is not None:
                listener.stop()

    app.router.lifespan_context = cast("Lifespan[Any]", lifespan)
